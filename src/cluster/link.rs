//! One connection to Redis as another socket in the server's `Poll`:
//! non-blocking connect, commands encoded as RESP arrays and pipelined
//! into one output buffer, replies (or pub/sub messages) decoded in order
//! by `redis-protocol`. No blocking client, no thread. Knows nothing of
//! what the commands mean; the bus matches replies to what it asked.

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame as _};

/// Read this much at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A Redis connection.
#[derive(Debug)]
pub struct RedisConn {
    sock: TcpStream,
    token: Token,
    /// Encoded commands not yet written, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// Bytes read and not yet decoded.
    input: Vec<u8>,
    /// The non-blocking connect has completed.
    connected: bool,
    /// Registered for writable events (output is stuck, or connecting).
    writable: bool,
}

impl RedisConn {
    /// Starts connecting to `addr`; completion shows as a writable event.
    pub fn connect(addr: SocketAddr, token: Token, registry: &Registry) -> io::Result<RedisConn> {
        let mut sock = TcpStream::connect(addr)?;
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(RedisConn {
            sock,
            token,
            out: Vec::with_capacity(4096),
            sent: 0,
            input: Vec::new(),
            connected: false,
            writable: true,
        })
    }

    /// Stops polling it (the socket closes when it is dropped). What is
    /// still queued is dropped unsent: the bus has failed it already.
    pub fn close(mut self, registry: &Registry) {
        self.out.clear();
        self.sent = 0;
        let _ = registry.deregister(&mut self.sock);
    }

    /// Queues one command (sent at the next [`flush`](Self::flush)).
    pub fn command(&mut self, args: &[&[u8]]) {
        let frame = OwnedFrame::Array(
            args.iter()
                .map(|a| OwnedFrame::BulkString(a.to_vec()))
                .collect(),
        );
        let start = self.out.len();
        self.out.resize(start + frame.encode_len(false), 0);
        // The buffer was sized by the same encoder: this cannot fail.
        if encode(&mut self.out[start..], &frame, false).is_err() {
            self.out.truncate(start);
        }
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Handles a readiness event: completes the connect, then reads. Calls
    /// `frame` for each decoded reply or message, in order. An error (or
    /// Redis closing) means the connection is lost.
    pub fn ready(&mut self, mut frame: impl FnMut(OwnedFrame)) -> io::Result<()> {
        if !self.connected {
            if let Some(e) = self.sock.take_error()? {
                return Err(e);
            }
            match self.sock.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "Redis closed the connection",
                    ))
                }
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut used = 0;
        loop {
            match decode(&self.input[used..]) {
                Ok(Some((f, n))) => {
                    used += n;
                    frame(f);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad reply from Redis: {e:?}"),
                    ))
                }
            }
        }
        self.input.drain(..used);
        Ok(())
    }

    /// Writes queued commands; asks for writable events only while the
    /// socket is full (or the connect is still in progress).
    pub fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        if self.connected {
            while self.sent < self.out.len() {
                match self.sock.write(&self.out[self.sent..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.sent == self.out.len() {
                self.out.clear();
                self.sent = 0;
            }
        }
        let want = !self.connected || self.pending() > 0;
        if want != self.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.sock, self.token, interest)?;
            self.writable = want;
        }
        Ok(())
    }
}

impl Drop for RedisConn {
    /// Writes what is still queued before the socket closes. When the
    /// server stops, its last clients' LEAVEs are queued in the very turn
    /// that ends the loop, so no flush follows; without this their rooms
    /// would hear `(node lost)` seconds later and their names stay held.
    /// Best effort: the socket is non-blocking and nothing waits for it.
    fn drop(&mut self) {
        if !self.connected {
            return;
        }
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// Where the cluster's Redis is: `redis://[user:password@]host:port[/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host and port as given (resolved when the server starts).
    pub host: String,
    /// The port (6379 if not given).
    pub port: u16,
    /// `AUTH` user, if any (`default` when only a password is given).
    pub user: Option<String>,
    /// `AUTH` password, if any.
    pub password: Option<String>,
    /// `SELECT` database.
    pub db: u32,
}

impl std::str::FromStr for RedisUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<RedisUrl, String> {
        let usage = || format!("{s:?} is not redis://[user:password@]host[:port][/db]");
        let rest = s.strip_prefix("redis://").ok_or_else(usage)?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((hp, "")) => (hp, 0),
            Some((hp, db)) => (hp, db.parse().map_err(|_| usage())?),
            None => (rest, 0),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                (h, p.parse().map_err(|_| usage())?)
            }
            _ => (hostport, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(usage());
        }
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((u, p)) => ((!u.is_empty()).then(|| u.to_owned()), Some(p.to_owned())),
                None => (Some(a.to_owned()), None),
            },
        };
        Ok(RedisUrl {
            host: host.to_owned(),
            port,
            user,
            password,
            db,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u: RedisUrl = "redis://127.0.0.1:6380/2".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 2));
        let u: RedisUrl = "redis://bob:s3cret@localhost".parse().unwrap();
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert_eq!(u.port, 6379);
        let u: RedisUrl = "redis://:pw@[::1]:7000".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.user, u.password.as_deref()),
            ("::1", 7000, None, Some("pw"))
        );
        for bad in ["localhost:6379", "redis://", "redis://h:x", "redis://h/x"] {
            assert!(bad.parse::<RedisUrl>().is_err(), "{bad}");
        }
    }
}
