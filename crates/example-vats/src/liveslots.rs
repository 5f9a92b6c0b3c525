//! `liveslots`: the promise scenarios of the conformance suite (spec §21.8). Alice, Bob and
//! Carol all run this vat; Alice is bootstrapped with the parameters `{name, test}` and runs
//! the scenario `test` against Bob (and Carol), while Bob and Carol (parameters `{name}`)
//! only answer. Every scenario ends with a `loopback` round trip to Bob before answering.
//!
//! The TypeScript suite uses one vat per scenario; here one vat carries all of them, so two
//! methods that differ between those vats take an argument instead: `first(true)` answers
//! Bob's `thing` (resolvePipelined) where `first()` answers a string (passResult), and
//! `loopback(true)` writes the test log line `loopback` (messageToPromise only).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ocap_vat::VatRuntime;
use ocap_vat::{
    Baggage, Bootstrap, E, Error, ObjectBuilder, Promise, Ref, Resolver, Result, Runtime, Val, Vat,
};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// The chain in promiseChain stops once Bob's value reaches this.
const CHAIN_LIMIT: i64 = 3;

/// What Bob (or Carol) remembers between calls.
#[derive(Default)]
struct Answerer {
    /// promiseChain: the pending link `bobGen` settles next, and the count so far.
    chain: RefCell<Option<Resolver>>,
    chain_value: Cell<i64>,
    /// promiseCycle: the two promises `genPromise1`/`genPromise2` handed out.
    first: RefCell<Option<Resolver>>,
    second: RefCell<Option<Resolver>>,
    /// promiseCrosswise (`genPromise`/`resolve`) and messageToPromise (`setup`/`doResolve`).
    deferred: RefCell<Option<Resolver>>,
}

impl Answerer {
    fn settle(slot: &RefCell<Option<Resolver>>, value: Val) {
        if let Some(resolver) = slot.borrow().as_ref() {
            resolver.resolve(value);
        }
    }

    /// A pending promise whose resolver goes into `slot`.
    fn pending(vat: &Vat, slot: &RefCell<Option<Resolver>>) -> Promise {
        let (promise, resolver) = vat.promise_kit();
        *slot.borrow_mut() = Some(resolver);
        promise
    }
}

/// The vat's name in the scenario texts (`Alice`, `Bob`, …): the `name` parameter.
fn name_of(parameters: &Val) -> String {
    parameters
        .get("name")
        .and_then(Val::as_str)
        .unwrap_or("anonymous")
        .to_owned()
}

fn build(vat: &Vat, parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let name = name_of(parameters);
    let test = parameters
        .get("test")
        .and_then(Val::as_str)
        .unwrap_or("unspecified")
        .to_owned();
    let state = Rc::new(Answerer::default());
    let thing = vat
        .object("thing")
        .method("second", |vat, _args| {
            vat.test_log("thing.second");
            Ok("Bob's second answer")
        })
        .method("doSomething", |vat, _args| {
            vat.test_log("thing.doSomething");
            Ok("deferred something")
        })
        .build();
    let root = vat.object("root").bootstrap(async move |vat, roots| {
        vat.test_log(format!("running test {test}"));
        run_scenario(&vat, &roots, &test, &name).await
    });
    let root = answer_promise_args(root, parameters);
    let root = answer_chain(root, &state);
    let root = answer_cycles(root, &state);
    let root = answer_results(root, &state, thing);
    Ok(root
        .method("loopback", |vat, args| {
            if args.val_or_undefined(0) == Val::Bool(true) {
                vat.test_log("loopback");
            }
            Ok(())
        })
        .build())
}

/// Bob's side of promiseArg1–3: `hereIsAPromise(p)` answers `[done, "<name>.hereIsAPromise
/// done"]`, where `done` settles once `p` does.
fn answer_promise_args(root: ObjectBuilder, parameters: &Val) -> ObjectBuilder {
    let name = name_of(parameters);
    root.method("hereIsAPromise", move |vat, args| {
        let promise = args.promise(0)?;
        let log = vat.clone();
        let done = then(&vat, promise, move |res| {
            Ok(match res {
                Ok(value) => {
                    log.test_log(format!("the promise parameter resolved to '{value}'"));
                    "bobPSucc"
                }
                Err(error) => {
                    log.test_log(format!("the promise parameter rejected as '{error}'"));
                    "bobPFail"
                }
            }
            .into())
        });
        Ok(Val::list([
            Val::Promise(done),
            Val::from(format!("{name}.hereIsAPromise done")),
        ]))
    })
}

