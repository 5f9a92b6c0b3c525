//! ocap-queue (work in progress).
