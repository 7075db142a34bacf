//! The load tester's one event loop: a mio `Poll` over every client socket,
//! paced connects, batched reads framed by the crate's `LineBuf` (or, over
//! WebSocket, by `ws::Decoder`), optionally through a rustls
//! `ClientConnection` driven sans-I/O on the same non-blocking socket, and
//! the senders' pre-encoded messages written straight after each event
//! batch. It owns sockets and counting state; it does not decide what a
//! scenario does or print anything (the scenarios drive it turn by turn).

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatroom::framing::{Frame, LineBuf};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};
use tungstenite::protocol::frame::coding::{Control, OpCode};

use crate::payload::{self, Template, PROBE_SENDER};
use crate::tally::{Seen, Tally};
use crate::wire::{Decoder, Event, Target};
use crate::ws;

/// Longest line we buffer while framing; far above any line we send or expect.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// One read may take this much: big enough that a busy socket is drained in
/// one or two syscalls.
const READ_BUF_BYTES: usize = 64 * 1024;
/// A server that has not completed one connection in this long counts as
/// down: a dropped SYN is retried after 1 s, so this allows one retry.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A server that took connections but registered no client in this long
/// (from its first connection) is not a chat server we can talk to, or hung.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// One server address the clients are spread over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The host as given (a name or an address literal), for messages.
    pub host: String,
}

impl Endpoint {
    /// `host:port` as an HTTP `Host:` header wants it (IPv6 in brackets).
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.addr.port())
        } else {
            format!("{}:{}", self.host, self.addr.port())
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.parse::<IpAddr>().is_ok() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}:{} ({})", self.host, self.addr.port(), self.addr.ip())
        }
    }
}

/// Whether each endpoint is answering, so a run can stop at once when a
/// server is down or goes away instead of waiting for its timeout.
#[derive(Debug, Default)]
struct Reach {
    /// When the first connection to it was started.
    first_try: Option<Instant>,
    /// When a connection to it was first established.
    up_since: Option<Instant>,
    /// Some client of it registered at some point.
    ever_registered: bool,
    /// Connections to it now, being opened or open.
    open: usize,
    /// Connections it closed or broke while we wanted them.
    dropped: u64,
    /// Why the first failed connection failed.
    first_error: Option<String>,
    /// The first thing it said that explains a close: its first error
    /// line, or its shutdown notice.
    said: Option<String>,
    /// Names it refused while keeping the connection (it asked for
    /// another): those clients will not register.
    refused: u64,
}

/// What the endpoints' state says about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every endpoint answers (or may still).
    Fine,
    /// An endpoint never accepted a connection: the message says why.
    Down(String),
    /// An endpoint closed every connection it had: the message says how.
    Gone(String),
}

/// ` (it said: ...)` after a message, when the endpoint said something.
struct Said<'a>(Option<&'a str>);

impl std::fmt::Display for Said<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (it said: {s})"),
            None => Ok(()),
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which protocol to speak.
    pub target: Target,
    /// The servers; client `i` connects to `endpoints[i % len]`.
    pub endpoints: Vec<Endpoint>,
    /// Local addresses to spread client sockets over (empty: let the kernel pick).
    pub src_ips: Vec<IpAddr>,
    /// Bytes per message line on the wire, newline included.
    pub line_bytes: usize,
    /// Most connections being opened or registered at once, so the server's
    /// listen backlog never overflows (a dropped SYN costs a 1 s retransmit).
    pub connect_batch: usize,
    /// A prefix making this run's names unique on a server shared with other runs.
    pub name_prefix: String,
    /// Rooms the clients are spread over (chatroom): client `i` joins room
    /// `(i div endpoints) mod rooms` right after its name, so each room
    /// spans every endpoint. 1: everyone stays where the server puts
    /// newcomers.
    pub rooms: usize,
    /// Every connection over TLS, if set.
    pub tls: Option<Tls>,
    /// Every client over WebSocket (`GET /ws`), one text frame per line.
    pub ws: bool,
}

impl Options {
    /// How clients reach the server, for reports.
    pub fn transport_name(&self) -> &'static str {
        match (self.tls.is_some(), self.ws) {
            (false, false) => "tcp",
            (true, false) => "tls",
            (false, true) => "ws",
            (true, true) => "wss",
        }
    }
}

/// How to speak TLS to the endpoints.
#[derive(Debug, Clone)]
pub struct Tls {
    /// Trust roots and protocol versions, shared by every session.
    pub config: Arc<rustls::ClientConfig>,
    /// The name to verify each endpoint's certificate against, by index.
    pub names: Vec<ServerName<'static>>,
}

/// What the senders do after each event batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Nothing.
    Off,
    /// Closed loop: each sender keeps at most `window` of its own messages
    /// unconfirmed (its echo not back yet), until it has sent `limit`.
    Window {
        /// Most unconfirmed messages per sender.
        window: u32,
        /// Messages per sender.
        limit: u32,
    },
    /// Open loop: every sender sends one message each `interval_ns`, its own
    /// schedule offset so that sends are spread evenly, until `end_ns`. Each
    /// message carries its intended send time, so a late send counts as latency.
    Schedule {
        /// Gap between one sender's messages.
        interval_ns: u64,
        /// When the first message is due.
        start_ns: u64,
        /// No send is scheduled at or after this time.
        end_ns: u64,
    },
}