/// Bob's side of promiseChain: `bobInit()` answers a pending link; each `bobGen()` settles
/// the pending link with `[value, next link]`.
fn answer_chain(root: ObjectBuilder, state: &Rc<Answerer>) -> ObjectBuilder {
    let init = Rc::clone(state);
    let generate = Rc::clone(state);
    root.method("bobInit", move |vat, _args| {
        Ok(Answerer::pending(&vat, &init.chain))
    })
    .method("bobGen", move |vat, _args| {
        let (next, resolver) = vat.promise_kit();
        let value = generate.chain_value.get();
        generate.chain_value.set(value + 1);
        vat.test_log(format!("bobGen set value to {}", value + 1));
        let link = Val::list([Val::Int(value), Val::Promise(next)]);
        let previous = generate.chain.replace(Some(resolver));
        if let Some(previous) = previous {
            previous.resolve(link);
        }
        Ok(())
    })
}

/// Bob's and Carol's side of promiseCycle, promiseCycleMultiCrank and promiseCrosswise.
fn answer_cycles(root: ObjectBuilder, state: &Rc<Answerer>) -> ObjectBuilder {
    let (gen1, gen2, both, one, two, generate, resolve) = (
        Rc::clone(state),
        Rc::clone(state),
        Rc::clone(state),
        Rc::clone(state),
        Rc::clone(state),
        Rc::clone(state),
        Rc::clone(state),
    );
    root.method("genPromise1", move |vat, _args| {
        vat.test_log("genPromise1");
        Ok(Answerer::pending(&vat, &gen1.first))
    })
    .method("genPromise2", move |vat, _args| {
        vat.test_log("genPromise2");
        Ok(Answerer::pending(&vat, &gen2.second))
    })
    .method("resolveBoth", move |vat, args| {
        vat.test_log("resolveBoth");
        Answerer::settle(&both.first, args.val(1)?.clone());
        Answerer::settle(&both.second, args.val(0)?.clone());
        Ok(())
    })
    .method("resolve1", move |vat, args| {
        vat.test_log("resolve1");
        Answerer::settle(&one.first, args.val(0)?.clone());
        Ok(())
    })
    .method("resolve2", move |vat, args| {
        vat.test_log("resolve2");
        Answerer::settle(&two.second, args.val(0)?.clone());
        Ok(())
    })
    .method("genPromise", move |vat, _args| {
        vat.test_log("genPromise");
        Ok(Answerer::pending(&vat, &generate.deferred))
    })
    .method("resolve", move |vat, args| {
        vat.test_log("resolve");
        Answerer::settle(&resolve.deferred, args.val(0)?.clone());
        Ok(())
    })
}

/// Bob's side of passResult, resolvePipelined and messageToPromise.
fn answer_results(root: ObjectBuilder, state: &Rc<Answerer>, thing: Ref) -> ObjectBuilder {
    let (setup, resolve) = (Rc::clone(state), Rc::clone(state));
    let deferred_thing = thing.clone();
    root.method("first", move |vat, args| {
        vat.test_log("first");
        Ok(if args.val_or_undefined(0) == Val::Bool(true) {
            Val::Ref(thing.clone())
        } else {
            Val::from("Bob's first answer")
        })
    })
    .method_async("second", async |vat, args| {
        vat.test_log("second");
        let param = settled(args.val(0)?.clone()).await?;
        vat.test_log(format!("parameter to second resolved to {param}"));
        Ok("Bob's second answer")
    })
    .method("setup", move |vat, _args| {
        vat.test_log("setup");
        Ok(Answerer::pending(&vat, &setup.deferred))
    })
    .method("doResolve", move |vat, _args| {
        vat.test_log("doResolve");
        Answerer::settle(&resolve.deferred, Val::Ref(deferred_thing.clone()));
        Ok(())
    })
}

