//! `probe`: a vat written directly against the vat protocol (no SDK), so kernel tests can
//! make it misbehave in exact ways. Every method answers through its result promise:
//!
//! - `echo(x)` → x; `data()` → 42; `fail(msg)` → rejected with `Error(msg)`;
//! - `count()` → increments `count` in its vat store and returns the new value;
//! - `forward(ref, method)` → sends `method()` to `ref` and answers with the reply;
//! - `panic()` → panics in vat code; `crash()` → reports a delivery error;
//! - `exit(failure)` → asks to be terminated (the result is left to the kernel);
//! - `forge(n)` → sends to an import it never received (illegal syscall), then makes `n`
//!   more (empty) syscalls, which the kernel must ignore;
//! - `virtual()` → answers a virtual object, `o+v1/1` (only this incarnation knows it);
//! - `drop_own()` → `dropImports` of its own root, an export (illegal);
//! - `resolve_twice()` → resolves its result twice (the second is illegal);
//! - `pending()` → never answers;
//! - `pid()` → the id of the process it runs in (the kernel's, in process);
//! - `sleep(ms)` → logs `sleeping`, blocks for `ms` milliseconds, answers `"slept"`;
//! - `poison()` → answers `"poisoned"` and writes `poison` to its vat store: every later
//!   start of this vat fails (a vat that can no longer be restarted);
//! - `put(key, n)` → writes `n` bytes under `key` in its vat store, answers `"put"`;
//! - `big(n)` → answers a string of `n` bytes;
//! - `spam(n)` → makes `n` (empty) syscalls, then answers `"spammed"`;
//! - `flood(n)` → sends `n` one-way `data()` to itself (delivered later), answers `"sent"`;
//! - `stall(n)` → sends `n` one-way messages to a promise it allocates and never settles
//!   (they wait in its queue for ever), answers `"stalled"`;
//! - `started()` → `[entries, bytes]`: the size of the vat store its last start was given
//!   (keys and values), to show that a large store arrives whole.

use std::collections::BTreeMap;

use ocap_types::{
    ByteBuf, CapData, Checkpoint, Delivery, DeliveryOutcome, ExportId, LogLevel, Message,
    Resolution, Syscall, VRef, Value, VatHost, VatLog, VatRuntime, VatStart,
};

/// The vat-store key that makes every start fail.
const POISON: &str = "poison";

/// The probe vat.
#[derive(Debug, Default)]
pub struct Probe {
    count: i64,
    next_promise: u64,
    forwarded: BTreeMap<VRef, VRef>,
    /// Entries and bytes of the vat store the last start was given.
    started: (usize, usize),
}

fn resolve(host: &mut dyn VatHost, promise: VRef, rejected: bool, data: CapData<VRef>) {
    host.syscall(Syscall::Resolve(vec![Resolution {
        promise,
        rejected,
        data,
    }]));
}

