//! The trust boundary, in one place: what no vat, host or second process may do to a vat,
//! the store or a promise. Each test is named after what it shows and uses the public API
//! only; like the rest of the suite it runs with vats in process and in worker processes.
