//! Drives the runtime as the kernel would, through a host that records every syscall and log
//! line as text.

mod kernel;
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

#[test]
fn local_objects_get_fresh_exports_and_keep_them() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "make", vec![s("a")], "p-1");
    vat.call("o+0", "make", vec![s("b")], "p-2");
    vat.call("o+0", "twice", vec![], "p-3");
    assert_eq!(
        vat.take(),
        [
            "resolve p-1 fulfilled o+1",
            "resolve p-2 fulfilled o+2",
            "resolve p-3 fulfilled [o+3, o+3]",
        ]
    );
    // The export answers messages and comes back as itself.
    vat.call("o+1", "name", vec![], "p-4");
    vat.call("o+0", "same", vec![r("o+1"), r("o+1")], "p-5");
    vat.call("o+0", "same", vec![r("o+1"), r("o+2")], "p-6");
    vat.call("o+0", "is_root", vec![r("o+0")], "p-7");
    vat.call("o+0", "echo", vec![r("o+2")], "p-8");
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-4 fulfilled "a""#,
            "resolve p-5 fulfilled true",
            "resolve p-6 fulfilled false",
            "resolve p-7 fulfilled true",
            "resolve p-8 fulfilled o+2",
        ]
    );
}

#[test]
fn slots_follow_sorted_keys_not_creation_order() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "pair", vec![], "p-1");
    assert_eq!(
        vat.take(),
        ["resolve p-1 fulfilled {celsius: o+1, fahrenheit: o+2}"]
    );
    vat.call("o+0", "echo", vec![r("o-4")], "p-2");
    vat.call("o+0", "call", vec![r("o+1"), s("name")], "p-3");
    assert_eq!(
        vat.take(),
        [
            "resolve p-2 fulfilled o-4",
            r#"resolve p-3 fulfilled "celsius""#
        ]
    );
}

#[test]
fn the_same_ref_twice_uses_one_slot() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "twice", vec![], "p-1");
    assert_eq!(vat.take(), ["resolve p-1 fulfilled [o+1, o+1]"]);
    let [Syscall::Resolve(resolutions)] = vat.host.syscalls.as_slice() else {
        panic!("{:?}", vat.host.syscalls);
    };
    assert_eq!(resolutions[0].data.slots, [vref("o+1")]);
}

#[test]
fn every_send_allocates_a_result_and_subscribes() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "send_only", vec![r("o-1"), s("ping")], "p-1");
    vat.call("o+0", "call", vec![r("o-1"), s("ping")], "p-2");
    assert_eq!(
        vat.take(),
        [
            "send o-1.ping() -> p+1",
            "subscribe p+1",
            r#"resolve p-1 fulfilled "sent""#,
            "send o-1.ping() -> p+2",
            "subscribe p+2",
        ]
    );
}

#[test]
fn notify_resumes_the_awaiting_method() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "call", vec![r("o-1"), s("ping")], "p-1");
    assert_eq!(vat.take(), ["send o-1.ping() -> p+1", "subscribe p+1"]);
    assert_eq!(vat.runtime.n_parked(), 1);
    vat.notify("p+1", false, Value::str("pong"), &[]);
    assert_eq!(vat.take(), [r#"resolve p-1 fulfilled "pong""#]);
    assert_eq!(vat.runtime.n_parked(), 0);
}

#[test]
fn a_rejection_passes_through_await() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "call", vec![r("o-1"), s("ping")], "p-1");
    vat.take();
    vat.notify("p+1", true, Value::error("no pong"), &[]);
    assert_eq!(vat.take(), [r#"resolve p-1 rejected Error("no pong")"#]);
}

#[test]
fn a_method_error_rejects_the_result_and_is_not_a_delivery_error() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+0", "fail", vec![s("boom")], "p-1");
    assert_eq!(outcome.error, None);
    let outcome = vat.call("o+0", "frobnicate", vec![], "p-2");
    assert_eq!(outcome.error, None);
    vat.call("o+0", "fail", vec![Arg::Plain(Value::Int(3))], "p-3");
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-1 rejected Error("boom")"#,
            r#"resolve p-2 rejected Error("\"fixture\" has no method \"frobnicate\"")"#,
            r#"resolve p-3 rejected Error("fail: argument 0 must be a string, not a number")"#,
        ]
    );
}

