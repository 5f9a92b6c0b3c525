//! Pipelining benchmark: a vat sends a chain of `depth` messages, each to the result of the
//! previous send, without waiting (`E(E(E(b).next()).next()).next()…`), then waits for the
//! last result; it repeats that for a number of chains. Each message but the first waits in
//! the previous result's promise queue until the receiver resolves it, so the benchmark
//! exercises parking, resolution and forwarding. Reports cranks per second and chains per
//! second for depths 1, 10 and 100, in both durability modes.
//!
//! `cargo bench -p ocap-kernel --bench pipeline` runs about 10^4 cranks per case; with
//! `-- --quick`, about 10^3.

use std::time::{Duration, Instant};

use ocap_kernel::{Durability, Kernel, KernelConfig, VatRegistry};
use ocap_types::{
    CapData, ClusterConfig, Delivery, DeliveryOutcome, Message, Resolution, Syscall, VRef, Value,
    VatConfig, VatHost, VatRuntime, VatStart,
};

/// `run(peer, depth, chains)`: sends `chains` pipelined chains of `depth` `next()` messages
/// to `peer`, one chain at a time, then answers `done`.
#[derive(Default)]
struct Sender {
    peer: Option<VRef>,
    depth: u64,
    chains_left: i64,
    next_promise: u64,
    answer: Option<VRef>,
}

impl Sender {
    fn chain(&mut self, host: &mut dyn VatHost) {
        let mut target = self.peer.expect("run set the peer");
        for _ in 0..self.depth {
            self.next_promise += 1;
            let result = VRef::ExportPromise(self.next_promise);
            host.syscall(Syscall::Send {
                target,
                message: Message::new("next", vec![], vec![], Some(result)),
            });
            target = result;
        }
        host.syscall(Syscall::Subscribe(target));
    }
}

impl VatRuntime for Sender {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        match delivery {
            Delivery::Message { message, .. } => {
                let (method, args) = message.method_and_args().expect("well-formed");
                if method == "bootstrap" {
                    if let Some(result) = message.result {
                        resolve(host, result, Value::str("ready"));
                    }
                    return DeliveryOutcome::default();
                }
                self.peer = Some(message.methargs.slots[0]);
                self.depth = u64::try_from(args[1].as_int().expect("depth")).expect("depth");
                self.chains_left = args[2].as_int().expect("chains");
                self.answer = message.result;
                self.chain(host);
            }
            // Only the last result of a chain is subscribed to.
            Delivery::Notify(_) => {
                self.chains_left -= 1;
                if self.chains_left > 0 {
                    self.chain(host);
                } else if let Some(answer) = self.answer.take() {
                    resolve(host, answer, Value::str("done"));
                }
            }
            _ => {}
        }
        DeliveryOutcome::default()
    }
}

fn resolve(host: &mut dyn VatHost, promise: VRef, value: Value) {
    host.syscall(Syscall::Resolve(vec![Resolution {
        promise,
        rejected: false,
        data: CapData::data(&value),
    }]));
}

/// `next()`: answers itself, so the next message of the chain comes back here.
struct Receiver;

impl VatRuntime for Receiver {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        if let Delivery::Message {
            message:
                Message {
                    result: Some(result),
                    ..
                },
            ..
        } = delivery
        {
            let me = Value::Slot {
                index: 0,
                iface: None,
            };
            host.syscall(Syscall::Resolve(vec![Resolution {
                promise: result,
                rejected: false,
                data: CapData::new(&me, vec![VRef::ROOT]),
            }]));
        }
        DeliveryOutcome::default()
    }
}

/// Runs `chains` chains of `depth`; returns the cranks they took and the time.
fn run_case(depth: i64, chains: i64, durability: Durability) -> (u64, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut registry = VatRegistry::new();
    registry.register("sender", || Box::new(Sender::default()));
    registry.register("receiver", || Box::new(Receiver));
    let mut config = KernelConfig::new(registry);
    config.durability = durability;
    let kernel = Kernel::open(dir.path(), config).expect("open");
    let cluster = ClusterConfig::builder("a")
        .vat("a", VatConfig::named("sender"))
        .vat("b", VatConfig::named("receiver"))
        .build()
        .expect("a valid cluster");
    let a = kernel.launch_subcluster(&cluster).expect("launch").root;
    let vats = kernel.vat_ids().expect("vats");
    let b = kernel.vat_root(vats[1]).expect("root").expect("root");
    let wait = Duration::from_secs(3600);
    let before = kernel.crank_count().expect("count");
    let start = Instant::now();
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    let args = vec![slot, Value::Int(depth), Value::Int(chains)];
    let done = kernel
        .queue_message_with_slots(a, "run", args, vec![b])
        .expect("queue")
        .wait(wait)
        .expect("done");
    assert_eq!(done.decode().expect("decode"), Value::str("done"));
    kernel.run_until_idle(wait).expect("idle");
    let elapsed = start.elapsed();
    let cranks = kernel.crank_count().expect("count") - before;
    kernel.shutdown().expect("shutdown");
    (cranks, elapsed)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let scale = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    for (mode, durability) in [
        ("group", Durability::GROUP),
        ("every", Durability::EveryCrank),
    ] {
        for (depth, chains) in [(1, 5_000), (10, 1_000), (100, 100)] {
            let chains = chains / scale;
            let (cranks, elapsed) = run_case(depth, chains, durability);
            let secs = elapsed.as_secs_f64();
            println!(
                "pipeline {mode:<5} depth={depth:<3} chains={chains:<5} cranks={cranks:<6} {:>8.0} cranks/s {:>8.0} chains/s",
                cranks as f64 / secs,
                chains as f64 / secs,
            );
        }
    }
}