impl Probe {
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per probe method, each a few lines: a table reads best in one place"
    )]
    fn message(&mut self, message: Message<VRef>, host: &mut dyn VatHost) -> DeliveryOutcome {
        let Ok((method, args)) = message.method_and_args() else {
            return DeliveryOutcome::failed("probe: malformed methargs");
        };
        let Some(result) = message.result else {
            return DeliveryOutcome::default();
        };
        let answer = |host: &mut dyn VatHost, value: Value| {
            resolve(host, result, false, CapData::data(&value));
        };
        match method.as_str() {
            "echo" => {
                let data = CapData {
                    body: args.first().cloned().unwrap_or(Value::Undefined).to_cbor(),
                    slots: message.methargs.slots.clone(),
                };
                resolve(host, result, false, data);
            }
            "data" => answer(host, Value::Int(42)),
            "bootstrap" => answer(host, Value::str("probe bootstrapped")),
            "fail" => {
                let text = args.first().and_then(Value::as_str).unwrap_or("failed");
                resolve(host, result, true, CapData::error(text));
            }
            "count" => {
                self.count += 1;
                answer(host, Value::Int(self.count));
                return DeliveryOutcome {
                    checkpoint: Checkpoint {
                        sets: vec![(
                            "count".to_owned(),
                            ByteBuf(Value::Int(self.count).to_cbor()),
                        )],
                        deletes: Vec::new(),
                    },
                    error: None,
                };
            }
            "forward" => {
                let (Some(Value::Slot { index, .. }), Some(Value::Str(method))) =
                    (args.first(), args.get(1))
                else {
                    return DeliveryOutcome::failed("probe: forward(ref, method)");
                };
                let Some(target) = message.methargs.slots.get(*index as usize) else {
                    return DeliveryOutcome::failed("probe: bad slot");
                };
                self.next_promise += 1;
                let reply = VRef::ExportPromise(self.next_promise);
                host.syscall(Syscall::Send {
                    target: *target,
                    message: Message::new(method, vec![], vec![], Some(reply)),
                });
                host.syscall(Syscall::Subscribe(reply));
                self.forwarded.insert(reply, result);
            }
            "panic" => panic!("probe was asked to panic"),
            "crash" => return DeliveryOutcome::failed("probe crashed on purpose"),
            "exit" => {
                let failure = args.first() == Some(&Value::Bool(true));
                host.syscall(Syscall::Exit {
                    failure,
                    info: CapData::error("probe exits"),
                });
            }
            "forge" => {
                host.syscall(Syscall::Send {
                    target: VRef::ImportObject(999),
                    message: Message::new("hello", vec![], vec![], None),
                });
                for _ in 0..args.first().and_then(Value::as_int).unwrap_or(0) {
                    host.syscall(Syscall::DropImports(Vec::new()));
                }
            }
            "drop_own" => host.syscall(Syscall::DropImports(vec![VRef::ROOT])),
            "virtual" => {
                let object = VRef::ExportObject(ExportId::Virtual {
                    kind: 1,
                    instance: 1,
                    facet: None,
                });
                let slot = Value::Slot {
                    index: 0,
                    iface: None,
                };
                resolve(host, result, false, CapData::new(&slot, vec![object]));
            }
            "resolve_twice" => {
                answer(host, Value::Int(1));
                answer(host, Value::Int(2));
            }
            "pending" => {}
            "put" => {
                let key = args.first().and_then(Value::as_str).unwrap_or_default();
                let len = args.get(1).and_then(Value::as_int).unwrap_or(0);
                answer(host, Value::str("put"));
                return DeliveryOutcome {
                    checkpoint: Checkpoint {
                        sets: vec![(
                            key.to_owned(),
                            ByteBuf(vec![b'x'; usize::try_from(len).unwrap_or(0)]),
                        )],
                        deletes: Vec::new(),
                    },
                    error: None,
                };
            }
            "big" => {
                let len = args.first().and_then(Value::as_int).unwrap_or(0);
                answer(
                    host,
                    Value::str("x".repeat(usize::try_from(len).unwrap_or(0))),
                );
            }
            "spam" => {
                for _ in 0..args.first().and_then(Value::as_int).unwrap_or(0) {
                    host.syscall(Syscall::DropImports(Vec::new()));
                }
                answer(host, Value::str("spammed"));
            }
            "flood" | "stall" => {
                let target = if method == "flood" {
                    VRef::ROOT
                } else {
                    self.next_promise += 1;
                    VRef::ExportPromise(self.next_promise)
                };
                for _ in 0..args.first().and_then(Value::as_int).unwrap_or(0) {
                    host.syscall(Syscall::Send {
                        target,
                        message: Message::new("data", vec![], vec![], None),
                    });
                }
                answer(
                    host,
                    Value::str(if method == "flood" { "sent" } else { "stalled" }),
                );
            }
            "poison" => {
                answer(host, Value::str("poisoned"));
                return DeliveryOutcome {
                    checkpoint: Checkpoint {
                        sets: vec![(POISON.to_owned(), ByteBuf(Value::Bool(true).to_cbor()))],
                        deletes: Vec::new(),
                    },
                    error: None,
                };
            }
            "pid" => answer(host, Value::Int(i64::from(std::process::id()))),
            "started" => {
                let (entries, bytes) = self.started;
                let int = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
                answer(host, Value::List(vec![int(entries), int(bytes)]));
            }
            "sleep" => {
                let ms = args.first().and_then(Value::as_int).unwrap_or(0);
                host.log(VatLog {
                    level: LogLevel::Info,
                    tags: vec!["probe".to_owned()],
                    message: "sleeping".to_owned(),
                });
                std::thread::sleep(std::time::Duration::from_millis(ms.unsigned_abs()));
                answer(host, Value::str("slept"));
            }
            other => {
                let text = format!("probe has no method {other}");
                resolve(host, result, true, CapData::error(text));
            }
        }
        DeliveryOutcome::default()
    }
}

impl VatRuntime for Probe {
    fn start(&mut self, start: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        self.started = (
            start.state.len(),
            start.state.iter().map(|(k, v)| k.len() + v.0.len()).sum(),
        );
        if start.state.iter().any(|(k, _)| k == POISON) {
            return DeliveryOutcome::failed("probe was poisoned");
        }
        if let Some((_, bytes)) = start.state.iter().find(|(k, _)| k == "count") {
            self.count = Value::from_cbor(&bytes.0)
                .ok()
                .and_then(|v| v.as_int())
                .unwrap_or(0);
        }
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        match delivery {
            Delivery::Message { message, .. } => self.message(message, host),
            Delivery::Notify(resolutions) => {
                for resolution in resolutions {
                    if let Some(result) = self.forwarded.remove(&resolution.promise) {
                        resolve(host, result, resolution.rejected, resolution.data);
                    }
                }
                DeliveryOutcome::default()
            }
            _ => DeliveryOutcome::default(),
        }
    }
}
