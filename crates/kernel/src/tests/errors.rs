//! One store failure surfaces one way: whichever layers it crossed (the queues, the vat
//! manager, the crank loop's handler), the host sees `KernelError::Store`, with the store's
//! own message, never `Queue(Store)` or `Vat(Store)`.

use ocap_queue::QueueError;
use ocap_store::{CrankError, Record, StoreError};
use ocap_types::{KObjectId, VatId};
use ocap_vat_manager::VatError;

use crate::KernelError;

fn missing() -> StoreError {
    StoreError::NotFound(Record::Object(KObjectId(7)))
}

#[track_caller]
fn assert_store(err: &KernelError) {
    assert!(
        matches!(
            err,
            KernelError::Store(StoreError::NotFound(Record::Object(KObjectId(7))))
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "object ko7 not found");
    assert!(
        std::error::Error::source(err).is_none(),
        "a leaf: nothing repeated"
    );
}

#[test]
fn a_store_failure_through_the_queues_or_the_vat_manager_is_kernel_store() {
    // What `?` does on each path.
    assert_store(&KernelError::from(missing()));
    assert_store(&KernelError::from(QueueError::from(missing())));
    assert_store(&KernelError::from(VatError::from(missing())));
    assert_store(&KernelError::from(VatError::from(QueueError::from(
        missing(),
    ))));
    // The crank loop's handler speaks `QueueError`: a vat manager's store failure stays one.
    let through_handler = QueueError::from(VatError::from(missing()));
    assert!(
        matches!(through_handler, QueueError::Store(_)),
        "{through_handler:?}"
    );
    assert_store(&KernelError::from(through_handler));
}

#[test]
fn crank_misuse_is_a_store_error_too() {
    let err = KernelError::from(VatError::from(CrankError::AlreadyInCrank));
    assert!(
        matches!(
            err,
            KernelError::Store(StoreError::Crank(CrankError::AlreadyInCrank))
        ),
        "{err:?}"
    );
}

#[test]
fn errors_that_are_not_the_stores_keep_their_layer() {
    let stale = QueueError::StaleCache {
        name: "runQueue".to_owned(),
    };
    assert!(matches!(
        KernelError::from(stale),
        KernelError::Queue(QueueError::StaleCache { .. })
    ));
    let gone = VatError::NoSuchVat(VatId(3));
    assert!(matches!(
        KernelError::from(gone),
        KernelError::Vat(VatError::NoSuchVat(VatId(3)))
    ));
}
