//! Unit tests of the queue crate.