/// One socket: a client's receiving connection or (Redis) a sender's
/// publishing connection.
#[derive(Debug)]
struct Conn {
    sock: TcpStream,
    /// The client it belongs to.
    client: usize,
    /// Index of its endpoint.
    ep: usize,
    /// True for a Redis PUBLISH connection, which receives only replies.
    publisher: bool,
    /// The TCP connect has completed.
    connected: bool,
    /// It can carry protocol lines: connected, and over TLS handshaken,
    /// over WebSocket upgraded. Failures before this are failed connects.
    established: bool,
    /// The TLS session, if the run is over TLS: `out` is plaintext for it.
    tls: Option<Box<ClientConnection>>,
    /// The WebSocket state, if the run is over WebSocket.
    ws: Option<WsLink>,
    /// Failed or closed by the peer; removed at the end of the event batch so
    /// a later event in the same batch never reaches a reused slot.
    dead: bool,
    /// Bytes queued for the socket; `out[out_at..]` is still unsent.
    out: Vec<u8>,
    out_at: usize,
    lines: LineBuf,
    decoder: Decoder,
}

/// One WebSocket client connection's state.
#[derive(Debug)]
struct WsLink {
    /// The key of our upgrade request, to check the answer against.
    key: String,
    /// The `101` has come: what follows is frames.
    upgraded: bool,
    /// The answer's head so far, until it is complete.
    head: Vec<u8>,
    frames: ws::Decoder,
    /// The mask of this connection's own frames (its name, pongs).
    mask: [u8; 4],
}

/// A WebSocket mask for the `n`-th use: no zero byte, so a server that
/// forgot to unmask would see garbage.
fn ws_mask(n: u64) -> [u8; 4] {
    ((n as u32).wrapping_mul(0x9e37_79b9) | 0x0101_0101).to_le_bytes()
}

/// One simulated user.
#[derive(Debug)]
pub struct Client {
    /// Its current name (a new one after each rejoin).
    pub name: String,
    /// Rejoins so far.
    pub gen: u32,
    /// Key of its receiving connection.
    recv: Option<usize>,
    /// Key of its publishing connection (Redis senders only).
    publ: Option<usize>,
    /// The server confirmed its registration (tutorial: its name was sent).
    pub registered: bool,
    /// It received a probe (tutorial only: proof it is in the broadcast list).
    pub probed: bool,
    /// When it registered, in ns since the run began.
    pub registered_ns: u64,
    /// The room it joins (an index into `State::room_names`).
    pub room: usize,
    /// The server answered its name with an error (`! ...`); a prompt
    /// after that means the name was refused and the connection kept.
    pub refused: bool,
    /// That refusal has been counted against its endpoint.
    refusal_counted: bool,
}

/// One sending client's state.
#[derive(Debug)]
pub struct Sender {
    /// The client that sends (and receives its own echo).
    pub client: usize,
    template: Template,
    /// Messages sent so far; the next one has this sequence number.
    pub sent: u32,
    /// Own messages whose echo came back (the window's lower edge).
    pub confirmed: u32,
    /// Intended time of the next open-loop send.
    next_due_ns: u64,
    /// Already in the list of senders to refill after this batch.
    woken: bool,
}

/// Things that went right or wrong, for the report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connects completed.
    pub connected: u64,
    /// Connects that failed.
    pub connect_errors: u64,
    /// Connections the server closed or broke while we wanted them.
    pub disconnects: u64,
    /// Error lines (`! ...`, `-ERR`) from the server.
    pub server_errors: u64,
    /// Lines or payloads that made no sense, or were misattributed.
    pub malformed: u64,
    /// The first few problems, for the report.
    pub notes: Vec<String>,
    /// When the last counted delivery arrived, ns since the run began.
    pub last_delivery_ns: u64,
}

impl Counters {
    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.notes.len() < 5 {
            self.notes.push(what());
        }
    }
}

/// Everything line handling touches, apart from the sockets.
#[derive(Debug)]
pub struct State {
    target: Target,
    base: Instant,
    payload_len: usize,
    /// All clients, by index (also their receiver index in the tally).
    pub clients: Vec<Client>,
    /// All senders, by index (the number in their payloads).
    pub senders: Vec<Sender>,
    /// Delivery counts.
    pub tally: Tally,
    /// Errors and other events.
    pub c: Counters,
    /// Senders whose window moved during this batch.
    woken: Vec<usize>,
    /// Clients registered now.
    pub registered: usize,
    /// Clients that have received a probe.
    pub probed: usize,
    /// Publishing connections connected now.
    pub publishers: usize,
    /// Clients opened but not yet registered (for connect pacing).
    inflight: usize,
    /// Registrations of clients that had left and came back (soak).
    pub rejoins: u64,
    /// Per endpoint: is it answering.
    reach: Vec<Reach>,
    /// The rooms clients join after their names (empty: none, they stay
    /// where the server puts them).
    room_names: Vec<String>,
    /// Clients per room.
    room_sizes: Vec<u64>,
}

impl State {
    /// Counts a connection that could not be opened to endpoint `ep`.
    fn connect_failed(&mut self, ep: usize, why: String) {
        self.c.connect_errors += 1;
        self.reach[ep]
            .first_error
            .get_or_insert_with(|| why.clone());
        self.c.note(|| format!("connect: {why}"));
    }

