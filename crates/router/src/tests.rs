//! Table-driven tests of routing over a fake view: target kind × promise state × owner
//! state → the route, and for splats the exact rejection text.

use std::collections::BTreeMap;

use ocap_store::{ObjectRecord, Owner, PromiseRecord, PromiseState, RefCounts, StoreError};
use ocap_types::{CapData, EndpointId, KObjectId, KPromiseId, KRef, SplatReason, Value, VatId};

use crate::{Route, RouteView, Splat, retire_list, route};

#[derive(Default)]
struct World {
    objects: BTreeMap<KObjectId, ObjectRecord>,
    promises: BTreeMap<KPromiseId, PromiseRecord>,
}

impl RouteView for World {
    fn object(&self, id: KObjectId) -> Result<Option<ObjectRecord>, StoreError> {
        Ok(self.objects.get(&id).cloned())
    }
    fn promise(&self, id: KPromiseId) -> Result<Option<PromiseRecord>, StoreError> {
        Ok(self.promises.get(&id).cloned())
    }
}

const V1: Owner = Owner::Endpoint(EndpointId::Vat(VatId(1)));

fn object(owner: Option<Owner>, revoked: bool) -> ObjectRecord {
    ObjectRecord {
        owner,
        counts: RefCounts {
            reachable: 1,
            recognizable: 1,
        },
        revoked,
    }
}

fn promise(state: PromiseState) -> PromiseRecord {
    PromiseRecord { state, refcount: 1 }
}

fn ref_to(kref: KRef) -> CapData<KRef> {
    CapData::new(
        &Value::Slot {
            index: 0,
            iface: None,
        },
        vec![kref],
    )
}

fn world() -> World {
    let mut w = World::default();
    w.objects.insert(KObjectId(1), object(Some(V1), false));
    w.objects.insert(KObjectId(2), object(Some(V1), true));
    w.objects.insert(KObjectId(3), object(None, false));
    w.objects.insert(KObjectId(4), object(None, true));
    w.objects
        .insert(KObjectId(5), object(Some(Owner::Kernel), false));
    let unresolved = PromiseState::Unresolved {
        decider: None,
        subscribers: vec![],
    };
    let ko = |n| KRef::Object(KObjectId(n));
    let kp = |n| KRef::Promise(KPromiseId(n));
    let entries = [
        (1, unresolved),
        (2, PromiseState::Fulfilled(ref_to(ko(1)))),
        (3, PromiseState::Fulfilled(CapData::data(&Value::Int(7)))),
        (4, PromiseState::Rejected(CapData::error("boom"))),
        (5, PromiseState::Fulfilled(ref_to(kp(2)))),
        (6, PromiseState::Fulfilled(ref_to(kp(1)))),
        (7, PromiseState::Fulfilled(ref_to(kp(8)))),
        (8, PromiseState::Fulfilled(ref_to(kp(7)))),
        (9, PromiseState::Fulfilled(ref_to(ko(2)))),
        (10, PromiseState::Fulfilled(ref_to(kp(10)))),
    ];
    for (n, state) in entries {
        w.promises.insert(KPromiseId(n), promise(state));
    }
    w
}

fn deliver(object: u64, owner: Owner) -> Route {
    Route::Deliver {
        owner,
        object: KObjectId(object),
    }
}

fn splat(reason: SplatReason) -> Route {
    Route::Splat(Splat::Reason(reason))
}

#[test]
fn every_target_kind_routes_as_the_spec_says() {
    let w = world();
    let cases: Vec<(&str, Route)> = vec![
        ("ko1", deliver(1, V1)),
        ("ko2", splat(SplatReason::Revoked)),
        ("ko3", splat(SplatReason::Deleted)),
        ("ko4", splat(SplatReason::Revoked)),
        ("ko5", deliver(5, Owner::Kernel)),
        ("ko99", splat(SplatReason::Deleted)),
        ("kp1", Route::Requeue(KPromiseId(1))),
        ("kp2", deliver(1, V1)),
        ("kp3", splat(SplatReason::NotAnObject)),
        ("kp4", Route::Splat(Splat::Rejected(CapData::error("boom")))),
        ("kp5", deliver(1, V1)),
        ("kp6", Route::Requeue(KPromiseId(1))),
        ("kp7", splat(SplatReason::NotAnObject)),
        ("kp9", splat(SplatReason::Revoked)),
        ("kp10", splat(SplatReason::NotAnObject)),
        ("kp99", splat(SplatReason::Deleted)),
    ];
    for (target, expected) in cases {
        let got = route(&w, target.parse().unwrap()).unwrap();
        assert_eq!(got, expected, "route of {target}");
    }
}

#[test]
fn splat_rejections_are_the_fixed_texts() {
    let cases = [
        (
            SplatReason::Revoked,
            "[KERNEL:OBJECT_REVOKED] Target object has been revoked",
        ),
        (
            SplatReason::Deleted,
            "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted",
        ),
        (
            SplatReason::NotAnObject,
            "[KERNEL:BAD_PROMISE_RESOLUTION] Promise fulfilled but did not contain an object reference",
        ),
        (
            SplatReason::Unreachable,
            "[KERNEL:ENDPOINT_UNREACHABLE] Target endpoint is unreachable (terminated or disconnected)",
        ),
        (
            SplatReason::DeliveryFailed("queue full".to_owned()),
            "[KERNEL:DELIVERY_FAILED] queue full",
        ),
    ];
    for (reason, text) in cases {
        let value = Splat::Reason(reason).rejection();
        assert_eq!(value.decode().unwrap(), Value::error(text));
        assert!(value.slots.is_empty());
    }
    let passed_through = Splat::Rejected(CapData::error("boom")).rejection();
    assert_eq!(passed_through, CapData::error("boom"));
}

#[test]
fn retire_list_walks_settled_promises_depth_first_once() {
    let w = world();
    let ids: Vec<u64> = retire_list(&w, KPromiseId(5))
        .unwrap()
        .iter()
        .map(|(id, _)| id.0)
        .collect();
    assert_eq!(ids, vec![5, 2]);
    let cycle: Vec<u64> = retire_list(&w, KPromiseId(7))
        .unwrap()
        .iter()
        .map(|(id, _)| id.0)
        .collect();
    assert_eq!(cycle, vec![7, 8]);
    let stops_at_unresolved: Vec<u64> = retire_list(&w, KPromiseId(6))
        .unwrap()
        .iter()
        .map(|(id, _)| id.0)
        .collect();
    assert_eq!(stops_at_unresolved, vec![6]);
}
