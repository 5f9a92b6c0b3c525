//! Guards: what each one accepts, the texts of their failures, and how a guarded call runs.

use std::cell::Cell;
use std::rc::Rc;

use super::{Guard, Guards, MethodGuard, describe};
use crate::{Args, Error, Reply, Val};

fn args(items: Vec<Val>) -> Args {
    Args::new("m", items)
}

/// The failure text of `guard` on `val`, or `ok`.
#[track_caller]
fn check(guard: &Guard, val: Val) -> String {
    match guard.check(&val) {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.message(),
    }
}

#[test]
fn number_guards_follow_javascript_numbers() {
    assert_eq!(check(&Guard::Number, Val::from(-3)), "ok");
    assert_eq!(check(&Guard::Number, Val::from(0.5)), "ok");
    assert_eq!(
        check(&Guard::Number, Val::from("foo")),
        r#"string "foo" - Must be a number"#
    );
    assert_eq!(
        check(&Guard::Number, Val::BigInt(1 << 70)),
        "bigint 1180591620717411303424n - Must be a number"
    );
    assert_eq!(check(&Guard::Int, Val::from(2.0)), "ok");
    assert_eq!(
        check(&Guard::Int, Val::from(2.5)),
        "number 2.5 - Must be an integer"
    );
    assert_eq!(check(&Guard::Nat, Val::from(0)), "ok");
    assert_eq!(
        check(&Guard::Nat, Val::from(-1)),
        "number -1 - Must be a natural number"
    );
    assert_eq!(
        check(&Guard::Nat, Val::Float(f64::INFINITY)),
        "number inf - Must be a natural number"
    );
}

#[test]
fn each_guard_names_what_it_wants() {
    let cases = [
        (Guard::String, Val::from(1), "number 1 - Must be a string"),
        (Guard::Bool, Val::Null, "null - Must be a boolean"),
        (Guard::Null, Val::Undefined, "undefined - Must be null"),
        (
            Guard::Undefined,
            Val::from(false),
            "boolean false - Must be undefined",
        ),
        (
            Guard::Object,
            Val::from("o+1"),
            r#"string "o+1" - Must be an object reference"#,
        ),
        (Guard::Promise, Val::from(1), "number 1 - Must be a promise"),
        (
            Guard::List,
            Val::record([("a", 1)]),
            "record {a: 1} - Must be a list",
        ),
        (
            Guard::Record,
            Val::list(["x"]),
            r#"list ["x"] - Must be a record"#,
        ),
        (
            Guard::Eq(Val::from("on")),
            Val::from("off"),
            r#"string "off" - Must be "on""#,
        ),
        (
            Guard::or([Guard::Null, Guard::Int]),
            Val::from("1"),
            r#"string "1" - Must be one of: null, an integer"#,
        ),
    ];
    for (guard, val, expected) in cases {
        assert_eq!(check(&guard, val.clone()), expected, "{guard:?} on {val:?}");
    }
}

#[test]
fn matching_values_pass() {
    let cases = [
        (Guard::Any, Val::Undefined),
        (Guard::String, Val::from("")),
        (Guard::Bool, Val::from(true)),
        (Guard::List, Val::list(Vec::<Val>::new())),
        (Guard::Record, Val::record([("k", 1)])),
        (Guard::Eq(Val::from(7)), Val::from(7)),
        (Guard::opt(Guard::String), Val::Undefined),
        (Guard::opt(Guard::String), Val::from("s")),
        (Guard::list_of(Guard::Nat), Val::list([1, 2, 3])),
    ];
    for (guard, val) in cases {
        assert_eq!(check(&guard, val.clone()), "ok", "{guard:?} on {val:?}");
    }
}

#[test]
fn a_list_item_that_fails_is_named_by_its_index() {
    let guard = Guard::list_of(Guard::Number);
    assert_eq!(
        check(&guard, Val::list([Val::from(1), Val::from("x")])),
        r#"[1]: string "x" - Must be a number"#
    );
    assert_eq!(
        check(&guard, Val::from(1)),
        "number 1 - Must be a list of (a number)"
    );
}

