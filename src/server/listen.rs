//! Listeners and accepting: binding with a deep backlog, accepting up to a
//! cap per turn, per-address limits, refusing connections without resetting
//! them, TCP keepalive on every client, and pausing (not spinning) when
//! `accept` fails for lack of descriptors. Accept errors are logged, never
//! fatal.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

use super::handle::Counters;
use super::{Listen, Server};
use crate::conn::codec::Codec;
use crate::conn::transport::tls::TlsStream;
use crate::conn::transport::Transport;
use crate::conn::{Conn, Role};
use crate::http;
use crate::limits::peers::Refused;
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
/// Most refused connections held at once while their refusal is written;
/// past that, a refusal is written best effort and closed at once.
const MAX_REFUSING: usize = 16;
/// Listener tokens count down from here (outside any slab key).
const FIRST_LISTENER_TOKEN: usize = usize::MAX - 8;

/// One listening socket and what its connections are for.
#[derive(Debug)]
pub(super) struct Listener {
    socket: TcpListener,
    /// Which listener it is: what its connections are for, and whether
    /// they speak TLS.
    pub kind: Listen,
    pub addr: SocketAddr,
    /// The per-turn cap was reached: accept again next turn, since no new
    /// event announces connections already waiting.
    pub more: bool,
}

/// The token of listener `i`.
pub(super) fn token(i: usize) -> Token {
    Token(FIRST_LISTENER_TOKEN - i)
}

/// The listener a token names, if it names one.
pub(super) fn index(token: Token, count: usize) -> Option<usize> {
    let i = FIRST_LISTENER_TOKEN.checked_sub(token.0)?;
    (i < count).then_some(i)
}

/// Binds a listener for `role` and registers it as listener `i`.
pub(super) fn bind(
    addr: SocketAddr,
    kind: Listen,
    reuse_port: bool,
    registry: &Registry,
    i: usize,
) -> io::Result<Listener> {
    let mut socket = if reuse_port {
        bind_shared(addr)?
    } else {
        let socket = TcpListener::bind(addr)?;
        // SAFETY: listen() on a socket we own; calling it again on a
        // listening socket only changes the backlog.
        if unsafe { libc::listen(socket.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
            warn!(
                "could not raise the listen backlog: {}",
                io::Error::last_os_error()
            );
        }
        socket
    };
    registry.register(&mut socket, token(i), Interest::READABLE)?;
    let addr = socket.local_addr()?;
    Ok(Listener {
        socket,
        kind,
        addr,
        more: false,
    })
}

/// A listener with `SO_REUSEPORT`: several processes bind the same port
/// and the kernel spreads new connections over them (one process per core).
fn bind_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

impl Listener {
    /// Stops listening.
    pub fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
    }
}

impl Server {
    /// Accepts waiting connections on listener `i`, at most
    /// [`MAX_ACCEPTS_PER_TURN`].
    pub(super) fn accept_all(&mut self, i: usize, now: Instant) {
        let Some(listener) = self.listeners.get_mut(i) else {
            return;
        };
        listener.more = false;
        if self.accept_paused_until.is_some() {
            return;
        }
        for _ in 0..MAX_ACCEPTS_PER_TURN {
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            let (role, tls) = listener.kind.role();
            let counters = &self.shared.counters;
            let (socket, peer) = match listener.socket.accept() {
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
                self.refuse(socket, peer, (role, tls), Refusal::ServerFull);
                continue;
            }
            // The metrics endpoint is for operators (loopback by default):
            // per-address limits are for chat and web clients.
            let limited = role != Role::Metrics;
            if let Err(why) = self.peers.admit_if(limited, peer.ip(), self.table.now_us()) {
                let (counter, refusal) = match why {
                    Refused::TooMany => (&counters.per_ip_refusals, Refusal::TooManyFromAddress),
                    Refused::TooFast => (&counters.connect_rate_refusals, Refusal::TooFast),
                };
                Counters::bump(counter);
                self.refuse(socket, peer, (role, tls), refusal);
                continue;
            }
            self.tune(&socket, role);
            let codec = match role {
                Role::Chat => Codec::default(),
                Role::Metrics | Role::Web => Codec::http(),
            };
            let transport = match self.transport(socket, tls) {
                Ok(t) => t,
                Err(e) => {
                    warn!("could not start TLS for {peer}: {e}");
                    if limited {
                        self.peers.release(peer.ip());
                    }
                    continue;
                }
            };
            let Some(key) = self.admit(transport, peer, role, codec) else {
                if limited {
                    self.peers.release(peer.ip());
                }
                continue;
            };
            let id = self.table.get(key).map_or(0, |c| c.id());
            match role {
                Role::Chat => {
                    info!("conn #{id}: connected from {peer}");
                    self.chat_connected(key, id);
                }
                Role::Metrics | Role::Web => {
                    debug!("conn #{id}: {role:?} request from {peer}");
                    self.request_deadlines
                        .push(now + self.config.request_timeout, key, id);
                }
            }
        }
        // The cap was reached: more may be waiting with no new edge.
        if let Some(listener) = self.listeners.get_mut(i) {
            listener.more = true;
        }
    }

