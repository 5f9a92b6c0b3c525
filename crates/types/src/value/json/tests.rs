//! The JSON form: every kind written as the module docs say, at any depth; with the `json`
//! feature, the `serde_json` conversions agree with the text and read back what they wrote.

use std::collections::BTreeMap;

use crate::Value;

fn record(fields: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect(),
    )
}

/// One value of every kind, with the text `to_json_string` writes for it.
fn every_kind() -> Vec<(Value, &'static str)> {
    vec![
        (Value::Undefined, r#"{"@undefined":null}"#),
        (Value::Null, "null"),
        (Value::Bool(true), "true"),
        (Value::Int(-42), "-42"),
        (Value::Float(1.0), "1.0"),
        (Value::Float(-2.5e-7), "-2.5e-7"),
        (Value::Float(f64::NAN), r#"{"@float":"NaN"}"#),
        (Value::Float(f64::NEG_INFINITY), r#"{"@float":"-Infinity"}"#),
        (
            Value::BigInt(i128::MAX),
            r#"{"@bigint":"170141183460469231731687303715884105727"}"#,
        ),
        (
            Value::str("a \"quote\", a \\ and\n\u{1} é"),
            r#""a \"quote\", a \\ and\n\u0001 é""#,
        ),
        (Value::Bytes(vec![0, 15, 255]), r#"{"@bytes":"000fff"}"#),
        (
            Value::List(vec![Value::Int(1), Value::List(vec![]), Value::str("x")]),
            r#"[1,[],"x"]"#,
        ),
        (
            record(&[("b", Value::Int(2)), ("a", record(&[]))]),
            r#"{"a":{},"b":2}"#,
        ),
        (
            record(&[("@slot", Value::Int(1))]),
            r#"{"@record":{"@slot":1}}"#,
        ),
        (record(&[("@context", Value::Int(1))]), r#"{"@context":1}"#),
        (
            record(&[("@slot", Value::Int(1)), ("b", Value::Null)]),
            r#"{"@slot":1,"b":null}"#,
        ),
        (
            Value::Slot {
                index: 3,
                iface: Some("Counter".to_owned()),
            },
            r#"{"@slot":[3,"Counter"]}"#,
        ),
        (
            Value::Slot {
                index: 0,
                iface: None,
            },
            r#"{"@slot":[0,null]}"#,
        ),
        (
            Value::Error {
                name: "TypeError".to_owned(),
                message: "not a number".to_owned(),
            },
            r#"{"@error":["TypeError","not a number"]}"#,
        ),
        (
            Value::Tagged {
                tag: "copySet".to_owned(),
                payload: Box::new(Value::List(vec![Value::Int(1)])),
            },
            r#"{"@tagged":["copySet",[1]]}"#,
        ),
    ]
}

#[test]
fn every_kind_is_written_in_its_json_form() {
    for (value, text) in every_kind() {
        assert_eq!(value.to_json_string(), text, "{value:?}");
    }
}

#[test]
fn the_json_text_of_a_value_of_any_depth_is_written_without_overflow() {
    let mut value = Value::Null;
    for _ in 0..100_000 {
        value = Value::Tagged {
            tag: "t".to_owned(),
            payload: Box::new(Value::List(vec![Value::Record(BTreeMap::from([(
                "k".to_owned(),
                value,
            )]))])),
        };
    }
    let text = value.to_json_string();
    assert!(text.starts_with(r#"{"@tagged":["t",[{"k":{"@tagged":"#));
    assert!(text.ends_with("]}"));
    value.dispose();
}

#[cfg(feature = "json")]
mod convert {
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    use super::every_kind;
    use crate::{JsonError, MAX_DEPTH, Value};

    /// Equal, NaN included (`PartialEq` says NaN is not NaN).
    fn same(a: &Value, b: &Value) -> bool {
        a.to_cbor() == b.to_cbor()
    }

    #[test]
    fn the_conversions_agree_with_the_text_and_read_back_what_they_wrote() {
        for (value, text) in every_kind() {
            let json = value.to_json().unwrap();
            assert_eq!(json, serde_json::from_str::<Json>(text).unwrap(), "{text}");
            let back = Value::from_json(&json).unwrap();
            assert!(same(&back, &value), "{back:?} != {value:?}");
            assert!(same(&Value::try_from(&json).unwrap(), &value));
            assert_eq!(Json::try_from(&value).unwrap(), json);
        }
    }

    #[test]
    fn plain_json_reads_as_plain_data() {
        let json =
            json!({"n": 1, "big": 18_446_744_073_709_551_615_u64, "x": 0.5, "l": [true, null]});
        assert_eq!(
            Value::from_json(&json).unwrap(),
            super::record(&[
                ("big", Value::BigInt(i128::from(u64::MAX))),
                ("l", Value::List(vec![Value::Bool(true), Value::Null])),
                ("n", Value::Int(1)),
                ("x", Value::Float(0.5)),
            ])
        );
    }

    #[test]
    fn malformed_forms_and_deep_values_are_typed_errors() {
        let cases = [
            (json!({"@slot": "ko3"}), "@slot"),
            (json!({"@slot": [-1, null]}), "@slot"),
            (json!({"@slot": [0, 1]}), "@slot"),
            (json!({"@error": ["only a name"]}), "@error"),
            (json!({"@bigint": "12x"}), "@bigint"),
            (json!({"@bytes": "0F"}), "@bytes"),
            (json!({"@bytes": "abc"}), "@bytes"),
            (json!({"@float": 1.5}), "@float"),
            (json!({"@undefined": 0}), "@undefined"),
            (json!({"@tagged": [1, 2]}), "@tagged"),
            (json!({"@record": []}), "@record"),
        ];
        for (json, form) in cases {
            let err = Value::from_json(&json).unwrap_err();
            assert!(
                matches!(err, JsonError::Form { form: f, .. } if f == form),
                "{json}: {err}"
            );
        }
        let mut deep = json!(null);
        for _ in 0..=MAX_DEPTH {
            deep = json!([deep]);
        }
        assert_eq!(Value::from_json(&deep), Err(JsonError::TooDeep));
        let mut value = Value::Null;
        for _ in 0..100_000 {
            value = Value::List(vec![value]);
        }
        assert_eq!(value.to_json(), Err(JsonError::TooDeep));
        value.dispose();
    }

    proptest! {
        #[test]
        fn any_value_reads_back_from_its_json(value in crate::tests::arb_value()) {
            let json = value.to_json().unwrap();
            prop_assert_eq!(&serde_json::from_str::<Json>(&value.to_json_string()).unwrap(), &json);
            prop_assert_eq!(Value::from_json(&json).unwrap(), value);
        }
    }
}
