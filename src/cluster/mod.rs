//! The cluster bus: several chatroom processes as one chat, with Redis as
//! the shared state and the sequencer. Every change is a Lua script
//! ([`scripts`]) run over one pipelined command connection; every line a
//! room hears comes back over a second, subscribed connection, in the
//! order Redis published it, so all members on all nodes see one order
//! (local members too: nothing is delivered before Redis has ordered it).
//! Events addressed to one node (a client's join burst, a private message)
//! travel on that node's channel over the same subscription, so they keep
//! their place among the room's events.
//!
//! This file owns the bus's local view (who is here, in which room) and
//! turns the chat's requests into scripts; [`inbound`] is what Redis'
//! replies and published events do to that view; [`session`] owns the
//! connections' life (connect, load scripts, subscribe, lose Redis, come
//! back); [`link`] is one Redis socket; [`event`] decodes payloads.
//! Nothing here touches a client socket: lines go out through an
//! [`Outbox`].

pub mod event;
mod inbound;
pub mod link;
pub mod scripts;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;

use log::info;

use crate::bus::{Bus, ChatSettings, ClientId, MAX_LISTED};
use crate::history::HISTORY_BYTES_PER_ROOM;
use crate::outbox::Outbox;
use crate::protocol::lines::{self, Leave, Refusal, PROMPT_LINE};
use crate::protocol::LOBBY;
use link::RedisUrl;
use scripts::ScriptId;
use session::Session;

pub use session::{CMD_TOKEN, SUB_TOKEN};

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `--redis` as given.
    pub url: RedisUrl,
    /// Its address, resolved when the server starts.
    pub addr: SocketAddr,
    /// This node's name (`--node-name`): unique in the cluster.
    pub node: String,
}

/// A registered (or registering) client of this node.
#[derive(Debug)]
struct Local {
    id: u64,
    name: String,
    /// Its name lower-cased: its key in Redis.
    lname: String,
    /// The room it is in (lower-cased), once its join came back.
    room: Option<String>,
    /// Its registration was confirmed.
    registered: bool,
    /// Its register, join or nick is in flight: its input waits.
    waiting: bool,
    /// A `/nick` to this name failed with the connection: Redis may have
    /// run it; the restore undoes it there.
    lost_nick: Option<String>,
}

/// What this node knows of a room it has members in.
#[derive(Debug, Default)]
struct Room {
    /// Local members, in join order.
    members: Vec<usize>,
    /// Joins and leaves counted for the next summary (big rooms).
    joins: u32,
    leaves: u32,
    /// The room's name as shown.
    shown: String,
    sub: Sub,
    /// Scripts to run once the subscription is confirmed.
    queued: Vec<Queued>,
    /// Local clients on their way in (joining or registering): the room
    /// stays subscribed for them.
    arriving: Vec<ClientId>,
}

/// A room channel's subscription state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Sub {
    #[default]
    Off,
    /// SUBSCRIBE sent, not confirmed yet.
    Pending,
    On,
}

/// A script waiting for its room's subscription.
#[derive(Debug)]
enum Queued {
    Register(ClientId),
    Join(ClientId, String),
}

/// What a pending reply on the command connection answers.
#[derive(Debug)]
enum Op {
    /// AUTH or SELECT while connecting.
    Setup,
    /// SCRIPT LOAD of script `i`.
    Load(usize),
    Register(ClientId, String),
    Say(ClientId),
    Join(ClientId, String),
    Nick(ClientId, String),
    Msg(ClientId, String, String),
    Who(ClientId),
    Rooms(ClientId),
    TopicShow(ClientId),
    /// A script whose reply only matters if it says the name is gone.
    Check(ClientId),
    Leave,
    Tick,
    Restore(ClientId),
}

/// The cluster bus.
#[derive(Debug)]
pub struct RedisBus {
    node: String,
    settings: ChatSettings,
    now: u64,
    line: String,
    clients: Vec<Option<Local>>,
    registered: usize,
    rooms: HashMap<String, Room>,
    /// Keys that stopped waiting: the server reads them again.
    resumed: Vec<usize>,
    session: Session,
}

