//! The connection table: every connection in a `Slab` whose key is its mio
//! `Token`, and the work lists that refer to it (pending writes, pending
//! reads, closing) with the close deadlines. Implements [`Outbox`]: chat
//! output is queued here during dispatch and written in the flush step, the
//! only place that judges slow consumers. It never decides chat behaviour.
//!
//! Output limits, as Redis bounds client output: a client whose unsent
//! output passes `max_outbuf` after the flush step wrote what its socket
//! would take is a slow consumer and is dropped. Within a turn, crossing
//! half the limit (or the whole turn queueing [`TURN_OUTPUT_BUDGET`]) makes
//! the loop stop taking input until the flush step has written or judged it,
//! so a burst cannot drop a client that reads, and one turn's memory is
//! bounded. A client's buffer never exceeds `max_outbuf` plus one line: a
//! line for a client already over it is not queued, and the client is
//! dropped (nothing is lost silently).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::{Registry, Token};
use slab::Slab;

use super::handle::{Counters, Shared};
use super::timers::Deadlines;
use crate::conn::codec::Outgoing;
use crate::conn::outbuf::Flushed;
use crate::conn::ws;
use crate::conn::{Conn, Phase, Reason};
use crate::outbox::Outbox;

/// Most bytes written to one client per turn, "to serve other clients as
/// well" (Redis' `NET_MAX_WRITES_PER_EVENT`).
const WRITE_BUDGET_BYTES: usize = 256 * 1024;
/// Most output all clients together may have queued in one turn before the
/// loop stops taking input until the flush step.
pub const TURN_OUTPUT_BUDGET: usize = 16 << 20;

/// The connection table and its work lists.
#[derive(Debug)]
pub struct Table {
    slab: Slab<Conn>,
    /// Connections with output to write this turn, each listed once.
    pending_writes: Vec<usize>,
    /// Connections to read (or act on held input) next turn without waiting
    /// for an event: edge-triggered polling will not report them again.
    pending_reads: Vec<usize>,
    /// Connections marked `Closing`, freed in the close step.
    closing: Vec<usize>,
    /// Input read but not yet acted on, because the loop paused that
    /// connection mid-read (a full turn, its flood budget). While it holds
    /// bytes the socket is not read: at most one read's worth each. Kept
    /// here, not in every connection, since few are ever paused.
    held: HashMap<usize, Box<[u8]>>,
    /// When each draining connection must have taken its output.
    flush_deadlines: Deadlines,
    /// When each lingering connection is closed regardless of its peer.
    linger_deadlines: Deadlines,
    /// Connections refused at accept, still writing their refusal.
    refusing: usize,
    max_outbuf: usize,
    close_flush_timeout: Duration,
    linger_timeout: Duration,
    /// Seconds a client's output may make no progress before it is dropped.
    write_timeout_secs: u32,
    /// Seconds a WebSocket client may be quiet before it is pinged (and
    /// twice that before it is dropped).
    ws_ping_secs: u32,
    /// When the server started: ticks count whole seconds from here.
    epoch: Instant,
    /// The time of the current turn.
    now: Instant,
    /// Whole seconds since `epoch`, for the write-stall deadline.
    tick: u32,
    /// Output queued since start (flood control prices a line by the
    /// difference it makes here).
    queued_total: u64,
    /// Output queued so far this turn.
    turn_queued: usize,
    /// Set when this turn queued enough that input must wait for a flush.
    turn_full: bool,
    shared: Arc<Shared>,
}

impl Table {
    /// An empty table.
    pub fn new(
        max_outbuf: usize,
        close_flush_timeout: Duration,
        linger_timeout: Duration,
        write_timeout: Duration,
        ws_ping: Duration,
        shared: Arc<Shared>,
    ) -> Table {
        let now = Instant::now();
        Table {
            slab: Slab::new(),
            pending_writes: Vec::new(),
            pending_reads: Vec::new(),
            closing: Vec::new(),
            held: HashMap::new(),
            flush_deadlines: Deadlines::new(),
            linger_deadlines: Deadlines::new(),
            refusing: 0,
            max_outbuf,
            close_flush_timeout,
            linger_timeout,
            write_timeout_secs: u32::try_from(write_timeout.as_secs().max(1)).unwrap_or(u32::MAX),
            ws_ping_secs: u32::try_from(ws_ping.as_secs()).unwrap_or(u32::MAX),
            epoch: now,
            now,
            tick: 0,
            queued_total: 0,
            turn_queued: 0,
            turn_full: false,
            shared,
        }
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The current turn's time.
    pub fn instant_now(&self) -> Instant {
        self.now
    }

    /// Whole seconds since the server started.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// Starts a loop turn at `now`.
    pub fn begin_turn(&mut self, now: Instant) {
        self.set_now(now);
        self.turn_queued = 0;
        self.turn_full = false;
    }

    /// Sets the time (after a poll returns).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        self.tick = u32::try_from(secs).unwrap_or(u32::MAX);
    }

