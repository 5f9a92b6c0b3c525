//! `bench-pingpong`, the vat of `ocap bench` (and of `crates/kernel/benches/crank_loop.rs`,
//! whose vat it copies): written against the raw vat protocol, not the SDK, so that the
//! benchmark measures the kernel's crank and not the SDK's bookkeeping.
//!
//! Methods: `start(peer, n)` pings `peer` n times in sequence, then answers `"done"`;
//! `burst(peer, n)` sends all n pings in one delivery and answers once every reply came;
//! anything else (`ping`) answers `"pong"`. A malformed call fails the delivery.

use ocap_types::{
    CapData, Delivery, DeliveryOutcome, Message, Resolution, Syscall, VRef, Value, VatHost,
    VatRuntime, VatStart,
};

/// The benchmark's ping-pong vat.
#[derive(Default)]
struct PingPong {
    peer: Option<VRef>,
    remaining: i64,
    next: u64,
    answer: Option<VRef>,
    burst: bool,
}

/// A fresh `bench-pingpong` vat.
pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Box::new(PingPong::default())
}

impl PingPong {
    fn ping(&mut self, peer: VRef, host: &mut dyn VatHost) {
        self.next += 1;
        let reply = VRef::ExportPromise(self.next);
        host.syscall(Syscall::Send {
            target: peer,
            message: Message::new("ping", vec![], vec![], Some(reply)),
        });
        host.syscall(Syscall::Subscribe(reply));
    }

    /// `start` or `burst`: remembers the peer, the count and where to answer.
    fn begin(&mut self, message: &Message<VRef>, burst: bool, host: &mut dyn VatHost) -> bool {
        let Ok((_, args)) = message.method_and_args() else {
            return false;
        };
        let (Some(&peer), Some(n), Some(result)) = (
            message.methargs.slots.first(),
            args.get(1).and_then(Value::as_int),
            message.result,
        ) else {
            return false;
        };
        self.peer = Some(peer);
        self.remaining = n;
        self.answer = Some(result);
        self.burst = burst;
        let sends = if burst { n } else { n.min(1) };
        for _ in 0..sends {
            self.ping(peer, host);
        }
        if n <= 0 {
            self.finish(host);
        }
        true
    }

    fn finish(&mut self, host: &mut dyn VatHost) {
        if let Some(answer) = self.answer.take() {
            resolve(host, answer, Value::str("done"));
        }
    }
}

fn resolve(host: &mut dyn VatHost, promise: VRef, value: Value) {
    host.syscall(Syscall::Resolve(vec![Resolution {
        promise,
        rejected: false,
        data: CapData::data(&value),
    }]));
}

impl VatRuntime for PingPong {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        match delivery {
            Delivery::Message { message, .. } => {
                let method = message.method_and_args().map(|(method, _)| method);
                let ok = match method.as_deref() {
                    Ok("start") => self.begin(&message, false, host),
                    Ok("burst") => self.begin(&message, true, host),
                    Ok(_) => {
                        if let Some(result) = message.result {
                            resolve(host, result, Value::str("pong"));
                        }
                        true
                    }
                    Err(_) => false,
                };
                if !ok {
                    return DeliveryOutcome::failed("bench-pingpong: malformed call");
                }
            }
            Delivery::Notify(_) => {
                self.remaining -= 1;
                if self.remaining > 0 {
                    if let (false, Some(peer)) = (self.burst, self.peer) {
                        self.ping(peer, host);
                    }
                } else {
                    self.finish(host);
                }
            }
            _ => {}
        }
        DeliveryOutcome::default()
    }
}
