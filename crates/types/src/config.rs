//! Cluster and vat configuration (spec §12.1, §15.1), as written in a cluster file.
//!
//! Both configs are `#[non_exhaustive]`: they grow with the spec, so code outside this
//! crate builds them with [`VatConfig::named`] and its `with_*` methods and with
//! [`ClusterConfig::builder`], never with a struct literal. Their fields stay public: a
//! config is plain data that is validated where it is used ([`ClusterConfig::validate`]).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::VatLimits;
use crate::value::Value;

/// How a vat's code is run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkerKind {
    /// In the kernel's process.
    #[default]
    InProcess,
    /// In a worker process of its own.
    Subprocess,
}

/// One vat of a cluster. Exactly one of the four source fields names the vat's code:
/// `bundleName` (or its aliases `sourceSpec`, `bundleSpec`) a vat compiled into the host
/// (its registry name), `bundlePath` an executable of its own (a vat built with
/// `ocap_vat::worker::main`, or any program speaking `docs/vat-protocol.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct VatConfig {
    /// The registered vat's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_name: Option<String>,
    /// Accepted for compatibility: same meaning as `bundle_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_spec: Option<String>,
    /// Accepted for compatibility: same meaning as `bundle_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_spec: Option<String>,
    /// The vat's own executable, run as a worker process (`<path> worker <vat-name>`)
    /// whatever `worker` says. A cluster file may give it relative to the file; the client
    /// (`ocap run`, `ocap launch`) makes it absolute, and the kernel refuses a relative one
    /// ([`ConfigError::BundlePath`]): it may run in another working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_path: Option<PathBuf>,
    /// Parameters handed to the vat's build function.
    #[serde(default, skip_serializing_if = "is_null")]
    pub parameters: Value,
    /// Where the vat runs (a `bundle_path` vat always runs in a worker process).
    #[serde(default)]
    pub worker: WorkerKind,
    /// What the vat may ask of the kernel.
    #[serde(default, skip_serializing_if = "VatLimits::is_default")]
    pub limits: VatLimits,
}

fn is_null(value: &Value) -> bool {
    matches!(value, Value::Null)
}

/// A configuration that is well-formed text but not a valid cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A vat config names no source or several.
    #[error(
        "invalid cluster config: vat {vat:?} must name exactly one of bundleName, sourceSpec, bundleSpec, bundlePath"
    )]
    Source {
        /// The vat's name.
        vat: String,
    },
    /// A `bundlePath` that is not absolute, or not UTF-8.
    #[error("invalid cluster config: bundlePath of vat {vat:?} must be an absolute UTF-8 path")]
    BundlePath {
        /// The vat's name.
        vat: String,
    },
    /// The cluster has no vats.
    #[error("invalid cluster config: no vats")]
    NoVats,
    /// The bootstrap vat is not one of the vats.
    #[error("invalid bootstrap vat name {name}")]
    Bootstrap {
        /// The name given.
        name: String,
    },
    /// Parameters must be a record (or absent).
    #[error("invalid cluster config: parameters of vat {vat:?} must be a record")]
    Parameters {
        /// The vat's name.
        vat: String,
    },
    /// A vat's limits cannot be used.
    #[error("invalid cluster config: limits of vat {vat:?}: {reason}")]
    Limits {
        /// The vat's name.
        vat: String,
        /// Why.
        reason: String,
    },
    /// Parameters nested deeper than the vat could decode.
    #[error("invalid cluster config: parameters of vat {vat:?} are nested too deeply")]
    DeepParameters {
        /// The vat's name.
        vat: String,
    },
    /// Two vats of the cluster have the same name.
    #[error("invalid cluster config: duplicate vat {name:?}")]
    DuplicateVat {
        /// The name.
        name: String,
    },
}

impl VatConfig {
    /// A vat running the registered code `name`, in process, without parameters.
    pub fn named(name: &str) -> VatConfig {
        VatConfig {
            bundle_name: Some(name.to_owned()),
            source_spec: None,
            bundle_spec: None,
            bundle_path: None,
            parameters: Value::Null,
            worker: WorkerKind::InProcess,
            limits: VatLimits::default(),
        }
    }

    /// A vat running the executable at `path` (absolute) in a worker process of its own,
    /// without parameters.
    pub fn at_path(path: impl Into<PathBuf>) -> VatConfig {
        VatConfig {
            bundle_name: None,
            bundle_path: Some(path.into()),
            worker: WorkerKind::Subprocess,
            ..VatConfig::named("")
        }
    }

    /// The config with its build function's parameters replaced (a record, or `Null` for
    /// none; [`ClusterConfig::validate`] refuses anything else).
    #[must_use]
    pub fn with_parameters(mut self, parameters: Value) -> Self {
        self.parameters = parameters;
        self
    }

    /// The config with where the vat runs replaced.
    #[must_use]
    pub fn with_worker(mut self, worker: WorkerKind) -> Self {
        self.worker = worker;
        self
    }

