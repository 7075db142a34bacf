//! The event loop: one thread, one mio `Poll` over the listener and every
//! client socket, and the only code that touches the mio `Registry`. This
//! file owns the turn order, dispatch, signals and shutdown; the rest of the
//! loop lives beside it, one concern a file:
//! - [`table`]: the connection table, its work lists and the flush step;
//! - [`listen`]: listeners, accepting and per-address limits;
//! - [`input`]: reading, flood control, and handing a connection's lines to
//!   the chat (or its request to the metrics endpoint);
//! - [`requests`]: HTTP requests (the metrics endpoint, the web page and
//!   the WebSocket upgrade);
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
mod requests;
mod table;
mod timers;

pub use handle::{ServerHandle, Stats};
pub use input::READ_BUF_BYTES;
pub use table::TURN_OUTPUT_BUDGET;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::{Events, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::bus::{AnyBus, Bus as _, ChatSettings, LocalBus};
use crate::chat::Chat;
use crate::cluster::{RedisBus, CMD_TOKEN, SUB_TOKEN};
use crate::config::Config;
use crate::conn::{Reason, Role};
use crate::http;
use crate::limits::flood::Flood;
use crate::limits::peers::Peers;
use crate::outbox::Outbox;
use crate::protocol::lines::{self as wire, Refusal, SHUTDOWN_LINE};
use handle::{Counters, Shared};
use listen::Listener;
use table::Table;
use timers::{Deadlines, Schedule};

/// Tokens outside the slab's key range (keys stay below `max_clients` plus
/// the refusals in flight); listeners count down from `usize::MAX - 8`.
const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// Big rooms get at most one join/leave summary per this interval.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(2);
/// How often empty buffers of quiet connections are released.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The wall clock in Unix seconds (0 if the clock is before 1970).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The kinds of listener a server can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Chat over plain TCP (`--port`).
    Plain,
    /// Chat over TLS (`--tls-port`).
    Tls,
    /// The web page and WebSocket over HTTP (`--http-port`).
    Http,
    /// The web page and WebSocket over HTTPS (`--https-port`).
    Https,
    /// Prometheus metrics (`--metrics`).
    Metrics,
}

impl Listen {
    /// What its connections are for, and whether they speak TLS.
    fn role(self) -> (Role, bool) {
        match self {
            Listen::Plain => (Role::Chat, false),
            Listen::Tls => (Role::Chat, true),
            Listen::Http => (Role::Web, false),
            Listen::Https => (Role::Web, true),
            Listen::Metrics => (Role::Metrics, false),
        }
    }

