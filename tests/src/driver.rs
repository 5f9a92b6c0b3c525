//! `driver`: a vat written directly against the vat protocol (registered in
//! [`crate::registry`], so it also runs in `ocap-test-worker`), so that a test can make the
//! kernel see exact syscalls: sends to promises the vat decides, resolutions of several
//! promises at once, promises fulfilled with promises (even themselves).
//!
//! It names its own promises `P0, P1, …` (`p+1, p+2, …`) and the results of its sends
//! `R0, R1, …` (`p+1000, …`). Methods (each answers through its result, if it has one):
//!
//! - `bootstrap(vats)` keeps the roots of the other vats, by name;
//! - `promises(n)` answers `[P0, …, Pn-1]` (exporting them);
//! - `script(ops)` carries out each op as syscalls, in order, then answers `done`:
//!   - `["send", target, method, args, k?]`: sends `method(args)` to `target`, with result
//!     `Rk` (and a subscription to it) when `k` is given, or with the ref a template in
//!     that place stands for (`send_as`);
//!   - `["resolve", [[promise, rejected, value], …]]`: one `resolve` syscall.
//!
//! In targets, arguments and values, `{p: i}` stands for `Pi`, `{r: k}` for `Rk` and
//! `{vat: name}` for that vat's root. Every `notify` delivery becomes one test log line,
//! `notify <vref> <fulfilled|rejected> <value>; …`, with slots shown as vrefs.

use std::collections::BTreeMap;

use ocap_types::{
    CapData, Delivery, DeliveryOutcome, ExportId, LogLevel, Message, Resolution, Syscall, VRef,
    Value, VatHost, VatLog, VatRuntime, VatStart,
};

/// `Rk` is `p+(RESULT_BASE + k)`.
const RESULT_BASE: u64 = 1000;

/// The template standing for `Pi`.
pub fn p(i: usize) -> Value {
    crate::record(&[("p", Value::Int(i64::try_from(i).unwrap()))])
}

/// The template standing for the root of the vat `name`.
pub fn vat(name: &str) -> Value {
    crate::record(&[("vat", Value::str(name))])
}

/// The template standing for the driver's own object `o+n`.
pub fn o(n: u64) -> Value {
    crate::record(&[("o", Value::Int(i64::try_from(n).unwrap()))])
}

/// The template standing for the ref kept under `name` (see `keep`).
pub fn kept(name: &str) -> Value {
    crate::record(&[("kept", Value::str(name))])
}

/// `o+n`'s vref in the driver.
pub fn o_vref(n: u64) -> VRef {
    VRef::ExportObject(ExportId::Ephemeral(n))
}

/// `Pi`'s vref in the driver.
pub fn p_vref(i: usize) -> VRef {
    VRef::ExportPromise(1 + u64::try_from(i).unwrap())
}

/// `["send", target, method, args]`, without a result.
pub fn send(target: Value, method: &str, args: Vec<Value>) -> Value {
    Value::List(vec![
        Value::str("send"),
        target,
        Value::str(method),
        Value::List(args),
    ])
}

/// `["send", target, method, args, k]`: with result `Rk`.
pub fn send_r(target: Value, method: &str, args: Vec<Value>, k: usize) -> Value {
    let Value::List(mut items) = send(target, method, args) else {
        unreachable!("send builds a list")
    };
    items.push(Value::Int(i64::try_from(k).unwrap()));
    Value::List(items)
}

/// `["send", target, method, args, result]`: with the ref `result` stands for (such as
/// `{p: i}` or `{o: n}`) as the send's result.
pub fn send_as(target: Value, method: &str, args: Vec<Value>, result: Value) -> Value {
    let Value::List(mut items) = send(target, method, args) else {
        unreachable!("send builds a list")
    };
    items.push(result);
    Value::List(items)
}

