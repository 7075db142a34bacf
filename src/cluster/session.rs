//! The life of a node's two Redis connections: connect (both are sockets in
//! the server's `Poll`), authenticate, load the scripts, subscribe to this
//! node's channel and its rooms, tick, and — when either connection fails,
//! including Redis dropping a subscriber over its output-buffer limit —
//! close both, back off with jitter, and start again. Replies on the
//! command connection are matched to what was asked, in order.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::{Registry, Token};
use redis_protocol::resp2::types::OwnedFrame;

use super::link::RedisConn;
use super::scripts::{self, ScriptId, ALIVE_SECS};
use super::{event, ClusterConfig, Op, RedisBus, Reply};
use crate::outbox::Outbox;

/// The command connection's token (outside any slab key or listener).
pub const CMD_TOKEN: Token = Token(usize::MAX - 3);
/// The subscription connection's token.
pub const SUB_TOKEN: Token = Token(usize::MAX - 4);

/// How often a node refreshes its liveness key and looks for dead nodes.
const TICK: Duration = Duration::from_secs(1);
/// The first retry after losing Redis; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connect that takes longer than this counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected; try again at `retry_at`.
    Down,
    /// Connected or connecting, scripts and subscription not all confirmed.
    Starting,
    /// Serving.
    Ready,
}

/// A node's connections to Redis and what is in flight on them.
#[derive(Debug)]
pub(super) struct Session {
    config: ClusterConfig,
    /// `cr:n:<node>`: this node's own channel (join bursts, private
    /// messages), compared with every event's channel.
    node_channel: String,
    state: State,
    cmd: Option<RedisConn>,
    sub: Option<RedisConn>,
    /// Replies expected on the command connection, in order.
    pending: VecDeque<Op>,
    /// Plain replies (AUTH, SELECT) expected on the subscription.
    sub_setup: usize,
    shas: Vec<Option<String>>,
    node_subscribed: bool,
    /// The node has been cut off since it was last ready.
    degraded: bool,
    retry_at: Instant,
    backoff: Duration,
    started_at: Instant,
    next_tick: Instant,
    /// LEAVEs of clients that left while Redis was away (their names must
    /// still be given back).
    leave_later: Vec<Vec<Vec<u8>>>,
    rng: u64,
}

impl Session {
    pub(super) fn new(config: ClusterConfig) -> Session {
        let now = Instant::now();
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
        Session {
            node_channel: format!("cr:n:{}", config.node),
            config,
            state: State::Down,
            cmd: None,
            sub: None,
            pending: VecDeque::new(),
            sub_setup: 0,
            shas: vec![None; scripts::ALL.len()],
            node_subscribed: false,
            degraded: false,
            retry_at: now,
            backoff: MIN_BACKOFF,
            started_at: now,
            next_tick: now,
            leave_later: Vec::new(),
            rng: seed | 1,
        }
    }

    pub(super) fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// EVALSHA `script` with the node's name then `args`.
    pub(super) fn eval(&mut self, script: ScriptId, args: &[&[u8]], op: Op) {
        let node = self.config.node.clone();
        let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 1);
        all.push(node.as_bytes());
        all.extend_from_slice(args);
        self.eval_bare(script, &all, op);
    }

    /// EVALSHA `script` with exactly `args`.
    pub(super) fn eval_bare(&mut self, script: ScriptId, args: &[&[u8]], op: Op) {
        let (Some(cmd), Some(Some(sha))) = (self.cmd.as_mut(), self.shas.get(script as usize))
        else {
            return;
        };
        let mut all: Vec<&[u8]> = Vec::with_capacity(args.len() + 3);
        all.extend_from_slice(&[b"EVALSHA", sha.as_bytes(), b"0"]);
        all.extend_from_slice(args);
        cmd.command(&all);
        self.pending.push_back(op);
    }

    pub(super) fn subscribe(&mut self, lroom: &str) {
        if let Some(sub) = self.sub.as_mut() {
            sub.command(&[b"SUBSCRIBE", format!("cr:r:{lroom}").as_bytes()]);
        }
    }

    pub(super) fn unsubscribe(&mut self, lroom: &str) {
        if let Some(sub) = self.sub.as_mut() {
            sub.command(&[b"UNSUBSCRIBE", format!("cr:r:{lroom}").as_bytes()]);
        }
    }

    /// Keeps a LEAVE for when Redis is back.
    pub(super) fn leave_later(&mut self, args: &[&[u8]]) {
        self.leave_later
            .push(args.iter().map(|a| a.to_vec()).collect());
    }

    /// When the loop must call [`RedisBus::on_timer`] next.
    pub(super) fn deadline(&self) -> Instant {
        match self.state {
            State::Down => self.retry_at,
            State::Starting => self.started_at + CONNECT_TIMEOUT,
            State::Ready => self.next_tick,
        }
    }

    /// The next backoff, with ±25% jitter so nodes cut off together do not
    /// all come back in the same millisecond.
    fn next_backoff(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let base = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let quarter = base.as_micros() as u64 / 4;
        let jitter = if quarter == 0 {
            0
        } else {
            self.rng % (2 * quarter)
        };
        Duration::from_micros(base.as_micros() as u64 - quarter + jitter)
    }

    /// Opens both connections and queues the setup on each.
    fn connect(&mut self, registry: &Registry, now: Instant) -> io::Result<()> {
        let mut cmd = RedisConn::connect(self.config.addr, CMD_TOKEN, registry)?;
        let mut sub = match RedisConn::connect(self.config.addr, SUB_TOKEN, registry) {
            Ok(sub) => sub,
            Err(e) => {
                cmd.close(registry);
                return Err(e);
            }
        };
        self.pending.clear();
        self.sub_setup = 0;
        let url = &self.config.url;
        for conn in [&mut cmd, &mut sub] {
            if let Some(pw) = &url.password {
                let user = url.user.as_deref().unwrap_or("default");
                conn.command(&[b"AUTH", user.as_bytes(), pw.as_bytes()]);
            }
            if url.db != 0 {
                conn.command(&[b"SELECT", url.db.to_string().as_bytes()]);
            }
        }
        let setup = usize::from(url.password.is_some()) + usize::from(url.db != 0);
        for _ in 0..setup {
            self.pending.push_back(Op::Setup);
        }
        self.sub_setup = setup;
        for (i, script) in scripts::ALL.iter().enumerate() {
            cmd.command(&[b"SCRIPT", b"LOAD", script.source().as_bytes()]);
            self.pending.push_back(Op::Load(i));
        }
        sub.command(&[b"SUBSCRIBE", self.node_channel.as_bytes()]);
        self.shas = vec![None; scripts::ALL.len()];
        self.node_subscribed = false;
        self.cmd = Some(cmd);
        self.sub = Some(sub);
        self.state = State::Starting;
        self.started_at = now;
        Ok(())
    }

    /// Closes both connections; what was pending is returned to be failed.
    fn close(&mut self, registry: &Registry, now: Instant) -> Vec<Op> {
        if let Some(c) = self.cmd.take() {
            c.close(registry);
        }
        if let Some(s) = self.sub.take() {
            s.close(registry);
        }
        self.state = State::Down;
        self.degraded = true;
        self.retry_at = now + self.next_backoff();
        self.pending.drain(..).collect()
    }
}

