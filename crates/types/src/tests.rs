//! Unit tests of the vocabulary: ref grammar, value encoding, wire types.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::{CapData, EndpointId, KRef, Message, RunQueueItem, Syscall, VRef, Value, VatId, cbor};

#[test]
fn refs_round_trip_through_text() {
    for text in ["ko1", "kp42", "ko0"] {
        assert_eq!(text.parse::<KRef>().unwrap().to_string(), text);
    }
    for text in [
        "o+0", "o-3", "p+7", "p-1", "o+d10/1", "o+v3/4:0", "o+d1/2:3",
    ] {
        assert_eq!(text.parse::<VRef>().unwrap().to_string(), text);
    }
    for text in ["v1", "r0", "v42"] {
        assert_eq!(text.parse::<EndpointId>().unwrap().to_string(), text);
    }
}

#[test]
fn malformed_refs_are_errors() {
    for text in [
        "",
        "k",
        "kox",
        "ko",
        "ko-1",
        "ko+1",
        "kq1",
        "invalid-kref",
        "ko1 ",
        "ko１",
    ] {
        assert!(text.parse::<KRef>().is_err(), "{text:?}");
    }
    for text in [
        "", "o", "o+", "o-d1/2", "p+d1/1", "o+d1", "o+d1/", "o+x1", "p*1", "o-1:2",
    ] {
        assert!(text.parse::<VRef>().is_err(), "{text:?}");
    }
    assert!("v".parse::<VatId>().is_err());
    assert!(
        "v99999999999".parse::<VatId>().is_err(),
        "overflow is an error"
    );
    let err = "kox".parse::<KRef>().unwrap_err();
    assert!(err.to_string().contains("invalid reference"), "{err}");
}

/// The byte readers of stored and queued refs (`from_ascii`, no UTF-8 check) accept
/// exactly what `FromStr` accepts, and read it the same.
#[test]
fn refs_read_from_bytes_agree_with_from_str() {
    let texts = [
        "ko0",
        "ko12",
        "kp7",
        "kp007",
        "kp18446744073709551615",
        "kp18446744073709551616",
        "kp",
        "kq1",
        "ko1x",
        "ko+1",
        "o+0",
        "o+12",
        "o-3",
        "p+4",
        "p-5",
        "o+d1/2",
        "o+d1/2:3",
        "o+v4/5",
        "o+",
        "o-",
        "p+x",
        "o+ 1",
        "p-1 ",
        "",
        "R o+1",
        "\u{e9}",
    ];
    for text in texts {
        assert_eq!(
            KRef::from_ascii(text.as_bytes()),
            text.parse::<KRef>().ok(),
            "kref {text:?}"
        );
        assert_eq!(
            VRef::from_ascii(text.as_bytes()),
            text.parse::<VRef>().ok(),
            "vref {text:?}"
        );
        assert_eq!(
            EndpointId::from_ascii(text.as_bytes()),
            text.parse::<EndpointId>().ok(),
            "endpoint {text:?}"
        );
    }
    for text in [
        "v1",
        "v01",
        "r7",
        "v4294967295",
        "v4294967296",
        "v",
        "vx",
        "s1",
    ] {
        assert_eq!(
            EndpointId::from_ascii(text.as_bytes()),
            text.parse::<EndpointId>().ok(),
            "endpoint {text:?}"
        );
    }
    assert_eq!(VRef::from_ascii(&[b'o', b'+', 0xff]), None);
}

#[test]
fn vref_directions() {
    assert!(VRef::ROOT.is_export() && !VRef::ROOT.is_promise());
    assert!("p-3".parse::<VRef>().unwrap().is_promise());
    assert!(!"o-3".parse::<VRef>().unwrap().is_export());
}

fn sample() -> Value {
    let mut record = BTreeMap::new();
    record.insert(
        "b".to_owned(),
        Value::Slot {
            index: 1,
            iface: Some("Bob".to_owned()),
        },
    );
    record.insert(
        "a".to_owned(),
        Value::Slot {
            index: 0,
            iface: None,
        },
    );
    Value::List(vec![
        Value::Undefined,
        Value::Null,
        Value::Bool(true),
        Value::Int(-5),
        Value::Float(1.5),
        Value::BigInt(i128::MAX),
        Value::str("hi"),
        Value::Bytes(vec![0, 255]),
        Value::Record(record),
        Value::error("boom"),
        Value::Tagged {
            tag: "t".to_owned(),
            payload: Box::new(Value::Int(1)),
        },
    ])
}

#[test]
fn values_round_trip_and_encode_deterministically() {
    let value = sample();
    let bytes = value.to_cbor();
    assert_eq!(Value::from_cbor(&bytes).unwrap(), value);
    assert_eq!(value.clone().to_cbor(), bytes);
    let mut slots = Vec::new();
    value.for_each_slot(&mut |i| slots.push(i));
    assert_eq!(slots, vec![0, 1], "records are walked in sorted key order");
}