/// `["resolve", resolutions]`: `(promise, rejected, value)` each, in one syscall.
pub fn resolve(resolutions: Vec<(Value, bool, Value)>) -> Value {
    let resolutions = resolutions
        .into_iter()
        .map(|(promise, rejected, value)| Value::List(vec![promise, Value::Bool(rejected), value]))
        .collect();
    Value::List(vec![Value::str("resolve"), Value::List(resolutions)])
}

/// `[kind, [ref, …]]`: one GC syscall (`dropImports`, `retireImports`, `retireExports`
/// or `abandonExports`) on exactly `refs`.
pub fn gc(kind: &str, refs: Vec<Value>) -> Value {
    Value::List(vec![Value::str(kind), Value::List(refs)])
}

/// The driver vat.
#[derive(Debug, Default)]
pub struct Driver {
    vats: BTreeMap<String, VRef>,
    kept: BTreeMap<String, VRef>,
}

impl Driver {
    fn vref_of(&self, template: &Value) -> Option<VRef> {
        let Value::Record(fields) = template else {
            return None;
        };
        let [(key, value)] = fields.iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let number = |n: &i64| u64::try_from(*n).ok();
        match (key.as_str(), value) {
            ("p", Value::Int(i)) => number(i).map(|i| VRef::ExportPromise(1 + i)),
            ("r", Value::Int(k)) => number(k).map(|k| VRef::ExportPromise(RESULT_BASE + k)),
            ("o", Value::Int(n)) => number(n).map(o_vref),
            ("vat", Value::Str(name)) => self.vats.get(name).copied(),
            ("kept", Value::Str(name)) => self.kept.get(name).copied(),
            _ => None,
        }
    }

    /// Encodes a template: every stand-in becomes a slot.
    fn capdata(&self, template: &Value) -> CapData<VRef> {
        let mut slots = Vec::new();
        let body = self.fill(template, &mut slots);
        CapData::new(&body, slots)
    }

