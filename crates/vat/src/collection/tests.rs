//! Scalar stores: the map and set operations, key order and identity, and durable stores
//! across incarnations.

use ocap_types::{ByteBuf, Syscall, Value, VatHost, VatLog, VatRuntime, VatStart};

use crate::{MapStore, Result, Runtime, SetStore, Val, Vat};

struct NoHost;

impl VatHost for NoHost {
    fn syscall(&mut self, _syscall: Syscall) {}
    fn log(&mut self, _log: VatLog) {}
}

/// Runs `body` in the build function of an incarnation started on `state`; the vat store
/// afterwards (its failure fails the test).
fn incarnation(
    state: Vec<(String, ByteBuf)>,
    body: impl FnOnce(&Vat) -> Result<()> + 'static,
) -> Vec<(String, ByteBuf)> {
    let mut runtime = Runtime::new(move |vat, _parameters, _baggage| {
        body(vat)?;
        Ok(vat.object("root").build())
    });
    let start = VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state: state.clone(),
    };
    let outcome = runtime.start(start, &mut NoHost);
    assert_eq!(outcome.error, None);
    let mut state = state;
    for (key, value) in outcome.checkpoint.sets {
        state.retain(|(k, _)| *k != key);
        state.push((key, value));
    }
    state.retain(|(k, _)| !outcome.checkpoint.deletes.contains(k));
    state.sort();
    state
}

fn in_vat(body: impl FnOnce(&Vat) -> Result<()> + 'static) {
    incarnation(Vec::new(), body);
}

fn message<T: std::fmt::Debug>(res: Result<T>) -> String {
    res.unwrap_err().message()
}

#[test]
fn a_map_store_adds_replaces_finds_and_deletes() -> Result<()> {
    let map = MapStore::new("testMap");
    assert_eq!(map.label(), "testMap");
    map.init("bob", 25)?;
    map.init("alice", 30)?;
    assert_eq!(
        message(map.init("bob", 1)),
        r#"key "bob" already registered in collection "testMap""#
    );
    assert_eq!(map.get("bob")?, Val::from(25));
    map.set("bob", 26)?;
    assert_eq!(map.get("bob")?, Val::from(26));
    assert_eq!(
        message(map.set("carol", 1)),
        r#"key "carol" not found in collection "testMap""#
    );
    assert_eq!(
        message(map.get("carol")),
        r#"key "carol" not found in collection "testMap""#
    );
    assert_eq!(map.size(), 2);
    assert!(map.has("alice") && !map.has("carol"));
    map.delete("alice")?;
    assert!(!map.has("alice"));
    assert_eq!(
        message(map.delete("alice")),
        r#"key "alice" not found in collection "testMap""#
    );
    assert_eq!(map.entries()?, [(Val::from("bob"), Val::from(26))]);
    // Clones share the entries.
    map.clone().init("dave", 1)?;
    assert_eq!(map.size(), 2);
    Ok(())
}

#[test]
fn keys_come_out_in_key_order() -> Result<()> {
    let map = MapStore::new("m");
    let keys = [
        Val::from("charlie"),
        Val::from(10),
        Val::from("alice"),
        Val::from(-2.5),
        Val::from(true),
        Val::Null,
        Val::from(2),
        Val::from(false),
        Val::Undefined,
        Val::from("Bob"),
    ];
    for (n, key) in keys.iter().enumerate() {
        map.init(key.clone(), Val::from(n as i64))?;
    }
    assert_eq!(
        map.keys()?,
        [
            Val::Undefined,
            Val::Null,
            Val::from(false),
            Val::from(true),
            Val::from(-2.5),
            Val::from(2),
            Val::from(10),
            Val::from("Bob"),
            Val::from("alice"),
            Val::from("charlie"),
        ]
    );
    assert_eq!(map.values()?, [8, 5, 7, 4, 3, 6, 1, 9, 2, 0].map(Val::from));
    Ok(())
}

#[test]
fn an_integral_float_is_the_same_key_as_the_integer() -> Result<()> {
    let map = MapStore::new("m");
    map.init(1, "one")?;
    assert!(map.has(1.0));
    assert_eq!(map.get(1.0)?, Val::from("one"));
    assert!(map.init(1.0, "again").is_err());
    map.init(1.5, "one and a half")?;
    map.init(f64::NAN, "nan")?;
    assert!(map.has(f64::NAN));
    assert_eq!(map.size(), 3);
    Ok(())
}

