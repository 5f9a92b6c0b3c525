//! ocap-vat-manager (work in progress).
