//! The `ocap` command.
fn main() {}
