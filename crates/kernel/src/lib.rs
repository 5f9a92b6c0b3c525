//! ocap-kernel (work in progress).