    /// A chat client arrived (accepted, or upgraded to a WebSocket): it
    /// gets the prompt and a login deadline.
    pub(super) fn chat_connected(&mut self, key: usize, id: u64) {
        let now = self.table.instant_now();
        self.login_deadlines
            .push(now + self.config.login_timeout, key, id);
        let (table, chat) = (&self.table, &self.chat);
        self.login_deadlines.compact(table.len(), |key, id| {
            table.get(key).is_some_and(|c| c.id() == id && c.is_open()) && !chat.is_registered(key)
        });
        self.chat.connected(key, &mut self.table);
    }

    /// Socket options for an accepted client.
    fn tune(&self, socket: &TcpStream, role: Role) {
        // Chat lines are small and latency matters more than packet count.
        let _ = socket.set_nodelay(true);
        if let (Some(idle), Role::Chat) = (self.config.keepalive, role) {
            // A peer that vanishes (no FIN, no RST) is found by probes:
            // after `idle`, every sixth of it, three times.
            let interval = (idle / 6).max(Duration::from_secs(1));
            let keepalive = TcpKeepalive::new()
                .with_time(idle)
                .with_interval(interval)
                .with_retries(3);
            if let Err(e) = SockRef::from(socket).set_tcp_keepalive(&keepalive) {
                debug!("could not set keepalive: {e}");
            }
        }
    }

    /// The transport for an accepted socket: TLS with the current
    /// certificate on a TLS listener (a reload changes it for new
    /// connections only), plain TCP otherwise.
    fn transport(&self, socket: TcpStream, tls: bool) -> Result<Transport, rustls::Error> {
        match (&self.tls_config, tls) {
            (Some(config), true) => Ok(Transport::Tls(Box::new(TlsStream::new(
                socket,
                Arc::clone(config),
            )?))),
            _ => Ok(Transport::Plain(socket)),
        }
    }

    /// Registers an accepted connection and puts it in the table.
    fn admit(
        &mut self,
        transport: Transport,
        peer: SocketAddr,
        role: Role,
        codec: Codec,
    ) -> Option<usize> {
        let id = self.next_id;
        let registry = self.poll.registry();
        let result = self.table.insert_with(|key| {
            let mut conn = Conn::new(transport, codec, role, peer, id);
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

    /// Refuses a connection with one `! ` line (an HTTP 503 on the metrics
    /// and web ports; a TLS port just closes). While few refusals are in flight it joins the table to be
    /// written and closed gracefully (a peer that already sent its name is
    /// not reset); past that it gets one best-effort write.
    fn refuse(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        (role, tls): (Role, bool),
        why: Refusal<'_>,
    ) {
        // A full server refuses everyone: not worth a line each at info.
        if why == Refusal::ServerFull {
            debug!("refusing {peer}: {why}");
        } else {
            info!("refusing {peer}: {why}");
        }
        if tls {
            // Nothing readable can be said before a handshake (chat over
            // TLS, or HTTPS): close.
            return;
        }
        let bytes = match role {
            Role::Chat => {
                let mut line = String::new();
                lines::refusal(&mut line, why);
                line.into_bytes()
            }
            Role::Metrics | Role::Web => http::error(503),
        };
        if self.table.refusing() >= MAX_REFUSING {
            let _ = io::Write::write(&mut socket, &bytes);
            return;
        }
        if let Some(key) = self.admit(Transport::Plain(socket), peer, role, Codec::default()) {
            self.table.insert_refusal(key, &bytes);
        }
    }
}
