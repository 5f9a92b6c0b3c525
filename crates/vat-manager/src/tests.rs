//! Unit tests of the vat manager.
