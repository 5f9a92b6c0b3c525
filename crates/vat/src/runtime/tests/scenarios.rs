//! Promise scenarios from spec §21.8 and §21.14, run between SDK vats through the toy kernel:
//! the bootstrap result and each vat's test log, in order.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ocap_types::Value;

use super::kernel::Kernel;
use crate::runtime::Runtime;
use crate::{Baggage, E, Error, Ref, Resolver, Result, Val, Vat};

/// Launches `alice` (bootstrap) and `bob`, bootstraps, runs to quiescence; returns the
/// bootstrap result and the test logs of alice and bob.
fn run(alice: Runtime, bob: Runtime) -> (Value, Vec<String>, Vec<String>) {
    let mut kernel = Kernel::default();
    let alice_idx = kernel.add_vat("alice", alice);
    let bob_idx = kernel.add_vat("bob", bob);
    let alice_root = kernel.root(alice_idx);
    let bob_root = kernel.root(bob_idx);
    let slot = |index| Value::Slot { index, iface: None };
    let vats = Value::Record([("alice".to_owned(), slot(0)), ("bob".to_owned(), slot(1))].into());
    let result = kernel.queue_message(
        &alice_root.clone(),
        "bootstrap",
        vec![vats, Value::Record([].into())],
        vec![alice_root, bob_root],
    );
    kernel.run();
    let (rejected, value) = kernel.settlement(&result).expect("bootstrap settled");
    assert!(!rejected, "bootstrap rejected: {value}");
    (
        value,
        kernel.test_logs(alice_idx).to_vec(),
        kernel.test_logs(bob_idx).to_vec(),
    )
}

fn scenario_alice(test: &'static str) -> Runtime {
    Runtime::new(move |vat: &Vat, _parameters: &Val, _baggage: &Baggage| {
        Ok(vat
            .object("alice")
            .bootstrap(async move |vat, roots| {
                let bob = roots.vat("bob")?;
                vat.test_log(format!("running test {test}"));
                let res = match test {
                    "promiseArg1" => promise_arg1(&vat, &bob).await?,
                    "promiseChain" => promise_chain(&vat, &bob).await?,
                    "promiseCycle" => promise_cycle(&vat, &bob).await?,
                    "passResult" => pass_result(&vat, &bob).await?,
                    "rejection" => rejection(&vat, &bob).await?,
                    other => return Err(Error::new(format!("unknown test {other}"))),
                };
                E(&bob).send("loopback", ()).await?;
                Ok(res)
            })
            .build())
    })
}

async fn promise_arg1(vat: &Vat, bob: &Ref) -> Result<Val> {
    let (promise, resolver) = vat.promise_kit();
    vat.test_log("sending the promise to Bob");
    let response = E(bob).send("hereIsAPromise", [promise]);
    vat.test_log("resolving the promise that was sent to Bob");
    resolver.resolve("Alice said hi after send");
    vat.test_log("awaiting Bob's response");
    let reply = response.await?;
    let [done, text] = reply.as_list().unwrap_or_default() else {
        return Err(Error::new(format!("odd reply {reply}")));
    };
    vat.test_log(format!("Bob's response to hereIsAPromise: '{text}'"));
    let done = done
        .as_promise()
        .ok_or_else(|| Error::new("done is not a promise"))?;
    done.await?;
    Ok("bobPSucc".into())
}

async fn promise_chain(vat: &Vat, bob: &Ref) -> Result<Val> {
    let mut link = E(bob).send("bobInit", ());
    drop(E(bob).send("bobGen", ()));
    loop {
        vat.test_log("waitFor start");
        let resolution = link.await?;
        let [value, next] = resolution.as_list().unwrap_or_default() else {
            return Err(Error::new(format!("odd link {resolution}")));
        };
        let value = value.as_int().unwrap_or(-1);
        if value >= 3 {
            vat.test_log("finishing chain");
            return Ok("end of chain".into());
        }
        vat.test_log(format!("count {value} < 3, recurring..."));
        drop(E(bob).send("bobGen", ()));
        link = next
            .as_promise()
            .cloned()
            .ok_or_else(|| Error::new("next is not a promise"))?;
    }
}

