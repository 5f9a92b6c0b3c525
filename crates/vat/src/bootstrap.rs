//! `Bootstrap`: the unpacked arguments of `bootstrap(vats, services)`, the first message the
//! kernel sends to a subcluster's bootstrap vat.

use std::collections::BTreeMap;

use crate::args::Args;
use crate::error::{Error, Result};
use crate::reference::Ref;
use crate::val::Val;

/// The roots of the subcluster's vats and the kernel services it asked for, by name. The
/// bootstrap vat's own root is among the vats, as a local object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bootstrap {
    /// Vat name → the vat's root object.
    pub vats: BTreeMap<String, Ref>,
    /// Service name → the service object.
    pub services: BTreeMap<String, Ref>,
}

impl Bootstrap {
    /// Unpacks `[vats, services]`; a missing services record means none.
    ///
    /// # Errors
    /// When `vats` is not a record of objects, or `services` is neither absent nor one.
    pub fn from_args(args: &Args) -> Result<Bootstrap> {
        let vats = roots(args.val(0)?, "vats")?;
        let services = match args.val_or_undefined(1) {
            Val::Undefined | Val::Null => BTreeMap::new(),
            services => roots(&services, "services")?,
        };
        Ok(Bootstrap { vats, services })
    }

    /// The root of the vat named `name`.
    ///
    /// # Errors
    /// When the subcluster has no such vat.
    pub fn vat(&self, name: &str) -> Result<Ref> {
        self.vats
            .get(name)
            .cloned()
            .ok_or_else(|| Error::new(format!("bootstrap: no vat named {name:?}")))
    }

    /// The service named `name`.
    ///
    /// # Errors
    /// When the subcluster did not ask for such a service.
    pub fn service(&self, name: &str) -> Result<Ref> {
        self.services
            .get(name)
            .cloned()
            .ok_or_else(|| Error::new(format!("bootstrap: no service named {name:?}")))
    }
}

fn roots(record: &Val, what: &str) -> Result<BTreeMap<String, Ref>> {
    let fields = record
        .as_record()
        .ok_or_else(|| Error::new(format!("bootstrap: {what} must be a record")))?;
    fields
        .iter()
        .map(|(name, value)| match value {
            Val::Ref(reference) => Ok((name.clone(), reference.clone())),
            other => Err(Error::new(format!(
                "bootstrap: {what}.{name} must be an object, not {}",
                other.a_kind()
            ))),
        })
        .collect()
}