#[test]
fn a_message_to_an_unknown_export_is_a_delivery_error() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+7", "name", vec![], "p-1");
    assert_eq!(
        outcome.error.as_deref(),
        Some("message to an object this vat does not remember exporting")
    );
    assert_eq!(vat.take(), ["log [sdk] message to unknown export o+7"]);
    // An unknown export among the arguments is just as fatal.
    let outcome = vat.call("o+0", "echo", vec![r("o+9")], "p-2");
    assert!(
        outcome
            .error
            .unwrap()
            .contains("does not remember exporting")
    );
    assert_eq!(vat.take(), Vec::<String>::new());
}

#[test]
fn a_promise_answer_resolves_the_result_only_when_it_settles() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "later", vec![], "p-1");
    assert_eq!(vat.take(), Vec::<String>::new());
    vat.call(
        "o+0",
        "settle_later",
        vec![s("done"), Arg::Plain(Value::Bool(false))],
        "p-2",
    );
    assert_eq!(
        vat.take(),
        [
            "resolve p-2 fulfilled undefined",
            r#"resolve p-1 fulfilled "done""#
        ]
    );

    vat.call("o+0", "later", vec![], "p-3");
    vat.call(
        "o+0",
        "settle_later",
        vec![s("nope"), Arg::Plain(Value::Bool(true))],
        "p-4",
    );
    assert_eq!(
        vat.take(),
        [
            "resolve p-4 fulfilled undefined",
            r#"resolve p-3 rejected Error("nope")"#
        ]
    );
}

#[test]
fn a_promise_that_never_settles_never_resolves_the_result() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+0", "pending", vec![], "p-1");
    assert_eq!(outcome.error, None);
    assert_eq!(vat.take(), Vec::<String>::new());
    assert_eq!(vat.runtime.n_parked(), 1);
}

#[test]
fn notify_for_unknown_or_settled_promises_is_ignored() {
    let mut vat = Vatlet::start(fixture);
    vat.notify("p+9", false, Value::str("stray"), &[]);
    vat.notify("p-9", false, Value::str("stray"), &[]);
    vat.call("o+0", "call", vec![r("o-1"), s("ping")], "p-1");
    vat.take();
    vat.notify("p+1", false, Value::str("first"), &[]);
    vat.notify("p+1", false, Value::str("second"), &[]);
    assert_eq!(vat.take(), [r#"resolve p-1 fulfilled "first""#]);
}

#[test]
fn awaiting_an_imported_promise_subscribes_once() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "await_arg", vec![r("p-5")], "p-1");
    vat.call("o+0", "await_arg", vec![r("p-5")], "p-2");
    assert_eq!(vat.take(), ["subscribe p-5"]);
    vat.notify("p-5", false, Value::str("five"), &[]);
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-1 fulfilled "five""#,
            r#"resolve p-2 fulfilled "five""#
        ]
    );
}

#[test]
fn nested_promises_resolved_in_the_same_notify_settle_without_subscribing() {
    for reversed in [false, true] {
        let mut vat = Vatlet::start(fixture);
        vat.call("o+0", "call_deep", vec![r("o-1")], "p-1");
        assert_eq!(vat.take(), ["send o-1.deep() -> p+1", "subscribe p+1"]);
        let mut resolutions = vec![
            resolution(
                "p+1",
                false,
                Value::List(vec![Value::Slot {
                    index: 0,
                    iface: None,
                }]),
                &["p-2"],
            ),
            resolution("p-2", false, Value::str("deep"), &[]),
        ];
        if reversed {
            resolutions.reverse();
        }
        let outcome = vat.deliver(Delivery::Notify(resolutions));
        assert_eq!(outcome.error, None);
        assert_eq!(
            vat.take(),
            [r#"resolve p-1 fulfilled "deep""#],
            "reversed: {reversed}"
        );
    }
}

#[test]
fn a_promise_argument_is_exported_and_resolved_when_it_settles() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "give_promise", vec![r("o-1")], "p-1");
    assert_eq!(
        vat.take(),
        [
            "send o-1.take(p+1) -> p+2",
            "subscribe p+2",
            r#"resolve p-1 fulfilled "given""#,
        ]
    );
    vat.call(
        "o+0",
        "settle_later",
        vec![s("hi"), Arg::Plain(Value::Bool(false))],
        "p-2",
    );
    assert_eq!(
        vat.take(),
        [
            r#"resolve p+1 fulfilled "hi""#,
            "resolve p-2 fulfilled undefined"
        ]
    );
}

