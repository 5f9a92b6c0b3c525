//! Kernel service names (spec §15.2): a service's kref is kept under
//! `kernelService.<name>`, so registering the same name again after a restart gives the
//! same kref. The implementations themselves live in memory, in the kernel.

use ocap_types::KObjectId;

use super::{KernelStore, keys};
use crate::error::StoreError;

impl KernelStore {
    /// The kref recorded for the kernel service `name`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the entry is not an object kref.
    pub fn kernel_service(&self, name: &str) -> Result<Option<KObjectId>, StoreError> {
        self.read_parsed("kernelServices", &keys::kernel_service(name))
    }

    /// Records `object` as the kref of the kernel service `name`.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn put_kernel_service(&mut self, name: &str, object: KObjectId) -> Result<(), StoreError> {
        self.kv
            .set(&keys::kernel_service(name), object.to_string().as_bytes())
    }

    /// Forgets the kref of the kernel service `name`.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_kernel_service(&mut self, name: &str) -> Result<(), StoreError> {
        self.kv.delete(&keys::kernel_service(name))
    }
}
