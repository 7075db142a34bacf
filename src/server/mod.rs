//! The event loop: one thread, one mio `Poll` over the listener and every
//! client socket, and the only code that touches the mio `Registry`. This
//! file owns the turn order, dispatch, signals and shutdown; the rest of the
//! loop lives beside it, one concern a file:
//! - [`table`]: the connection table, its work lists and the flush step;
//! - [`listen`]: the listener and accepting;
//! - [`input`]: reading, and handing a connection's lines to the chat;
//! - [`timers`]: deadline queues;
//! - [`handle`]: the handle and counters other threads see.
//!
//! A loop turn: fire due timers, flush pending writes (write directly; ask
//! for write interest only where bytes remain, as Redis'
//! `handleClientsWithPendingWrites` does), free what was marked closing,
//! poll, dispatch. Connections are freed only in the close step, after a
//! whole event batch, so an event for a freed key never reaches a reused slot.

mod handle;
mod input;
mod listen;
mod table;
mod timers;

pub use handle::{ServerHandle, Stats};
pub use table::TURN_OUTPUT_BUDGET;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::bus::{Bus as _, LocalBus};
use crate::chat::Chat;
use crate::config::Config;
use crate::conn::Reason;
use crate::outbox::Outbox;
use crate::protocol::lines::SHUTDOWN_LINE;
use handle::{Counters, Shared};
use table::Table;
use timers::Deadlines;

