//! Values at any depth: the iterative writer against ciborium, the depth check against the
//! decoders, and every whole-value operation on values far too deep to recurse over.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::{
    CapData, KRef, MAX_DEPTH, Message, MethargsError, StartHeader, Value, cbor, check_args,
};

/// Depth of the values that would overflow a recursive walk on a test thread's stack.
const HUGE: usize = 100_000;

fn list_chain(depth: usize, leaf: Value) -> Value {
    let mut value = leaf;
    for _ in 0..depth {
        value = Value::List(vec![value]);
    }
    value
}

fn record_chain(depth: usize, leaf: Value) -> Value {
    let mut value = leaf;
    for _ in 0..depth {
        value = Value::Record(BTreeMap::from([("k".to_owned(), value)]));
    }
    value
}

fn tagged_chain(depth: usize, leaf: Value) -> Value {
    let mut value = leaf;
    for _ in 0..depth {
        value = Value::Tagged {
            tag: "t".to_owned(),
            payload: Box::new(value),
        };
    }
    value
}

fn slot() -> Value {
    Value::Slot {
        index: 0,
        iface: None,
    }
}

#[test]
fn a_value_of_any_depth_encodes_clones_compares_shows_and_disposes_without_overflow() {
    for chain in [list_chain, record_chain, tagged_chain] {
        let deep = chain(HUGE, slot());
        assert!(deep.check_depth().is_err());
        let bytes = deep.to_cbor();
        assert!(bytes.len() > HUGE);
        assert!(Value::from_cbor(&bytes).is_err(), "no decoder accepts it");
        let copy = deep.clone();
        assert!(copy == deep);
        let other = chain(HUGE, Value::Null);
        assert!(copy != other);
        let mut slots = Vec::new();
        copy.for_each_slot(&mut |index| slots.push(index));
        assert_eq!(slots, [0]);
        let shown = deep.to_string();
        assert!(shown.ends_with('…') || shown.contains('…'), "elided");
        assert!(shown.len() < 10 * MAX_DEPTH, "{} bytes", shown.len());
        assert!(format!("{deep:?}").contains('…'));
        for value in [deep, copy, other] {
            value.dispose();
        }
    }
}

#[test]
fn check_depth_passes_only_what_the_decoders_accept() {
    let leaves = [
        Value::Null,
        slot(),
        Value::BigInt(i128::MAX),
        Value::Undefined,
    ];
    for chain in [list_chain, record_chain, tagged_chain] {
        for leaf in &leaves {
            for depth in MAX_DEPTH - 8..=MAX_DEPTH + 2 {
                let value = chain(depth, leaf.clone());
                let alone = Value::from_cbor(&value.to_cbor()).is_ok();
                if value.check_depth().is_ok() {
                    assert!(alone, "depth {depth}: passed but does not decode");
                    let start = StartHeader {
                        protocol: 1,
                        name: "v".to_owned(),
                        parameters: value.clone(),
                        state_entries: 0,
                        state_bytes: 0,
                    };
                    let bytes = cbor::to_vec(&start);
                    assert_eq!(cbor::from_slice::<StartHeader>(&bytes).unwrap(), start);
                }
                if depth > MAX_DEPTH {
                    assert!(value.check_depth().is_err(), "depth {depth}");
                }
            }
        }
    }
    // Lists and records cost one CBOR level each: the limit is exactly the decoder's.
    assert!(list_chain(MAX_DEPTH, Value::Null).check_depth().is_ok());
    assert!(record_chain(MAX_DEPTH, slot()).check_depth().is_ok());
}

#[test]
fn serializing_a_value_too_deep_is_an_error() {
    let deep = list_chain(MAX_DEPTH + 1, Value::Null);
    let mut out = Vec::new();
    assert!(ciborium::into_writer(&deep, &mut out).is_err());
}

#[test]
fn arguments_must_decode_inside_methargs_and_name_only_given_slots() {
    // Two levels go to `[method, args]`.
    let deepest = list_chain(MAX_DEPTH - 2, Value::Null);
    assert_eq!(check_args(std::slice::from_ref(&deepest), 0), Ok(()));
    let message: Message<KRef> = Message::new("m", vec![deepest.clone()], vec![], None);
    assert_eq!(message.method_and_args().unwrap().1, vec![deepest]);
    let too_deep = list_chain(MAX_DEPTH - 1, Value::Null);
    assert!(matches!(
        check_args(&[too_deep], 0),
        Err(MethargsError::TooDeep(_))
    ));
    let huge = list_chain(HUGE, Value::Null);
    assert!(matches!(
        check_args(std::slice::from_ref(&huge), 0),
        Err(MethargsError::TooDeep(_))
    ));
    huge.dispose();
    let args = [
        Value::Int(1),
        list_chain(3, slot()),
        Value::Slot {
            index: 2,
            iface: None,
        },
    ];
    assert_eq!(
        check_args(&args, 1),
        Err(MethargsError::Slot { index: 2, slots: 1 })
    );
    assert_eq!(check_args(&args, 3), Ok(()));
    let checked = CapData::<KRef>::new(&Value::List(args.to_vec()), vec![]).checked_value();
    assert!(matches!(checked, Err(MethargsError::Slot { index: 0, .. })));
}