    /// The config with the vat's limits replaced.
    #[must_use]
    pub fn with_limits(mut self, limits: VatLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The registered code this vat runs; `None` for a `bundle_path` vat or a config
    /// naming no code or several.
    pub fn code(&self) -> Option<&str> {
        match (
            &self.bundle_name,
            &self.source_spec,
            &self.bundle_spec,
            &self.bundle_path,
        ) {
            (Some(s), None, None, None)
            | (None, Some(s), None, None)
            | (None, None, Some(s), None) => Some(s),
            _ => None,
        }
    }

    /// The executable this vat runs, if it names one (`bundlePath`) and no other code.
    pub fn executable(&self) -> Option<&Path> {
        match (
            &self.bundle_name,
            &self.source_spec,
            &self.bundle_spec,
            &self.bundle_path,
        ) {
            (None, None, None, Some(path)) => Some(path),
            _ => None,
        }
    }
}

/// A subcluster: vats launched together, one of which is bootstrapped with the others' roots.
///
/// Read from a file, a field the spec does not define is an error (a misspelt `vats` must
/// not launch an empty cluster); the spec's `bundles` is accepted and ignored. Built in
/// code with [`ClusterConfig::builder`]:
///
/// ```
/// use ocap_types::{ClusterConfig, ConfigError, VatConfig, Value};
///
/// let config = ClusterConfig::builder("alice")
///     .vat("alice", VatConfig::named("alice"))
///     .vat("bob", VatConfig::named("bob").with_parameters(Value::Record(Default::default())))
///     .service("timer")
///     .build()?;
/// assert_eq!(config.vat("bob").and_then(VatConfig::code), Some("bob"));
///
/// let err = ClusterConfig::builder("carol").vat("alice", VatConfig::named("alice")).build();
/// assert_eq!(err, Err(ConfigError::Bootstrap { name: "carol".to_owned() }));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "ClusterFields")]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The bootstrap vat's name.
    pub bootstrap: String,
    /// The vats, in launch order.
    pub vats: OrderedVats,
    /// Kernel services handed to bootstrap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Accepted, unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_reset: Option<bool>,
}

/// The fields a cluster config may have when read: [`ClusterConfig`]'s and the spec's
/// `bundles` (accepted, unused). Any other field is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClusterFields {
    bootstrap: String,
    vats: OrderedVats,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    force_reset: Option<bool>,
    #[serde(default, rename = "bundles")]
    _bundles: Option<serde::de::IgnoredAny>,
}

impl From<ClusterFields> for ClusterConfig {
    fn from(fields: ClusterFields) -> Self {
        ClusterConfig {
            bootstrap: fields.bootstrap,
            vats: fields.vats,
            services: fields.services,
            force_reset: fields.force_reset,
        }
    }
}

impl ClusterConfig {
    /// Starts a cluster whose bootstrap vat is `bootstrap`; add the vats (in launch order)
    /// and services, then [`ClusterConfigBuilder::build`] validates it.
    pub fn builder(bootstrap: impl Into<String>) -> ClusterConfigBuilder {
        ClusterConfigBuilder {
            config: ClusterConfig {
                bootstrap: bootstrap.into(),
                vats: OrderedVats::default(),
                services: Vec::new(),
                force_reset: None,
            },
        }
    }

    /// Checks the rules a cluster must follow beyond its shape. Safe on input of any
    /// depth: call it before cloning or storing a config from outside.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vats.0.is_empty() {
            return Err(ConfigError::NoVats);
        }
        let mut names = BTreeSet::new();
        for (name, vat) in &self.vats.0 {
            if !names.insert(name) {
                return Err(ConfigError::DuplicateVat { name: name.clone() });
            }
            if vat.code().is_none() && vat.executable().is_none() {
                return Err(ConfigError::Source { vat: name.clone() });
            }
            if vat
                .executable()
                .is_some_and(|path| !path.is_absolute() || path.to_str().is_none())
            {
                return Err(ConfigError::BundlePath { vat: name.clone() });
            }
            if !matches!(vat.parameters, Value::Null | Value::Record(_)) {
                return Err(ConfigError::Parameters { vat: name.clone() });
            }
            if let Some(reason) = vat.limits.problem() {
                return Err(ConfigError::Limits {
                    vat: name.clone(),
                    reason,
                });
            }
            if vat.parameters.check_depth().is_err() {
                return Err(ConfigError::DeepParameters { vat: name.clone() });
            }
        }
        if self.vat(&self.bootstrap).is_none() {
            return Err(ConfigError::Bootstrap {
                name: self.bootstrap.clone(),
            });
        }
        Ok(())
    }

    /// The vat named `name`.
    pub fn vat(&self, name: &str) -> Option<&VatConfig> {
        self.vats.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A [`ClusterConfig`] being put together; [`ClusterConfigBuilder::build`] validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct ClusterConfigBuilder {
    config: ClusterConfig,
}

impl ClusterConfigBuilder {
    /// Adds a vat named `name`, launched after the vats added before it.
    pub fn vat(mut self, name: impl Into<String>, vat: VatConfig) -> Self {
        self.config.vats.0.push((name.into(), vat));
        self
    }

    /// Adds a kernel service handed to bootstrap (it must be registered when the cluster
    /// is launched).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.config.services.push(name.into());
        self
    }

    /// The config, checked as [`ClusterConfig::validate`] checks it.
    ///
    /// # Errors
    /// The first [`ConfigError`] found: no vats, a bootstrap name that is not a vat, two
    /// vats of one name, a vat's source, parameters or limits.
    pub fn build(self) -> Result<ClusterConfig, ConfigError> {
        match self.config.validate() {
            Ok(()) => Ok(self.config),
            Err(error) => {
                // Parameters may be nested too deeply for Rust's recursive drop glue.
                for (_, vat) in self.config.vats.0 {
                    vat.parameters.dispose();
                }
                Err(error)
            }
        }
    }
}

/// Vats by name, keeping the order in which they were written (it is the launch order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedVats(pub Vec<(String, VatConfig)>);

impl Serialize for OrderedVats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, vat) in &self.0 {
            map.serialize_entry(name, vat)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OrderedVats {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = OrderedVats;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of vat name to vat config")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedVats, A::Error> {
                let mut vats: Vec<(String, VatConfig)> = Vec::new();
                while let Some((name, vat)) = map.next_entry::<String, VatConfig>()? {
                    if vats.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!("duplicate vat {name:?}")));
                    }
                    vats.push((name, vat));
                }
                Ok(OrderedVats(vats))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}