/// Tokens outside the slab's key range (keys stay below `max_clients` plus
/// the refusals in flight).
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// Big rooms get at most one join/leave summary per this interval.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(2);
/// How often empty buffers of quiet connections are released.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How a server's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Shutdown completed: every client took its output and was closed.
    Graceful,
    /// The shutdown deadline passed; this many connections were dropped
    /// with output still unsent.
    DeadlineExpired(usize),
    /// A second signal ended the run at once, dropping every connection.
    Forced,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    poll: Poll,
    /// `None` once shutdown has begun: no more accepts.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    config: Config,
    table: Table,
    chat: Chat<LocalBus>,
    /// The one read buffer all connections share (see `input`).
    read_buf: Box<[u8]>,
    /// Every connection's registration deadline.
    login_deadlines: Deadlines,
    /// When the next join/leave summaries are due, if any are counted.
    notice_due: Option<Instant>,
    /// Accepting is paused until then after an accept error.
    accept_paused_until: Option<Instant>,
    /// The per-turn accept cap was reached: accept again next turn, since no
    /// new event announces connections already waiting.
    accept_more: bool,
    /// When idle buffers are next released.
    next_sweep: Instant,
    /// Set when shutdown begins: connections still open then are dropped.
    shutdown_deadline: Option<Instant>,
    signals: Option<Signals>,
    signals_seen: usize,
    next_id: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks the config, binds the listener and sets up the poller; logs
    /// `listening on ...`. A config out of range is an `InvalidInput` error
    /// naming the flag.
    pub fn bind(config: Config) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let listener = listen::bind(&config, poll.registry(), LISTENER)?;
        let local_addr = listener.local_addr()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let signals = if config.handle_signals {
            let mut signals = Signals::new([SIGINT, SIGTERM])?;
            poll.registry()
                .register(&mut signals, SIGNALS, mio::Interest::READABLE)?;
            Some(signals)
        } else {
            None
        };
        info!("listening on {local_addr}");
        let shared = Arc::new(Shared {
            waker,
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let now = Instant::now();
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            table: Table::new(
                config.max_outbuf,
                config.close_flush_timeout,
                config.linger_timeout,
                Arc::clone(&shared),
            ),
            chat: Chat::new(LocalBus::new(config.notice_limit), config.max_line),
            read_buf: vec![0; input::READ_BUF_BYTES].into_boxed_slice(),
            login_deadlines: Deadlines::new(),
            notice_due: None,
            accept_paused_until: None,
            accept_more: false,
            next_sweep: now + SWEEP_INTERVAL,
            shutdown_deadline: None,
            signals,
            signals_seen: 0,
            next_id: 0,
            shared,
            config,
        })
    }

    /// The address actually bound (the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server or read its counters from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs the loop until shutdown completes (or a second signal forces
    /// it). Errors only if polling itself fails; one client's error closes
    /// that client only.
    pub fn run(mut self) -> io::Result<Stopped> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            self.table.begin_turn(now);
            self.fire_timers(now);
            self.table.flush(self.poll.registry());
            self.close_marked();
            self.publish_stats();
            if let Some(deadline) = self.shutdown_deadline {
                if self.table.is_empty() {
                    info!("shutdown complete");
                    return Ok(Stopped::Graceful);
                }
                if now >= deadline {
                    let n = self.table.unfinished();
                    warn!(
                        "shutdown: dropping {n} connections that did not take their output in time"
                    );
                    return Ok(Stopped::DeadlineExpired(n));
                }
            }
            if self.notice_due.is_none() && self.chat.has_pending_notices() {
                self.notice_due = Some(now + NOTICE_INTERVAL);
            }
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.table.set_now(now);
            let carried = self.table.take_pending_reads();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {
                        if self.shared.stop.load(Relaxed) {
                            self.begin_shutdown(now);
                        }
                    }
                    SIGNALS => {
                        if self.signal_ready(now) {
                            let n = self.table.len();
                            warn!("second signal: exiting now (forced), dropping {n} connections");
                            return Ok(Stopped::Forced);
                        }
                    }
                    Token(key) => self.conn_ready(key, event),
                }
            }
            for key in carried {
                if self.table.get_mut(key).is_some_and(|c| c.unlist_read()) {
                    self.read_ready(key);
                }
            }
            if self.accept_more {
                self.accept_all(now);
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if self.table.has_work() || self.accept_more {
            return Some(Duration::ZERO);
        }
        [
            self.login_deadlines.next(),
            self.table.next_deadline(),
            self.notice_due,
            self.accept_paused_until,
            Some(self.next_sweep),
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        // Round up so we never wake a hair early and spin until the deadline.
        .map(|at| at.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn conn_ready(&mut self, key: usize, event: &mio::event::Event) {
        let Some(conn) = self.table.get_mut(key) else {
            return;
        };
        if event.is_read_closed() || event.is_error() {
            conn.note_hup();
        }
        if conn.phase() == crate::conn::Phase::Closing {
            return;
        }
        // Any event may mean the socket can take more, or that it failed:
        // the flush step finds out which.
        if (event.is_writable() || event.is_error()) && conn.pending_out() > 0 {
            self.table.list_write(key);
        }
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        // A connection on the pending-read list is read from there.
        if readable && !self.table.get(key).is_some_and(|c| c.is_read_listed()) {
            self.read_ready(key);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((key, id)) = self.login_deadlines.pop_due(now) {
            let due = self
                .table
                .get(key)
                .is_some_and(|c| c.id() == id && c.is_open())
                && !self.chat.is_registered(key);
            if due {
                Counters::bump(&self.shared.counters.login_timeouts);
                let mut line = String::new();
                crate::protocol::lines::refusal(&mut line, crate::protocol::Refusal::LoginTimeout);
                self.table.send(key, line.as_bytes());
                self.table.drain(key, Reason::LoginTimeout);
            }
        }
        self.table.fire_deadlines(now);
        if self.notice_due.is_some_and(|at| at <= now) {
            self.notice_due = None;
            self.chat.flush_notices(&mut self.table);
        }
        if self.next_sweep <= now {
            // O(connections) once a second, never per message.
            self.next_sweep = now + SWEEP_INTERVAL;
            self.table.sweep();
        }
        if self.accept_paused_until.is_some_and(|at| at <= now) {
            self.accept_paused_until = None;
            // Connections may be waiting in the backlog with no new edge to
            // announce them: look now.
            self.accept_all(now);
        }
    }

    /// Frees connections marked closing; tells their rooms first.
    fn close_marked(&mut self) {
        while let Some(key) = self.table.next_closing() {
            let Some(conn) = self.table.get(key) else {
                continue;
            };
            let (id, peer, reason, named) =
                (conn.id(), conn.peer(), conn.reason(), conn.was_named());
            // One info line per connection end: the chat logs a registered
            // client's leave (with the reason); others are logged here.
            let why = reason
                .notice()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            let left = self
                .chat
                .disconnected(key, reason.notice(), &mut self.table);
            if named || left || reason == Reason::Refused {
                debug!("conn #{id} ({peer}): closed{why}");
            } else {
                info!("conn #{id} ({peer}): closed{why}");
            }
            if let Some(mut conn) = self.table.remove(key) {
                let socket = conn.transport_mut().socket_mut();
                if let Err(e) = self.poll.registry().deregister(socket) {
                    debug!("conn #{id}: deregister failed: {e}");
                }
            }
        }
    }

    /// Handles SIGINT/SIGTERM; returns true when the loop must exit now.
    fn signal_ready(&mut self, now: Instant) -> bool {
        let Some(signals) = self.signals.as_mut() else {
            return false;
        };
        let seen = signals.pending().count();
        if seen == 0 {
            return false;
        }
        self.signals_seen += seen;
        if self.signals_seen >= 2 {
            return true;
        }
        self.begin_shutdown(now);
        false
    }

    /// Stops accepting, tells everyone, and lets queued output drain.
    fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!("shutting down: {} connections to close", self.table.len());
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_more = false;
        for key in self.table.keys() {
            // One already closing for its own reason (reset, slow consumer)
            // keeps that reason for its room's notice.
            if self.table.get(key).is_some_and(|c| c.is_open()) {
                self.table.send(key, SHUTDOWN_LINE.as_bytes());
                self.table.drain(key, Reason::Shutdown);
            }
        }
        self.shutdown_deadline = Some(now + self.config.shutdown_timeout);
    }

    fn publish_stats(&self) {
        let c = &self.shared.counters;
        c.connections.store(self.table.len(), Relaxed);
        c.registered.store(self.chat.bus().registered(), Relaxed);
    }
}
