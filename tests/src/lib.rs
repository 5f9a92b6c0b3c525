//! Test support for the cross-crate tests.
