//! What other threads see of a running server: a [`ServerHandle`] to stop it
//! and a [`Stats`] snapshot of its counters. The loop updates the counters
//! with relaxed atomics; nothing here touches connections.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use log::warn;
use mio::Waker;

/// A snapshot of the server's counters, for tests and monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sockets held now (clients, refusals being written, closing ones).
    pub connections: usize,
    /// Registered clients now.
    pub registered: usize,
    /// Connections accepted since start (refused ones included).
    pub accepted: u64,
    /// Connections refused with `! server full`.
    pub refused: u64,
    /// Connections closed since start (refused ones included).
    pub closed: u64,
    /// Clients dropped for exceeding `max_outbuf`.
    pub slow_consumers: u64,
    /// Clients closed for not registering in time.
    pub login_timeouts: u64,
    /// Closing clients dropped because they did not take their output.
    pub flush_timeouts: u64,
    /// Failed `accept` calls (EMFILE and the like).
    pub accept_errors: u64,
    /// Loop turns that stopped taking input because a turn's output budget
    /// or a client's output limit was reached.
    pub turn_budget_hits: u64,
}

/// The counters behind [`Stats`], updated by the loop, read by handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicUsize,
    pub registered: AtomicUsize,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub closed: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub login_timeouts: AtomicU64,
    pub flush_timeouts: AtomicU64,
    pub accept_errors: AtomicU64,
    pub turn_budget_hits: AtomicU64,
}

impl Counters {
    /// Adds one to `c`.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}

/// State shared between the loop and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub waker: Waker,
    pub stop: AtomicBool,
    pub counters: Counters,
}

/// Controls a running server from another thread.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ServerHandle {
    /// Starts a graceful shutdown, as SIGTERM does for the binary.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Relaxed);
        if let Err(e) = self.shared.waker.wake() {
            warn!("could not wake the server loop: {e}");
        }
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            connections: c.connections.load(Relaxed),
            registered: c.registered.load(Relaxed),
            accepted: c.accepted.load(Relaxed),
            refused: c.refused.load(Relaxed),
            closed: c.closed.load(Relaxed),
            slow_consumers: c.slow_consumers.load(Relaxed),
            login_timeouts: c.login_timeouts.load(Relaxed),
            flush_timeouts: c.flush_timeouts.load(Relaxed),
            accept_errors: c.accept_errors.load(Relaxed),
            turn_budget_hits: c.turn_budget_hits.load(Relaxed),
        }
    }
}
