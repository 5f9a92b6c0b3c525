//! The one integration test binary.
#![allow(clippy::unwrap_used)]

mod bundles;
mod confine;
mod crank;
mod crank_log;
mod example;
mod exo;
mod fixtures;
mod gc;
mod lifecycle;
mod modes;
mod promises;
mod splat;
mod tidy;
mod trust;
mod workers;