    fn fill(&self, template: &Value, slots: &mut Vec<VRef>) -> Value {
        if let Some(vref) = self.vref_of(template) {
            let index = match slots.iter().position(|s| *s == vref) {
                Some(index) => index,
                None => {
                    slots.push(vref);
                    slots.len() - 1
                }
            };
            return Value::Slot {
                index: u32::try_from(index).unwrap(),
                iface: None,
            };
        }
        match template {
            Value::List(items) => Value::List(items.iter().map(|v| self.fill(v, slots)).collect()),
            Value::Record(fields) => Value::Record(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.fill(v, slots)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn run(&self, op: &Value, host: &mut dyn VatHost) {
        let items = op.as_list().expect("an op is a list");
        match items[0].as_str() {
            Some("send") => {
                let target = self.vref_of(&items[1]).expect("a send target");
                let methargs = self.capdata(&Value::List(vec![items[2].clone(), items[3].clone()]));
                // `k` names `Rk`; a template (`send_as`) names any ref as the result.
                let result = items.get(4).and_then(|result| match result {
                    Value::Int(_) => self.vref_of(&crate::record(&[("r", result.clone())])),
                    template => self.vref_of(template),
                });
                host.syscall(Syscall::Send {
                    target,
                    message: Message { methargs, result },
                });
                if let Some(result) = result {
                    host.syscall(Syscall::Subscribe(result));
                }
            }
            Some("resolve") => {
                let resolutions = items[1]
                    .as_list()
                    .expect("a list of resolutions")
                    .iter()
                    .map(|resolution| {
                        let [promise, rejected, value] =
                            resolution.as_list().expect("a resolution")
                        else {
                            panic!("a resolution is [promise, rejected, value]")
                        };
                        Resolution {
                            promise: self.vref_of(promise).expect("a promise to resolve"),
                            rejected: *rejected == Value::Bool(true),
                            data: self.capdata(value),
                        }
                    })
                    .collect();
                host.syscall(Syscall::Resolve(resolutions));
            }
            Some(kind @ ("dropImports" | "retireImports" | "retireExports" | "abandonExports")) => {
                let refs = items[1]
                    .as_list()
                    .expect("a list of refs")
                    .iter()
                    .map(|r| self.vref_of(r).expect("a ref the driver knows"))
                    .collect();
                host.syscall(match kind {
                    "dropImports" => Syscall::DropImports(refs),
                    "retireImports" => Syscall::RetireImports(refs),
                    "retireExports" => Syscall::RetireExports(refs),
                    _ => Syscall::AbandonExports(refs),
                });
            }
            other => panic!("unknown op {other:?}"),
        }
    }

    fn message(&mut self, message: &Message<VRef>, host: &mut dyn VatHost) {
        let (method, args) = message.method_and_args().expect("well-formed methargs");
        let slots = &message.methargs.slots;
        let (rejected, answer) = match method.as_str() {
            "bootstrap" => {
                if let Some(Value::Record(vats)) = args.first() {
                    for (name, value) in vats {
                        if let Value::Slot { index, .. } = value {
                            self.vats.insert(name.clone(), slots[*index as usize]);
                        }
                    }
                }
                (false, CapData::data(&Value::str("driver ready")))
            }
            "keep" => match (args.first().and_then(Value::as_str), args.get(1)) {
                (Some(name), Some(Value::Slot { index, .. })) => {
                    self.kept.insert(name.to_owned(), slots[*index as usize]);
                    (false, CapData::data(&Value::str("kept")))
                }
                _ => (true, CapData::error("keep(name, ref)")),
            },
            "promises" => {
                let n = args[0].as_int().expect("a count");
                let n = usize::try_from(n).unwrap();
                (false, self.capdata(&Value::List((0..n).map(p).collect())))
            }
            "script" => {
                for op in args[0].as_list().expect("a list of ops") {
                    self.run(op, host);
                }
                (false, CapData::data(&Value::str("done")))
            }
            other => (
                true,
                CapData::error(format!("driver has no method {other}")),
            ),
        };
        if let Some(result) = message.result {
            host.syscall(Syscall::Resolve(vec![Resolution {
                promise: result,
                rejected,
                data: answer,
            }]));
        }
    }
}

/// A value with its slots shown as the vrefs they name, errors as `Error(message)`.
fn render(value: &Value, slots: &[VRef]) -> String {
    match value {
        Value::Slot { index, .. } => slots[*index as usize].to_string(),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(|v| render(v, slots)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Error { message, .. } => format!("Error({message})"),
        other => other.to_string(),
    }
}

impl VatRuntime for Driver {
    fn start(&mut self, _start: VatStart, _host: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        let kind = delivery.kind();
        match delivery {
            Delivery::Message { message, .. } => self.message(&message, host),
            Delivery::Notify(resolutions) => {
                let lines: Vec<String> = resolutions
                    .iter()
                    .map(|resolution| {
                        let value = resolution.data.decode().expect("a decodable value");
                        let state = if resolution.rejected {
                            "rejected"
                        } else {
                            "fulfilled"
                        };
                        let value = render(&value, &resolution.data.slots);
                        format!("{} {state} {value}", resolution.promise)
                    })
                    .collect();
                host.log(VatLog {
                    level: LogLevel::Info,
                    tags: vec!["test".to_owned()],
                    message: format!("notify {}", lines.join("; ")),
                });
            }
            Delivery::DropExports(vrefs)
            | Delivery::RetireExports(vrefs)
            | Delivery::RetireImports(vrefs) => {
                let vrefs: Vec<String> = vrefs.iter().map(VRef::to_string).collect();
                host.log(VatLog {
                    level: LogLevel::Info,
                    tags: vec!["gc".to_owned()],
                    message: format!("{kind} {}", vrefs.join(" ")),
                });
            }
            _ => {}
        }
        DeliveryOutcome::default()
    }
}
