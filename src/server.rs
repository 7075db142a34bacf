//! The event loop: one thread, one mio `Poll` over the listener and every
//! client socket. It owns the connection table (a `Slab` indexed by `Token`),
//! timers, signals and shutdown, and is the only code that touches the mio
//! `Registry`. It must not decide chat behaviour: lines go to `Chat`, whose
//! output comes back through the `Outbox` implemented here.
//!
//! A loop turn: fire due timers, flush pending writes (write directly; ask
//! for write interest only where bytes remain, as Redis'
//! `handleClientsWithPendingWrites` does), close what was marked closing,
//! poll, dispatch. Connections are freed only in the close step, after a
//! whole event batch, so an event for a freed key never reaches a reused slot.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::chat::{Chat, Outbox};
use crate::config::Config;
use crate::conn::{Conn, Flushed, ReadOutcome, Reason, State};
use crate::protocol::SHUTDOWN_NOTICE;

/// Tokens outside the slab's key range (keys stay below `max_clients`).
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);

/// One read per connection per turn, into one buffer shared by all
/// connections: an idle connection owns no read buffer, and a flooding
/// client gets at most this much of a turn before others are served.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Most bytes written to one client per turn, "to serve other clients as
/// well" (Redis' `NET_MAX_WRITES_PER_EVENT`).
const WRITE_BUDGET_BYTES: usize = 256 * 1024;
/// Big rooms get at most one join/leave summary per this interval.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a closing client (after `/quit`, EOF or an error sent to it)
/// may take to receive what is queued for it.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for clients to receive their queued output.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// How often empty output buffers of quiet connections are released.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// After an accept error such as EMFILE, stop accepting this long instead of
/// spinning on a listener that stays readable.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The kernel's accept queue: mio listens with 128, too few for a burst of
/// thousands of connects (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: libc::c_int = 4096;

/// Hands one frame from `key` to the chat, unless the connection stopped
/// being open earlier in the same read (after `/quit` or a close, the rest of
/// the batch is void). Notes a `/quit` so its close is not logged twice.
fn deliver_frame(chat: &mut Chat, conns: &mut Conns, key: usize, frame: crate::framing::Frame<'_>) {
    if !conns.slab.get(key).is_some_and(Conn::is_open) {
        return;
    }
    let was_registered = chat.is_registered(key);
    chat.frame(key, frame, conns);
    if was_registered && !chat.is_registered(key) {
        if let Some(conn) = conns.slab.get_mut(key) {
            conn.leave_logged = true;
        }
    }
}

/// A snapshot of the server's counters, for tests and monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sockets held now (the slab's length).
    pub connections: usize,
    /// Registered clients now.
    pub registered: usize,
    /// Connections accepted since start (refused ones included).
    pub accepted: u64,
    /// Connections refused with `! server full`.
    pub refused: u64,
    /// Connections closed since start (refused ones excluded).
    pub closed: u64,
    /// Clients dropped for exceeding `max_outbuf`.
    pub slow_consumers: u64,
    /// Clients closed for not registering in time.
    pub login_timeouts: u64,
    /// Failed `accept` calls (EMFILE and the like).
    pub accept_errors: u64,
}

/// The counters behind [`Stats`], updated by the loop, read by handles.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    registered: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: AtomicU64,
    slow_consumers: AtomicU64,
    login_timeouts: AtomicU64,
    accept_errors: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    waker: Waker,
    stop: AtomicBool,
    counters: Counters,
}

/// Controls a running server from another thread.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
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
            accept_errors: c.accept_errors.load(Relaxed),
        }
    }
}

/// The connection table and the work lists that refer to it. Implements
/// [`Outbox`]: chat output is queued here and written in the flush step.
#[derive(Debug)]
struct Conns {
    slab: Slab<Conn>,
    /// Connections with output to write this turn; each listed once (its
    /// `write_queued` flag).
    pending_writes: Vec<usize>,
    /// Connections marked `Closing`, freed in the close step.
    closing: Vec<usize>,
    /// `(deadline, key, id)` of draining connections, in deadline order
    /// (one timeout for all, so appending keeps the order).
    drain_deadlines: VecDeque<(Instant, usize, u64)>,
    max_outbuf: usize,
    /// The time of the current turn.
    now: Instant,
    shared: Arc<Shared>,
}