impl RedisBus {
    /// A bus for `config`; [`connect`](Self::connect) starts it.
    pub fn new(config: ClusterConfig, settings: ChatSettings) -> RedisBus {
        RedisBus {
            node: config.node.clone(),
            settings,
            now: 0,
            line: String::with_capacity(256),
            clients: Vec::new(),
            registered: 0,
            rooms: HashMap::new(),
            resumed: Vec::new(),
            session: Session::new(config),
        }
    }

    /// Keys that may be read again (their bus operation completed).
    pub fn take_resumed(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.resumed)
    }

    fn local(&self, key: usize) -> Option<&Local> {
        self.clients.get(key).and_then(Option::as_ref)
    }

    /// `key`'s id as a [`ClientId`], if it is a local client.
    fn client_id(&self, key: usize) -> Option<ClientId> {
        self.local(key).map(|l| ClientId { key, id: l.id })
    }

    /// The local client `c`, if it is still the same connection.
    fn local_of(&self, c: ClientId) -> Option<&Local> {
        self.local(c.key).filter(|l| l.id == c.id)
    }

    fn wait(&mut self, key: usize) {
        if let Some(l) = self.clients.get_mut(key).and_then(Option::as_mut) {
            l.waiting = true;
        }
    }

    /// `c`'s operation completed: its input is read again. A reply for a
    /// connection that has gone releases nothing, even if a newer one has
    /// its key and is waiting for its own.
    fn release(&mut self, c: ClientId) {
        let local = self.clients.get_mut(c.key).and_then(Option::as_mut);
        if let Some(l) = local.filter(|l| l.id == c.id && l.waiting) {
            l.waiting = false;
            self.resumed.push(c.key);
        }
    }

    fn refuse(&mut self, key: usize, r: Refusal<'_>, out: &mut impl Outbox) {
        self.line.clear();
        lines::refusal(&mut self.line, r);
        out.send(key, self.line.as_bytes());
    }

    /// Refuses a name: the error, then the prompt again.
    fn refuse_name(&mut self, key: usize, r: Refusal<'_>, out: &mut impl Outbox) {
        self.refuse(key, r, out);
        out.send(key, PROMPT_LINE.as_bytes());
    }

    fn notice(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        self.line.clear();
        lines::notice(&mut self.line, text);
        out.send(key, self.line.as_bytes());
    }

    /// Runs `script` with `args` (after the node name), expecting `op`.
    fn run(&mut self, script: ScriptId, args: &[&[u8]], op: Op) {
        self.session.eval(script, args, op);
    }

    /// The arguments every per-client script starts with.
    fn who_args(&self, key: usize) -> Option<(String, String, String)> {
        let l = self.local(key)?;
        Some((l.lname.clone(), key.to_string(), l.id.to_string()))
    }

    /// Runs a script about registered client `key`, if the bus is up;
    /// otherwise tells the client to try again.
    fn client_script(
        &mut self,
        key: usize,
        script: ScriptId,
        extra: &[&[u8]],
        op: Op,
        out: &mut impl Outbox,
    ) {
        if !self.session.is_ready() {
            return self.refuse(key, Refusal::Unavailable, out);
        }
        let Some((lname, k, id)) = self.who_args(key) else {
            return;
        };
        let mut args: Vec<&[u8]> = vec![lname.as_bytes(), k.as_bytes(), id.as_bytes()];
        args.extend_from_slice(extra);
        self.run(script, &args, op);
    }

    /// Sends `key`'s `text`, rendered by `render` (a chat or an action
    /// line), to its room through Redis.
    fn say_line(
        &mut self,
        key: usize,
        text: &str,
        render: fn(&mut String, &str, &str),
        out: &mut impl Outbox,
    ) {
        let Some(local) = self.clients.get(key).and_then(Option::as_ref) else {
            return;
        };
        let c = ClientId { key, id: local.id };
        self.line.clear();
        render(&mut self.line, &local.name, text);
        let line = self.line.trim_end_matches('\n').to_owned();
        let now = self.now.to_string();
        let max = self.settings.history_lines.to_string();
        let max_bytes = HISTORY_BYTES_PER_ROOM.to_string();
        self.client_script(
            key,
            ScriptId::Say,
            &[
                line.as_bytes(),
                now.as_bytes(),
                max.as_bytes(),
                max_bytes.as_bytes(),
            ],
            Op::Say(c),
            out,
        );
    }

    /// Makes sure this node hears `lroom`, then runs `queued` (at once if
    /// already subscribed).
    fn via_room(&mut self, lroom: &str, queued: Queued) {
        let room = self.rooms.entry(lroom.to_owned()).or_default();
        room.arriving.push(match &queued {
            Queued::Register(c) | Queued::Join(c, _) => *c,
        });
        match room.sub {
            Sub::On => self.run_queued(queued),
            Sub::Pending => room.queued.push(queued),
            Sub::Off => {
                room.sub = Sub::Pending;
                room.queued.push(queued);
                self.session.subscribe(lroom);
            }
        }
    }

    fn run_queued(&mut self, queued: Queued) {
        let cap = MAX_LISTED.to_string();
        match queued {
            Queued::Register(c) => {
                let Some(l) = self.local_of(c) else { return };
                let (name, k, id) = (l.name.clone(), c.key.to_string(), c.id.to_string());
                self.run(
                    ScriptId::Register,
                    &[
                        name.as_bytes(),
                        k.as_bytes(),
                        id.as_bytes(),
                        LOBBY.as_bytes(),
                        cap.as_bytes(),
                    ],
                    Op::Register(c, name.clone()),
                );
            }
            Queued::Join(c, room) => {
                if self.local_of(c).is_none() {
                    return;
                }
                let Some((lname, k, id)) = self.who_args(c.key) else {
                    return;
                };
                self.run(
                    ScriptId::Join,
                    &[
                        lname.as_bytes(),
                        k.as_bytes(),
                        id.as_bytes(),
                        room.as_bytes(),
                        cap.as_bytes(),
                    ],
                    Op::Join(c, room.to_ascii_lowercase()),
                );
            }
        }
    }

    /// Unsubscribes from `lroom` when nobody here is in it or on the way.
    fn maybe_unsubscribe(&mut self, lroom: &str) {
        let Some(room) = self.rooms.get(lroom) else {
            return;
        };
        if !room.members.is_empty()
            || !room.queued.is_empty()
            || !room.arriving.is_empty()
            || room.sub != Sub::On
        {
            return;
        }
        if room.joins > 0 || room.leaves > 0 {
            return; // its summary is still due; the flush comes back here
        }
        self.rooms.remove(lroom);
        self.session.unsubscribe(lroom);
    }

    /// Gives back the name `lname` that connection `c` held (or may hold: a
    /// no-op in Redis if it never did) and tells its room how it left: now
    /// if Redis is here, else once it is back.
    fn give_back(&mut self, lname: &str, c: ClientId, kind: &str, detail: &str) {
        let (k, id) = (c.key.to_string(), c.id.to_string());
        let args: [&[u8]; 5] = [
            lname.as_bytes(),
            k.as_bytes(),
            id.as_bytes(),
            kind.as_bytes(),
            detail.as_bytes(),
        ];
        if self.session.is_ready() {
            self.run(ScriptId::Leave, &args, Op::Leave);
        } else {
            self.session.leave_later(&args);
        }
    }

    /// `c` is no longer on its way into `lroom` (it arrived, or failed).
    fn arrived(&mut self, lroom: &str, c: ClientId) {
        if let Some(room) = self.rooms.get_mut(lroom) {
            room.arriving.retain(|a| *a != c);
        }
        self.maybe_unsubscribe(lroom);
    }

    /// Forgets local client `key` (it left or lost its name).
    fn forget(&mut self, key: usize) -> Option<Local> {
        let local = self.clients.get_mut(key).and_then(Option::take)?;
        if local.registered {
            self.registered -= 1;
        }
        let c = ClientId { key, id: local.id };
        let mut touched = Vec::new();
        // A member of its own room only (a join's event sets both, a
        // leave's removes it), so only that room's members are scanned:
        // scanning every room made each leave O(local clients).
        if let Some(room) = local.room.as_deref().and_then(|r| self.rooms.get_mut(r)) {
            let before = room.members.len();
            room.members.retain(|&k| k != key);
            if room.members.len() != before {
                touched.extend(local.room.clone());
            }
        }
        debug_assert!(
            self.rooms.values().all(|r| !r.members.contains(&key)),
            "conn key {key} listed in a room other than its own"
        );
        for (lroom, room) in &mut self.rooms {
            let before = room.arriving.len();
            room.arriving.retain(|a| *a != c);
            if room.arriving.len() != before && !touched.contains(lroom) {
                touched.push(lroom.clone());
            }
        }
        for lroom in touched {
            self.maybe_unsubscribe(&lroom);
        }
        Some(local)
    }
}