#[test]
fn values_are_described_with_quoted_strings() {
    assert_eq!(describe(&Val::from("a\"b")), r#"string "a\"b""#);
    assert_eq!(
        describe(&Val::record([(
            "k",
            Val::list([Val::from("v"), Val::from(2)])
        )])),
        r#"record {k: ["v", 2]}"#
    );
    assert_eq!(describe(&Val::error("boom")), r#"error Error("boom")"#);
}

#[test]
fn argument_failures_name_the_method_the_interface_and_the_argument() {
    let guard = MethodGuard::call([Guard::Number]);
    let check = |items: Vec<Val>| match guard.check_args("Counter", "increment", &args(items)) {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.message(),
    };
    assert_eq!(check(vec![Val::from(-3)]), "ok");
    assert_eq!(
        check(vec![Val::from("foo")]),
        r#"In "increment" method of (Counter): arg 0: string "foo" - Must be a number"#
    );
    assert_eq!(
        check(vec![]),
        r#"In "increment" method of (Counter): expected 1 argument, got 0"#
    );
    assert_eq!(
        check(vec![Val::from(1), Val::from(2)]),
        r#"In "increment" method of (Counter): expected 1 argument, got 2"#
    );
}

#[test]
fn optional_and_rest_arguments_are_checked_when_present() {
    let guard = MethodGuard::call([Guard::String]).optional([Guard::Nat]);
    let check =
        |guard: &MethodGuard, items: Vec<Val>| match guard.check_args("I", "m", &args(items)) {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.message(),
        };
    assert_eq!(check(&guard, vec![Val::from("a")]), "ok");
    assert_eq!(check(&guard, vec![Val::from("a"), Val::from(2)]), "ok");
    assert_eq!(
        check(&guard, vec![Val::from("a"), Val::from(-2)]),
        r#"In "m" method of (I): arg 1: number -2 - Must be a natural number"#
    );
    assert_eq!(
        check(&guard, vec![Val::from("a"), Val::from(1), Val::from(1)]),
        r#"In "m" method of (I): expected 1 to 2 arguments, got 3"#
    );
    let rest = MethodGuard::call([Guard::String]).rest(Guard::Bool);
    assert_eq!(
        check(
            &rest,
            vec![Val::from("a"), Val::from(true), Val::from(false)]
        ),
        "ok"
    );
    assert_eq!(
        check(&rest, vec![Val::from("a"), Val::from(true), Val::from(3)]),
        r#"In "m" method of (I): arg 2: number 3 - Must be a boolean"#
    );
    assert_eq!(
        check(&rest, vec![]),
        r#"In "m" method of (I): expected at least 1 argument, got 0"#
    );
    let none = MethodGuard::call([]);
    assert_eq!(
        check(&none, vec![Val::from(1)]),
        r#"In "m" method of (I): expected 0 arguments, got 1"#
    );
}

/// Runs `method` through `guards` as the SDK does; the answer (`ready` or `later`) and
/// whether the method ran.
fn run(guards: &Guards, items: Vec<Val>, answer: Val, later: bool) -> (String, bool) {
    let ran = Rc::new(Cell::new(false));
    let flag = Rc::clone(&ran);
    let reply = guards.invoke("Counter", "increment", args(items), move |_args| {
        flag.set(true);
        if later {
            Reply::later(async move { Ok::<_, Error>(answer) })
        } else {
            Reply::ok(answer)
        }
    });
    let res = match reply.now() {
        Ok(res) => res,
        Err(later) => block_on(later),
    };
    let text = match res {
        Ok(val) => format!("ok {val}"),
        Err(error) => error.message(),
    };
    (text, ran.get())
}

/// Polls a reply whose future never waits on anything.
fn block_on(reply: Reply) -> crate::Result<Val> {
    use std::future::IntoFuture;
    use std::task::{Context, Poll, Waker};
    let mut future = reply.into_future();
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(res) => res,
        Poll::Pending => panic!("the reply waits on something"),
    }
}

#[test]
fn a_guarded_call_rejects_bad_arguments_before_the_method_runs() {
    let mut guards = Guards::default();
    guards.insert("increment", [Guard::Number].into());
    assert_eq!(
        run(&guards, vec![Val::from("foo")], Val::from(1), false),
        (
            r#"In "increment" method of (Counter): arg 0: string "foo" - Must be a number"#
                .to_owned(),
            false
        )
    );
    assert_eq!(
        run(&guards, vec![Val::from(1)], Val::from(1), false),
        ("ok 1".to_owned(), true)
    );
    // A method without a guard is called with anything.
    assert_eq!(
        run(
            &Guards::default(),
            vec![Val::from("x")],
            Val::from(2),
            false
        ),
        ("ok 2".to_owned(), true)
    );
}

#[test]
fn an_answer_is_checked_now_or_when_it_comes() {
    let mut guards = Guards::default();
    guards.insert(
        "increment",
        MethodGuard::call([Guard::Number]).returns(Guard::Number),
    );
    for later in [false, true] {
        assert_eq!(
            run(&guards, vec![Val::from(1)], Val::from(2), later),
            ("ok 2".to_owned(), true)
        );
        assert_eq!(
            run(&guards, vec![Val::from(1)], Val::from("two"), later),
            (
                r#"In "increment" method of (Counter): result: string "two" - Must be a number"#
                    .to_owned(),
                true
            ),
            "later: {later}"
        );
    }
}
