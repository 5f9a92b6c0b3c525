//! ocap-router (work in progress).
