//! The daemon: `ocap serve` runs a kernel on a store and serves the control protocol on a
//! Unix socket beside it (`docs/control-protocol.md`); `ocap daemon start|stop|status`
//! and the kernel commands are its clients.
//!
//! Invariant: only the daemon's own user can talk to it (a `0700` directory, a `0600`
//! socket, the peer's uid checked on every connection), and it answers a request only once
//! what the answer reports is durable.

mod client;
mod methods;
mod protocol;
mod server;
mod socket;

pub use client::{Client, Session, StartOptions, start_daemon, stop_daemon};
pub use protocol::{MAX_LINE_BYTES, PROTOCOL_VERSION, RpcError};
pub use server::{MAX_CONNECTIONS, ServeOptions, serve};