impl Bus for RedisBus {
    fn is_registered(&self, key: usize) -> bool {
        self.local(key).is_some_and(|l| l.registered)
    }

    fn is_waiting(&self, key: usize) -> bool {
        self.local(key).is_some_and(|l| l.waiting)
    }

    fn registered(&self) -> usize {
        self.registered
    }

    fn set_time(&mut self, unix_secs: u64) {
        self.now = unix_secs;
    }

    fn register(&mut self, c: ClientId, name: &str, out: &mut impl Outbox) {
        if !self.session.is_ready() {
            return self.refuse_name(c.key, Refusal::Unavailable, out);
        }
        if self.clients.len() <= c.key {
            self.clients.resize_with(c.key + 1, || None);
        }
        self.clients[c.key] = Some(Local {
            id: c.id,
            name: name.to_owned(),
            lname: name.to_ascii_lowercase(),
            room: None,
            registered: false,
            waiting: true,
            lost_nick: None,
        });
        self.via_room(&LOBBY.to_ascii_lowercase(), Queued::Register(c));
    }

    fn say(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        self.say_line(key, text, lines::chat, out);
    }

    fn act(&mut self, key: usize, action: &str, out: &mut impl Outbox) {
        self.say_line(key, action, lines::action, out);
    }

    fn join(&mut self, key: usize, room: &str, out: &mut impl Outbox) {
        if !self.session.is_ready() {
            return self.refuse(key, Refusal::Unavailable, out);
        }
        let Some(c) = self.client_id(key) else {
            return;
        };
        self.wait(key);
        self.via_room(&room.to_ascii_lowercase(), Queued::Join(c, room.to_owned()));
    }

