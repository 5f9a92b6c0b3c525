//! The registry of vat code compiled into the host: name → constructor.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ocap_types::VatRuntime;

/// Builds a fresh runtime for one vat incarnation.
pub type VatFactory = Arc<dyn Fn() -> Box<dyn VatRuntime> + Send + Sync>;

/// Vat code by name, as named by `bundleName` in a cluster config.
#[derive(Clone, Default)]
pub struct VatRegistry {
    factories: BTreeMap<String, VatFactory>,
}

impl fmt::Debug for VatRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl VatRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        VatRegistry::default()
    }

    /// Registers `factory` under `name`, replacing any earlier one.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn() -> Box<dyn VatRuntime> + Send + Sync + 'static,
    ) -> &mut Self {
        self.factories.insert(name.to_owned(), Arc::new(factory));
        self
    }

    /// The factory for `name`.
    pub fn get(&self, name: &str) -> Option<&VatFactory> {
        self.factories.get(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}
