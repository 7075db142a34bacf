//! The bus: the state every node of a chat must share (who holds which name,
//! who is in which room) and the order in which a room hears things. The
//! chat front ([`crate::chat`]) parses what clients send and calls the bus;
//! the bus decides who is told what and delivers it through an [`Outbox`].
//!
//! [`LocalBus`] keeps that state in this process and delivers at once: the
//! single-process default. A cluster bus implements the same trait over
//! Redis, where an operation may complete later (`is_waiting` then pauses
//! that client's input until it does). Line shapes come from
//! [`crate::protocol::lines`] either way, so every bus says the same thing.

mod either;
mod local;

pub use either::AnyBus;
pub use local::{LocalBus, MAX_LISTED};

/// What every bus needs to know of the chat's settings.
#[derive(Debug, Clone, Default)]
pub struct ChatSettings {
    /// Rooms above this many members get summaries instead of per-client
    /// join/leave notices.
    pub notice_limit: usize,
    /// Lines of history kept per room and shown on joining (0: none).
    pub history_lines: usize,
    /// The message of the day, shown after the welcome.
    pub motd: Vec<String>,
}

use crate::outbox::Outbox;
use crate::protocol::lines::Leave;

/// A connection as the bus knows it: its table key (reused) and its unique
/// id (never reused; used in logs and by buses that answer later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The connection table's key.
    pub key: usize,
    /// The connection's unique id.
    pub id: u64,
}

/// What the chat asks of a bus. Every method that names a client by `key`
/// expects a registered client unless it says otherwise; text arguments are
/// already checked (valid UTF-8, no control characters) and names valid.
pub trait Bus {
    /// True once `key` holds a name.
    fn is_registered(&self, key: usize) -> bool;

    /// True while an operation of `key`'s is in flight: act on none of its
    /// input until it completes. The local bus never waits.
    fn is_waiting(&self, _key: usize) -> bool {
        false
    }

    /// Registered clients on this node.
    fn registered(&self) -> usize;

    /// The wall-clock time (Unix seconds) for history lines: the server
    /// sets it every turn, tests as they like.
    fn set_time(&mut self, unix_secs: u64);

    /// Claims `name` (a valid name) for an unregistered client, puts it in
    /// the lobby, welcomes it; a taken name gets `! name taken` and the
    /// prompt again.
    fn register(&mut self, c: ClientId, name: &str, out: &mut impl Outbox);

    /// `text` from `key` to its room.
    fn say(&mut self, key: usize, text: &str, out: &mut impl Outbox);

    /// `/me action`.
    fn act(&mut self, key: usize, action: &str, out: &mut impl Outbox);

    /// `/join room` (a valid room name).
    fn join(&mut self, key: usize, room: &str, out: &mut impl Outbox);

    /// `/nick new` (a valid name).
    fn nick(&mut self, key: usize, new: &str, out: &mut impl Outbox);

    /// `/msg to text`.
    fn msg(&mut self, key: usize, to: &str, text: &str, out: &mut impl Outbox);

    /// `/who`.
    fn who(&mut self, key: usize, out: &mut impl Outbox);

    /// `/rooms`.
    fn rooms(&mut self, key: usize, out: &mut impl Outbox);

    /// `/topic` (show), `/topic text` (set), `/topic -` (clear).
    fn topic(&mut self, key: usize, topic: Option<&str>, out: &mut impl Outbox);

    /// `/away message` (away) or `/away` (back).
    fn away(&mut self, key: usize, message: Option<&str>, out: &mut impl Outbox);

    /// `key` leaves the chat (quit or disconnect): its name is free and its
    /// room is told how. Returns false, doing nothing, if it held no name.
    fn leave(&mut self, key: usize, how: Leave<'_>, out: &mut impl Outbox) -> bool;

    /// True when big rooms have counted joins or leaves to summarise.
    fn has_pending_notices(&self) -> bool;

    /// Sends each big room its summary notice.
    fn flush_notices(&mut self, out: &mut impl Outbox);
}

/// `room (n)` in a `/rooms` listing.
pub(crate) struct RoomCount<'a>(pub &'a str, pub usize);

impl std::fmt::Display for RoomCount<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0, self.1)
    }
}

/// `name`, or `name (away)`, in a member listing.
pub(crate) struct Member<'a>(pub &'a str, pub bool);

impl std::fmt::Display for Member<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1 {
            write!(f, "{} (away)", self.0)
        } else {
            f.write_str(self.0)
        }
    }
}
