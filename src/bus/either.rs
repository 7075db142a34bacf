//! The bus a server runs: the local one (the default) or the cluster one
//! (`--redis`). Delegation only, so the chat front and the loop stay
//! generic over one concrete type; the loop drives the cluster bus's
//! sockets and timers through the methods below, which do nothing for the
//! local bus.

use std::time::Instant;

use mio::{Registry, Token};

use super::{Bus, ClientId, LocalBus};
use crate::cluster::RedisBus;
use crate::outbox::Outbox;
use crate::protocol::lines::Leave;

/// Either bus. (The local one is not boxed: it is the hot path.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyBus {
    /// Everything in this process.
    Local(LocalBus),
    /// Several processes as one chat over Redis.
    Cluster(Box<RedisBus>),
}

macro_rules! both {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBus::Local($b) => $e,
            AnyBus::Cluster($b) => $e,
        }
    };
}

impl AnyBus {
    /// Starts the cluster bus's connections.
    pub fn start(&mut self, registry: &Registry, now: Instant) {
        if let AnyBus::Cluster(b) = self {
            b.start(registry, now);
        }
    }

    /// A readiness event for one of the bus's own sockets.
    pub fn ready(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        if let AnyBus::Cluster(b) = self {
            b.ready(token, registry, now, out);
        }
    }

    /// When the bus's timers are next due, if it has any.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self {
            AnyBus::Local(_) => None,
            AnyBus::Cluster(b) => Some(b.next_deadline()),
        }
    }

    /// Runs due timers and writes what the bus queued this turn; returns
    /// the clients whose input may be read again.
    pub fn turn(&mut self, registry: &Registry, now: Instant, out: &mut impl Outbox) -> Vec<usize> {
        match self {
            AnyBus::Local(_) => Vec::new(),
            AnyBus::Cluster(b) => {
                if b.next_deadline() <= now {
                    b.on_timer(registry, now, out);
                }
                b.flush(registry, now, out);
                b.take_resumed()
            }
        }
    }
}

impl Bus for AnyBus {
    fn is_registered(&self, key: usize) -> bool {
        both!(self, b => b.is_registered(key))
    }
    fn is_waiting(&self, key: usize) -> bool {
        both!(self, b => b.is_waiting(key))
    }
    fn registered(&self) -> usize {
        both!(self, b => b.registered())
    }
    fn set_time(&mut self, unix_secs: u64) {
        both!(self, b => b.set_time(unix_secs))
    }
    fn register(&mut self, c: ClientId, name: &str, out: &mut impl Outbox) {
        both!(self, b => b.register(c, name, out))
    }
    fn say(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        both!(self, b => b.say(key, text, out))
    }
    fn act(&mut self, key: usize, action: &str, out: &mut impl Outbox) {
        both!(self, b => b.act(key, action, out))
    }
    fn join(&mut self, key: usize, room: &str, out: &mut impl Outbox) {
        both!(self, b => b.join(key, room, out))
    }
    fn nick(&mut self, key: usize, new: &str, out: &mut impl Outbox) {
        both!(self, b => b.nick(key, new, out))
    }
    fn msg(&mut self, key: usize, to: &str, text: &str, out: &mut impl Outbox) {
        both!(self, b => b.msg(key, to, text, out))
    }
    fn who(&mut self, key: usize, out: &mut impl Outbox) {
        both!(self, b => b.who(key, out))
    }
    fn rooms(&mut self, key: usize, out: &mut impl Outbox) {
        both!(self, b => b.rooms(key, out))
    }
    fn topic(&mut self, key: usize, topic: Option<&str>, out: &mut impl Outbox) {
        both!(self, b => b.topic(key, topic, out))
    }
    fn away(&mut self, key: usize, message: Option<&str>, out: &mut impl Outbox) {
        both!(self, b => b.away(key, message, out))
    }
    fn leave(&mut self, key: usize, how: Leave<'_>, out: &mut impl Outbox) -> bool {
        both!(self, b => b.leave(key, how, out))
    }
    fn has_pending_notices(&self) -> bool {
        both!(self, b => b.has_pending_notices())
    }
    fn flush_notices(&mut self, out: &mut impl Outbox) {
        both!(self, b => b.flush_notices(out))
    }
}
