//! The one integration test binary.
#![allow(clippy::unwrap_used)]

mod crank;
mod example;
mod splat;
mod tidy;