#[test]
fn golden_bytes_of_plain_values() {
    // Plain data is plain CBOR: a reader in any language can decode it.
    assert_eq!(Value::str("hi").to_cbor(), vec![0x62, b'h', b'i']);
    assert_eq!(Value::Int(1).to_cbor(), vec![0x01]);
    assert_eq!(Value::List(vec![]).to_cbor(), vec![0x80]);
    // A slot is tag 27001 over [index, iface].
    assert_eq!(
        Value::Slot {
            index: 0,
            iface: None
        }
        .to_cbor(),
        vec![0xd9, 0x69, 0x79, 0x82, 0x00, 0xf6]
    );
}

#[test]
fn golden_bytes_of_a_run_queue_item() {
    let item = RunQueueItem::Send {
        target: "ko4".parse().unwrap(),
        message: Message::new("hi", vec![], vec![], Some("kp1".parse().unwrap())),
        sender: None,
    };
    let bytes = cbor::to_vec(&item);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // {"Send": {"target": "ko4", "message": {"methargs": {"body": h'8262686980',
    // "slots": []}, "result": "kp1"}}}
    assert_eq!(
        hex,
        concat!(
            "a16453656e64a266746172676574636b6f34676d657373616765a2686d65746861726773",
            "a264626f647945826268698065736c6f74738066726573756c74636b7031"
        )
    );
    assert_eq!(cbor::from_slice::<RunQueueItem>(&bytes).unwrap(), item);
}

/// A send's sender is written only when there is one, so items stored before senders were
/// recorded (the golden bytes above) still decode, as host sends.
#[test]
fn a_send_records_its_sender_and_one_without_a_sender_is_written_as_before() {
    let item = RunQueueItem::Send {
        target: "ko4".parse().unwrap(),
        message: Message::new("hi", vec![], vec![], None),
        sender: Some(EndpointId::Vat("v7".parse().unwrap())),
    };
    let bytes = cbor::to_vec(&item);
    assert_eq!(cbor::from_slice::<RunQueueItem>(&bytes).unwrap(), item);
    let RunQueueItem::Send {
        target, message, ..
    } = item
    else {
        unreachable!()
    };
    let unsent = RunQueueItem::Send {
        target,
        message,
        sender: None,
    };
    assert!(cbor::to_vec(&unsent).len() < bytes.len());
}

#[test]
fn malformed_cbor_is_an_error_not_a_panic() {
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff],
        vec![0x9f],                                     // unterminated indefinite array
        vec![0xd9, 0x69, 0x79, 0x01],                   // slot tag over a non-array
        vec![0xd9, 0x69, 0x7a, 0x82, 0x01, 0x02],       // error tag with non-text
        vec![0xa1, 0x01, 0x02],                         // record with an integer key
        vec![0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02], // duplicate key
        vec![0xc0, 0x61, 0x61],                         // unknown tag
        vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // absurd length
    ];
    for bytes in cases {
        assert!(Value::from_cbor(&bytes).is_err(), "{bytes:02x?}");
    }
    assert!(cbor::from_slice::<Syscall>(&[0xa1, 0x64, b'S', b'e', b'n', b'd', 0x00]).is_err());
}

#[test]
fn deep_nesting_is_refused() {
    let mut bytes = vec![0x81; 10_000];
    bytes.push(0x00);
    assert!(Value::from_cbor(&bytes).is_err());
}

#[test]
fn single_ref_finds_a_top_level_slot_only() {
    let kref: KRef = "ko9".parse().unwrap();
    let single = CapData::new(
        &Value::Slot {
            index: 0,
            iface: None,
        },
        vec![kref],
    );
    assert_eq!(single.single_ref(), Some(&kref));
    let nested = CapData::new(
        &Value::List(vec![Value::Slot {
            index: 0,
            iface: None,
        }]),
        vec![kref],
    );
    assert_eq!(nested.single_ref(), None);
}

#[test]
fn methargs_decode_or_refuse() {
    let message: Message<KRef> = Message::new("m", vec![Value::Int(1)], vec![], None);
    assert_eq!(
        message.method_and_args().unwrap(),
        ("m".to_owned(), vec![Value::Int(1)])
    );
    let bad: Message<KRef> = Message {
        methargs: CapData::data(&Value::Int(3)),
        result: None,
    };
    assert!(bad.method_and_args().is_err());
}

pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Undefined),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>().prop_map(|n| Value::from_cbor(&Value::BigInt(n).to_cbor()).unwrap()),
        "[a-z]{0,8}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        (0u32..4, proptest::option::of("[A-Z][a-z]{0,4}"))
            .prop_map(|(index, iface)| Value::Slot { index, iface }),
        ("[a-z]{0,5}", "[a-z ]{0,10}").prop_map(|(name, message)| Value::Error { name, message }),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::btree_map("[a-z]{0,4}", inner.clone(), 0..5)
                .prop_map(Value::Record),
            ("[a-z]{1,4}", inner).prop_map(|(tag, p)| Value::Tagged {
                tag,
                payload: Box::new(p)
            }),
        ]
    })
}