/// Alice: runs the scenario named `test` and answers its result.
async fn run_scenario(vat: &Vat, roots: &Bootstrap, test: &str, name: &str) -> Result<Val> {
    let bob = roots.vat("bob")?;
    match test {
        "promiseArg1" | "promiseArg2" | "promiseArg3" => promise_arg(vat, &bob, test, name).await,
        "promiseChain" => promise_chain(vat, &bob).await,
        "promiseCycle" | "promiseCycleMultiCrank" => promise_cycle(vat, &bob, test).await,
        "promiseCrosswise" => promise_crosswise(vat, &bob, &roots.vat("carol")?).await,
        "passResult" | "resolvePipelined" => pass_result(vat, &bob, test).await,
        "messageToPromise" => message_to_promise(vat, &bob).await,
        other => Err(Error::new(format!("unknown test {other}"))),
    }
}

async fn loopback(bob: &Ref) -> Result<Val> {
    E(bob).send("loopback", ()).await
}

async fn promise_arg(vat: &Vat, bob: &Ref, test: &str, name: &str) -> Result<Val> {
    let (param, resolver) = vat.promise_kit();
    if test == "promiseArg2" {
        vat.test_log("resolving the promise that will be sent to Bob");
        resolver.resolve(format!("{name} said hi before send"));
    }
    vat.test_log("sending the promise to Bob");
    let response = E(bob).send("hereIsAPromise", [param]);
    if test == "promiseArg1" {
        vat.test_log("resolving the promise that was sent to Bob");
        resolver.resolve(format!("{name} said hi after send"));
    }
    vat.test_log("awaiting Bob's response");
    let log = vat.clone();
    let late = (test == "promiseArg3").then(|| format!("{name} said hi after Bob's reply"));
    let done = then(vat, response, move |res| match res {
        Ok(reply) => {
            let reply = reply.as_list().unwrap_or_default();
            let bob_done = reply.first().cloned().unwrap_or_default();
            let message = reply.get(1).cloned().unwrap_or_default();
            log.test_log(format!("Bob's response to hereIsAPromise: '{message}'"));
            if let Some(late) = late {
                log.test_log("resolving the promise that was sent to Bob");
                resolver.resolve(late);
            }
            Ok(bob_done)
        }
        Err(error) => {
            log.test_log(format!(
                "Bob's response to hereIsAPromise rejected as '{error}'"
            ));
            Ok("bobFail".into())
        }
    });
    loopback(bob).await?;
    done.await
}

async fn promise_chain(vat: &Vat, bob: &Ref) -> Result<Val> {
    let ready = E(bob).send("bobInit", ());
    E(bob).send("bobGen", ()).await?;
    let (done, resolver) = vat.promise_kit();
    let (waiter, who) = (vat.clone(), bob.clone());
    vat.spawn(async move { resolver.settle(wait_for(&waiter, &who, ready).await) });
    loopback(bob).await?;
    done.await
}

/// Walks Bob's chain: each link is `[value, next link]`.
async fn wait_for(vat: &Vat, who: &Ref, first: Promise) -> Result<Val> {
    let mut link = first;
    loop {
        vat.test_log("waitFor start");
        let (value, next) = match link.await {
            Ok(res) => {
                let items = res.as_list().unwrap_or_default();
                let value = items.first().and_then(Val::as_int).unwrap_or_default();
                (value, items.get(1).and_then(Val::as_promise).cloned())
            }
            Err(error) => {
                vat.test_log(format!("Bob rejected, {error}"));
                return Ok(Val::Undefined);
            }
        };
        if value >= CHAIN_LIMIT {
            vat.test_log("finishing chain");
            return Ok("end of chain".into());
        }
        vat.test_log(format!("count {value} < {CHAIN_LIMIT}, recurring..."));
        E(who).send("bobGen", ()).await?;
        link = next.ok_or_else(|| Error::new("a chain link without a next promise"))?;
    }
}