async fn promise_cycle(vat: &Vat, bob: &Ref) -> Result<Val> {
    let x = E(bob).send("genPromise1", ());
    let y = E(bob).send("genPromise2", ());
    drop(E(bob).send("resolveBoth", (Val::list([&x]), Val::list([&y]))));
    let resolution_x = x.await?;
    let resolution_y = y.await?;
    let first_is_promise = |v: &Val| {
        v.as_list()
            .and_then(|l| l.first())
            .is_some_and(Val::is_promise)
    };
    vat.test_log(format!(
        "isPromise(resolutionX[0]): {}",
        first_is_promise(&resolution_x)
    ));
    vat.test_log(format!(
        "isPromise(resolutionY[0]): {}",
        first_is_promise(&resolution_y)
    ));
    Ok("done".into())
}

async fn pass_result(vat: &Vat, bob: &Ref) -> Result<Val> {
    let first = E(bob).send("first", ());
    let second = E(bob).send("second", [&first]);
    let first = first.await?;
    vat.test_log(format!("first result resolved to {first}"));
    let second = second.await?;
    vat.test_log(format!("second result resolved to {second}"));
    Ok(Val::list(["p1succ", "p2succ"]))
}

async fn rejection(vat: &Vat, bob: &Ref) -> Result<Val> {
    vat.test_log(E(bob).send("foo", [false]).await?.to_string());
    match E(bob).send("foo", [true]).await {
        Err(error) if error.message() == "error: bar" => vat.test_log("err"),
        other => vat.test_log(format!("unexpected {other:?}")),
    }
    vat.test_log(E(bob).send("foo", [false]).await?.to_string());
    Ok("done".into())
}

/// Bob: every method any scenario needs.
#[expect(
    clippy::too_many_lines,
    reason = "every method any scenario needs, in one table"
)]
fn scenario_bob() -> Runtime {
    Runtime::new(|vat: &Vat, _parameters: &Val, _baggage: &Baggage| {
        let chain: Rc<RefCell<Option<Resolver>>> = Rc::default();
        let chain_gen = Rc::clone(&chain);
        let chain_value = Rc::new(Cell::new(0_i64));
        let generated: Rc<RefCell<Vec<Resolver>>> = Rc::default();
        let generated_2 = Rc::clone(&generated);
        let generated_both = Rc::clone(&generated);
        Ok(vat
            .object("bob")
            .method("loopback", |_vat, _args| Ok(()))
            .method("hereIsAPromise", |vat, args| {
                let parameter = args.promise(0)?;
                let (done, resolver) = vat.promise_kit();
                let logger = vat.clone();
                vat.spawn(async move {
                    let res = parameter.await;
                    if let Ok(value) = &res {
                        logger.test_log(format!("the promise parameter resolved to '{value}'"));
                    }
                    resolver.settle(res);
                });
                Ok(Val::list([
                    Val::from(done),
                    Val::from("Bob.hereIsAPromise done"),
                ]))
            })
            .method("bobInit", move |vat, _args| {
                let (promise, resolver) = vat.promise_kit();
                *chain.borrow_mut() = Some(resolver);
                Ok(promise)
            })
            .method("bobGen", move |vat, _args| {
                let value = chain_value.get();
                chain_value.set(value + 1);
                vat.test_log(format!("bobGen set value to {}", value + 1));
                let (next, next_resolver) = vat.promise_kit();
                let previous = chain_gen.replace(Some(next_resolver));
                let previous = previous.ok_or_else(|| Error::new("bobInit first"))?;
                previous.resolve(Val::list([Val::from(value), Val::from(next)]));
                Ok(())
            })
            .method("genPromise1", move |vat, _args| {
                vat.test_log("genPromise1");
                let (promise, resolver) = vat.promise_kit();
                generated.borrow_mut().push(resolver);
                Ok(promise)
            })
            .method("genPromise2", move |vat, _args| {
                vat.test_log("genPromise2");
                let (promise, resolver) = vat.promise_kit();
                generated_2.borrow_mut().push(resolver);
                Ok(promise)
            })
            .method("resolveBoth", move |vat, args| {
                vat.test_log("resolveBoth");
                let resolvers = std::mem::take(&mut *generated_both.borrow_mut());
                let [first, second] = resolvers.as_slice() else {
                    return Err(Error::new("generate two promises first"));
                };
                first.resolve(args.val(1)?);
                second.resolve(args.val(0)?);
                Ok(())
            })
            .method("first", |vat, _args| {
                vat.test_log("first");
                Ok("Bob's first answer")
            })
            .method_async("second", async |vat, args| {
                vat.test_log("second");
                let parameter = args.promise(0)?.await?;
                vat.test_log(format!("parameter to second resolved to {parameter}"));
                Ok("Bob's second answer")
            })
            .method("foo", |vat, args| {
                if args.bool(0)? {
                    vat.test_log("reject");
                    Err(Error::new("error: bar"))
                } else {
                    vat.test_log("resolve");
                    Ok("bar")
                }
            })
            .build())
    })
}