#[test]
fn a_settled_promise_argument_is_resolved_right_after_the_send() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "give_settled", vec![r("o-1")], "p-1");
    assert_eq!(
        vat.take(),
        [
            "send o-1.take(p+1) -> p+2",
            "subscribe p+2",
            r#"resolve p+1 fulfilled "early""#,
            r#"resolve p-1 fulfilled "given""#,
        ]
    );
}

#[test]
fn a_send_to_a_kernel_promise_is_pipelined() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "pipeline", vec![r("p-3")], "p-1");
    assert_eq!(
        vat.take(),
        [
            "send p-3.m() -> p+1",
            "subscribe p+1",
            r#"resolve p-1 fulfilled "piped""#
        ]
    );
}

#[test]
fn a_send_to_a_local_object_stays_in_the_vat() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "make", vec![s("local")], "p-1");
    vat.call("o+0", "call", vec![r("o+1"), s("name")], "p-2");
    vat.call("o+0", "call", vec![r("o+1"), s("nosuch")], "p-3");
    assert_eq!(
        vat.take(),
        [
            "resolve p-1 fulfilled o+1",
            r#"resolve p-2 fulfilled "local""#,
            r#"resolve p-3 rejected Error("\"local\" has no method \"nosuch\"")"#,
        ]
    );
}

#[test]
fn the_checkpoint_holds_the_changes_since_the_last_delivery() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+0", "store", vec![s("a"), s("one")], "p-1");
    assert_eq!(
        outcome.checkpoint,
        Checkpoint {
            sets: vec![(
                "baggage.a".to_owned(),
                ByteBuf(ocap_types::cbor::to_vec(&CapData::<VRef>::data(
                    &Value::str("one")
                )))
            )],
            deletes: vec![],
        }
    );
    let outcome = vat.call("o+0", "forget", vec![s("a")], "p-2");
    assert_eq!(outcome.checkpoint.sets, []);
    assert_eq!(outcome.checkpoint.deletes, ["baggage.a"]);
    let outcome = vat.call("o+0", "echo", vec![s("x")], "p-3");
    assert!(outcome.checkpoint.is_empty());
    // Exporting moves the id counters, which the next incarnation must continue from.
    let outcome = vat.call("o+0", "make", vec![s("m")], "p-4");
    let keys: Vec<&str> = outcome
        .checkpoint
        .sets
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["sdk.idCounters"]);
}

/// Applies a checkpoint to a copy of the vat store, as the kernel does.
fn apply(state: &mut Vec<(String, ByteBuf)>, checkpoint: Checkpoint) {
    for (key, value) in checkpoint.sets {
        state.retain(|(k, _)| *k != key);
        state.push((key, value));
    }
    state.retain(|(k, _)| !checkpoint.deletes.contains(k));
    state.sort();
}

#[test]
fn a_restarted_vat_keeps_baggage_but_not_ephemeral_objects() {
    let mut state = Vec::new();
    let (mut vat, outcome) = Vatlet::start_with(fixture, state.clone());
    apply(&mut state, outcome.checkpoint);
    for (method, args) in [
        ("store", vec![s("k"), s("kept")]),
        ("store", vec![s("friend"), r("o-3")]),
        ("store", vec![s("me"), r("o+0")]),
        ("make", vec![s("gone")]),
        ("call", vec![r("o-1"), s("ping")]),
    ] {
        let outcome = vat.call("o+0", method, args, "p-1");
        apply(&mut state, outcome.checkpoint);
    }
    vat.take();

    let (mut vat, outcome) = Vatlet::start_with(fixture, state.clone());
    assert_eq!(outcome.error, None);
    // The ephemeral o+1 of the last incarnation is unknown now.
    assert!(vat.call("o+1", "name", vec![], "p-2").error.is_some());
    vat.take();
    vat.call("o+0", "load", vec![s("k")], "p-3");
    vat.call("o+0", "load", vec![s("friend")], "p-4");
    vat.call("o+0", "load", vec![s("me")], "p-5");
    // Numbering continues where the last incarnation stopped.
    vat.call("o+0", "make", vec![s("new")], "p-6");
    vat.call("o+0", "call", vec![r("o-1"), s("ping")], "p-7");
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-3 fulfilled "kept""#,
            "resolve p-4 fulfilled o-3",
            "resolve p-5 fulfilled o+0",
            "resolve p-6 fulfilled o+2",
            "send o-1.ping() -> p+2",
            "subscribe p+2",
        ]
    );
}