    /// Nanoseconds since the run began: the clock of every stamp.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn on_line(
        &mut self,
        client: usize,
        publisher: bool,
        decoder: &mut Decoder,
        line: &[u8],
        now: u64,
    ) {
        let cl = &self.clients[client];
        let room = self.room_names.get(cl.room).map(String::as_str);
        let ev = decoder.line(self.target, &cl.name, room, line);
        match ev {
            Event::Nothing => {}
            Event::Prompt => {
                let ep = client % self.reach.len();
                let cl = &mut self.clients[client];
                if cl.refused && !cl.registered && !cl.refusal_counted {
                    // Refused for good: it no longer holds a connect slot,
                    // so the connect phase ends once the others settle.
                    cl.refusal_counted = true;
                    self.reach[ep].refused += 1;
                    self.inflight = self.inflight.saturating_sub(1);
                }
            }
            Event::Shutdown => {
                let ep = client % self.reach.len();
                self.reach[ep]
                    .said
                    .get_or_insert_with(|| "server shutting down".into());
            }
            Event::Registered if !publisher => self.registered(client, now),
            Event::Delivery { from, payload } if !publisher => {
                self.delivery(client, from, payload, now)
            }
            Event::ServerError(e) => {
                self.c.server_errors += 1;
                if !self.clients[client].registered {
                    self.clients[client].refused = true;
                }
                let ep = client % self.reach.len();
                self.reach[ep].said.get_or_insert_with(|| format!("! {e}"));
                let name = &self.clients[client].name;
                self.c.note(|| format!("server error to {name}: {e}"));
            }
            Event::Malformed(_) | Event::Registered | Event::Delivery { .. } => {
                self.c.malformed += 1;
                let text = String::from_utf8_lossy(line);
                self.c.note(|| format!("unexpected line: {text:.120}"));
            }
        }
    }

    fn registered(&mut self, client: usize, now: u64) {
        let cl = &mut self.clients[client];
        if !cl.registered {
            cl.registered = true;
            cl.refused = false;
            cl.refusal_counted = false;
            cl.registered_ns = now;
            self.registered += 1;
            if cl.gen > 0 {
                self.rejoins += 1;
            }
            let ep = client % self.reach.len();
            self.reach[ep].ever_registered = true;
            self.inflight = self.inflight.saturating_sub(1);
        }
    }

    fn delivery(&mut self, client: usize, from: Option<&str>, payload: &[u8], now: u64) {
        let stamp = match payload::decode(payload, Some(self.payload_len)) {
            Ok(s) => s,
            Err(e) => {
                self.c.malformed += 1;
                let text = String::from_utf8_lossy(payload);
                self.c.note(|| format!("{e}: {text:.120}"));
                return;
            }
        };
        if stamp.sender == PROBE_SENDER {
            let cl = &mut self.clients[client];
            if !cl.probed {
                cl.probed = true;
                self.probed += 1;
            }
            return;
        }
        let s = stamp.sender as usize;
        let Some(sender) = self.senders.get(s) else {
            self.c.malformed += 1;
            self.c.note(|| format!("message from unknown sender {s}"));
            return;
        };
        if let Some(from) = from {
            let want = &self.clients[sender.client].name;
            if from != want {
                self.c.malformed += 1;
                self.c
                    .note(|| format!("message of {want} attributed to {from}"));
                return;
            }
        }
        let seen = self
            .tally
            .record(client, s, stamp.seq, now.saturating_sub(stamp.sent_ns));
        self.c.last_delivery_ns = now;
        let sender = &mut self.senders[s];
        if client == sender.client && seen != Seen::Late {
            sender.confirmed = sender.confirmed.max(stamp.seq + 1);
            if !sender.woken {
                sender.woken = true;
                self.woken.push(s);
            }
        }
    }
}

/// The event loop and everything it drives.
#[derive(Debug)]
pub struct Driver {
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    /// One read buffer shared by all sockets: lines are framed straight out
    /// of it (TLS: records are decrypted from it).
    rbuf: Vec<u8>,
    /// Connections found dead during the current batch.
    closing: Vec<usize>,
    /// Clients waiting to be opened.
    queue: VecDeque<usize>,
    /// Round-robin position in `opts.src_ips`.
    next_src: usize,
    opts: Options,
    /// WebSocket connections opened so far (for their keys and masks).
    ws_opened: u64,
    /// Probe messages (tutorial), sent by client 0.
    probe: Template,
    probes_sent: u32,
    /// What senders do after each batch.
    pub mode: SendMode,
    /// Counting state.
    pub st: State,
}