    /// Its name in the `listening (...) on ADDR` log line.
    fn label(self) -> &'static str {
        match self {
            Listen::Plain => "",
            Listen::Tls => "tls",
            Listen::Http => "http",
            Listen::Https => "https",
            Listen::Metrics => "metrics",
        }
    }
}

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
    /// The chat listener first, then the metrics one if any; emptied when
    /// shutdown begins (no more accepts).
    listeners: Vec<Listener>,
    /// Every listener's kind and bound address (kept after shutdown closes
    /// the listeners).
    addrs: Vec<(Listen, SocketAddr)>,
    /// The TLS identity new connections get; SIGHUP reloads it.
    tls_config: Option<Arc<rustls::ServerConfig>>,
    config: Config,
    table: Table,
    chat: Chat<AnyBus>,
    /// Connections held per address.
    peers: Peers,
    flood: Flood,
    /// When clients paused by flood control may be read again.
    resume: Schedule,
    /// The one read buffer all connections share (see `input`).
    read_buf: Box<[u8]>,
    /// Every chat connection's registration deadline.
    login_deadlines: Deadlines,
    /// Every HTTP connection's request deadline.
    request_deadlines: Deadlines,
    /// When the next join/leave summaries are due, if any are counted.
    notice_due: Option<Instant>,
    /// Accepting is paused until then after an accept error.
    accept_paused_until: Option<Instant>,
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
            .field("addrs", &self.addrs)
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
        let tls_config = match &config.tls_identity {
            Some(identity) => Some(
                identity
                    .load()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
            None => None,
        };
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        for (addr, kind) in [
            (config.plain.then_some(config.addr), Listen::Plain),
            (config.tls_addr, Listen::Tls),
            (config.http, Listen::Http),
            (config.https, Listen::Https),
            (config.metrics, Listen::Metrics),
        ] {
            let Some(addr) = addr else { continue };
            let i = listeners.len();
            let listener = listen::bind(addr, kind, config.reuse_port, poll.registry(), i)
                .map_err(|e| {
                    let why = match e.kind() {
                        io::ErrorKind::AddrInUse => "address in use".to_owned(),
                        _ => e.to_string(),
                    };
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {why}"))
                })?;
            listeners.push(listener);
        }
        let waker = Waker::new(poll.registry(), WAKER)?;
        let signals = if config.handle_signals {
            let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
            poll.registry()
                .register(&mut signals, SIGNALS, mio::Interest::READABLE)?;
            Some(signals)
        } else {
            None
        };
        for listener in &listeners {
            match listener.kind.label() {
                "" => info!("listening on {}", listener.addr),
                label => info!("listening ({label}) on {}", listener.addr),
            }
        }
        let addrs = listeners.iter().map(|l| (l.kind, l.addr)).collect();
        let settings = ChatSettings {
            notice_limit: config.notice_limit,
            history_lines: config.history,
            motd: config.motd.clone(),
        };
        let mut bus = match &config.cluster {
            Some(cluster) => AnyBus::Cluster(Box::new(RedisBus::new(cluster.clone(), settings))),
            None => AnyBus::Local(LocalBus::new(settings)),
        };
        bus.start(poll.registry(), Instant::now());
        let shared = Arc::new(Shared {
            waker,
            stop: AtomicBool::new(false),
            reload: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let now = Instant::now();
        Ok(Server {
            poll,
            listeners,
            addrs,
            tls_config,
            table: Table::new(
                config.max_outbuf,
                config.close_flush_timeout,
                config.linger_timeout,
                config.write_timeout,
                config.ws_ping,
                Arc::clone(&shared),
            ),
            chat: Chat::new(bus, config.max_line),
            peers: Peers::new(config.peers),
            flood: config.flood,
            resume: Schedule::new(),
            read_buf: vec![0; input::READ_BUF_BYTES].into_boxed_slice(),
            login_deadlines: Deadlines::new(),
            request_deadlines: Deadlines::new(),
            notice_due: None,
            accept_paused_until: None,
            next_sweep: now + SWEEP_INTERVAL,
            shutdown_deadline: None,
            signals,
            signals_seen: 0,
            next_id: 0,
            shared,
            config,
        })
    }

    /// The plain-TCP chat address actually bound (the real port when the
    /// config said 0); with plain TCP off, the first listener's.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr(Listen::Plain).unwrap_or_else(|| self.addrs[0].1)
    }

    /// The metrics endpoint's address, if it serves one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.addr(Listen::Metrics)
    }

    /// The address a kind of listener is bound to, if the server has one.
    pub fn addr(&self, kind: Listen) -> Option<SocketAddr> {
        self.addrs.iter().find(|(k, _)| *k == kind).map(|(_, a)| *a)
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
            self.chat.set_time(unix_now());
            self.fire_timers(now);
            self.bus_turn(now);
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
                    // Their names are given back now, not at a cluster's
                    // liveness timeout (the local bus just forgets them).
                    for key in self.table.keys() {
                        self.chat.disconnected(key, None, &mut self.table);
                    }
                    self.bus_turn(now);
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
                    WAKER => {
                        if self.shared.reload.swap(false, Relaxed) {
                            self.reload_tls();
                        }
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
                    CMD_TOKEN | SUB_TOKEN => {
                        let registry = self.poll.registry();
                        self.chat
                            .bus_mut()
                            .ready(event.token(), registry, now, &mut self.table);
                    }
                    token => match listen::index(token, self.listeners.len()) {
                        Some(i) => self.accept_all(i, now),
                        None => self.conn_ready(token.0, event),
                    },
                }
            }
            for key in carried {
                if self.table.get_mut(key).is_some_and(|c| c.unlist_read()) {
                    self.read_ready(key);
                }
            }
            for i in 0..self.listeners.len() {
                if self.listeners[i].more {
                    self.accept_all(i, now);
                }
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if self.table.has_work() || self.listeners.iter().any(|l| l.more) {
            return Some(Duration::ZERO);
        }
        [
            self.login_deadlines.next(),
            self.request_deadlines.next(),
            self.resume.next().map(|us| self.table.instant_at(us)),
            self.chat.bus().next_deadline(),
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

    /// The bus's own work this turn (the cluster bus: timers, writing its
    /// commands); clients whose bus operation completed are read again.
    fn bus_turn(&mut self, now: Instant) {
        let registry = self.poll.registry();
        let resumed = self.chat.bus_mut().turn(registry, now, &mut self.table);
        for key in resumed {
            self.table.list_read(key);
        }
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
                wire::refusal(&mut line, Refusal::LoginTimeout);
                self.table.send(key, line.as_bytes());
                self.table.drain(key, Reason::LoginTimeout);
            }
        }
        while let Some((key, id)) = self.request_deadlines.pop_due(now) {
            // An upgraded WebSocket is a chat client now: the login
            // deadline covers it.
            if self
                .table
                .get(key)
                .is_some_and(|c| c.id() == id && c.is_open() && c.role() != Role::Chat)
            {
                self.table.send_raw(key, &http::error(408));
                self.table.drain(key, Reason::LoginTimeout);
            }
        }
        let now_us = self.table.now_us();
        while let Some((key, id)) = self.resume.pop_due(now_us) {
            // Its flood budget has refilled: read it again (it may hold
            // input, or data that raised no new event while it waited).
            if self.table.get(key).is_some_and(|c| c.id() == id) {
                self.table.list_read(key);
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
            self.peers.prune(now_us);
        }
        if self.accept_paused_until.is_some_and(|at| at <= now) {
            self.accept_paused_until = None;
            // Connections may be waiting in the backlog with no new edge to
            // announce them: look now.
            for i in 0..self.listeners.len() {
                self.accept_all(i, now);
            }
        }
    }

    /// Frees connections marked closing; tells their rooms first.
    fn close_marked(&mut self) {
        while let Some(key) = self.table.next_closing() {
            let Some(conn) = self.table.get(key) else {
                continue;
            };
            let (id, peer, reason, named, conn_role) = (
                conn.id(),
                conn.peer(),
                conn.reason(),
                conn.was_named(),
                conn.role(),
            );
            if reason != Reason::Refused && conn.role() != Role::Metrics {
                // Refusals and metrics scrapes were never counted against
                // their address; chat and web connections were.
                self.peers.release(peer.ip());
            }
            if reason == Reason::TimedOut {
                Counters::bump(&self.shared.counters.timeouts);
            }
            // One info line per connection end: the chat logs a registered
            // client's leave (with the reason); others are logged here.
            let why = reason
                .notice()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            let left = self
                .chat
                .disconnected(key, reason.notice(), &mut self.table);
            let chat = conn_role == Role::Chat;
            if named || left || reason == Reason::Refused || !chat {
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

    /// Handles SIGHUP (reload the TLS certificate) and SIGINT/SIGTERM;
    /// returns true when the loop must exit now.
    fn signal_ready(&mut self, now: Instant) -> bool {
        let Some(signals) = self.signals.as_mut() else {
            return false;
        };
        let (mut stops, mut hups) = (0, 0);
        for signal in signals.pending() {
            if signal == SIGHUP {
                hups += 1;
            } else {
                stops += 1;
            }
        }
        if hups > 0 {
            self.reload_tls();
        }
        if stops == 0 {
            return false;
        }
        self.signals_seen += stops;
        if self.signals_seen >= 2 {
            return true;
        }
        self.begin_shutdown(now);
        false
    }

    /// Reads the certificate and key again for new connections; a bad new
    /// pair keeps the old one. Existing connections keep their session.
    fn reload_tls(&mut self) {
        let counters = &self.shared.counters;
        let Some(identity) = &self.config.tls_identity else {
            info!("reload asked for, but no TLS certificate is configured");
            return;
        };
        match identity.load() {
            Ok(config) => {
                self.tls_config = Some(config);
                Counters::bump(&counters.tls_reloads);
                info!(
                    "TLS certificate reloaded from {} for new connections",
                    identity.cert.display()
                );
            }
            Err(e) => {
                Counters::bump(&counters.tls_reload_failures);
                log::error!("TLS reload failed, keeping the old certificate: {e}");
            }
        }
    }

    /// Stops accepting, tells everyone, and lets queued output drain.
    fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!("shutting down: {} connections to close", self.table.len());
        for listener in self.listeners.drain(..) {
            listener.close(self.poll.registry());
        }
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

    pub(super) fn publish_stats(&self) {
        let c = &self.shared.counters;
        c.connections.store(self.table.len(), Relaxed);
        c.registered.store(self.chat.bus().registered(), Relaxed);
    }
}
