//! Transports: how a connection's bytes reach the socket, plain TCP here
//! and TLS in [`tls`]. A transport alone knows when it has been drained, so
//! the loop never infers it from the size of a read. Knows nothing of lines,
//! frames, rooms or the mio `Registry`.

pub mod tls;

use std::io::{self, Read as _};
use std::net::Shutdown;

use mio::net::TcpStream;

use super::outbuf::{Flushed, OutBuf};
use tls::TlsStream;

/// The outcome of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// `n` bytes were read. `more` is true when more may be readable without
    /// a new readiness event, so the connection must be read again later.
    Data {
        /// Bytes read into the buffer.
        n: usize,
        /// Read again without waiting for an event.
        more: bool,
    },
    /// Nothing to read until the next readiness event.
    WouldBlock,
    /// The peer closed its sending side.
    Eof,
}

/// A connection's byte stream.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: a rustls session is a few KiB).
    Tls(Box<TlsStream>),
}

impl Transport {
    /// The socket, for (de)registration with the poller.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.socket_mut(),
        }
    }

    /// The socket, for socket options.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.socket(),
        }
    }

    /// True for TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// True when the transport itself has bytes to send that no output
    /// queued by the chat accounts for (TLS handshake records after a
    /// read): the connection must be flushed.
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.wants_write(),
        }
    }

    /// Reads once into `buf`, retrying on `Interrupted`. `hup` is the
    /// poller's hint that the peer closed or failed: the EOF behind the data
    /// brings no new event, so the read must be repeated until it shows.
    pub fn read(&mut self, buf: &mut [u8], hup: bool) -> io::Result<Read> {
        match self {
            Transport::Plain(s) => loop {
                return match s.read(buf) {
                    Ok(0) => Ok(Read::Eof),
                    // TCP hands over everything queued, up to the buffer's
                    // size, and new data raises a new edge: so a short read
                    // means drained and saves the read that would only say
                    // WouldBlock. A full read may have left more behind.
                    Ok(n) => Ok(Read::Data {
                        n,
                        more: n == buf.len() || hup,
                    }),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read::WouldBlock),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
            },
            Transport::Tls(t) => t.read(buf),
        }
    }

    /// Writes queued output until it is all out, the socket is full, or
    /// `budget` bytes went out this turn. `closing` says no more output
    /// will be queued (TLS then ends with a close_notify).
    pub fn write_from(
        &mut self,
        out: &mut OutBuf,
        budget: usize,
        closing: bool,
    ) -> io::Result<Flushed> {
        match self {
            Transport::Plain(s) => out.write_to(s, budget),
            Transport::Tls(t) => t.write_from(out, budget, closing),
        }
    }

    /// Bytes the transport holds beyond the connection's own buffer (TLS
    /// records not yet written), counted against the output limit.
    #[inline]
    pub fn buffered_out(&self) -> usize {
        match self {
            Transport::Plain(_) => 0,
            Transport::Tls(t) => t.buffered_out(),
        }
    }

    /// Ends our sending side once everything queued is written: the peer
    /// reads every byte, then EOF.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.shutdown(Shutdown::Write),
            Transport::Tls(t) => t.shutdown_write(),
        }
    }
}
