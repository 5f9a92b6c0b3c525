//! ocap-example-vats (work in progress).
