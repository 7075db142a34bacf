//! chatroom: a chat server in one single-threaded mio event loop.
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod framing;
pub mod protocol;