proptest! {
    #[test]
    fn any_value_round_trips(value in arb_value()) {
        let bytes = value.to_cbor();
        prop_assert_eq!(Value::from_cbor(&bytes).unwrap(), value);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Value::from_cbor(&bytes);
        let _ = cbor::from_slice::<RunQueueItem>(&bytes);
        let _ = cbor::from_slice::<Syscall>(&bytes);
    }
}

#[test]
fn cluster_configs_refuse_unknown_fields_duplicate_names_and_deep_parameters() {
    use crate::{ClusterConfig, ConfigError, VatConfig};
    let config = ClusterConfig::builder("a")
        .vat("a", VatConfig::named("bob"))
        .build()
        .unwrap();
    assert_eq!(config.validate(), Ok(()));
    let bytes = cbor::to_vec(&config);
    assert_eq!(cbor::from_slice::<ClusterConfig>(&bytes).unwrap(), config);
    // The same map with one more field.
    let mut map: ciborium::Value = cbor::from_slice(&bytes).unwrap();
    if let ciborium::Value::Map(entries) = &mut map {
        entries.push(("vatz".into(), ciborium::Value::Null));
    }
    let err = cbor::from_slice::<ClusterConfig>(&cbor::to_vec(&map)).unwrap_err();
    assert!(err.to_string().contains("unknown field `vatz`"), "{err}");

    let mut twice = config.clone();
    twice
        .vats
        .0
        .push(("a".to_owned(), VatConfig::named("alice")));
    assert_eq!(
        twice.validate(),
        Err(ConfigError::DuplicateVat {
            name: "a".to_owned()
        })
    );

    let mut deep = config;
    let mut parameters = Value::Null;
    for _ in 0..100_000 {
        parameters = Value::List(vec![parameters]);
    }
    deep.vats.0[0].1.parameters = Value::Record(BTreeMap::from([("p".to_owned(), parameters)]));
    assert_eq!(
        deep.validate(),
        Err(ConfigError::DeepParameters {
            vat: "a".to_owned()
        })
    );
    std::mem::take(&mut deep.vats.0[0].1.parameters).dispose();
}

#[test]
fn the_cluster_builder_validates_and_tears_down_what_it_refuses() {
    use crate::{ClusterConfig, ConfigError, VatConfig, WorkerKind};
    let config = ClusterConfig::builder("a")
        .vat(
            "a",
            VatConfig::named("alice").with_worker(WorkerKind::Subprocess),
        )
        .vat("b", VatConfig::named("bob"))
        .service("timer")
        .build()
        .unwrap();
    let names: Vec<_> = config
        .vats
        .0
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "launch order is the order of the calls");
    assert_eq!(config.services, ["timer"]);
    assert_eq!(config.vat("a").unwrap().worker, WorkerKind::Subprocess);

    assert_eq!(
        ClusterConfig::builder("a").build(),
        Err(ConfigError::NoVats)
    );
    let twice = ClusterConfig::builder("a")
        .vat("a", VatConfig::named("alice"))
        .vat("a", VatConfig::named("bob"))
        .build();
    assert_eq!(
        twice,
        Err(ConfigError::DuplicateVat {
            name: "a".to_owned()
        })
    );
    // Refused parameters of any depth are torn down without overflowing the stack.
    let mut parameters = Value::Null;
    for _ in 0..100_000 {
        parameters = Value::List(vec![parameters]);
    }
    let parameters = Value::Record(BTreeMap::from([("p".to_owned(), parameters)]));
    let deep = ClusterConfig::builder("a")
        .vat("a", VatConfig::named("alice").with_parameters(parameters))
        .build();
    assert_eq!(
        deep,
        Err(ConfigError::DeepParameters {
            vat: "a".to_owned()
        })
    );
}

#[test]
fn a_bundle_path_vat_names_an_absolute_executable_and_nothing_else() {
    use crate::{ClusterConfig, ConfigError, VatConfig};
    let vat = VatConfig::at_path("/opt/vats/counter-vat");
    assert_eq!(
        vat.executable(),
        Some(std::path::Path::new("/opt/vats/counter-vat"))
    );
    assert_eq!(vat.code(), None, "a path vat names no registered code");
    let cluster = ClusterConfig::builder("c").vat("c", vat).build().unwrap();
    assert!(cluster.validate().is_ok());

    let relative = ClusterConfig::builder("c")
        .vat("c", VatConfig::at_path("./target/release/counter-vat"))
        .build();
    let refused = Err(ConfigError::BundlePath {
        vat: "c".to_owned(),
    });
    assert_eq!(
        relative, refused,
        "the kernel never resolves a relative path"
    );

    let mut both = VatConfig::at_path("/opt/vats/counter-vat");
    both.bundle_name = Some("counter".to_owned());
    assert_eq!(both.executable(), None);
    assert_eq!(
        ClusterConfig::builder("c").vat("c", both).build(),
        Err(ConfigError::Source {
            vat: "c".to_owned()
        })
    );
}