impl Conns {
    /// Marks `key` to be freed at the next close step.
    fn mark_closing(&mut self, key: usize, reason: Reason) {
        if let Some(conn) = self.slab.get_mut(key) {
            if conn.state != State::Closing {
                conn.state = State::Closing;
                conn.reason = reason;
                self.closing.push(key);
            }
        }
    }

    fn queue_write(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            if !conn.write_queued {
                conn.write_queued = true;
                self.pending_writes.push(key);
            }
        }
    }
}

impl Outbox for Conns {
    fn send(&mut self, key: usize, line: &[u8]) {
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        if conn.pending_out() + line.len() > self.max_outbuf {
            // The limit is on what the client has not taken, not on what
            // one turn queued: a burst of short lines read in one turn can
            // queue more than the limit for everyone before the flush step
            // runs. So write now, and judge only what the socket refused.
            if let Err(e) = conn.flush(usize::MAX) {
                debug!("conn {key}: write error: {e}");
                self.mark_closing(key, Reason::of(&e));
                return;
            }
        }
        let pending = conn.pending_out();
        if pending + line.len() > self.max_outbuf {
            warn!(
                "conn {key} ({}): slow consumer, {pending} bytes unsent; disconnecting",
                conn.peer
            );
            self.shared.counters.slow_consumers.fetch_add(1, Relaxed);
            self.mark_closing(key, Reason::SlowConsumer);
            return;
        }
        conn.queue(line);
        self.queue_write(key);
    }

