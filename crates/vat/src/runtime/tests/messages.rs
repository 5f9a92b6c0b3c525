//! The runtime's messages and promises: exports, slots, sends, results, notifies and
//! pipelining, as the kernel would drive them.

use super::*;

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