#[test]
fn only_scalars_are_keys() {
    let map = MapStore::new("m");
    assert_eq!(
        message(map.init(Val::list([1]), 1)),
        r#"collection "m": a list cannot be a key (keys are strings, numbers, booleans, null, undefined and object references)"#
    );
    assert!(map.init(Val::record([("a", 1)]), 1).is_err());
    assert!(!map.has(Val::list([1])));
    let set = SetStore::new("s");
    assert!(set.add(Val::error("e")).is_err());
    assert_eq!(set.size(), 0);
}

#[test]
fn objects_are_keys_by_identity() {
    in_vat(|vat| {
        let (a, b) = (vat.object("thing").build(), vat.object("thing").build());
        let map = MapStore::new("m");
        map.init(&a, "a")?;
        map.init(&b, "b")?;
        map.init("text", "t")?;
        assert_eq!(map.get(&a)?, Val::from("a"));
        assert_eq!(map.get(&b)?, Val::from("b"));
        // Objects come after every other kind of key, in the order they were made.
        assert_eq!(
            map.keys()?,
            [Val::from("text"), Val::from(&a), Val::from(&b)]
        );
        let set = SetStore::new("s");
        set.add(&b)?;
        assert!(set.has(&b) && !set.has(&a));
        Ok(())
    });
}

#[test]
fn a_set_store_adds_once_and_deletes() -> Result<()> {
    let set = SetStore::new("testSet");
    set.add("b")?;
    set.add("a")?;
    set.add("b")?;
    assert_eq!(set.size(), 2);
    assert_eq!(set.keys()?, [Val::from("a"), Val::from("b")]);
    set.delete("a")?;
    assert!(!set.has("a"));
    assert_eq!(
        message(set.delete("a")),
        r#"key "a" not found in collection "testSet""#
    );
    Ok(())
}

#[test]
fn a_durable_store_survives_into_the_next_incarnation() {
    let state = incarnation(Vec::new(), |vat| {
        let map = vat.durable_map_store("accounts");
        map.init("bob", Val::record([("balance", 5)]))?;
        map.init("alice", 10)?;
        map.init(3, "three")?;
        let set = vat.durable_set_store("accounts");
        set.add("carol")?;
        Ok(())
    });
    let keys: Vec<&str> = state.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sdk.map.8:accounts.n3",
            "sdk.map.8:accounts.salice",
            "sdk.map.8:accounts.sbob",
            "sdk.set.8:accounts.scarol",
        ]
    );
    incarnation(state, |vat| {
        let map = vat.durable_map_store("accounts");
        assert_eq!(map.size(), 3);
        assert_eq!(
            map.keys()?,
            [Val::from(3), Val::from("alice"), Val::from("bob")]
        );
        assert_eq!(map.get("bob")?, Val::record([("balance", 5)]));
        map.delete("bob")?;
        assert!(!map.has("bob"));
        // A set and a map of one name are two stores.
        let set = vat.durable_set_store("accounts");
        assert_eq!(set.keys()?, [Val::from("carol")]);
        Ok(())
    });
}

#[test]
fn durable_stores_with_overlapping_names_stay_apart() {
    in_vat(|vat| {
        let short = vat.durable_map_store("a");
        let long = vat.durable_map_store("a.sb");
        long.init("x", 1)?;
        short.init("sb.sx", 2)?;
        assert_eq!(short.keys()?, [Val::from("sb.sx")]);
        assert_eq!(long.keys()?, [Val::from("x")]);
        Ok(())
    });
}

#[test]
fn a_durable_store_keeps_only_what_survives_a_restart() {
    let state = incarnation(Vec::new(), |vat| {
        let map = vat.durable_map_store("m");
        let ephemeral = vat.object("thing").build();
        assert_eq!(
            message(map.init("k", &ephemeral)),
            r#"collection "m": cannot store the non-durable object "thing" in baggage"#
        );
        assert!(map.init(&ephemeral, 1).is_err());
        assert!(!map.has(&ephemeral));
        let (promise, _resolver) = vat.promise_kit();
        assert!(map.init("p", promise).is_err());
        let kind = vat.durable_kind("thing").build()?;
        let durable = kind.make(Val::Null)?;
        map.init(&durable, "a durable key")?;
        map.init("value", &durable)?;
        assert_eq!(map.size(), 2);
        Ok(())
    });
    incarnation(state, |vat| {
        vat.durable_kind("thing").build()?;
        let map = vat.durable_map_store("m");
        let durable = map.get("value")?;
        assert_eq!(map.get(durable.clone())?, Val::from("a durable key"));
        assert_eq!(map.keys()?, [Val::from("value"), durable]);
        Ok(())
    });
}