    fn nick(&mut self, key: usize, new: &str, out: &mut impl Outbox) {
        let Some(c) = self.client_id(key) else {
            return;
        };
        if self.session.is_ready() {
            self.wait(key);
        }
        self.client_script(
            key,
            ScriptId::Nick,
            &[new.as_bytes()],
            Op::Nick(c, new.to_owned()),
            out,
        );
    }

    fn msg(&mut self, key: usize, to: &str, text: &str, out: &mut impl Outbox) {
        let Some(c) = self.client_id(key) else {
            return;
        };
        self.client_script(
            key,
            ScriptId::Msg,
            &[to.as_bytes(), text.as_bytes()],
            Op::Msg(c, to.to_owned(), text.to_owned()),
            out,
        );
    }

    fn who(&mut self, key: usize, out: &mut impl Outbox) {
        let Some(c) = self.client_id(key) else {
            return;
        };
        let cap = MAX_LISTED.to_string();
        self.client_script(key, ScriptId::Who, &[cap.as_bytes()], Op::Who(c), out);
    }

    fn rooms(&mut self, key: usize, out: &mut impl Outbox) {
        if !self.session.is_ready() {
            return self.refuse(key, Refusal::Unavailable, out);
        }
        let Some(c) = self.client_id(key) else {
            return;
        };
        let cap = MAX_LISTED.to_string();
        self.session
            .eval_bare(ScriptId::Rooms, &[cap.as_bytes()], Op::Rooms(c));
    }