    fn close(&mut self, key: usize) {
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        if conn.is_open() {
            conn.state = State::Draining;
            let entry = (self.now + CLOSE_FLUSH_TIMEOUT, key, conn.id);
            self.drain_deadlines.push_back(entry);
            // Even with nothing queued, the flush step is where a drained
            // connection is found done and marked for closing.
            self.queue_write(key);
        }
    }
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    poll: Poll,
    /// `None` once shutdown has begun: no more accepts.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    config: Config,
    conns: Conns,
    chat: Chat,
    /// The one read buffer all connections share (see `READ_BUF_BYTES`).
    read_buf: Box<[u8]>,
    /// Connections that stopped reading on their budget, not on
    /// `WouldBlock`: edge-triggered polling will not report them again, so
    /// they are remembered here and read again next turn.
    pending_reads: Vec<usize>,
    /// `(deadline, key, id)` for every connection, in deadline order.
    login_deadlines: VecDeque<(Instant, usize, u64)>,
    /// When the next join/leave summaries are due, if any are counted.
    notice_due: Option<Instant>,
    /// Accepting is paused until then after an accept error.
    accept_paused_until: Option<Instant>,
    /// When idle output buffers are next released.
    next_sweep: Instant,
    /// Set when shutdown begins: connections still open then are dropped.
    shutdown_deadline: Option<Instant>,
    signals: Option<Signals>,
    signals_seen: u32,
    next_id: u64,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.conns.slab.len())
            .field("registered", &self.chat.registered())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listener and sets up the poller; logs `listening on ...`.
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.addr)?;
        // SAFETY: listen() on a socket we own; calling it again on a
        // listening socket only changes the backlog.
        if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
            warn!(
                "could not raise the listen backlog: {}",
                io::Error::last_os_error()
            );
        }
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let signals = if config.handle_signals {
            let mut signals = Signals::new([SIGINT, SIGTERM])?;
            poll.registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)?;
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
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            conns: Conns {
                slab: Slab::new(),
                pending_writes: Vec::new(),
                closing: Vec::new(),
                drain_deadlines: VecDeque::new(),
                max_outbuf: config.max_outbuf,
                now: Instant::now(),
                shared,
            },
            chat: Chat::new(config.notice_limit, config.max_line),
            read_buf: vec![0; READ_BUF_BYTES].into_boxed_slice(),
            pending_reads: Vec::new(),
            login_deadlines: VecDeque::new(),
            notice_due: None,
            accept_paused_until: None,
            next_sweep: Instant::now() + SWEEP_INTERVAL,
            shutdown_deadline: None,
            signals,
            signals_seen: 0,
            next_id: 0,
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
            shared: Arc::clone(&self.conns.shared),
        }
    }

    /// Runs the loop until shutdown completes. Errors only if polling
    /// itself fails; one client's error closes that client only.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            self.conns.now = now;
            self.fire_timers(now);
            self.flush_pending();
            self.close_marked();
            self.publish_stats();
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.slab.is_empty() {
                    info!("shutdown complete");
                    return Ok(());
                }
                if now >= deadline {
                    warn!(
                        "shutdown: dropping {} connections that did not take their output in time",
                        self.conns.slab.len()
                    );
                    return Ok(());
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
            self.conns.now = now;
            let carried = std::mem::take(&mut self.pending_reads);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {
                        if self.conns.shared.stop.load(Relaxed) {
                            self.begin_shutdown(now);
                        }
                    }
                    SIGNALS => {
                        if self.signal_ready(now) {
                            return Ok(());
                        }
                    }
                    Token(key) => self.conn_ready(key, event),
                }
            }
            for key in carried {
                if let Some(conn) = self.conns.slab.get_mut(key) {
                    if conn.read_queued {
                        conn.read_queued = false;
                        self.read_ready(key);
                    }
                }
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.pending_reads.is_empty()
            || !self.conns.pending_writes.is_empty()
            || !self.conns.closing.is_empty()
        {
            return Some(Duration::ZERO);
        }
        [
            self.login_deadlines.front().map(|d| d.0),
            self.conns.drain_deadlines.front().map(|d| d.0),
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
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        if event.is_read_closed() || event.is_error() {
            conn.read_closed = true;
        }
        let (state, has_output, read_queued) =
            (conn.state, conn.pending_out() > 0, conn.read_queued);
        match state {
            State::Closing => {}
            // A draining connection only waits to write; any event may mean
            // it can, or that it failed, and the flush step finds out which.
            State::Draining => self.conns.queue_write(key),
            State::Open => {
                if event.is_writable() && has_output {
                    self.conns.queue_write(key);
                }
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                // A connection on the pending-read list is read from there.
                if readable && !read_queued {
                    self.read_ready(key);
                }
            }
        }
    }

    /// Reads once from `key` and hands its complete lines to the chat.
    fn read_ready(&mut self, key: usize) {
        let Some(conn) = self.conns.slab.get_mut(key) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        let max_line = self.config.max_line;
        match conn.read(&mut self.read_buf) {
            Ok(ReadOutcome::WouldBlock) => {}
            Ok(ReadOutcome::Data(n)) => {
                // A short read emptied the socket's receive queue (TCP hands
                // over all it has, up to the buffer size), so the next data
                // brings a new edge, saving the extra read that would only
                // say WouldBlock. A full read may have left more behind, and
                // an EOF already seen by the poller brings no new edge:
                // remember those instead of reading on, so one flooding
                // client cannot hold up the turn.
                if n == self.read_buf.len() || conn.read_closed {
                    conn.read_queued = true;
                    self.pending_reads.push(key);
                }
                let mut lines = std::mem::take(&mut conn.lines);
                let (chat, conns) = (&mut self.chat, &mut self.conns);
                lines.push(&self.read_buf[..n], max_line, &mut |frame| {
                    deliver_frame(chat, conns, key, frame);
                });
                if let Some(conn) = self.conns.slab.get_mut(key) {
                    conn.lines = lines;
                }
            }
            Ok(ReadOutcome::Eof) => {
                // Every complete line was already handled; a final line
                // without a newline still counts as a line.
                let mut lines = std::mem::take(&mut conn.lines);
                let (chat, conns) = (&mut self.chat, &mut self.conns);
                lines.finish(max_line, &mut |frame| {
                    deliver_frame(chat, conns, key, frame);
                });
                if self.chat.is_registered(key) {
                    if let Some(conn) = self.conns.slab.get_mut(key) {
                        conn.leave_logged = true;
                    }
                }
                self.chat.disconnected(key, None, &mut self.conns);
                // The peer may only have closed its sending side: still give
                // it what is queued (echoes of its last lines) before closing.
                self.conns.close(key);
            }
            Err(e) => {
                debug!("conn {key}: read error: {e}");
                self.conns.mark_closing(key, Reason::of(&e));
            }
        }
    }

    fn accept_all(&mut self, now: Instant) {
        if self.accept_paused_until.is_some() {
            return;
        }
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        let shared = Arc::clone(&self.conns.shared);
        let counters = &shared.counters;
        loop {
            let (mut socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The peer gave up before we accepted: its problem, not ours.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS/ENOMEM: the listener stays
                    // readable, so retrying now would spin at 100% CPU.
                    counters.accept_errors.fetch_add(1, Relaxed);
                    warn!("accept failed: {e}; pausing accepts for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            counters.accepted.fetch_add(1, Relaxed);
            if self.conns.slab.len() >= self.config.max_clients {
                debug!("refusing {peer}: server full");
                counters.refused.fetch_add(1, Relaxed);
                Conn::write_now(&mut socket, b"! server full\n");
                continue;
            }
            // Chat lines are small and latency matters more than packet count.
            let _ = socket.set_nodelay(true);
            let entry = self.conns.slab.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut socket, Token(key), Interest::READABLE)
            {
                warn!("could not register {peer}: {e}");
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            entry.insert(Conn::new(socket, peer, id));
            self.login_deadlines
                .push_back((now + self.config.login_timeout, key, id));
            info!("conn {key}: connected from {peer}");
            self.chat.connected(key, &mut self.conns);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&(at, key, id)) = self.login_deadlines.front() {
            if at > now {
                break;
            }
            self.login_deadlines.pop_front();
            let Some(conn) = self.conns.slab.get(key) else {
                continue;
            };
            if conn.id == id && conn.is_open() && !self.chat.is_registered(key) {
                // Logged when it closes: "closed (login timeout)".

                self.conns
                    .shared
                    .counters
                    .login_timeouts
                    .fetch_add(1, Relaxed);
                self.conns.send(key, b"! login timeout\n");
                self.conns.close(key);
                if let Some(conn) = self.conns.slab.get_mut(key) {
                    // Not if sending the line found it broken: keep that reason.
                    if conn.state == State::Draining {
                        conn.reason = Reason::LoginTimeout;
                    }
                }
            }
        }
        while let Some(&(at, key, id)) = self.conns.drain_deadlines.front() {
            if at > now {
                break;
            }
            self.conns.drain_deadlines.pop_front();
            if let Some(conn) = self.conns.slab.get(key) {
                if conn.id == id && conn.state == State::Draining {
                    self.conns.mark_closing(key, Reason::FlushTimeout);
                }
            }
        }
        if self.notice_due.is_some_and(|at| at <= now) {
            self.notice_due = None;
            self.chat.flush_notices(&mut self.conns);
        }
        if self.next_sweep <= now {
            // O(connections) once a second, never per message.
            self.next_sweep = now + SWEEP_INTERVAL;
            for (_, conn) in self.conns.slab.iter_mut() {
                conn.release_idle_buffer();
            }
        }
        if self.accept_paused_until.is_some_and(|at| at <= now) {
            self.accept_paused_until = None;
            // Connections may be waiting in the backlog with no new edge to
            // announce them: look now.
            self.accept_all(now);
        }
    }

    /// Writes pending output: directly, asking for writable events only
    /// where the socket is full.
    fn flush_pending(&mut self) {
        let list = std::mem::take(&mut self.conns.pending_writes);
        for key in list {
            let Some(conn) = self.conns.slab.get_mut(key) else {
                continue;
            };
            if !conn.write_queued {
                continue;
            }
            conn.write_queued = false;
            if conn.state == State::Closing {
                continue;
            }
            let result = conn.flush(WRITE_BUDGET_BYTES);
            let want_writable = match result {
                Ok(Flushed::All) => {
                    if conn.state == State::Draining {
                        let reason = conn.reason;
                        self.conns.mark_closing(key, reason);
                        continue;
                    }
                    false
                }
                Ok(Flushed::Blocked) => true,
                Ok(Flushed::Budget) => {
                    conn.write_queued = true;
                    self.conns.pending_writes.push(key);
                    continue;
                }
                Err(e) => {
                    debug!("conn {key}: write error: {e}");
                    self.conns.mark_closing(key, Reason::of(&e));
                    continue;
                }
            };
            if conn.write_interest != want_writable {
                let interest = if want_writable {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                match self
                    .poll
                    .registry()
                    .reregister(conn.socket_mut(), Token(key), interest)
                {
                    Ok(()) => conn.write_interest = want_writable,
                    Err(e) => {
                        warn!("conn {key}: reregister failed: {e}");
                        self.conns.mark_closing(key, Reason::Error);
                    }
                }
            }
        }
    }

    /// Frees connections marked closing; tells their rooms first.
    fn close_marked(&mut self) {
        while let Some(key) = self.conns.closing.pop() {
            let reason = match self.conns.slab.get(key) {
                Some(conn) if conn.state == State::Closing => conn.reason,
                _ => continue,
            };
            // One info line per connection end: the chat logs a registered
            // client's leave (with the reason); others are logged here.
            if let Some(conn) = self.conns.slab.get(key) {
                let why = reason
                    .notice()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default();
                if conn.leave_logged || self.chat.is_registered(key) {
                    debug!("conn {key} ({}): closed{why}", conn.peer);
                } else {
                    info!("conn {key} ({}): closed{why}", conn.peer);
                }
            }
            // May mark more connections closing (slow consumers among the
            // room): the loop picks them up.
            self.chat
                .disconnected(key, reason.notice(), &mut self.conns);
            let mut conn = self.conns.slab.remove(key);
            if let Err(e) = self.poll.registry().deregister(conn.socket_mut()) {
                debug!("conn {key}: deregister failed: {e}");
            }
            self.conns.shared.counters.closed.fetch_add(1, Relaxed);
        }
    }

    /// Handles SIGINT/SIGTERM; returns true when the loop must exit now.
    fn signal_ready(&mut self, now: Instant) -> bool {
        let Some(signals) = self.signals.as_mut() else {
            return false;
        };
        let seen = signals.pending().count() as u32;
        if seen == 0 {
            return false;
        }
        self.signals_seen += seen;
        if self.signals_seen >= 2 {
            warn!("second signal: exiting now");
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
        info!(
            "shutting down: {} connections to close",
            self.conns.slab.len()
        );
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let keys: Vec<usize> = self.conns.slab.iter().map(|(key, _)| key).collect();
        let line = format!("{SHUTDOWN_NOTICE}\n");
        for key in keys {
            if !self.conns.slab.get(key).is_some_and(Conn::is_open) {
                // Already closing for its own reason (reset, slow consumer):
                // keep that reason for its room's notice.
                continue;
            }
            self.conns.send(key, line.as_bytes());
            self.conns.close(key);
            if let Some(conn) = self.conns.slab.get_mut(key) {
                conn.reason = Reason::Shutdown;
            }
        }
        self.shutdown_deadline = Some(now + SHUTDOWN_FLUSH_TIMEOUT);
    }

    fn publish_stats(&self) {
        let c = &self.conns.shared.counters;
        c.connections.store(self.conns.slab.len(), Relaxed);
        c.registered.store(self.chat.registered(), Relaxed);
    }
}