impl RedisBus {
    /// Starts connecting (the server calls this once, after binding).
    pub fn start(&mut self, registry: &Registry, now: Instant) {
        info!(
            "cluster: node {} joining through redis at {} ({})",
            self.node, self.session.config.url.host, self.session.config.addr
        );
        self.session.degraded = false;
        if let Err(e) = self.session.connect(registry, now) {
            warn!(
                "cluster: cannot reach redis at {}: {e}",
                self.session.config.addr
            );
            self.session.close(registry, now);
            self.session.degraded = false;
        }
    }

    /// When [`on_timer`](Self::on_timer) is due.
    pub fn next_deadline(&self) -> Instant {
        self.session.deadline()
    }

    /// Ticks, retries a lost connection, or gives up on a slow connect.
    pub fn on_timer(&mut self, registry: &Registry, now: Instant, out: &mut impl Outbox) {
        match self.session.state {
            State::Down if now >= self.session.retry_at => {
                if let Err(e) = self.session.connect(registry, now) {
                    let pending = self.session.close(registry, now);
                    self.degrade(pending, false, out);
                    info!(
                        "cluster: redis still unreachable ({e}); next try in {:?}",
                        self.session.retry_at - now
                    );
                }
            }
            State::Starting if now >= self.session.started_at + CONNECT_TIMEOUT => {
                self.lose(registry, now, "connecting timed out", out);
            }
            State::Ready if now >= self.session.next_tick => {
                self.session.next_tick = now + TICK;
                let secs = ALIVE_SECS.to_string();
                self.session
                    .eval(ScriptId::Tick, &[secs.as_bytes()], Op::Tick);
            }
            _ => {}
        }
    }