    fn topic(&mut self, key: usize, topic: Option<&str>, out: &mut impl Outbox) {
        let Some(c) = self.client_id(key) else {
            return;
        };
        match topic {
            None => {
                self.client_script(key, ScriptId::Topic, &[b"show", b""], Op::TopicShow(c), out)
            }
            Some("-") => {
                self.client_script(key, ScriptId::Topic, &[b"clear", b""], Op::Check(c), out)
            }
            Some(text) => self.client_script(
                key,
                ScriptId::Topic,
                &[b"set", text.as_bytes()],
                Op::Check(c),
                out,
            ),
        }
    }

    fn away(&mut self, key: usize, message: Option<&str>, out: &mut impl Outbox) {
        let Some(c) = self.client_id(key) else {
            return;
        };
        if !self.session.is_ready() {
            return self.refuse(key, Refusal::Unavailable, out);
        }
        let m = message.unwrap_or("");
        self.client_script(key, ScriptId::Away, &[m.as_bytes()], Op::Check(c), out);
        self.line.clear();
        lines::away(&mut self.line, message);
        out.send(key, self.line.as_bytes());
    }

    fn leave(&mut self, key: usize, how: Leave<'_>, out: &mut impl Outbox) -> bool {
        let Some(local) = self.local(key) else {
            return false;
        };
        let (registered, id, name) = (local.registered, local.id, local.name.clone());
        if !registered {
            // Its registration is in flight: when the reply comes back
            // for a connection that is gone, the name is given up.
            self.forget(key);
            return false;
        }
        self.line.clear();
        lines::left(&mut self.line, &name, how);
        info!(
            "conn #{id}: {}",
            self.line.trim_start_matches("* ").trim_end()
        );
        if matches!(how, Leave::Quit(_)) {
            // The quitter's own confirmation: it is closing before the
            // room's copy could come back from Redis.
            out.send(key, self.line.as_bytes());
        }
        let (kind, detail) = match how {
            Leave::Closed => ("closed", ""),
            Leave::Because(why) => ("because", why),
            Leave::Quit(why) => ("quit", why.unwrap_or("")),
            Leave::For(room) => ("for", room),
        };
        let Some(local) = self.forget(key) else {
            return false;
        };
        let c = ClientId { key, id: local.id };
        self.give_back(&local.lname, c, kind, detail);
        true
    }

    fn has_pending_notices(&self) -> bool {
        self.rooms.values().any(|r| r.joins > 0 || r.leaves > 0)
    }

    fn flush_notices(&mut self, out: &mut impl Outbox) {
        let mut done = Vec::new();
        for (lroom, room) in &mut self.rooms {
            if room.joins == 0 && room.leaves == 0 {
                continue;
            }
            self.line.clear();
            lines::summary(&mut self.line, &room.shown, room.joins, room.leaves);
            room.joins = 0;
            room.leaves = 0;
            out.send_all(&room.members, self.line.as_bytes());
            done.push(lroom.clone());
        }
        for lroom in done {
            self.maybe_unsubscribe(&lroom);
        }
    }
}

/// A reply from Redis, flattened to what the scripts return: a status or
/// a string, or an array of strings (numbers as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Text(String),
    List(Vec<String>),
    Error(String),
    Nil,
}

impl Reply {
    fn is(&self, s: &str) -> bool {
        matches!(self, Reply::Text(t) if t == s)
    }

    fn items(&self) -> Vec<String> {
        match self {
            Reply::List(v) => v.clone(),
            Reply::Text(t) => vec![t.clone()],
            _ => Vec::new(),
        }
    }

    /// The second item of a `{tag, value}` reply.
    fn tagged(&self, tag: &str) -> Option<String> {
        match self {
            Reply::List(v) if v.len() == 2 && v[0] == tag => Some(v[1].clone()),
            _ => None,
        }
    }
}
