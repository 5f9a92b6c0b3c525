//! Unit tests of the kernel tables.
