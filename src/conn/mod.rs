//! One connection: a [`transport`] (bytes to and from the socket), a
//! [`codec`] (bytes to protocol lines and back) and an [`outbuf`] of unsent
//! output, with its life as a small state machine that keeps its own
//! invariants. Knows nothing of rooms or names, and never touches the mio
//! `Registry`: the server registers the interest derived here.
//!
//! Life: `Open` → `Draining` (no more input is acted on; output is written,
//! input is read and discarded so closing never resets the peer) →
//! `Lingering` (our FIN is sent; read and discard until the peer's EOF or a
//! deadline) → `Closing` (freed at the loop's next safe point). Errors jump
//! straight to `Closing`.

pub mod codec;
pub mod outbuf;
pub mod transport;
pub mod ws;

use std::io;
use std::net::SocketAddr;

use mio::Interest;

use codec::{Codec, Framing, Outgoing};
use outbuf::{Flushed, OutBuf};
use transport::{Read, Transport};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading, acting on input and writing.
    Open,
    /// Writing what is queued; input is read and discarded.
    Draining,
    /// Our side is shut; reading and discarding until the peer's EOF.
    Lingering,
    /// Freed at the next close step; nothing more is read or written.
    Closing,
}

/// What a connection is for, from the listener that accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A chat client.
    Chat,
    /// A scrape of the metrics endpoint.
    Metrics,
    /// A web request: the page, its assets, or a WebSocket upgrade (which
    /// makes it a `Chat` connection).
    Web,
}

/// Why a connection ends, for the log and the room's leave notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The peer closed its side (or quit).
    Closed,
    /// The peer reset the connection.
    Reset,
    /// Any other socket error.
    Error,
    /// Its unsent output went over `max_outbuf`.
    SlowConsumer,
    /// It did not register in time.
    LoginTimeout,
    /// It did not take its remaining output before the flush deadline.
    FlushTimeout,
    /// Refused at accept (`! server full`, too many from its address).
    Refused,
    /// Its output made no progress for `--write-timeout`.
    WriteTimeout,
    /// The network stopped answering (TCP keepalive or retransmissions
    /// gave up).
    TimedOut,
    /// The server is stopping.
    Shutdown,
}

impl Reason {
    /// The text in brackets after `* <name> left`, if any.
    pub fn notice(self) -> Option<&'static str> {
        match self {
            Reason::Closed | Reason::Shutdown | Reason::Refused => None,
            Reason::Reset => Some("connection reset"),
            Reason::Error => Some("connection error"),
            Reason::SlowConsumer => Some("slow consumer"),
            Reason::LoginTimeout => Some("login timeout"),
            Reason::FlushTimeout => Some("flush timeout"),
            Reason::WriteTimeout => Some("write timeout"),
            Reason::TimedOut => Some("connection timed out"),
        }
    }

    /// Classifies a socket error.
    pub fn of(e: &io::Error) -> Reason {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => Reason::Reset,
            io::ErrorKind::TimedOut => Reason::TimedOut,
            _ => Reason::Error,
        }
    }
}

/// Bits of [`Conn::flags`].
mod flag {
    /// The poller reported the peer's FIN or an error: keep reading until
    /// EOF shows, since no new event will announce it.
    pub const HUP: u16 = 1;
    /// A read returned EOF.
    pub const EOF: u16 = 1 << 1;
    /// The last flush stopped on a full socket: wait for a writable event.
    pub const BLOCKED: u16 = 1 << 2;
    /// Registered with writable interest (mirrors the poller's state).
    pub const WRITABLE: u16 = 1 << 3;
    /// Listed on the loop's pending-write list.
    pub const WRITE_LISTED: u16 = 1 << 4;
    /// Listed on the loop's pending-read list.
    pub const READ_LISTED: u16 = 1 << 5;
    /// Registered a name at some point (its end is logged by the chat).
    pub const NAMED: u16 = 1 << 6;
    /// Its first flood-control delay was logged.
    pub const FLOOD_NOTED: u16 = 1 << 7;
    /// A WebSocket close frame was queued: nothing may follow it.
    pub const WS_CLOSE_SENT: u16 = 1 << 8;
    /// A WebSocket keepalive ping is out, unanswered.
    pub const WS_PINGED: u16 = 1 << 9;
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    transport: Transport,
    codec: Codec,
    /// How lines are framed on the way out (see [`Framing`]).
    framing: Framing,
    out: OutBuf,
    /// Unique for the server's lifetime, unlike the slab key, which is
    /// reused: timers and logs use it so they never mean a newer connection.
    id: u64,
    /// The peer's address, for the log and per-address limits only (never
    /// sent to other clients).
    peer: SocketAddr,
    phase: Phase,
    /// Why it is draining or closing; the first reason wins.
    reason: Reason,
    role: Role,
    flags: u16,
    /// The server tick (seconds) at which its output last made progress or
    /// started waiting: for the write-stall deadline.
    progress: u32,
    /// The server tick at which it last sent anything: for the WebSocket
    /// keepalive.
    heard: u32,
    /// The close code a WebSocket peer gave, or the one its protocol error
    /// calls for: the close frame we send carries it.
    ws_close: Option<u16>,
    /// Flood-control state: when its budget would be full again, in
    /// microseconds of the server's clock (see `limits::flood`).
    flood_tat: u64,
}

