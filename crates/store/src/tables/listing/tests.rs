//! Listings page through a table: pages in key order, none repeated or skipped, of at most
//! `limit` records, whatever other keys share the prefix.

use ocap_types::{EndpointId, KObjectId, KPromiseId, KRef, VRef, VatId};

use crate::{KernelStore, Owner, Store};

/// Every page of a listing of `limit` records, by the cursor the caller passes on.
fn pages<I: Copy, T>(
    limit: usize,
    mut page: impl FnMut(Option<I>) -> Vec<T>,
    id: impl Fn(&T) -> I,
) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let items = page(after);
        assert!(items.len() <= limit);
        let Some(last) = items.last() else {
            return out;
        };
        after = Some(id(last));
        out.push(items);
    }
}

#[test]
fn objects_promises_clists_and_vat_stores_list_in_key_order_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
    store.start_crank().unwrap();
    let v1 = EndpointId::Vat(VatId(1));
    for _ in 0..12 {
        let object = store.create_object(Owner::Endpoint(v1)).unwrap();
        let promise = store.create_promise(None).unwrap();
        store
            .add_clist_entry(v1, object.into(), VRef::ImportObject(object.0))
            .unwrap();
        store
            .add_clist_entry(v1, promise.into(), VRef::ImportPromise(promise.0))
            .unwrap();
    }
    store.pin_object(KObjectId(3)).unwrap();

    let objects = pages(5, |after| store.objects_after(after, 5).unwrap(), |o| o.0);
    let ids: Vec<String> = objects.concat().iter().map(|o| o.0.to_string()).collect();
    assert_eq!(objects.len(), 3);
    assert_eq!(
        ids.join(" "),
        "ko1 ko10 ko11 ko12 ko2 ko3 ko4 ko5 ko6 ko7 ko8 ko9"
    );
    // One key per promise, its record, paged in key order as the objects are.
    let promises = pages(4, |after| store.promises_after(after, 4).unwrap(), |p| p.0);
    let ids: Vec<String> = promises.concat().iter().map(|p| p.0.to_string()).collect();
    assert_eq!(promises.len(), 3);
    assert_eq!(
        ids.join(" "),
        "kp1 kp10 kp11 kp12 kp2 kp3 kp4 kp5 kp6 kp7 kp8 kp9"
    );
    assert_eq!(promises[0][1].0, KPromiseId(10));
    // Each with its count (made: 1; adding a c-list entry takes no hold by itself).
    assert!(promises.concat().iter().all(|p| p.1.refcount == 1));

    let clist = pages(7, |after| store.clist_after(v1, after, 7).unwrap(), |e| e.0);
    let krefs: Vec<KRef> = clist.concat().iter().map(|e| e.0).collect();
    assert_eq!(krefs.len(), 24);
    assert_eq!(krefs[0], KRef::Object(KObjectId(1)));
    assert_eq!(store.pins(KRef::Object(KObjectId(3))).unwrap(), 1);
    assert_eq!(store.pins(KRef::Object(KObjectId(4))).unwrap(), 0);
}

#[test]
fn a_vat_store_lists_its_keys_with_their_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
    store.start_crank().unwrap();
    let vat = VatId(2);
    for (key, value) in [("b", "22"), ("a", "1"), ("c", "333")] {
        store
            .kv_mut()
            .set(format!("v2.vs.{key}").as_bytes(), value.as_bytes())
            .unwrap();
    }
    let first = store.vatstore_after(vat, None, 2).unwrap();
    assert_eq!(first, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    let rest = store.vatstore_after(vat, Some("b"), 2).unwrap();
    assert_eq!(rest, [("c".to_owned(), 3)]);
    assert!(store.vatstore_after(VatId(1), None, 2).unwrap().is_empty());
}
