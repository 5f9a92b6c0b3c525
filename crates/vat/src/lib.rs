//! ocap-vat (work in progress).