async fn promise_cycle(vat: &Vat, bob: &Ref, test: &str) -> Result<Val> {
    let x = E(bob).send("genPromise1", ());
    let y = E(bob).send("genPromise2", ());
    // X is to resolve to [Y] and Y to [X]: `resolveBoth([X], [Y])` crosses them over.
    let (list_x, list_y) = (Val::list([&x]), Val::list([&y]));
    if test == "promiseCycle" {
        E(bob).send("resolveBoth", (list_x, list_y)).await?;
    } else {
        E(bob).send("resolve1", [list_y]).await?;
        E(bob).send("resolve2", [list_x]).await?;
    }
    log_resolutions(vat, &x, &y).await?;
    loopback(bob).await?;
    Ok("done".into())
}

async fn promise_crosswise(vat: &Vat, bob: &Ref, carol: &Ref) -> Result<Val> {
    let x = E(bob).send("genPromise", ());
    let y = E(carol).send("genPromise", ());
    E(bob).send("resolve", [Val::list([&y])]).await?;
    E(carol).send("resolve", [Val::list([&x])]).await?;
    log_resolutions(vat, &x, &y).await?;
    loopback(bob).await?;
    Ok("done".into())
}

/// Awaits X and Y and logs whether the first element of each resolution is a promise.
async fn log_resolutions(vat: &Vat, x: &Promise, y: &Promise) -> Result<()> {
    let resolution_x = x.await?;
    let resolution_y = y.await?;
    for (label, resolution) in [("X", resolution_x), ("Y", resolution_y)] {
        let is_promise = resolution
            .as_list()
            .and_then(<[Val]>::first)
            .is_some_and(Val::is_promise);
        vat.test_log(format!("isPromise(resolution{label}[0]): {is_promise}"));
    }
    Ok(())
}

async fn pass_result(vat: &Vat, bob: &Ref, test: &str) -> Result<Val> {
    let (first, second) = if test == "resolvePipelined" {
        // Pipelining: `second` is sent to the first result before it resolves.
        let first = E(bob).send("first", [true]);
        let second = E(&first).send("second", [&first]);
        (first, second)
    } else {
        let first = E(bob).send("first", ());
        let second = E(bob).send("second", [&first]);
        (first, second)
    };
    let first = report(vat, first, "first", "p1");
    let second = report(vat, second, "second", "p2");
    loopback(bob).await?;
    Ok(Val::list([first.await?, second.await?]))
}

/// Logs how `promise` settles and answers `<tag>succ` or `<tag>fail`.
fn report(vat: &Vat, promise: Promise, which: &'static str, tag: &'static str) -> Promise {
    let log = vat.clone();
    then(vat, promise, move |res| {
        Ok(match res {
            Ok(value) => {
                log.test_log(format!("{which} result resolved to {value}"));
                format!("{tag}succ")
            }
            Err(error) => {
                log.test_log(format!("{which} result rejected with {error}"));
                format!("{tag}fail")
            }
        }
        .into())
    })
}

async fn message_to_promise(vat: &Vat, bob: &Ref) -> Result<Val> {
    let first = E(bob).send("setup", ());
    // Sent to the kernel promise while Bob has not resolved it: it waits in its queue.
    let second = E(&first).send("doSomething", ());
    let log = vat.clone();
    let done = then(vat, second, move |res| {
        Ok(match res {
            Ok(value) => {
                log.test_log(format!("second result resolved to '{value}'"));
                "p2succ"
            }
            Err(error) => {
                log.test_log(format!("second result rejected with '{error}'"));
                "p2fail"
            }
        }
        .into())
    });
    E(bob).send("doResolve", ()).await?;
    vat.test_log("invoking loopback");
    E(bob).send("loopback", [true]).await?;
    vat.test_log("loopback done");
    done.await
}

/// `promise.then(f)`: a promise for `f` of the outcome; `f` answering a promise follows it.
fn then(
    vat: &Vat,
    promise: Promise,
    f: impl FnOnce(Result<Val>) -> Result<Val> + 'static,
) -> Promise {
    let (out, resolver) = vat.promise_kit();
    vat.spawn(async move { resolver.settle(f(promise.await)) });
    out
}

/// The value, once settled if it is a promise.
async fn settled(value: Val) -> Result<Val> {
    match value {
        Val::Promise(promise) => promise.await,
        value => Ok(value),
    }
}
