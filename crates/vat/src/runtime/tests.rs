//! Drives the runtime as the kernel would, through a host that records every syscall and log
//! line as text.

mod kernel;
mod lifecycle;
mod messages;
mod scenarios;

use std::cell::RefCell;
use std::rc::Rc;

use ocap_types::{
    ByteBuf, CapData, Checkpoint, Delivery, DeliveryOutcome, Message, Resolution, Syscall, VRef,
    Value, VatHost, VatLog, VatRuntime, VatStart,
};

use super::Runtime;
use crate::{Baggage, E, Error, Promise, Ref, Resolver, Result, Val, Vat};

/// Records what the vat asks for, one line each.
#[derive(Default)]
struct Host {
    lines: Vec<String>,
    syscalls: Vec<Syscall>,
}

impl VatHost for Host {
    fn syscall(&mut self, syscall: Syscall) {
        self.lines.push(render_syscall(&syscall));
        self.syscalls.push(syscall);
    }

    fn log(&mut self, log: VatLog) {
        self.lines
            .push(format!("log [{}] {}", log.tags.join(", "), log.message));
    }
}

fn render_syscall(syscall: &Syscall) -> String {
    match syscall {
        Syscall::Send { target, message } => {
            let (method, args) = message.method_and_args().unwrap();
            let args: Vec<String> = args
                .iter()
                .map(|arg| render(arg, &message.methargs.slots))
                .collect();
            let result = message
                .result
                .map(|r| format!(" -> {r}"))
                .unwrap_or_default();
            format!("send {target}.{method}({}){result}", args.join(", "))
        }
        Syscall::Subscribe(vpid) => format!("subscribe {vpid}"),
        Syscall::Resolve(resolutions) => {
            let parts: Vec<String> = resolutions
                .iter()
                .map(|r| {
                    let verdict = if r.rejected { "rejected" } else { "fulfilled" };
                    format!("{} {verdict} {}", r.promise, render_data(&r.data))
                })
                .collect();
            format!("resolve {}", parts.join("; "))
        }
        Syscall::Exit { failure, info } => format!(
            "exit {} {}",
            if *failure { "failure" } else { "success" },
            render_data(info)
        ),
        other => format!("{other:?}"),
    }
}

fn render_data(data: &CapData<VRef>) -> String {
    render(&data.decode().unwrap(), &data.slots)
}

/// A value with each slot shown as the vref it names.
fn render(value: &Value, slots: &[VRef]) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(|v| render(v, slots)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Record(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", render(v, slots)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Slot { index, .. } => slots[*index as usize].to_string(),
        Value::Error { message, .. } => format!("Error({message:?})"),
        other => other.to_string(),
    }
}

fn vref(text: &str) -> VRef {
    text.parse().unwrap()
}

/// A plain argument, or a reference to the vref given as text.
enum Arg {
    Plain(Value),
    Ref(&'static str),
}

fn s(text: &str) -> Arg {
    Arg::Plain(Value::str(text))
}

fn r(vref: &'static str) -> Arg {
    Arg::Ref(vref)
}

/// Encodes arguments the way the kernel would hand them over.
fn encode(args: Vec<Arg>) -> (Vec<Value>, Vec<VRef>) {
    let mut slots: Vec<VRef> = Vec::new();
    let values = args
        .into_iter()
        .map(|arg| match arg {
            Arg::Plain(value) => value,
            Arg::Ref(text) => {
                let target = vref(text);
                let index = slots.iter().position(|s| *s == target).unwrap_or_else(|| {
                    slots.push(target);
                    slots.len() - 1
                });
                Value::Slot {
                    index: index as u32,
                    iface: None,
                }
            }
        })
        .collect();
    (values, slots)
}

struct Vatlet {
    runtime: Runtime,
    host: Host,
}

impl Vatlet {
    fn start(build: impl FnOnce(&Vat, &Val, &Baggage) -> Result<Ref> + 'static) -> Vatlet {
        let (vatlet, outcome) = Vatlet::start_with(build, Vec::new());
        assert_eq!(outcome.error, None);
        vatlet
    }

    fn start_with(
        build: impl FnOnce(&Vat, &Val, &Baggage) -> Result<Ref> + 'static,
        state: Vec<(String, ByteBuf)>,
    ) -> (Vatlet, DeliveryOutcome) {
        let mut vatlet = Vatlet {
            runtime: Runtime::new(build),
            host: Host::default(),
        };
        let start = VatStart {
            name: "v".to_owned(),
            parameters: Value::Null,
            state,
        };
        let outcome = vatlet.runtime.start(start, &mut vatlet.host);
        (vatlet, outcome)
    }

    /// Delivers `method(args)` to `target` with result `result`.
    fn call(
        &mut self,
        target: &str,
        method: &str,
        args: Vec<Arg>,
        result: &str,
    ) -> DeliveryOutcome {
        let (values, slots) = encode(args);
        let message = Message::new(method, values, slots, Some(vref(result)));
        self.deliver(Delivery::Message {
            target: vref(target),
            message,
        })
    }

    fn notify(&mut self, vpid: &str, rejected: bool, value: Value, slots: &[&str]) {
        let outcome = self.deliver(Delivery::Notify(vec![resolution(
            vpid, rejected, value, slots,
        )]));
        assert_eq!(outcome.error, None);
    }

