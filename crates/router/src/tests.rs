//! Unit tests of routing.
