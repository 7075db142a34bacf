//! TLS over TCP with rustls, sans-I/O: the `ServerConnection` is fed by
//! `read_tls`/`write_tls` on our non-blocking socket inside the loop (no
//! threads, no async runtime). Decrypted input may stay inside rustls after
//! the socket is drained, so a read that returned data always asks to be
//! read again; plaintext is handed to rustls only once its previous records
//! are on the wire, so rustls holds at most [`FEED_BYTES`] plus record
//! overhead, and what it holds counts against the output limit. Knows
//! nothing of lines, frames or the mio `Registry`.

use std::io::{self, Read as _, Write as _};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use super::Read;
use crate::conn::outbuf::{Flushed, OutBuf};

/// Plaintext handed to rustls at a time: a few 16 KiB records, well under
/// rustls' own 64 KiB buffer limit, so a feed is never refused.
const FEED_BYTES: usize = 32 * 1024;

/// A TLS session over a TCP socket.
#[derive(Debug)]
pub struct TlsStream {
    sock: TcpStream,
    tls: ServerConnection,
    /// Plaintext handed to rustls whose records are not all written yet.
    fed: usize,
    /// The socket reported EOF (rustls still holds what came before it).
    eof: bool,
    /// Our close_notify has been queued.
    notified: bool,
}

impl TlsStream {
    /// Starts a server-side session on an accepted socket.
    pub fn new(sock: TcpStream, config: Arc<ServerConfig>) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            sock,
            tls: ServerConnection::new(config)?,
            fed: 0,
            eof: false,
            notified: false,
        })
    }

    pub(super) fn socket(&self) -> &TcpStream {
        &self.sock
    }

    pub(super) fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Reads decrypted input into `buf`, reading and decrypting from the
    /// socket as needed. A protocol error comes back as `InvalidData`
    /// saying what the peer did; the alert rustls queued is sent best
    /// effort.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<Read> {
        loop {
            match self.tls.reader().read(buf) {
                // The peer's close_notify: a clean end.
                Ok(0) => return Ok(Read::Eof),
                // rustls may hold more plaintext than fit: read again
                // without waiting for an event that will not come.
                Ok(n) => return Ok(Read::Data { n, more: true }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP closed without close_notify: as good as EOF for a
                // line protocol (every whole line was already delivered).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Read::Eof),
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(Read::Eof);
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Tell the peer why (the alert is small; best effort).
                let _ = self.tls.write_tls(&mut self.sock);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TLS: {e}"),
                ));
            }
        }
    }

    /// True while rustls holds records to send (handshake messages after a
    /// read, or output it could not write yet).
    pub(super) fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes pending records, then encrypts and writes queued plaintext,
    /// until all is out, the socket is full or `budget` bytes went out.
    /// With `closing`, a close_notify follows the last byte; a session
    /// still in its handshake drops its queued output instead.
    pub(super) fn write_from(
        &mut self,
        out: &mut OutBuf,
        budget: usize,
        closing: bool,
    ) -> io::Result<Flushed> {
        let mut written = 0;
        loop {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.sock) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.fed = 0;
            if out.is_empty() {
                if closing && !self.notified && !self.tls.is_handshaking() {
                    self.notified = true;
                    self.tls.send_close_notify();
                    continue;
                }
                return Ok(Flushed::All);
            }
            if self.tls.is_handshaking() {
                if closing {
                    // No session yet, so nothing queued can ever reach the
                    // peer: drop it and end now (a FIN, no close_notify)
                    // instead of waiting out the flush deadline for a
                    // handshake that may never finish.
                    out.consume(out.len());
                    continue;
                }
                return Ok(Flushed::Waiting);
            }
            if written >= budget {
                return Ok(Flushed::Budget);
            }
            let before = out.len();
            let feed = (budget - written).min(FEED_BYTES);
            out.write_to(&mut self.tls.writer(), feed)?;
            self.fed += before - out.len();
        }
    }

    /// Plaintext rustls holds beyond the connection's buffer.
    pub(super) fn buffered_out(&self) -> usize {
        self.fed
    }

    /// Ends our sending side (after [`write_from`](Self::write_from) with
    /// `closing` sent the close_notify).
    pub(super) fn shutdown_write(&mut self) -> io::Result<()> {
        self.sock.flush()?;
        self.sock.shutdown(Shutdown::Write)
    }
}
