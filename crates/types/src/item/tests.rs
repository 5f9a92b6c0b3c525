//! The hand-written run-queue item codec against serde and ciborium: the same bytes out,
//! the same items (or errors) in, whatever the bytes.

use proptest::prelude::*;

use crate::{
    CapData, EndpointId, KObjectId, KPromiseId, KRef, Message, RemoteId, RunQueueItem, VatId, cbor,
};

fn kref(n: u64, promise: bool) -> KRef {
    if promise {
        KRef::Promise(KPromiseId(n))
    } else {
        KRef::Object(KObjectId(n))
    }
}

fn endpoint(n: u32, remote: bool) -> EndpointId {
    if remote {
        EndpointId::Remote(RemoteId(n))
    } else {
        EndpointId::Vat(VatId(n))
    }
}

fn arb_kref() -> impl Strategy<Value = KRef> {
    (any::<u64>(), any::<bool>()).prop_map(|(n, promise)| kref(n, promise))
}

fn arb_endpoint() -> impl Strategy<Value = EndpointId> {
    (any::<u32>(), any::<bool>()).prop_map(|(n, remote)| endpoint(n, remote))
}

fn arb_item() -> impl Strategy<Value = RunQueueItem> {
    let objects = || prop::collection::vec(any::<u64>().prop_map(KObjectId), 0..30);
    prop_oneof![
        (
            arb_kref(),
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(arb_kref(), 0..30),
            prop::option::of(arb_kref()),
            prop::option::of(arb_endpoint()),
        )
            .prop_map(|(target, body, slots, result, sender)| RunQueueItem::Send {
                target,
                message: Message {
                    methargs: CapData { body, slots },
                    result,
                },
                sender,
            }),
        (arb_endpoint(), any::<u64>()).prop_map(|(endpoint, n)| RunQueueItem::Notify {
            endpoint,
            promise: KPromiseId(n),
        }),
        (arb_endpoint(), objects())
            .prop_map(|(endpoint, objects)| RunQueueItem::DropExports { endpoint, objects }),
        (arb_endpoint(), objects())
            .prop_map(|(endpoint, objects)| RunQueueItem::RetireExports { endpoint, objects }),
        (arb_endpoint(), objects())
            .prop_map(|(endpoint, objects)| RunQueueItem::RetireImports { endpoint, objects }),
        arb_endpoint().prop_map(|endpoint| RunQueueItem::BringOutYourDead { endpoint }),
    ]
}

/// Decoding `bytes` gives what serde gives: the same item, or an error both ways.
#[track_caller]
fn check_decodes_as_serde(bytes: &[u8]) {
    let serde = cbor::from_slice::<RunQueueItem>(bytes);
    let ours = RunQueueItem::from_cbor(bytes);
    match (serde, ours) {
        (Ok(serde), Ok(ours)) => assert_eq!(serde, ours),
        (Err(_), Err(_)) => {}
        (serde, ours) => panic!("serde gave {serde:?}, the codec {ours:?}"),
    }
}

#[test]
fn bodies_and_lists_at_every_length_boundary_encode_as_serde_does() {
    for n in [0, 1, 23, 24, 255, 256, 65_535, 65_536] {
        let item = RunQueueItem::Send {
            target: kref(u64::MAX, false),
            message: Message {
                methargs: CapData {
                    body: vec![7; n],
                    slots: (0..n.min(300) as u64)
                        .map(|i| kref(i, i % 2 == 0))
                        .collect(),
                },
                result: Some(kref(9, true)),
            },
            sender: Some(endpoint(u32::MAX, false)),
        };
        let bytes = item.to_cbor();
        assert_eq!(bytes, cbor::to_vec(&item), "body of {n} bytes");
        assert_eq!(RunQueueItem::from_cbor(&bytes).unwrap(), item);
    }
}

#[test]
fn non_canonical_forms_decode_as_serde_decodes_them() {
    use ciborium::Value as Cbor;
    let text = |s: &str| Cbor::Text(s.to_owned());
    let encode = |value: &Cbor| {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    };
    // Fields in another order.
    let reordered = Cbor::Map(vec![(
        text("Notify"),
        Cbor::Map(vec![
            (text("promise"), text("kp3")),
            (text("endpoint"), text("v2")),
        ]),
    )]);
    let bytes = encode(&reordered);
    check_decodes_as_serde(&bytes);
    assert_eq!(
        RunQueueItem::from_cbor(&bytes).unwrap(),
        RunQueueItem::Notify {
            endpoint: endpoint(2, false),
            promise: KPromiseId(3)
        }
    );
    // A number with a leading zero, an id of the wrong kind, a bad prefix.
    // A sign, a number past the type, a non-ASCII digit, ids read from their bytes.
    for promise in [
        "kp03",
        "ko3",
        "kx3",
        "kp",
        "kp-1",
        "kp+1",
        "kp18446744073709551615",
        "kp18446744073709551616",
        "kp\u{663}",
        "k",
        "",
    ] {
        let item = Cbor::Map(vec![(
            text("Notify"),
            Cbor::Map(vec![
                (text("endpoint"), text("v2")),
                (text("promise"), text(promise)),
            ]),
        )]);
        check_decodes_as_serde(&encode(&item));
    }
    for ep in [
        "v0",
        "r7",
        "v4294967295",
        "v4294967296",
        "x1",
        "v",
        "V1",
        "v 1",
    ] {
        let item = Cbor::Map(vec![(
            text("Notify"),
            Cbor::Map(vec![
                (text("endpoint"), text(ep)),
                (text("promise"), text("kp3")),
            ]),
        )]);
        check_decodes_as_serde(&encode(&item));
    }
    // A length in a longer form than needed (a one-byte length for 6).
    let notify = RunQueueItem::Notify {
        endpoint: endpoint(2, false),
        promise: KPromiseId(3),
    };
    let mut long_form = vec![0xa1, 0x78, 6];
    long_form.extend_from_slice(&notify.to_cbor()[2..]);
    check_decodes_as_serde(&long_form);
    // Trailing bytes.
    let mut trailing = notify.to_cbor();
    trailing.push(0);
    check_decodes_as_serde(&trailing);
}

proptest! {
    #[test]
    fn every_item_encodes_as_serde_does_and_decodes_back(item in arb_item()) {
        let bytes = item.to_cbor();
        prop_assert_eq!(&bytes, &cbor::to_vec(&item));
        prop_assert_eq!(RunQueueItem::from_cbor(&bytes).unwrap(), item);
    }

    #[test]
    fn damaged_items_decode_as_serde_decodes_them(
        item in arb_item(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let bytes = item.to_cbor();
        check_decodes_as_serde(&bytes[..cut.index(bytes.len())]);
        let mut flipped = bytes.clone();
        let at = flip.index(flipped.len());
        flipped[at] ^= 1 << bit;
        check_decodes_as_serde(&flipped);
    }
}