    /// The current turn's time, in microseconds since the server started.
    pub fn now_us(&self) -> u64 {
        let us = self.now.saturating_duration_since(self.epoch).as_micros();
        u64::try_from(us).unwrap_or(u64::MAX)
    }

    /// The instant `us` microseconds after the server started.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }

    /// Output queued since start, in bytes.
    pub fn queued_total(&self) -> u64 {
        self.queued_total
    }

    /// True when this turn has queued enough output that no more input may
    /// be acted on until the flush step.
    pub fn is_turn_full(&self) -> bool {
        self.turn_full
    }

    /// Connections held, refusals included.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when no connection is held.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Connections that count against `max_clients` (refusals do not).
    pub fn members(&self) -> usize {
        self.slab.len() - self.refusing
    }

    /// Connections whose output is not all written (open or draining):
    /// what a shutdown that gives up drops.
    pub fn unfinished(&self) -> usize {
        self.slab
            .iter()
            .filter(|(_, c)| matches!(c.phase(), Phase::Open | Phase::Draining))
            .count()
    }

    /// Refusals still being written.
    pub fn refusing(&self) -> usize {
        self.refusing
    }

    /// The connection under `key`.
    pub fn get(&self, key: usize) -> Option<&Conn> {
        self.slab.get(key)
    }

