//! chatroom: a chat server in one single-threaded mio event loop.
//!
//! The binary (`src/main.rs`) only parses flags; everything else lives here so
//! tests, examples and benchmarks run the real server in-process on port 0.
//!
//! # Layout
//! A line's path: socket → [`conn::transport`] → [`conn::codec`] →
//! [`chat`] → [`bus`] → [`outbox`] → codec → transport → socket.
//! - [`framing`]: bytes to lines, with a hard bound on what it buffers. Pure.
//! - [`protocol`]: the wire contract as data: name rules, text checks,
//!   commands ([`protocol::command`]) and every server line, encoded and
//!   parsed in one place ([`protocol::lines`]). Pure.
//! - [`rooms`]: room membership and pending join/leave counts. Pure.
//! - [`chat`]: what a client's lines mean: registration, commands, usage
//!   errors. Pure.
//! - [`bus`]: shared chat state (names, rooms) and who is told what, behind
//!   a trait; [`bus::LocalBus`] is the single-process one. Pure.
//! - [`outbox`]: the trait through which chat output reaches connections.
//! - [`conn`]: one connection: transport + codec + output buffer, and its
//!   life as a state machine.
//! - [`config`]: settings, defaults and their ranges.
//! - [`server`]: the mio event loop (turn order, table, accept, input,
//!   timers, handle); the only module that touches the mio `Registry`.
//!
//! See `docs/PROTOCOL.md` for the protocol and `README.md` for the design.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod bus;
pub mod chat;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod framing;
pub mod history;
pub mod http;
pub mod limits;
pub mod outbox;
pub mod protocol;
pub mod rooms;
pub mod server;
pub mod tls;
pub mod web;

pub use config::Config;
pub use server::{Listen, Server, ServerHandle, Stats, Stopped};