#[test]
fn baggage_refuses_what_does_not_survive_a_restart() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+0", "store_new_object", vec![], "p-1");
    assert!(outcome.checkpoint.is_empty());
    vat.call("o+0", "store_promise", vec![], "p-2");
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-1 rejected Error("cannot store the non-durable object \"thing\" in baggage")"#,
            r#"resolve p-2 rejected Error("cannot store a promise in baggage")"#,
        ]
    );
}

#[test]
fn build_failures_are_start_errors() {
    let (_, outcome) = Vatlet::start_with(
        |_vat, _parameters, _baggage| Err(Error::new("from buildRootObject")),
        Vec::new(),
    );
    assert_eq!(
        outcome.error.as_deref(),
        Some("build function failed: from buildRootObject")
    );
    let (_, outcome) = Vatlet::start_with(
        |vat, _parameters, _baggage| {
            let presence = vat.baggage().get("missing")?;
            Ok(presence
                .and_then(|p| p.as_object().cloned())
                .unwrap_or_else(|| vat.object("root").build()))
        },
        Vec::new(),
    );
    assert_eq!(outcome.error, None);
}

#[test]
fn the_runtime_refuses_deliveries_before_start_and_a_second_start() {
    let mut runtime = Runtime::new(fixture);
    let mut host = Host::default();
    let outcome = runtime.deliver(Delivery::BringOutYourDead, &mut host);
    assert_eq!(
        outcome.error.as_deref(),
        Some("cannot deliver before vat is loaded")
    );
    let start = VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start.clone(), &mut host).error, None);
    assert!(runtime.start(start, &mut host).error.is_some());
}

#[test]
fn parameters_reach_the_build_function() {
    let mut runtime = Runtime::new(|vat, parameters, _baggage| {
        vat.test_log(format!("name is {}", parameters.get("name").unwrap()));
        Ok(vat.object("root").build())
    });
    let mut host = Host::default();
    let parameters = Value::Record([("name".to_owned(), Value::str("Alice"))].into());
    let start = VatStart {
        name: "main".to_owned(),
        parameters,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start, &mut host).error, None);
    assert_eq!(host.lines, ["log [test, main] name is Alice"]);
}

#[test]
fn bootstrap_sees_its_own_root_as_local() {
    let mut vat = Vatlet::start(fixture);
    let vats = Value::Record(
        [
            (
                "bob".to_owned(),
                Value::Slot {
                    index: 0,
                    iface: None,
                },
            ),
            (
                "me".to_owned(),
                Value::Slot {
                    index: 1,
                    iface: None,
                },
            ),
        ]
        .into(),
    );
    let message = Message::new(
        "bootstrap",
        vec![vats, Value::Record([].into())],
        vec![vref("o-1"), VRef::ROOT],
        Some(vref("p-1")),
    );
    vat.deliver(Delivery::Message {
        target: VRef::ROOT,
        message,
    });
    assert_eq!(
        vat.take(),
        [
            "log [test, v] me is local: true, bob is local: false",
            r#"resolve p-1 fulfilled "bootstrapped""#,
        ]
    );
}

#[test]
fn test_logs_and_exit_reach_the_host_in_order() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "log", vec![s("hello")], "p-1");
    vat.call("o+0", "exit", vec![s("had enough")], "p-2");
    assert_eq!(
        vat.take(),
        [
            "log [test, v] hello",
            "resolve p-1 fulfilled undefined",
            r#"exit failure Error("had enough")"#,
            r#"resolve p-2 fulfilled "exiting""#,
        ]
    );
}
