//! `tester`: a general-purpose vat for kernel tests. Each method exercises one behaviour the
//! kernel must handle: answers, rejections, panics, exits, sends, pending results, exports,
//! baggage and test logs.

use std::cell::Cell;
use std::rc::Rc;

use ocap_vat::VatRuntime;
use ocap_vat::{Args, Baggage, E, Error, ObjectBuilder, Ref, Result, Runtime, Val, Vat};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// Baggage key of the vats record received by `bootstrap`.
const VATS_KEY: &str = "vats";

/// The tester's root. Methods:
///
/// * `echo(x)` → `x`; `fail(msg)` → rejects with `Error(msg)`; `panic()` panics;
/// * `exit(reason)` → exit with failure (reason `Error(reason)`), answers `"exiting"`;
///   `exit_cleanly(reason)` → the same as a clean exit;
/// * `call(target, method, args?)` → sends and answers the awaited reply;
///   `send_only(target, method, args?)` → sends, answers `"sent"` without waiting;
/// * `fill(from, n)` → n baggage keys `k<from>..`; answers n;
/// * `call_many(target, method, n)`, `trade_many(target, n)` → n calls, or n trades of
///   fresh objects and promises both ways with `target.trade(counter, promise)`; answer n;
/// * `pending()` → a promise that never settles (the result stays unresolved);
/// * `make_counter()` → a new object with `increment(by = 1)` and `value()`;
/// * `store(key, value)` / `load(key)` → baggage (`load` of a missing key is `undefined`);
/// * `log(text)` → a test log line; `parameters()` → the vat's parameters;
/// * `bootstrap(vats, services)` → keeps `vats` in baggage, answers `"bootstrapped"`;
///   `vats()` → that record.
fn build(vat: &Vat, parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    vat.logger().with_tag("tester").info(format!(
        "{} started with parameters {parameters}",
        vat.name()
    ));
    let parameters = parameters.clone();
    Ok(bulk(trades(vat.object("tester")))
        .method("echo", |_vat, args| Ok(args.val_or_undefined(0)))
        .method("fail", |_vat, args| -> Result<Val> {
            Err(Error::new(args.str(0)?))
        })
        .method("panic", |_vat, _args| -> Result<Val> {
            panic!("tester panicked on purpose")
        })
        .method("exit", |vat, args| {
            vat.exit_with_failure(Val::error(args.str(0)?));
            Ok("exiting")
        })
        .method("exit_cleanly", |vat, args| {
            vat.exit(args.val_or_undefined(0));
            Ok("exiting")
        })
        .method_async("call", async |_vat, args| {
            E(args.val(0)?).send(args.str(1)?, call_args(&args)?).await
        })
        .method_async("call_many", async |_vat, args| {
            // `call_many(target, method, n)`: n calls one after the other; answers n.
            let n = args.int(2)?;
            for _ in 0..n {
                E(args.val(0)?)
                    .send(args.str(1)?, Vec::<Val>::new())
                    .await?;
            }
            Ok(Val::Int(n))
        })
        .method("send_only", |_vat, args| {
            drop(E(args.val(0)?).send(args.str(1)?, call_args(&args)?));
            Ok("sent")
        })
        .method("pending", |vat, _args| Ok(vat.promise_kit().0))
        .method("make_counter", |vat, _args| Ok(make_counter(&vat)))
        .method("store", |vat, args| {
            vat.baggage().set(args.str(0)?, args.val(1)?)?;
            Ok(())
        })
        .method("load", |vat, args| {
            Ok(vat.baggage().get(args.str(0)?)?.unwrap_or_default())
        })
        .method("log", |vat, args| {
            vat.test_log(args.str(0)?);
            Ok(())
        })
        .method("parameters", move |_vat, _args| Ok(parameters.clone()))
        .method("vats", |vat, _args| {
            Ok(vat.baggage().get(VATS_KEY)?.unwrap_or_default())
        })
        .bootstrap(async |vat, roots| {
            vat.baggage().set(VATS_KEY, roots.vats)?;
            Ok("bootstrapped")
        })
        .build())
}

/// `trade_many` and `trade`: fresh objects and promises both ways (see [`build`]).
fn trades(builder: ObjectBuilder) -> ObjectBuilder {
    builder
        .method_async("trade_many", async |vat, args| {
            // `trade_many(target, n)`: n trades one after the other, each sending a fresh
            // counter and a fresh promise (settled after the send) to `target.trade`, and
            // using the fresh counter and promise that come back; answers n.
            let n = args.int(1)?;
            for round in 0..n {
                let (promise, resolver) = vat.promise_kit();
                let reply = E(args.val(0)?).send(
                    "trade",
                    vec![Val::from(make_counter(&vat)), Val::Promise(promise)],
                );
                resolver.resolve(round);
                let answer = reply.await?;
                let Val::List(items) = answer else {
                    return Err(Error::new("trade answers [counter, promise]"));
                };
                let [counter, Val::Promise(promise)] = items.as_slice() else {
                    return Err(Error::new("trade answers [counter, promise]"));
                };
                E(counter).send("increment", Vec::<Val>::new()).await?;
                promise.await?;
            }
            Ok(Val::Int(n))
        })
        .method_async("trade", async |vat, args| {
            // `trade(counter, promise)`: increments the counter, awaits the promise, and
            // answers a fresh counter of its own and a fresh promise, settled right after.
            E(args.val(0)?).send("increment", Vec::<Val>::new()).await?;
            args.promise(1)?.await?;
            let (promise, resolver) = vat.promise_kit();
            resolver.resolve("traded");
            Ok(Val::List(vec![
                Val::from(make_counter(&vat)),
                Val::Promise(promise),
            ]))
        })
}

/// `fill(from, n)`: writes baggage keys `k<from>` .. `k<from + n - 1>` (values: their
/// numbers), for measuring vats with large stores; answers n.
fn bulk(builder: ObjectBuilder) -> ObjectBuilder {
    builder.method("fill", |vat, args| {
        let (from, n) = (args.int(0)?, args.int(1)?);
        let baggage = vat.baggage();
        for i in from..from + n {
            baggage.set(&format!("k{i}"), i)?;
        }
        Ok(n)
    })
}

/// The optional third argument of `call` and `send_only`: the arguments to send.
fn call_args(args: &Args) -> Result<Vec<Val>> {
    match args.val_or_undefined(2) {
        Val::Undefined => Ok(Vec::new()),
        Val::List(items) => Ok(items),
        other => Err(Error::new(format!(
            "{}: argument 2 must be a list of arguments, not {other}",
            args.method()
        ))),
    }
}

fn make_counter(vat: &Vat) -> Ref {
    let count = Rc::new(Cell::new(0_i64));
    let read = Rc::clone(&count);
    vat.object("counter")
        .method("increment", move |_vat, args| {
            let by = if args.is_empty() { 1 } else { args.int(0)? };
            count.set(count.get() + by);
            Ok(count.get())
        })
        .method("value", move |_vat, _args| Ok(read.get()))
        .build()
}