    fn deliver(&mut self, delivery: Delivery) -> DeliveryOutcome {
        self.runtime.deliver(delivery, &mut self.host)
    }

    /// The lines recorded since the last call.
    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.host.lines)
    }
}

fn resolution(vpid: &str, rejected: bool, value: Value, slots: &[&str]) -> Resolution<VRef> {
    Resolution {
        promise: vref(vpid),
        rejected,
        data: CapData::new(&value, slots.iter().map(|s| vref(s)).collect()),
    }
}

/// A vat with one method per behaviour under test.
#[expect(
    clippy::too_many_lines,
    reason = "one method per behaviour under test: the fixture is a table"
)]
fn fixture(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let kept: Rc<RefCell<Option<Resolver>>> = Rc::default();
    let kept_for_settle = Rc::clone(&kept);
    let kept_for_give = Rc::clone(&kept);
    let root_slot: Rc<RefCell<Option<Ref>>> = Rc::default();
    let root_for_check = Rc::clone(&root_slot);
    let root = vat
        .object("fixture")
        .method("echo", |_vat, args| Ok(args.val(0)?.clone()))
        .method("fail", |_vat, args| -> Result<Val> {
            Err(Error::new(args.str(0)?))
        })
        .method("make", |vat, args| Ok(make_named(&vat, args.str(0)?)))
        .method("pair", |vat, _args| {
            let fahrenheit = make_named(&vat, "fahrenheit");
            let celsius = make_named(&vat, "celsius");
            Ok(Val::record([
                ("fahrenheit", Val::from(fahrenheit)),
                ("celsius", Val::from(celsius)),
            ]))
        })
        .method("twice", |vat, _args| {
            let thing = make_named(&vat, "thing");
            Ok(Val::list([thing.clone(), thing]))
        })
        .method("is_root", move |_vat, args| {
            Ok(root_for_check.borrow().as_ref() == Some(&args.object(0)?))
        })
        .method("same", |_vat, args| Ok(args.object(0)? == args.object(1)?))
        .method_async("call", async |_vat, args| {
            let target = args.object(0)?;
            E(&target).send(args.str(1)?, ()).await
        })
        .method("send_only", |_vat, args| {
            drop(E(&args.object(0)?).send(args.str(1)?, ()));
            Ok("sent")
        })
        .method_async("call_deep", async |_vat, args| {
            let reply = E(&args.object(0)?).send("deep", ()).await?;
            let inner = reply.as_list().and_then(|l| l.first()).cloned();
            match inner {
                Some(Val::Promise(inner)) => inner.await,
                other => Err(Error::new(format!("expected a promise, got {other:?}"))),
            }
        })
        .method("pending", |vat, _args| {
            let (promise, _resolver) = vat.promise_kit();
            Ok(promise)
        })
        .method("later", move |vat, _args| {
            let (promise, resolver) = vat.promise_kit();
            *kept.borrow_mut() = Some(resolver);
            Ok(promise)
        })
        .method("settle_later", move |_vat, args| {
            let resolver = kept_for_settle.borrow_mut().take();
            let resolver = resolver.ok_or_else(|| Error::new("nothing to settle"))?;
            if args.bool(1)? {
                resolver.reject(args.str(0)?);
            } else {
                resolver.resolve(args.val(0)?);
            }
            Ok(())
        })
        .method("give_promise", move |vat, args| {
            let (promise, resolver) = vat.promise_kit();
            *kept_for_give.borrow_mut() = Some(resolver);
            drop(E(&args.object(0)?).send("take", [promise]));
            Ok("given")
        })
        .method("give_settled", |_vat, args| {
            let promise = Promise::resolved("early");
            drop(E(&args.object(0)?).send("take", [promise]));
            Ok("given")
        })
        .method_async("await_arg", async |_vat, args| args.promise(0)?.await)
        .method("pipeline", |_vat, args| {
            drop(E(&args.promise(0)?).send("m", ()));
            Ok("piped")
        })
        .method("store", |vat, args| {
            vat.baggage().set(args.str(0)?, args.val(1)?)?;
            Ok(())
        })
        .method("load", |vat, args| vat.baggage().get(args.str(0)?))
        .method("forget", |vat, args| Ok(vat.baggage().delete(args.str(0)?)))
        .method("store_new_object", |vat, _args| {
            vat.baggage().set("thing", make_named(&vat, "thing"))?;
            Ok(())
        })
        .method("store_promise", |vat, _args| {
            vat.baggage().set("p", Promise::resolved(1))?;
            Ok(())
        })
        .method("log", |vat, args| {
            vat.test_log(args.str(0)?);
            Ok(())
        })
        .method("exit", |vat, args| {
            vat.exit_with_failure(Val::error(args.str(0)?));
            Ok("exiting")
        })
        .bootstrap(async |vat, roots| {
            let me = roots.vat("me")?;
            vat.test_log(format!(
                "me is local: {}, bob is local: {}",
                me.is_local(),
                roots.vat("bob")?.is_local()
            ));
            Ok("bootstrapped")
        })
        .build();
    *root_slot.borrow_mut() = Some(root.clone());
    Ok(root)
}

fn make_named(vat: &Vat, name: &str) -> Ref {
    let name = name.to_owned();
    vat.object(&name.clone())
        .method("name", move |_vat, _args| Ok(name.clone()))
        .build()
}