#[test]
fn debug_reads_as_the_derived_form() {
    let value = Value::List(vec![
        Value::Int(1),
        Value::Record(BTreeMap::from([("a".to_owned(), Value::str("x"))])),
        Value::Tagged {
            tag: "t".to_owned(),
            payload: Box::new(slot()),
        },
    ]);
    assert_eq!(
        format!("{value:?}"),
        "List([Int(1), Record({\"a\": Str(\"x\")}), Tagged { tag: \"t\", payload: Slot { index: 0, iface: None } }])"
    );
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Undefined),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        any::<i128>().prop_map(Value::BigInt),
        ".{0,30}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
        (any::<u32>(), proptest::option::of("[A-Z][a-z]{0,4}"))
            .prop_map(|(index, iface)| Value::Slot { index, iface }),
        ("[a-z]{0,5}", "[a-z ]{0,10}").prop_map(|(name, message)| Value::Error { name, message }),
    ];
    leaf.prop_recursive(5, 300, 30, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..30).prop_map(Value::List),
            proptest::collection::btree_map(".{0,4}", inner.clone(), 0..5).prop_map(Value::Record),
            ("[a-z]{1,4}", inner).prop_map(|(tag, p)| Value::Tagged {
                tag,
                payload: Box::new(p)
            }),
        ]
    })
}

proptest! {
    #[test]
    fn to_cbor_writes_the_bytes_ciborium_writes(value in arb_value()) {
        prop_assert_eq!(value.to_cbor(), cbor::to_vec(&value));
    }

    #[test]
    fn clone_and_eq_agree_with_the_encoding(value in arb_value(), other in arb_value()) {
        let copy = value.clone();
        prop_assert_eq!(copy.to_cbor(), value.to_cbor());
        // NaN and -0.0 aside, two values are equal when their encodings are.
        if ![&value, &other].iter().any(|v| v.to_string().contains("NaN") || v.to_string().contains("-0")) {
            prop_assert_eq!(value == other, value.to_cbor() == other.to_cbor());
        }
    }
}

/// `Value::from_cbor` (fast path first) and the general path agree: the same value (by
/// its encoding, so that NaN compares) or an error both ways.
fn check_fast_path_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    match (Value::from_cbor(bytes), Value::from_cbor_general(bytes)) {
        (Ok(fast), Ok(general)) => prop_assert_eq!(fast.to_cbor(), general.to_cbor()),
        (Err(_), Err(_)) => {}
        (fast, general) => prop_assert!(false, "fast {fast:?}, general {general:?}"),
    }
    Ok(())
}

#[test]
fn a_message_body_takes_the_fast_path_and_deep_values_the_general_one() {
    let body = Value::List(vec![
        Value::str("ping"),
        Value::List(vec![
            Value::Int(-3),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Null,
            Value::Bool(true),
            Value::Bytes(vec![1, 2]),
            Value::Slot {
                index: 70_000,
                iface: Some("Alleged: x".to_owned()),
            },
            Value::Slot {
                index: 0,
                iface: None,
            },
        ]),
    ]);
    let bytes = body.to_cbor();
    assert_eq!(super::decode::simple(&bytes), Some(body.clone()));
    assert_eq!(Value::from_cbor(&bytes).unwrap(), body);
    let mut deep = Value::Int(1);
    for _ in 0..40 {
        deep = Value::List(vec![deep]);
    }
    let bytes = deep.to_cbor();
    assert_eq!(super::decode::simple(&bytes), None);
    assert_eq!(Value::from_cbor(&bytes).unwrap(), deep);
}

proptest! {
    #[test]
    fn the_fast_decoder_agrees_with_the_general_one(value in arb_value()) {
        check_fast_path_agrees(&value.to_cbor())?;
    }

    #[test]
    fn the_fast_decoder_agrees_on_damaged_bytes(
        value in arb_value(),
        cut in any::<proptest::sample::Index>(),
        flip in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = value.to_cbor();
        check_fast_path_agrees(&bytes[..cut.index(bytes.len())])?;
        let mut flipped = bytes.clone();
        let at = flip.index(flipped.len());
        flipped[at] ^= 1 << bit;
        check_fast_path_agrees(&flipped)?;
        let mut trailing = bytes;
        trailing.push(0);
        check_fast_path_agrees(&trailing)?;
    }
}