impl Driver {
    /// A driver for `clients` clients, of which `sender_clients[i]` is sender `i`.
    pub fn new(opts: Options, clients: usize, sender_clients: &[usize]) -> io::Result<Driver> {
        let target = opts.target;
        let clients_vec = (0..clients)
            .map(|i| Client {
                name: format!("{}{i}", opts.name_prefix),
                gen: 0,
                recv: None,
                publ: None,
                registered: false,
                probed: false,
                registered_ns: 0,
                // Client i talks to endpoint i mod E: rooms go by i div E,
                // so every room has members on every endpoint.
                room: (i / opts.endpoints.len().max(1)) % opts.rooms.max(1),
                refused: false,
                refusal_counted: false,
            })
            .collect::<Vec<_>>();
        let rooms = opts.rooms.max(1);
        let room_names = if rooms > 1 {
            (0..rooms)
                .map(|r| format!("{}r{r}", opts.name_prefix))
                .collect()
        } else {
            Vec::new()
        };
        let mut room_sizes = vec![0u64; rooms];
        let mut tally = Tally::new(clients, sender_clients.len());
        for (i, c) in clients_vec.iter().enumerate() {
            room_sizes[c.room] += 1;
            tally.set_group(i, c.room);
        }
        let senders = sender_clients
            .iter()
            .enumerate()
            .map(|(i, &client)| Sender {
                client,
                template: target.template(
                    opts.line_bytes,
                    i as u32,
                    opts.ws.then(|| ws_mask(i as u64)),
                ),
                sent: 0,
                confirmed: 0,
                next_due_ns: 0,
                woken: false,
            })
            .collect();
        // Timers (ppoll) fire when due, not up to 50 us later: latency samples
        // start at the intended send time, so sending late would inflate them.
        // SAFETY: PR_SET_TIMERSLACK takes one integer and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        Ok(Driver {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Slab::with_capacity(clients + sender_clients.len()),
            rbuf: vec![0; READ_BUF_BYTES],
            closing: Vec::new(),
            queue: VecDeque::new(),
            next_src: 0,
            ws_opened: 0,
            probe: target.template(opts.line_bytes, PROBE_SENDER, None),
            probes_sent: 0,
            mode: SendMode::Off,
            st: State {
                target,
                base: Instant::now(),
                payload_len: opts.line_bytes - 1,
                clients: clients_vec,
                senders,
                tally,
                c: Counters::default(),
                woken: Vec::new(),
                registered: 0,
                probed: 0,
                publishers: 0,
                inflight: 0,
                rejoins: 0,
                reach: opts.endpoints.iter().map(|_| Reach::default()).collect(),
                room_names,
                room_sizes,
            },
            opts,
        })
    }

    /// The target server's protocol.
    pub fn target(&self) -> Target {
        self.opts.target
    }

    /// Down if an endpoint failed (or did not answer within
    /// [`CONNECT_TIMEOUT`]) before any connection to it was established,
    /// or registered no client within [`REGISTER_TIMEOUT`]; gone if one
    /// that was up has closed every connection we had to it.
    pub fn health(&self) -> Health {
        for (r, ep) in self.st.reach.iter().zip(&self.opts.endpoints) {
            // Formatted only into a message that is returned.
            let said = Said(r.said.as_deref());
            match r.up_since {
                None => {
                    if let Some(e) = &r.first_error {
                        return Health::Down(format!("cannot connect to {ep}: {e}"));
                    }
                    if r.first_try.is_some_and(|t| t.elapsed() >= CONNECT_TIMEOUT) {
                        return Health::Down(format!(
                            "no answer from {ep} within {} s",
                            CONNECT_TIMEOUT.as_secs()
                        ));
                    }
                }
                Some(_) if r.open == 0 && r.dropped > 0 && !r.ever_registered => {
                    return Health::Down(format!(
                        "the server at {ep} closed every connection before any client \
                         registered{said}"
                    ));
                }
                Some(t) if !r.ever_registered && t.elapsed() >= REGISTER_TIMEOUT => {
                    return Health::Down(format!(
                        "connected to {ep}, but no client registered within {} s{said}",
                        REGISTER_TIMEOUT.as_secs()
                    ));
                }
                Some(_) if r.open == 0 && r.dropped > 0 => {
                    return Health::Gone(format!(
                        "the server at {ep} closed all connections{said}"
                    ));
                }
                Some(_) => {}
            }
        }
        Health::Fine
    }

    /// Asks for `client` to be connected (paced by `connect_batch`).
    pub fn queue_connect(&mut self, client: usize) {
        self.queue.push_back(client);
    }

    /// Which servers refused names and asked for others (those clients
    /// will not register), with what they said.
    pub fn refusals(&self) -> Option<String> {
        let each: Vec<String> = self
            .st
            .reach
            .iter()
            .zip(&self.opts.endpoints)
            .filter(|(r, _)| r.refused > 0)
            .map(|(r, ep)| {
                let said = r.said.as_deref().unwrap_or("nothing");
                let s = if r.refused == 1 { "" } else { "s" };
                format!("the server at {ep} refused {} name{s} ({said})", r.refused)
            })
            .collect();
        (!each.is_empty()).then(|| each.join("; "))
    }

    /// Nothing queued or being opened: waiting longer brings no new registrations.
    pub fn connects_settled(&self) -> bool {
        self.queue.is_empty() && self.st.inflight == 0
    }

    /// True when every client is registered and every publisher connected
    /// (and, for the tutorial server, every client has seen a probe).
    pub fn all_ready(&self) -> bool {
        let n = self.st.clients.len();
        self.st.registered == n
            && (!self.opts.target.has_publishers() || self.st.publishers == self.st.senders.len())
            && (self.opts.target.confirms_registration() || self.st.probed == n)
    }

    /// Closes `client`'s connections on purpose (it leaves the room).
    pub fn close_client(&mut self, client: usize) {
        let cl = &mut self.st.clients[client];
        let keys = [cl.recv.take(), cl.publ.take()];
        if cl.registered {
            cl.registered = false;
            self.st.registered -= 1;
        } else if keys[0].is_some() {
            self.st.inflight = self.st.inflight.saturating_sub(1);
        }
        for key in keys.into_iter().flatten() {
            let mut conn = self.conns.remove(key);
            self.st.reach[conn.ep].open -= 1;
            if conn.publisher && conn.established {
                self.st.publishers -= 1;
            }
            // Deregistering can only fail if it was never registered; the
            // socket is closed just after either way.
            let _ = self.poll.registry().deregister(&mut conn.sock);
        }
    }

    /// Gives `client` a new name and forgets what it saw, then queues its connect.
    pub fn rejoin(&mut self, client: usize) {
        let cl = &mut self.st.clients[client];
        cl.gen += 1;
        cl.name = format!("{}{client}g{}", self.opts.name_prefix, cl.gen);
        cl.probed = false;
        cl.refused = false;
        cl.refusal_counted = false;
        self.st.tally.reset(client);
        self.queue_connect(client);
    }

    /// Sends one probe from client 0 (tutorial registration barrier).
    pub fn send_probe(&mut self) {
        let Some(key) = self.st.clients.first().and_then(|c| c.recv) else {
            return;
        };
        let now = self.st.now_ns();
        let bytes = self.probe.stamp(self.probes_sent, now);
        self.probes_sent += 1;
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.established {
                conn.out.extend_from_slice(bytes);
                self.flush(key);
            }
        }
    }

    /// Sets the senders going in `mode`, starting now.
    pub fn start(&mut self, mode: SendMode) {
        self.mode = mode;
        let n = self.st.senders.len() as u64;
        for (i, s) in self.st.senders.iter_mut().enumerate() {
            if let SendMode::Schedule {
                interval_ns,
                start_ns,
                ..
            } = mode
            {
                // Spread the senders' schedules evenly over one interval.
                s.next_due_ns = start_ns + interval_ns * i as u64 / n.max(1);
            }
            if !s.woken {
                s.woken = true;
                self.st.woken.push(i);
            }
        }
        self.pump();
    }

    /// Sends one message from sender `s` now, whatever the mode.
    pub fn send_one(&mut self, s: usize) {
        let now = self.st.now_ns();
        self.send_batch(s, 1, |_| now);
    }

    /// True when every sender has sent all it will in the current mode.
    pub fn sending_done(&self) -> bool {
        match self.mode {
            SendMode::Off => true,
            SendMode::Window { limit, .. } => self.st.senders.iter().all(|s| s.sent >= limit),
            SendMode::Schedule { end_ns, .. } => {
                self.st.senders.iter().all(|s| s.next_due_ns >= end_ns)
            }
        }
    }

    /// Messages sent so far by all senders.
    pub fn sent_total(&self) -> u64 {
        self.st.senders.iter().map(|s| u64::from(s.sent)).sum()
    }

    /// Deliveries due for what was sent so far when every client stays:
    /// each message reaches every member of its sender's room.
    pub fn deliveries_due(&self) -> u64 {
        let st = &self.st;
        st.senders
            .iter()
            .map(|s| u64::from(s.sent) * st.room_sizes[st.clients[s.client].room])
            .sum()
    }

    /// One loop turn: open queued connects, wait for events (at most
    /// `max_wait`, less when an open-loop send is due), handle them, then
    /// refill and flush the senders and free dead connections.
    pub fn turn(&mut self, max_wait: Duration) -> io::Result<()> {
        self.open_queued();
        let mut timeout = self.timeout(max_wait);
        if matches!(self.mode, SendMode::Schedule { .. }) && !timeout.is_zero() {
            // An epoll fd polls readable while it has events ready.
            self.wait_precise(timeout)?;
            timeout = Duration::ZERO;
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let keys: Vec<(usize, bool, bool, bool)> = self
            .events
            .iter()
            .map(|ev| {
                let broken = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
                (
                    ev.token().0,
                    ev.is_readable() || broken,
                    ev.is_writable(),
                    broken,
                )
            })
            .collect();
        for (key, readable, writable, broken) in keys {
            self.ready(key, readable, writable, broken);
        }
        self.pump();
        for key in std::mem::take(&mut self.closing) {
            self.remove_dead(key);
        }
        Ok(())
    }

    /// How long the next poll may wait.
    fn timeout(&self, max_wait: Duration) -> Duration {
        let SendMode::Schedule { end_ns, .. } = self.mode else {
            return max_wait;
        };
        let due = self
            .st
            .senders
            .iter()
            .map(|s| s.next_due_ns)
            .filter(|&d| d < end_ns)
            .min();
        let Some(due) = due else {
            return max_wait;
        };
        let now = self.st.now_ns();
        max_wait.min(Duration::from_nanos(due.saturating_sub(now)))
    }

    /// Waits until the poller has events or `timeout` passes, to the
    /// nanosecond: epoll's own timeout is in milliseconds, which would add
    /// up to 1 ms to every scheduled send and so to every latency sample,
    /// and spinning instead would burn the core the tool reads with.
    fn wait_precise(&self, timeout: Duration) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.poll.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd, a valid timespec, no signal mask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    fn open_queued(&mut self) {
        while self.st.inflight < self.opts.connect_batch {
            let Some(client) = self.queue.pop_front() else {
                break;
            };
            if self.st.clients[client].recv.is_some() {
                continue; // already open
            }
            let ep = client % self.opts.endpoints.len();
            match self.open_conn(client, ep, false) {
                Ok(key) => {
                    self.st.clients[client].recv = Some(key);
                    self.st.inflight += 1;
                }
                Err(e) => {
                    self.st.connect_failed(ep, describe(&e));
                    continue;
                }
            }
            let is_sender = self.st.senders.iter().any(|s| s.client == client);
            if self.opts.target.has_publishers() && is_sender {
                match self.open_conn(client, ep, true) {
                    Ok(key) => self.st.clients[client].publ = Some(key),
                    Err(e) => self.st.connect_failed(ep, describe(&e)),
                }
            }
        }
    }

    /// Starts a non-blocking connect to endpoint `ep`, from the next source
    /// address if any.
    fn open_conn(&mut self, client: usize, ep: usize, publisher: bool) -> io::Result<usize> {
        let addr = self.opts.endpoints[ep].addr;
        self.st.reach[ep].first_try.get_or_insert_with(Instant::now);
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        // Latency is what we measure: never let Nagle hold a message back.
        sock.set_tcp_nodelay(true)?;
        if !self.opts.src_ips.is_empty() {
            let ip = self.opts.src_ips[self.next_src % self.opts.src_ips.len()];
            self.next_src += 1;
            set_bind_address_no_port(&sock)?;
            sock.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let tls = match &self.opts.tls {
            Some(t) => {
                let name = t.names[ep].clone();
                let session = ClientConnection::new(Arc::clone(&t.config), name)
                    .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
                Some(Box::new(session))
            }
            None => None,
        };
        let ws = (self.opts.ws && !publisher).then(|| {
            self.ws_opened += 1;
            WsLink {
                key: ws::key(),
                upgraded: false,
                head: Vec::new(),
                frames: ws::Decoder::default(),
                mask: ws_mask(self.ws_opened),
            }
        });
        let mut stream = TcpStream::from_std(std::net::TcpStream::from(sock));
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        // Both interests once, edge-triggered: no re-registration syscalls;
        // a writable edge with nothing queued costs one check.
        self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.st.reach[ep].open += 1;
        entry.insert(Conn {
            sock: stream,
            client,
            ep,
            publisher,
            connected: false,
            established: false,
            tls,
            ws,
            dead: false,
            out: Vec::new(),
            out_at: 0,
            lines: LineBuf::new(),
            decoder: Decoder::default(),
        });
        Ok(key)
    }

    fn ready(&mut self, key: usize, readable: bool, writable: bool, broken: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.dead {
            return;
        }
        if !conn.connected {
            if !(writable || broken) {
                return;
            }
            let err = match conn.sock.take_error() {
                Ok(None) => match conn.sock.peer_addr() {
                    Ok(_) => None,
                    // Not finished yet: a spurious wakeup.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected && !broken => return,
                    Err(e) => Some(e),
                },
                Ok(Some(e)) | Err(e) => Some(e),
            };
            if let Some(e) = err {
                let ep = conn.ep;
                self.st.connect_failed(ep, describe(&e));
                self.kill(key);
                return;
            }
            self.connected(key);
        }
        if readable {
            self.read_ready(key, broken);
        }
        if writable {
            self.flush(key);
        }
    }

    /// The TCP connect completed: start the TLS handshake and the
    /// WebSocket upgrade as the run asks (both go out in the first flush:
    /// rustls holds the request until the handshake is done), or, on plain
    /// TCP, register at once.
    fn connected(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        conn.connected = true;
        self.st.c.connected += 1;
        if let Some(link) = &conn.ws {
            let host = self.opts.endpoints[conn.ep].host_header();
            conn.out
                .extend_from_slice(&ws::upgrade_request(&host, &link.key));
        } else if conn.tls.is_none() {
            self.established(key);
        }
        self.flush(key);
    }

    /// The connection can carry protocol lines now: its endpoint is up,
    /// and a client's connection sends its registration.
    fn established(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if conn.established {
            return;
        }
        conn.established = true;
        self.st.reach[conn.ep]
            .up_since
            .get_or_insert_with(Instant::now);
        if conn.publisher {
            self.st.publishers += 1;
            return;
        }
        let cl = &self.st.clients[conn.client];
        let room = self.st.room_names.get(cl.room).map(String::as_str);
        let mask = conn.ws.as_ref().map(|l| l.mask);
        conn.out
            .extend_from_slice(&self.opts.target.register_bytes(&cl.name, room, mask));
        self.flush(key);
    }

    /// Reads what the socket has and counts every line in it.
    /// `closed`: the event already reported the peer's FIN or an error.
    fn read_ready(&mut self, key: usize, closed: bool) {
        match self.conns.get(key) {
            Some(conn) if conn.tls.is_some() => self.read_tls(key, closed),
            Some(_) => self.read_plain(key, closed),
            None => {}
        }
    }

    /// Reads until the socket is drained, framing lines straight out of the
    /// shared buffer and counting each one.
    fn read_plain(&mut self, key: usize, closed: bool) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Some(got) = read_some(&mut conn.sock, &mut self.rbuf) else {
                return;
            };
            match got {
                Ok(0) => {
                    let name = &self.st.clients[conn.client].name;
                    let why = format!("server closed the connection of {name}");
                    self.broken(key, why);
                    return;
                }
                Ok(n) => {
                    let now = self.st.now_ns();
                    let took = take(&mut self.st, conn, &self.rbuf[..n], now);
                    if !self.after_take(key, took) {
                        return;
                    }
                    // A short read on a stream socket means its receive queue
                    // is empty now; data or a FIN arriving later raises a new
                    // edge. So the extra read that would only say WouldBlock
                    // is skipped, unless the FIN (or an error) was already
                    // reported with this event: then no edge is left to come.
                    if n < self.rbuf.len() && !closed {
                        return;
                    }
                }
                Err(why) => {
                    self.broken(key, why);
                    return;
                }
            }
        }
    }

    /// Reads TLS records until the socket is drained, decrypting and
    /// counting as it goes, and writes whatever the session wants to send
    /// back (the client's handshake flights, alerts). The socket is read in
    /// `READ_BUF_BYTES` gulps and rustls is fed from memory: its own
    /// `read_tls` takes at most 4 KiB per syscall, which made a TLS run cost
    /// the tool four times the reads of a plain one and so measured the
    /// tool, not the server.
    fn read_tls(&mut self, key: usize, closed: bool) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let Some(got) = read_some(&mut conn.sock, &mut self.rbuf) else {
                return;
            };
            let Some(mut tls) = conn.tls.take() else {
                return;
            };
            let n = *got.as_ref().unwrap_or(&0);
            let mut eof = got == Ok(0);
            let mut records = &self.rbuf[..n];
            let mut handshaken = false;
            let mut took = got.map(|_| Took::default());
            // rustls takes a slice a record buffer at a time: feed, decrypt
            // and drain until this read is used up, or until the server's
            // close_notify (rustls ignores what follows it and takes no
            // more, so feeding on would never end).
            while took.is_ok() && !eof && !records.is_empty() {
                let fed = match tls.read_tls(&mut records) {
                    // Only after a close_notify (then `eof` is set already).
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!("TLS: {e}")),
                };
                let step = fed.and_then(|()| {
                    tls.process_new_packets().map_err(|e| {
                        // Our alert, best effort, as any client would send it.
                        let _ = tls.write_tls(&mut conn.sock);
                        format!("TLS: {e}")
                    })
                });
                handshaken |=
                    step.is_ok() && !conn.established && conn.ws.is_none() && !tls.is_handshaking();
                took = step.and(took);
                // Lines are framed straight out of rustls' plaintext.
                while let Ok(so_far) = &took {
                    let so_far = *so_far;
                    let mut reader = tls.reader();
                    match reader.fill_buf() {
                        Ok([]) => {
                            eof = true; // the server's close_notify
                            break;
                        }
                        Ok(plain) => {
                            let (len, now) = (plain.len(), self.st.now_ns());
                            took = take(&mut self.st, conn, plain, now).map(|t| t.or(so_far));
                            reader.consume(len);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => took = Err(format!("read: {e}")),
                    }
                }
            }
            conn.tls = Some(tls);
            if handshaken {
                self.established(key);
            }
            if took.is_ok() && eof {
                let name = &self.st.clients[conn_client(&self.conns, key)].name;
                took = Err(format!("server closed the connection of {name}"));
            }
            if !self.after_take(key, took) {
                return;
            }
            self.flush(key);
            // As in `read_plain`: a short read drained the socket.
            if n < self.rbuf.len() && !closed {
                return;
            }
        }
    }

    /// Acts on what [`take`] found; false if the connection broke.
    fn after_take(&mut self, key: usize, took: Result<Took, String>) -> bool {
        match took {
            Err(why) => {
                self.broken(key, why);
                false
            }
            Ok(t) => {
                if t.upgraded {
                    self.established(key);
                }
                if t.queued {
                    self.flush(key);
                }
                true
            }
        }
    }

    /// Writes what is queued until done or the socket is full (its writable
    /// edge brings us back): through the TLS session if there is one.
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.dead || !conn.connected {
            return;
        }
        let Conn {
            sock,
            tls,
            out,
            out_at,
            ..
        } = conn;
        let result = match tls {
            Some(tls) => write_tls(sock, tls, out, out_at),
            None => write_plain(sock, out, out_at),
        };
        if let Err(why) = result {
            self.broken(key, why);
        }
    }

    /// A connection failed. Before it was established that is a failed
    /// connect (a server that never lets one through is down); after, the
    /// server dropped it.
    fn broken(&mut self, key: usize, why: String) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.dead {
            return;
        }
        if conn.established {
            self.dropped(key, why);
        } else {
            let ep = conn.ep;
            self.st.connect_failed(ep, why);
            self.kill(key);
        }
    }

    /// Counts a connection the server closed or broke, and kills it.
    fn dropped(&mut self, key: usize, why: String) {
        if let Some(conn) = self.conns.get(key) {
            self.st.c.disconnects += 1;
            self.st.reach[conn.ep].dropped += 1;
            self.st.c.note(|| why);
            self.kill(key);
        }
    }

    /// Marks a connection dead; it is removed after the batch.
    fn kill(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dead {
                conn.dead = true;
                self.closing.push(key);
            }
        }
    }

    fn remove_dead(&mut self, key: usize) {
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.sock);
        self.st.reach[conn.ep].open -= 1;
        let cl = &mut self.st.clients[conn.client];
        if conn.publisher {
            cl.publ = None;
            if conn.established {
                self.st.publishers -= 1;
            }
        } else {
            cl.recv = None;
            if cl.registered {
                cl.registered = false;
                self.st.registered -= 1;
            } else {
                self.st.inflight = self.st.inflight.saturating_sub(1);
            }
        }
    }

    /// After a batch: refill and flush the senders the mode allows to send.
    fn pump(&mut self) {
        match self.mode {
            SendMode::Off => {}
            SendMode::Window { window, limit } => {
                let now = self.st.now_ns();
                for s in std::mem::take(&mut self.st.woken) {
                    let sender = &mut self.st.senders[s];
                    sender.woken = false;
                    let in_flight = sender.sent - sender.confirmed.min(sender.sent);
                    let n =
                        (limit.saturating_sub(sender.sent)).min(window.saturating_sub(in_flight));
                    self.send_batch(s, n, |_| now);
                }
            }
            SendMode::Schedule {
                interval_ns,
                end_ns,
                ..
            } => {
                self.st.woken.clear();
                for s in self.st.senders.iter_mut() {
                    s.woken = false;
                }
                let now = self.st.now_ns();
                for s in 0..self.st.senders.len() {
                    let due = self.st.senders[s].next_due_ns;
                    if due > now || due >= end_ns {
                        continue;
                    }
                    let last = now.min(end_ns - 1);
                    let n = ((last - due) / interval_ns + 1) as u32;
                    self.send_batch(s, n, |k| due + u64::from(k) * interval_ns);
                    self.st.senders[s].next_due_ns = due + u64::from(n) * interval_ns;
                }
            }
        }
    }

    /// Queues `n` messages from sender `s`, the k-th stamped `when(k)`, and flushes.
    fn send_batch(&mut self, s: usize, n: u32, when: impl Fn(u32) -> u64) {
        if n == 0 {
            return;
        }
        let sender = &mut self.st.senders[s];
        let cl = &self.st.clients[sender.client];
        let key = if self.opts.target.has_publishers() {
            cl.publ
        } else {
            cl.recv
        };
        let Some(conn) = key.and_then(|k| self.conns.get_mut(k)) else {
            return; // not connected: the message is not sent and not expected
        };
        if conn.dead || !conn.established {
            return;
        }
        for k in 0..n {
            conn.out
                .extend_from_slice(sender.template.stamp(sender.sent, when(k)));
            sender.sent += 1;
        }
        self.flush(key.expect("checked above"));
    }

    /// Closes every connection (at the end of a run) with a reset, so neither
    /// side keeps 19,000 sockets in TIME_WAIT between runs.
    pub fn close_all(&mut self) {
        for (_, conn) in self.conns.iter_mut() {
            let _ = socket2::SockRef::from(&conn.sock).set_linger(Some(Duration::ZERO));
            let _ = self.poll.registry().deregister(&mut conn.sock);
        }
        self.conns.clear();
        for r in &mut self.st.reach {
            r.open = 0;
        }
    }
}

