//! The one integration test binary.

mod crank;
mod example;
mod splat;
mod tidy;
