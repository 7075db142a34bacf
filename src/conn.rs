//! One client connection: its socket, its framing state and its output
//! buffer, and the non-blocking reads and writes on them. Knows nothing of
//! rooms or names, and never touches the mio `Registry` (the server does).

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use crate::framing::LineBuf;

/// Output buffers above this capacity are released as soon as they are
/// flushed (one burst must not pin memory); smaller ones are kept while the
/// client is busy, so it does not reallocate every turn, and released by
/// [`Conn::release_idle_buffer`] once it goes quiet.
const KEEP_OUTBUF_CAPACITY: usize = 64 * 1024;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading and writing normally.
    Open,
    /// No more reads; closes once its output is written (or its flush
    /// deadline passes): after `/quit`, EOF, errors sent to it, shutdown.
    Draining,
    /// Closed at the next safe point; nothing more is read or written.
    Closing,
}

/// Why a connection closes, for the log and the room's leave notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The peer closed its side (or quit, or was refused).
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
    /// The server is stopping.
    Shutdown,
}

impl Reason {
    /// The text in brackets after `* <name> left`, if any.
    pub fn notice(self) -> Option<&'static str> {
        match self {
            Reason::Closed | Reason::Shutdown => None,
            Reason::Reset => Some("connection reset"),
            Reason::Error => Some("connection error"),
            Reason::SlowConsumer => Some("slow consumer"),
            Reason::LoginTimeout => Some("login timeout"),
            Reason::FlushTimeout => Some("flush timeout"),
        }
    }

    /// Classifies a socket error.
    pub fn of(e: &io::Error) -> Reason {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => Reason::Reset,
            _ => Reason::Error,
        }
    }
}

/// The outcome of one read.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Bytes were read into the buffer.
    Data(usize),
    /// Nothing to read right now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

/// The outcome of a flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was written.
    All,
    /// The socket is full; the rest waits for a writable event.
    Blocked,
    /// The per-turn byte budget ran out before the socket filled.
    Budget,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    socket: TcpStream,
    /// Unique for the server's lifetime, unlike the slab key, which is
    /// reused: timers hold `(key, id)` so they never hit a newer connection.
    pub id: u64,
    /// The peer's address, for the log only (never sent to other clients).
    pub peer: SocketAddr,
    /// Framing state: the unfinished line carried between reads.
    pub lines: LineBuf,
    /// Output waiting to be written; `out[sent..]` is still unsent.
    out: Vec<u8>,
    /// How much of `out` has been written.
    sent: usize,
    /// Lifecycle state.
    pub state: State,
    /// Why it is draining or closing.
    pub reason: Reason,
    /// True while registered for writable events (only while output is
    /// stuck behind a full socket; otherwise writes go out directly).
    pub write_interest: bool,
    /// True while listed in the server's pending-write list (listed once).
    pub write_queued: bool,
    /// The poller reported the peer's FIN (or an error). A short read then
    /// does not mean the socket is drained for good: the EOF behind the data
    /// brings no new edge, so the connection must be read until it shows.
    pub read_closed: bool,
    /// The chat has logged this client's leave (EOF, `/quit`), so closing
    /// it needs no info-level log line of its own: one line per leave.
    pub leave_logged: bool,
    /// True while listed in the server's pending-read list: it stopped
    /// reading on its budget, not on `WouldBlock`, so no new event will come.
    pub read_queued: bool,
}

impl Conn {
    /// Wraps an accepted socket.
    pub fn new(socket: TcpStream, peer: SocketAddr, id: u64) -> Conn {
        Conn {
            socket,
            id,
            peer,
            lines: LineBuf::new(),
            out: Vec::new(),
            sent: 0,
            state: State::Open,
            reason: Reason::Closed,
            write_interest: false,
            write_queued: false,
            read_closed: false,
            leave_logged: false,
            read_queued: false,
        }
    }

    /// The socket, for (de)registration by the server.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// True while reads are wanted and output may be queued.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Unsent output, in bytes.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Appends a line to the output. The caller has checked the limit.
    pub fn queue(&mut self, bytes: &[u8]) {
        // Drop the written prefix once it is at least half the buffer, so
        // the buffer never holds more than twice the unsent bytes and the
        // copying stays amortised O(1) per byte.
        if self.sent > 0 && self.sent >= self.out.len() / 2 {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        self.out.extend_from_slice(bytes);
    }

    /// Reads once into `buf`, retrying on `Interrupted`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        loop {
            return match self.socket.read(buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => Ok(ReadOutcome::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Writes queued output until it is all written, the socket is full
    /// (`WouldBlock`), or `budget` bytes went out this turn.
    pub fn flush(&mut self, budget: usize) -> io::Result<Flushed> {
        let mut written = 0;
        while self.sent < self.out.len() {
            if written >= budget {
                return Ok(Flushed::Budget);
            }
            let end = self
                .out
                .len()
                .min(self.sent.saturating_add(budget - written));
            match self.socket.write(&self.out[self.sent..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.sent = 0;
        if self.out.capacity() > KEEP_OUTBUF_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Ok(Flushed::All)
    }

    /// Frees the output buffer if nothing is queued: called periodically so
    /// an idle connection holds no buffer memory.
    pub fn release_idle_buffer(&mut self) {
        if self.pending_out() == 0 && self.out.capacity() > 0 {
            self.out = Vec::new();
            self.sent = 0;
        }
    }

    /// Writes `bytes` straight to the socket, best effort, bypassing the
    /// queue: for a refusal sent on a connection we will not keep.
    pub fn write_now(socket: &mut TcpStream, bytes: &[u8]) {
        let _ = socket.write(bytes);
    }
}