/// One read from `sock` into `buf` (an interrupted read is retried):
/// `None` if it would block, `Some(Ok(0))` at EOF.
fn read_some(sock: &mut TcpStream, buf: &mut [u8]) -> Option<Result<usize, String>> {
    loop {
        match sock.read(buf) {
            Ok(n) => return Some(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(Err(format!("read: {}", describe(&e)))),
        }
    }
}

/// An I/O error in words, without Rust's `(os error N)` suffix.
pub fn describe(e: &io::Error) -> String {
    let kind = e.kind();
    match kind {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::TimedOut
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => kind.to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

/// The client a live connection belongs to.
fn conn_client(conns: &Slab<Conn>, key: usize) -> usize {
    conns[key].client
}

/// What received bytes led to, besides the lines counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Took {
    /// The WebSocket upgrade completed: the connection is established.
    upgraded: bool,
    /// Bytes were queued to send back (pongs).
    queued: bool,
}

impl Took {
    fn or(self, other: Took) -> Took {
        Took {
            upgraded: self.upgraded || other.upgraded,
            queued: self.queued || other.queued,
        }
    }
}

/// Hands `bytes` received on `conn` to its codec and counts each line;
/// `Err` says how the server broke the protocol or ended the stream.
fn take(st: &mut State, conn: &mut Conn, bytes: &[u8], now: u64) -> Result<Took, String> {
    let Conn {
        lines,
        decoder,
        client,
        publisher,
        ws,
        out,
        ..
    } = conn;
    let (client, publisher) = (*client, *publisher);
    let mut took = Took::default();
    let Some(link) = ws else {
        // The tutorial's prompt has no newline, so it is looked for in the
        // raw bytes. It is sent once the server has accepted us, which is
        // what connect pacing must wait for: a completed handshake only
        // means we sit in its backlog of 5.
        if st.target == Target::Tutorial
            && !st.clients[client].registered
            && memchr::memmem::find(bytes, b"NAME").is_some()
        {
            st.registered(client, now);
        }
        lines.push(bytes, MAX_LINE_BYTES, &mut |f| match f {
            Frame::Line(line) => st.on_line(client, publisher, decoder, line, now),
            Frame::TooLong => st.c.malformed += 1,
        });
        return Ok(took);
    };
    let after_head: Vec<u8>;
    let bytes = if link.upgraded {
        bytes
    } else {
        link.head.extend_from_slice(bytes);
        let Some(n) = ws::check_answer(&link.head, &link.key)? else {
            return Ok(took);
        };
        link.upgraded = true;
        took.upgraded = true;
        after_head = link.head.split_off(n);
        link.head = Vec::new();
        &after_head[..]
    };
    let mask = link.mask;
    let mut close = None;
    link.frames.feed(bytes, |m| match m {
        ws::Incoming::Text(line) => st.on_line(client, publisher, decoder, line, now),
        ws::Incoming::Ping(payload) => {
            ws::frame(OpCode::Control(Control::Pong), payload, mask, out);
            took.queued = true;
        }
        ws::Incoming::Close(code) => close = Some(code),
    })?;
    match close {
        None => Ok(took),
        Some(code) => {
            let name = &st.clients[client].name;
            let code = code.map_or(String::new(), |c| format!(" ({c})"));
            Err(format!("server closed the WebSocket of {name}{code}"))
        }
    }
}

/// Writes `out[*at..]` to the socket until done or it is full; `Err` says
/// why the connection broke.
fn write_plain(sock: &mut TcpStream, out: &mut Vec<u8>, at: &mut usize) -> Result<(), String> {
    while *at < out.len() {
        match sock.write(&out[*at..]) {
            Ok(0) => return Err("write: the socket took nothing".into()),
            Ok(n) => *at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                compact(out, at);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {}", describe(&e))),
        }
    }
    out.clear();
    *at = 0;
    Ok(())
}

/// Hands `out[*at..]` to the TLS session as far as its buffer takes it and
/// writes its records until done or the socket is full. Before the
/// handshake is done rustls holds the plaintext; the handshake's end
/// flushes again.
fn write_tls(
    sock: &mut TcpStream,
    tls: &mut ClientConnection,
    out: &mut Vec<u8>,
    at: &mut usize,
) -> Result<(), String> {
    loop {
        let before = *at;
        while *at < out.len() {
            match tls.writer().write(&out[*at..]) {
                Ok(0) => break, // its buffer is full until records go out
                Ok(n) => *at += n,
                Err(e) => return Err(format!("TLS: {e}")),
            }
        }
        let mut wrote = false;
        while tls.wants_write() {
            match tls.write_tls(sock) {
                Ok(0) => return Err("write: the socket took nothing".into()),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    compact(out, at);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {}", describe(&e))),
            }
        }
        if *at == out.len() {
            out.clear();
            *at = 0;
            return Ok(());
        }
        if *at == before && !wrote {
            compact(out, at);
            return Ok(()); // rustls waits (for the handshake): it will flush again
        }
    }
}

/// Drops the sent front of a backlog once it is over half of it, so the
/// buffer does not grow without bound at its front.
fn compact(out: &mut Vec<u8>, at: &mut usize) {
    if *at > out.len() / 2 {
        out.drain(..*at);
        *at = 0;
    }
}

/// Lets connect() pick the source port per 4-tuple after bind(ip, 0), so each
/// source address gives a full ephemeral port range towards the server.
fn set_bind_address_no_port(sock: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd, and a pointer to a c_int of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