impl Conn {
    /// A new open connection.
    pub fn new(transport: Transport, codec: Codec, role: Role, peer: SocketAddr, id: u64) -> Conn {
        Conn {
            transport,
            framing: codec.framing(),
            codec,
            out: OutBuf::new(),
            id,
            peer,
            phase: Phase::Open,
            reason: Reason::Closed,
            role,
            flags: 0,
            progress: 0,
            heard: 0,
            ws_close: None,
            flood_tat: 0,
        }
    }

    /// What it is for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its flood-control state, to charge a line against.
    pub fn flood_tat_mut(&mut self) -> &mut u64 {
        &mut self.flood_tat
    }

    /// Its flood-control state.
    pub fn flood_tat(&self) -> u64 {
        self.flood_tat
    }

    /// True the first time it is called for this connection: its first
    /// flood-control delay is logged, later ones only counted.
    pub fn first_flood_delay(&mut self) -> bool {
        let first = !self.has(flag::FLOOD_NOTED);
        self.set(flag::FLOOD_NOTED, true);
        first
    }

    /// The tick at which its output last made progress.
    pub fn progress(&self) -> u32 {
        self.progress
    }

    /// Records that its output made progress (or started waiting) at `tick`.
    pub fn set_progress(&mut self, tick: u32) {
        self.progress = tick;
    }

    /// The connection's unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Where it is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why it is ending (meaningful once not `Open`).
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// True while input is acted on and output may be queued.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    #[inline]
    fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    #[inline]
    fn set(&mut self, f: u16, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// Records the poller's hint that the peer hung up or failed.
    pub fn note_hup(&mut self) {
        self.set(flag::HUP, true);
    }

    /// Records that this connection registered a name.
    pub fn note_named(&mut self) {
        self.set(flag::NAMED, true);
    }

    /// True if it ever registered a name.
    pub fn was_named(&self) -> bool {
        self.has(flag::NAMED)
    }

    /// The socket, for (de)registration by the server.
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The interest this connection needs now: none once closing, readable
    /// otherwise (even while draining, so input is discarded and closing
    /// never resets the peer), and writable only while output is stuck
    /// behind a full socket (otherwise the loop writes directly).
    pub fn interest(&self) -> Option<Interest> {
        match self.phase {
            Phase::Closing => None,
            _ if self.has(flag::BLOCKED) => Some(Interest::READABLE | Interest::WRITABLE),
            _ => Some(Interest::READABLE),
        }
    }

    /// The interest to register if it differs from what is registered.
    pub fn interest_change(&self) -> Option<Interest> {
        let want = self.interest()?;
        (want.is_writable() != self.has(flag::WRITABLE)).then_some(want)
    }

    /// Records what the poller now has registered.
    pub fn set_registered(&mut self, interest: Interest) {
        self.set(flag::WRITABLE, interest.is_writable());
    }

    /// Lists for writing; true if it was not listed already.
    #[inline]
    pub fn list_write(&mut self) -> bool {
        let new = !self.has(flag::WRITE_LISTED);
        self.set(flag::WRITE_LISTED, true);
        new
    }

    /// Takes it off the write list; true if it was listed.
    pub fn unlist_write(&mut self) -> bool {
        let was = self.has(flag::WRITE_LISTED);
        self.set(flag::WRITE_LISTED, false);
        was
    }

    /// Lists for reading; true if it was not listed already.
    pub fn list_read(&mut self) -> bool {
        let new = !self.has(flag::READ_LISTED);
        self.set(flag::READ_LISTED, true);
        new
    }

    /// Takes it off the read list; true if it was listed.
    pub fn unlist_read(&mut self) -> bool {
        let was = self.has(flag::READ_LISTED);
        self.set(flag::READ_LISTED, false);
        was
    }

    /// True while listed for reading (its reads come from that list).
    pub fn is_read_listed(&self) -> bool {
        self.has(flag::READ_LISTED)
    }

    /// True over TLS.
    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// True when the transport has bytes of its own to send (a TLS
    /// handshake in progress): list it for writing.
    pub fn wants_write(&self) -> bool {
        self.transport.wants_write()
    }

    /// Reads once into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Read> {
        let hup = self.has(flag::HUP);
        let r = self.transport.read(buf, hup)?;
        if r == Read::Eof {
            self.set(flag::EOF, true);
        }
        Ok(r)
    }

    /// True once a read returned the peer's EOF.
    pub fn saw_eof(&self) -> bool {
        self.has(flag::EOF)
    }

    /// Takes the codec out, so its frames can borrow it while the chat gets
    /// the connection table; [`put_codec`](Self::put_codec) returns it.
    pub fn take_codec(&mut self) -> Codec {
        std::mem::take(&mut self.codec)
    }

