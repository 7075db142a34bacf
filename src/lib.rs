//! chatroom: a chat server in one single-threaded mio event loop.
//!
//! The binary (`src/main.rs`) only parses flags; everything else lives here so
//! tests, examples and benchmarks run the real server in-process on port 0.
//!
//! # Layout
//! - [`framing`]: bytes to lines, with a hard bound on what it buffers. Pure.
//! - [`protocol`]: the wire contract as data: prompt, name rules, text
//!   checks, commands, server-line shapes. Pure.
//! - [`rooms`]: room membership and pending join/leave counts. Pure.
//! - [`chat`]: registration, commands and who is told what, through the
//!   [`chat::Outbox`] trait. Pure: no sockets.
//! - [`conn`]: one connection's socket, framing state and output buffer.
//! - [`config`]: settings and their defaults.
//! - [`server`]: the mio event loop, the connection table, timers, signals
//!   and shutdown; the only module that touches the mio `Registry`.
//!
//! See `docs/PROTOCOL.md` for the protocol and `README.md` for the design.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod chat;
pub mod config;
pub mod conn;
pub mod framing;
pub mod protocol;
pub mod rooms;
pub mod server;

pub use config::Config;
pub use server::{Server, ServerHandle, Stats};
