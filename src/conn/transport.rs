//! Transports: how a connection's bytes reach the socket (plain TCP today;
//! TLS sits here too). A transport alone knows when it has been drained, so
//! the loop never infers it from the size of a read. Knows nothing of lines,
//! frames, rooms or the mio `Registry`.

use std::io::{self, Read as _};
use std::net::Shutdown;

use mio::net::TcpStream;

use super::outbuf::{Flushed, OutBuf};

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
}

impl Transport {
    /// The socket, for (de)registration with the poller.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
        }
    }

    /// The socket, for socket options.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
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
        }
    }

    /// Writes queued output until it is all out, the socket is full, or
    /// `budget` bytes went out this turn.
    pub fn write_from(&mut self, out: &mut OutBuf, budget: usize) -> io::Result<Flushed> {
        match self {
            Transport::Plain(s) => out.write_to(s, budget),
        }
    }

    /// Bytes the transport holds beyond the connection's own buffer (TLS
    /// records not yet written), counted against the output limit.
    #[inline]
    pub fn buffered_out(&self) -> usize {
        match self {
            Transport::Plain(_) => 0,
        }
    }

    /// Ends our sending side once everything queued is written: the peer
    /// reads every byte, then EOF.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.shutdown(Shutdown::Write),
        }
    }
}