    /// The connection under `key`, mutably.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.slab.get_mut(key)
    }

    /// Every key, for shutdown.
    pub fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(key, _)| key).collect()
    }

    /// Inserts a connection built (and registered) by `make` under the key
    /// it will have.
    pub fn insert_with<E>(
        &mut self,
        make: impl FnOnce(usize) -> Result<Conn, E>,
    ) -> Result<usize, E> {
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        entry.insert(make(key)?);
        Ok(key)
    }

    /// Inserts a refused connection with `bytes` queued, to be written and
    /// closed without resetting the peer.
    pub fn insert_refusal(&mut self, key: usize, bytes: &[u8]) {
        self.refusing += 1;
        self.send_raw(key, bytes);
        self.drain(key, Reason::Refused);
    }

    /// Keeps `rest` of `key`'s input to act on when it resumes.
    pub fn hold(&mut self, key: usize, rest: &[u8]) {
        self.held.insert(key, rest.into());
    }

    /// Takes `key`'s held input, if any.
    pub fn take_held(&mut self, key: usize) -> Option<Box<[u8]>> {
        self.held.remove(&key)
    }

    /// True while `key` has input held back.
    pub fn has_held(&self, key: usize) -> bool {
        self.held.contains_key(&key)
    }

    /// Removes a closed connection (after the close step).
    pub fn remove(&mut self, key: usize) -> Option<Conn> {
        let conn = self.slab.try_remove(key)?;
        self.held.remove(&key);
        if conn.reason() == Reason::Refused {
            self.refusing -= 1;
        }
        Counters::bump(&self.counters().closed);
        Some(conn)
    }

    /// Once a second: frees memory quiet connections do not need, pings
    /// quiet WebSocket clients (and drops silent ones), and drops clients
    /// whose output made no progress for the write timeout (a peer that
    /// vanished, or stopped reading, below the output limit).
    pub fn sweep(&mut self) {
        let mut stalled = Vec::new();
        let mut silent = Vec::new();
        let mut ping = Vec::new();
        for (key, conn) in self.slab.iter_mut() {
            conn.release_idle_buffers();
            if conn.is_ws() && conn.is_open() {
                // A quiet browser is pinged; one that stays silent as long
                // again (no pong, nothing) has gone without a FIN.
                let quiet = self.tick.saturating_sub(conn.heard());
                if quiet >= 2 * self.ws_ping_secs {
                    silent.push(key);
                } else if quiet >= self.ws_ping_secs && conn.note_ws_ping() {
                    ping.push(key);
                }
            }
            let waiting =
                matches!(conn.phase(), Phase::Open | Phase::Draining) && conn.pending_out() > 0;
            // Ticks are whole seconds: output queued just before a tick
            // boundary is one tick old a moment later, so only a gap of
            // more than the timeout is a stall (between T and T+1 s).
            if waiting && self.tick.saturating_sub(conn.progress()) > self.write_timeout_secs {
                stalled.push(key);
            }
        }
        for key in ping {
            self.send_raw(key, &ws::ping());
        }
        for key in silent {
            if let Some(conn) = self.slab.get(key) {
                info!(
                    "conn #{} ({}): no answer to a WebSocket ping; disconnecting",
                    conn.id(),
                    conn.peer()
                );
            }
            self.mark_closing(key, Reason::TimedOut);
        }
        for key in stalled {
            if let Some(conn) = self.slab.get(key) {
                warn!(
                    "conn #{} ({}): no output taken for {} s, {} bytes unsent; disconnecting",
                    conn.id(),
                    conn.peer(),
                    self.write_timeout_secs,
                    conn.pending_out()
                );
            }
            Counters::bump(&self.counters().write_timeouts);
            self.mark_closing(key, Reason::WriteTimeout);
        }
    }

    /// Lists `key` for the flush step.
    pub fn list_write(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            if conn.list_write() {
                self.pending_writes.push(key);
            }
        }
    }

    /// Remembers to read `key` next turn without waiting for an event.
    pub fn list_read(&mut self, key: usize) {
        if let Some(conn) = self.slab.get_mut(key) {
            if conn.list_read() {
                self.pending_reads.push(key);
            }
        }
    }

    /// Takes the pending-read list (its connections are read this turn).
    pub fn take_pending_reads(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.pending_reads)
    }

    /// True when the loop must not sleep: work is listed for the next turn.
    pub fn has_work(&self) -> bool {
        !self.pending_reads.is_empty()
            || !self.pending_writes.is_empty()
            || !self.closing.is_empty()
    }

    /// The earliest close deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.flush_deadlines.next(), self.linger_deadlines.next()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Open → Draining: write what is queued, then close without resetting
    /// the peer, within the close-flush timeout.
    pub fn drain(&mut self, key: usize, reason: Reason) {
        let deadline = self.now + self.close_flush_timeout;
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        if conn.drain(reason) {
            self.flush_deadlines.push(deadline, key, conn.id());
            // Even with nothing queued, the flush step is where a drained
            // connection is found done and shut.
            self.list_write(key);
        }
    }

    /// Marks `key` to be freed at the next close step.
    pub fn mark_closing(&mut self, key: usize, reason: Reason) {
        if let Some(conn) = self.slab.get_mut(key) {
            if conn.close(reason) {
                self.closing.push(key);
            }
        }
    }

    /// Takes the next connection to free, if any.
    pub fn next_closing(&mut self) -> Option<usize> {
        while let Some(key) = self.closing.pop() {
            if self
                .slab
                .get(key)
                .is_some_and(|c| c.phase() == Phase::Closing)
            {
                return Some(key);
            }
        }
        None
    }

    /// Closes draining connections that missed their flush deadline and
    /// lingering ones whose peer never sent EOF.
    pub fn fire_deadlines(&mut self, now: Instant) {
        while let Some((key, id)) = self.flush_deadlines.pop_due(now) {
            let due = self
                .slab
                .get(key)
                .is_some_and(|c| c.id() == id && c.phase() == Phase::Draining);
            if due {
                Counters::bump(&self.counters().flush_timeouts);
                self.mark_closing(key, Reason::FlushTimeout);
            }
        }
        while let Some((key, id)) = self.linger_deadlines.pop_due(now) {
            let due = self
                .slab
                .get(key)
                .is_some_and(|c| c.id() == id && c.phase() == Phase::Lingering);
            if due {
                let reason = self.slab[key].reason();
                self.mark_closing(key, reason);
            }
        }
    }

    /// The flush step: writes pending output directly, asks for writable
    /// events only where the socket is full, shuts drained connections, and
    /// drops clients still over their output limit.
    pub fn flush(&mut self, registry: &Registry) {
        let list = std::mem::take(&mut self.pending_writes);
        for key in list {
            let Some(conn) = self.slab.get_mut(key) else {
                continue;
            };
            if !conn.unlist_write() || conn.phase() == Phase::Closing {
                continue;
            }
            let before = conn.pending_out();
            let result = conn.flush(WRITE_BUDGET_BYTES);
            if conn.pending_out() < before {
                conn.set_progress(self.tick);
            }
            match result {
                Ok(Flushed::All) if conn.phase() == Phase::Draining => match conn.finish_drain() {
                    Ok(false) => {
                        let at = self.now + self.linger_timeout;
                        self.linger_deadlines.push(at, key, conn.id());
                    }
                    Ok(true) => {
                        let reason = conn.reason();
                        self.mark_closing(key, reason);
                        continue;
                    }
                    Err(e) => {
                        debug!("conn #{}: shutdown failed: {e}", conn.id());
                        self.mark_closing(key, Reason::of(&e));
                        continue;
                    }
                },
                Ok(Flushed::All | Flushed::Blocked | Flushed::Waiting) => {}
                Ok(Flushed::Budget) => self.list_write(key),
                Err(e) => {
                    debug!("conn #{}: write error: {e}", conn.id());
                    self.mark_closing(key, Reason::of(&e));
                    continue;
                }
            }
            let Some(conn) = self.slab.get(key) else {
                continue;
            };
            if conn.is_open() && conn.pending_out() > self.max_outbuf {
                self.slow_consumer(key);
                continue;
            }
            self.sync_interest(key, registry);
        }
    }

    /// Registers the interest `key`'s state calls for, if it changed.
    fn sync_interest(&mut self, key: usize, registry: &Registry) {
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        let Some(interest) = conn.interest_change() else {
            return;
        };
        let socket = conn.transport_mut().socket_mut();
        match registry.reregister(socket, Token(key), interest) {
            Ok(()) => conn.set_registered(interest),
            Err(e) => {
                warn!("conn #{}: reregister failed: {e}", conn.id());
                self.mark_closing(key, Reason::Error);
            }
        }
    }

    fn slow_consumer(&mut self, key: usize) {
        if let Some(conn) = self.slab.get(key) {
            warn!(
                "conn #{} ({}): slow consumer, {} bytes unsent; disconnecting",
                conn.id(),
                conn.peer(),
                conn.pending_out()
            );
        }
        Counters::bump(&self.counters().slow_consumers);
        self.mark_closing(key, Reason::SlowConsumer);
    }

    /// Queues `line` for `key`, or judges it: see the module docs.
    #[inline]
    fn queue(&mut self, key: usize, line: Outgoing<'_>) {
        let max = self.max_outbuf;
        let Some(conn) = self.slab.get_mut(key) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        let before = conn.pending_out();
        if before > max {
            // Already over its limit with more coming in the same turn: it
            // cannot take this line, and a line is never dropped silently.
            return self.slow_consumer(key);
        }
        let added = conn.queue(line);
        if before == 0 {
            // Its output starts waiting now: the write-stall clock starts.
            conn.set_progress(self.tick);
        }
        if conn.list_write() {
            self.pending_writes.push(key);
        }
        let after = before + added;
        self.turn_queued += added;
        self.queued_total += added as u64;
        let soft = max / 2;
        let crossed = (before <= soft && after > soft) || after > max;
        if (crossed || self.turn_queued >= TURN_OUTPUT_BUDGET) && !self.turn_full {
            self.turn_full = true;
            Counters::bump(&self.counters().turn_budget_hits);
        }
    }
}

impl Table {
    /// Queues bytes the codec does not frame for `key`: a whole HTTP
    /// response, a WebSocket pong or keepalive ping (outside the output
    /// limits: they are small). As for chat output, the write-stall clock
    /// starts when output starts waiting, not at every addition.
    pub fn send_raw(&mut self, key: usize, bytes: &[u8]) {
        let tick = self.tick;
        if let Some(conn) = self.slab.get_mut(key) {
            if conn.is_open() {
                if conn.pending_out() == 0 {
                    conn.set_progress(tick);
                }
                conn.queue_raw(bytes);
                self.list_write(key);
            }
        }
    }
}

impl Outbox for Table {
    fn send(&mut self, key: usize, line: &[u8]) {
        self.queue(key, Outgoing::new(line));
    }

    fn send_all(&mut self, keys: &[usize], line: &[u8]) {
        let line = Outgoing::new(line);
        for &key in keys {
            self.queue(key, line);
        }
    }

    fn close(&mut self, key: usize) {
        self.drain(key, Reason::Closed);
    }
}
