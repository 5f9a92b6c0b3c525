//! The one integration test binary.

mod example;
mod splat;
mod tidy;