    /// Writes what is queued on both connections.
    pub fn flush(&mut self, registry: &Registry, now: Instant, out: &mut impl Outbox) {
        let mut failed = None;
        for conn in [self.session.cmd.as_mut(), self.session.sub.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = conn.flush(registry) {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            self.lose(registry, now, &e.to_string(), out);
        }
    }

    /// A readiness event on one of the connections.
    pub fn ready(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let mut frames = Vec::new();
        let conn = if token == CMD_TOKEN {
            self.session.cmd.as_mut()
        } else {
            self.session.sub.as_mut()
        };
        let Some(conn) = conn else {
            return;
        };
        if let Err(e) = conn.ready(|f| frames.push(f)) {
            // Handle what arrived before the failure first.
            self.frames(token, frames, registry, now, out);
            return self.lose(registry, now, &e.to_string(), out);
        }
        self.frames(token, frames, registry, now, out);
    }

    fn frames(
        &mut self,
        token: Token,
        frames: Vec<OwnedFrame>,
        registry: &Registry,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        for frame in frames {
            if self.session.cmd.is_none() {
                return; // lost meanwhile
            }
            let result = if token == CMD_TOKEN {
                self.cmd_frame(frame, out)
            } else {
                self.sub_frame(frame, out)
            };
            if let Err(why) = result {
                return self.lose(registry, now, &why, out);
            }
        }
        self.check_ready(out);
    }

    fn cmd_frame(&mut self, frame: OwnedFrame, out: &mut impl Outbox) -> Result<(), String> {
        let Some(op) = self.session.pending.pop_front() else {
            return Err("a reply nobody asked for".into());
        };
        let reply = flatten(frame);
        match (&op, &reply) {
            (Op::Setup, Reply::Error(e)) => {
                error!("cluster: redis refused the connection setup: {e}");
                return Err(format!("setup refused: {e}"));
            }
            (Op::Load(i), Reply::Text(sha)) => {
                self.session.shas[*i] = Some(sha.clone());
            }
            (Op::Load(i), _) => {
                return Err(format!(
                    "SCRIPT LOAD of {} failed: {reply:?}",
                    scripts::ALL[*i].name
                ));
            }
            (_, Reply::Error(e)) if e.starts_with("NOSCRIPT") => {
                return Err("redis lost our scripts (restarted?)".into());
            }
            (_, Reply::Error(e)) => {
                warn!("cluster: script error: {e}");
            }
            (Op::Tick, Reply::Text(n)) if n != "0" => {
                info!("cluster: reclaimed {n} dead node(s)");
            }
            _ => {}
        }
        self.reply(op, reply, out);
        Ok(())
    }

    fn sub_frame(&mut self, frame: OwnedFrame, out: &mut impl Outbox) -> Result<(), String> {
        let OwnedFrame::Array(parts) = frame else {
            if self.session.sub_setup > 0 {
                self.session.sub_setup -= 1;
                if let OwnedFrame::Error(e) = frame {
                    return Err(format!("setup refused: {e}"));
                }
                return Ok(());
            }
            return Err(format!("unexpected frame on the subscription: {frame:?}"));
        };
        // Borrowed from the frame: an event is read, never copied.
        let part = |i: usize| match parts.get(i) {
            Some(OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b)) => b.as_slice(),
            _ => &[],
        };
        let channel = String::from_utf8_lossy(part(1));
        match part(0) {
            b"message" => {
                let Some(fields) = event::fields(part(2)) else {
                    warn!("cluster: malformed event on {channel}");
                    return Ok(());
                };
                if let Some(lroom) = channel.strip_prefix("cr:r:") {
                    self.room_event(lroom, &fields, out);
                } else if channel == self.session.node_channel {
                    self.node_event(&fields, out);
                }
            }
            b"subscribe" => {
                if channel == self.session.node_channel {
                    self.session.node_subscribed = true;
                    // Rooms with members here (after a reconnect).
                    self.resubscribe_all();
                } else if let Some(lroom) = channel.strip_prefix("cr:r:") {
                    self.subscribed(lroom);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Starting → Ready once every script is loaded and this node's
    /// channel is subscribed, and (after a reconnect) every room with
    /// members here is subscribed again: until then a line, or the join
    /// notice of a client put back, could be published before this node
    /// hears the room, and its members would miss it.
    fn check_ready(&mut self, out: &mut impl Outbox) {
        let s = &self.session;
        if s.state != State::Starting
            || !s.node_subscribed
            || s.shas.iter().any(Option::is_none)
            || !self.rooms_subscribed()
        {
            return;
        }
        let s = &mut self.session;
        s.state = State::Ready;
        s.backoff = MIN_BACKOFF;
        s.next_tick = Instant::now();
        let secs = ALIVE_SECS.to_string();
        self.session
            .eval(ScriptId::Tick, &[secs.as_bytes()], Op::Tick);
        info!("cluster: node {} ready", self.node);
        for args in std::mem::take(&mut self.session.leave_later) {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            self.session.eval(ScriptId::Leave, &args, Op::Leave);
        }
        if std::mem::take(&mut self.session.degraded) {
            self.restored(out);
        }
    }

    /// Either connection failed: close both, fail what was in flight, tell
    /// the clients, retry later.
    fn lose(&mut self, registry: &Registry, now: Instant, why: &str, out: &mut impl Outbox) {
        let was = self.session.state;
        let pending = self.session.close(registry, now);
        if was == State::Ready {
            warn!("cluster: lost redis ({why}); reconnecting");
        } else {
            info!(
                "cluster: redis not ready ({why}); next try in {:?}",
                self.session.retry_at - now
            );
        }
        self.degrade(pending, was == State::Ready, out);
    }
}

/// A RESP frame as the scripts' replies are read.
fn flatten(frame: OwnedFrame) -> Reply {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    match frame {
        OwnedFrame::SimpleString(b) | OwnedFrame::BulkString(b) => Reply::Text(text(b)),
        OwnedFrame::Integer(i) => Reply::Text(i.to_string()),
        OwnedFrame::Error(e) => Reply::Error(e),
        OwnedFrame::Null => Reply::Nil,
        OwnedFrame::Array(items) => Reply::List(
            items
                .into_iter()
                .map(|f| match flatten(f) {
                    Reply::Text(t) => t,
                    _ => String::new(),
                })
                .collect(),
        ),
    }
}