#[test]
fn promise_arg1_a_promise_argument_resolved_after_sending() {
    let (result, alice, bob) = run(scenario_alice("promiseArg1"), scenario_bob());
    assert_eq!(result, Value::str("bobPSucc"));
    assert_eq!(
        alice,
        [
            "running test promiseArg1",
            "sending the promise to Bob",
            "resolving the promise that was sent to Bob",
            "awaiting Bob's response",
            "Bob's response to hereIsAPromise: 'Bob.hereIsAPromise done'",
        ]
    );
    assert_eq!(
        bob,
        ["the promise parameter resolved to 'Alice said hi after send'"]
    );
}

#[test]
fn promise_chain_follows_promises_resolved_one_delivery_later() {
    let (result, alice, bob) = run(scenario_alice("promiseChain"), scenario_bob());
    assert_eq!(result, Value::str("end of chain"));
    assert_eq!(
        alice,
        [
            "running test promiseChain",
            "waitFor start",
            "count 0 < 3, recurring...",
            "waitFor start",
            "count 1 < 3, recurring...",
            "waitFor start",
            "count 2 < 3, recurring...",
            "waitFor start",
            "finishing chain",
        ]
    );
    assert_eq!(
        bob,
        [
            "bobGen set value to 1",
            "bobGen set value to 2",
            "bobGen set value to 3",
            "bobGen set value to 4",
        ]
    );
}

#[test]
fn promise_cycle_resolves_two_promises_to_each_other() {
    let (result, alice, bob) = run(scenario_alice("promiseCycle"), scenario_bob());
    assert_eq!(result, Value::str("done"));
    assert_eq!(
        alice,
        [
            "running test promiseCycle",
            "isPromise(resolutionX[0]): true",
            "isPromise(resolutionY[0]): true",
        ]
    );
    assert_eq!(bob, ["genPromise1", "genPromise2", "resolveBoth"]);
}

#[test]
fn pass_result_sends_a_result_promise_as_an_argument() {
    let (result, alice, bob) = run(scenario_alice("passResult"), scenario_bob());
    assert_eq!(
        result,
        Value::List(vec![Value::str("p1succ"), Value::str("p2succ")])
    );
    assert_eq!(
        alice,
        [
            "running test passResult",
            "first result resolved to Bob's first answer",
            "second result resolved to Bob's second answer",
        ]
    );
    assert_eq!(
        bob,
        [
            "first",
            "second",
            "parameter to second resolved to Bob's first answer"
        ]
    );
}

#[test]
fn a_thrown_error_rejects_only_that_result() {
    let (result, alice, bob) = run(scenario_alice("rejection"), scenario_bob());
    assert_eq!(result, Value::str("done"));
    assert_eq!(alice, ["running test rejection", "bar", "err", "bar"]);
    assert_eq!(bob, ["resolve", "reject", "resolve"]);
}
