//! Routing decisions: given a send's target, where it goes (an owner, a promise queue) or
//! why it goes splat; and which settled promises a notify reports. The router only reads.
//!
//! ```
//! use ocap_router::{Route, route};
//! use ocap_store::{KernelStore, Owner, Store};
//! use ocap_types::{EndpointId, KRef, VatId};
//!
//! let dir = tempfile::tempdir()?;
//! let mut store = KernelStore::new(Store::open(dir.path())?);
//! store.start_crank()?;
//! let owner = Owner::Endpoint(EndpointId::Vat(VatId(1)));
//! let object = store.create_object(owner)?;
//! assert_eq!(route(&store, KRef::Object(object))?, Route::Deliver { owner, object });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod route;

#[cfg(test)]
mod tests;

pub use route::{Route, RouteView, Splat, retire_list, route};