    /// Returns the codec taken by [`take_codec`](Self::take_codec).
    pub fn put_codec(&mut self, codec: Codec) {
        self.codec = codec;
    }

    /// Queues one line, framed by this connection's codec; returns the
    /// bytes added.
    #[inline]
    pub fn queue(&mut self, line: Outgoing<'_>) -> usize {
        self.framing.queue(&mut self.out, line)
    }

    /// After a WebSocket upgrade: a chat connection speaking `codec`
    /// (which the caller holds while it finishes the current input).
    pub fn upgrade(&mut self, codec: &Codec) {
        self.role = Role::Chat;
        self.framing = codec.framing();
    }

    /// True for a WebSocket client.
    pub fn is_ws(&self) -> bool {
        self.framing == Framing::Ws
    }

    /// Records the close code its close frame will carry (the peer's own,
    /// echoed, or the one its protocol error calls for).
    pub fn set_ws_close(&mut self, code: u16) {
        self.ws_close.get_or_insert(code);
    }

    /// Records that it sent something at `tick` (keepalive: it is alive).
    pub fn note_heard(&mut self, tick: u32) {
        self.heard = tick;
        self.set(flag::WS_PINGED, false);
    }

    /// The tick it last sent anything at.
    pub fn heard(&self) -> u32 {
        self.heard
    }

    /// Notes that a keepalive ping goes out now, once per silence; false
    /// if one is out already (the caller queues it).
    pub fn note_ws_ping(&mut self) -> bool {
        if self.has(flag::WS_PINGED) || !self.is_open() {
            return false;
        }
        self.set(flag::WS_PINGED, true);
        true
    }

    /// Queues a WebSocket close frame saying why, once: nothing may follow.
    fn queue_ws_close(&mut self, reason: Reason) {
        if self.framing != Framing::Ws || self.has(flag::WS_CLOSE_SENT) {
            return;
        }
        self.set(flag::WS_CLOSE_SENT, true);
        let code = self.ws_close.unwrap_or(match reason {
            Reason::Closed => ws::code::NORMAL,
            Reason::Shutdown => ws::code::GOING_AWAY,
            _ => ws::code::POLICY,
        });
        self.out.push(&[&ws::close(code, "")]);
    }

    /// Queues bytes exactly as given (a whole HTTP response).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.push(&[bytes]);
    }

    /// Unsent output, in bytes, including what the transport holds.
    #[inline]
    pub fn pending_out(&self) -> usize {
        self.out.len() + self.transport.buffered_out()
    }

    /// Memory held for output (for the memory bound's tests).
    pub fn out_capacity(&self) -> usize {
        self.out.capacity()
    }

    /// Writes queued output (up to `budget` bytes).
    pub fn flush(&mut self, budget: usize) -> io::Result<Flushed> {
        let closing = self.phase != Phase::Open;
        let result = self.transport.write_from(&mut self.out, budget, closing);
        self.set(flag::BLOCKED, matches!(result, Ok(Flushed::Blocked)));
        result
    }

    /// Draining → Lingering once all output is written: shuts our sending
    /// side, so the peer reads every byte and then EOF. Returns true when
    /// the peer already closed too, so nothing is left to wait for.
    pub fn finish_drain(&mut self) -> io::Result<bool> {
        debug_assert!(self.phase == Phase::Draining && self.out.is_empty());
        self.transport.shutdown_write()?;
        self.phase = Phase::Lingering;
        Ok(self.has(flag::EOF))
    }

    /// Open → Draining: act on no more input, write what is queued, then
    /// close without resetting the peer. False if it was not open.
    pub fn drain(&mut self, reason: Reason) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        self.phase = Phase::Draining;
        self.reason = reason;
        self.queue_ws_close(reason);
        true
    }

    /// Marks it to be freed at the next close step (keeping an earlier
    /// reason, except that a draining or lingering connection's end is
    /// explained by `reason`). False if it was already closing.
    pub fn close(&mut self, reason: Reason) -> bool {
        match self.phase {
            Phase::Closing => false,
            Phase::Open => {
                self.phase = Phase::Closing;
                self.reason = reason;
                true
            }
            // Output was still being written: a failure now lost some.
            Phase::Draining => {
                self.phase = Phase::Closing;
                if matches!(reason, Reason::Reset | Reason::Error | Reason::FlushTimeout) {
                    self.reason = reason;
                }
                true
            }
            // Everything was written; a peer that resets now (it closed
            // with our last lines unread) closed normally as far as we care.
            Phase::Lingering => {
                self.phase = Phase::Closing;
                true
            }
        }
    }

    /// Overrides the reason a draining connection gives (a login timeout
    /// found while the line saying so was queued).
    pub fn set_reason(&mut self, reason: Reason) {
        if self.phase == Phase::Draining {
            self.reason = reason;
        }
    }

    /// Frees buffer memory a quiet connection does not need.
    pub fn release_idle_buffers(&mut self) {
        self.out.release_if_idle();
    }
}
