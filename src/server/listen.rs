//! The listener and accepting: binding with a deep backlog, accepting up to
//! a cap per turn, refusing connections over `max_clients` without
//! resetting them, and pausing (not spinning) when `accept` fails for lack
//! of descriptors. Accept errors are logged, never fatal.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::handle::Counters;
use super::Server;
use crate::config::Config;
use crate::conn::codec::Codec;
use crate::conn::transport::Transport;
use crate::conn::Conn;
use crate::protocol::lines::{self, Refusal};

/// After an accept error such as EMFILE, stop accepting this long instead of
/// spinning on a listener that stays readable.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The kernel's accept queue: mio listens with 128, too few for a burst of
/// thousands of connects (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: libc::c_int = 4096;
/// Most connections accepted per turn (Redis: `MAX_ACCEPTS_PER_CALL`), so a
/// connect storm cannot starve the clients already here.
const MAX_ACCEPTS_PER_TURN: usize = 1000;
/// Most refused connections held at once while their `! server full` is
/// written; past that, a refusal is written best effort and closed at once.
const MAX_REFUSING: usize = 16;

/// Binds the listener and registers it under `token`.
pub(super) fn bind(config: &Config, registry: &Registry, token: Token) -> io::Result<TcpListener> {
    let mut listener = TcpListener::bind(config.addr)?;
    // SAFETY: listen() on a socket we own; calling it again on a listening
    // socket only changes the backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        warn!(
            "could not raise the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
    registry.register(&mut listener, token, Interest::READABLE)?;
    Ok(listener)
}

impl Server {
    /// Accepts waiting connections, at most [`MAX_ACCEPTS_PER_TURN`].
    pub(super) fn accept_all(&mut self, now: Instant) {
        self.accept_more = false;
        if self.accept_paused_until.is_some() {
            return;
        }
        for _ in 0..MAX_ACCEPTS_PER_TURN {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let counters = &self.shared.counters;
            let (socket, peer) = match listener.accept() {
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
                    Counters::bump(&counters.accept_errors);
                    warn!("accept failed: {e}; pausing accepts for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            Counters::bump(&counters.accepted);
            if self.table.members() >= self.config.max_clients {
                Counters::bump(&counters.refused);
                self.refuse(socket, peer, Refusal::ServerFull);
                continue;
            }
            // Chat lines are small and latency matters more than packet count.
            let _ = socket.set_nodelay(true);
            let Some(key) = self.admit(socket, peer) else {
                continue;
            };
            let id = self.table.get(key).map_or(0, |c| c.id());
            info!("conn #{id}: connected from {peer}");
            self.login_deadlines
                .push(now + self.config.login_timeout, key, id);
            let (table, chat) = (&self.table, &self.chat);
            self.login_deadlines.compact(table.len(), |key, id| {
                table.get(key).is_some_and(|c| c.id() == id && c.is_open())
                    && !chat.is_registered(key)
            });
            self.chat.connected(key, &mut self.table);
        }
        // The cap was reached: more may be waiting with no new edge.
        self.accept_more = true;
    }

    /// Registers an accepted socket and puts it in the table.
    fn admit(&mut self, socket: TcpStream, peer: std::net::SocketAddr) -> Option<usize> {
        let id = self.next_id;
        let registry = self.poll.registry();
        let result = self.table.insert_with(|key| {
            let mut conn = Conn::new(Transport::Plain(socket), Codec::default(), peer, id);
            let socket = conn.transport_mut().socket_mut();
            registry
                .register(socket, Token(key), Interest::READABLE)
                .map(|()| conn)
        });
        match result {
            Ok(key) => {
                self.next_id += 1;
                Some(key)
            }
            Err(e) => {
                warn!("could not register {peer}: {e}");
                None
            }
        }
    }

    /// Refuses a connection with one `! ` line. While few refusals are in
    /// flight it joins the table to be written and closed gracefully (a
    /// peer that already sent its name is not reset); past that it gets one
    /// best-effort write.
    fn refuse(&mut self, mut socket: TcpStream, peer: std::net::SocketAddr, why: Refusal<'_>) {
        debug!("refusing {peer}: {why}");
        let mut line = String::new();
        lines::refusal(&mut line, why);
        if self.table.refusing() >= MAX_REFUSING {
            let _ = io::Write::write(&mut socket, line.as_bytes());
            return;
        }
        if let Some(key) = self.admit(socket, peer) {
            self.table.insert_refusal(key, line.as_bytes());
        }
    }
}
