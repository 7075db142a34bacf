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
//! what each event does to it; [`session`] owns the connections' life
//! (connect, load scripts, subscribe, lose Redis, come back); [`link`] is
//! one Redis socket; [`event`] decodes payloads. Nothing here touches a
//! client socket: lines go out through an [`Outbox`].

pub mod event;
pub mod link;
pub mod scripts;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;

use log::{info, warn};

use crate::bus::{Bus, ChatSettings, ClientId, Member, RoomCount, MAX_LISTED};
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
    /// Keys whose register, join or nick is in flight: their input waits.
    waiting: Vec<usize>,
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
            waiting: Vec::new(),
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
        if !self.waiting.contains(&key) {
            self.waiting.push(key);
        }
    }

    fn release(&mut self, key: usize) {
        if let Some(i) = self.waiting.iter().position(|&k| k == key) {
            self.waiting.swap_remove(i);
            self.resumed.push(key);
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

    /// Sends `line` (a chat or action line) to the room through Redis.
    fn say_line(&mut self, key: usize, out: &mut impl Outbox) {
        let Some(c) = self.client_id(key) else {
            return;
        };
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
        if let Some(i) = self.waiting.iter().position(|&k| k == key) {
            self.waiting.swap_remove(i);
        }
        let c = ClientId { key, id: local.id };
        let mut touched = Vec::new();
        for (lroom, room) in &mut self.rooms {
            let before = room.members.len() + room.arriving.len();
            room.members.retain(|&k| k != key);
            room.arriving.retain(|a| *a != c);
            if room.members.len() + room.arriving.len() != before {
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
        self.waiting.contains(&key)
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
            lost_nick: None,
        });
        self.wait(c.key);
        self.via_room(&LOBBY.to_ascii_lowercase(), Queued::Register(c));
    }

    fn say(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        let Some(name) = self.local(key).map(|l| l.name.clone()) else {
            return;
        };
        self.line.clear();
        lines::chat(&mut self.line, &name, text);
        self.say_line(key, out);
    }

    fn act(&mut self, key: usize, action: &str, out: &mut impl Outbox) {
        let Some(name) = self.local(key).map(|l| l.name.clone()) else {
            return;
        };
        self.line.clear();
        lines::action(&mut self.line, &name, action);
        self.say_line(key, out);
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
        let (k, id) = (key.to_string(), local.id.to_string());
        let args: [&[u8]; 5] = [
            local.lname.as_bytes(),
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

/// What happens when Redis answers or publishes.
impl RedisBus {
    /// A reply to `op`.
    fn reply(&mut self, op: Op, reply: Reply, out: &mut impl Outbox) {
        match op {
            Op::Setup | Op::Load(_) | Op::Tick => {}
            Op::Leave => {}
            Op::Register(c, name) => {
                self.release(c.key);
                if !reply.is("ok") {
                    self.arrived(&LOBBY.to_ascii_lowercase(), c);
                }
                let Some(local) = self.local_of(c) else {
                    // Gone while registering: give the name back.
                    if reply.is("ok") {
                        let (lname, k, id) = (
                            name.to_ascii_lowercase(),
                            c.key.to_string(),
                            c.id.to_string(),
                        );
                        self.run(
                            ScriptId::Leave,
                            &[
                                lname.as_bytes(),
                                k.as_bytes(),
                                id.as_bytes(),
                                b"closed",
                                b"",
                            ],
                            Op::Leave,
                        );
                    }
                    return;
                };
                let _ = local;
                if reply.is("ok") {
                    if let Some(l) = self.clients[c.key].as_mut() {
                        l.registered = true;
                    }
                    self.registered += 1;
                    info!("conn #{}: registered as {name}", c.id);
                } else {
                    self.clients[c.key] = None;
                    let r = if reply.is("taken") {
                        Refusal::NameTaken(&name)
                    } else {
                        Refusal::Unavailable
                    };
                    self.refuse_name(c.key, r, out);
                }
            }
            Op::Join(c, lroom) => {
                self.release(c.key);
                if !reply.is("ok") {
                    self.arrived(&lroom, c);
                }
                if self.local_of(c).is_none() {
                    return;
                }
                if let Some(shown) = reply.tagged("already") {
                    self.refuse(c.key, Refusal::AlreadyIn(&shown), out);
                } else if reply.is("gone") {
                    self.lost_name(c, out);
                }
            }
            Op::Nick(c, new) => {
                self.release(c.key);
                if self.local_of(c).is_none() {
                    return;
                }
                if reply.is("same") {
                    self.refuse(c.key, Refusal::SameName(&new), out);
                } else if reply.is("taken") {
                    self.refuse(c.key, Refusal::NameTaken(&new), out);
                } else if reply.is("gone") {
                    self.lost_name(c, out);
                } else if reply.is("ok") {
                    if let Some(l) = self.clients[c.key].as_mut() {
                        info!("conn #{}: {} is now known as {new}", c.id, l.name);
                        l.lname = new.to_ascii_lowercase();
                        l.name = new;
                    }
                }
            }
            Op::Say(c) | Op::Check(c) => {
                if reply.is("gone") && self.local_of(c).is_some() {
                    self.lost_name(c, out);
                }
            }
            Op::Msg(c, to, text) => {
                if self.local_of(c).is_none() {
                    return;
                }
                let items = reply.items();
                match items.first().map(String::as_str) {
                    Some("ok") if items.len() == 4 => {
                        self.line.clear();
                        lines::private(&mut self.line, &items[1], &items[2], &text);
                        if !items[3].is_empty() {
                            lines::is_away(&mut self.line, &items[2], &items[3]);
                        }
                        for line in self.line.split_inclusive('\n') {
                            out.send(c.key, line.as_bytes());
                        }
                    }
                    _ if reply.is("nosuch") => self.refuse(c.key, Refusal::NoSuchUser(&to), out),
                    _ if reply.is("gone") => self.lost_name(c, out),
                    _ => self.refuse(c.key, Refusal::Unavailable, out),
                }
            }
            Op::Who(c) => {
                if self.local_of(c).is_none() {
                    return;
                }
                let items = reply.items();
                if items.len() < 2 {
                    if reply.is("gone") {
                        self.lost_name(c, out);
                    }
                    return;
                }
                self.line.clear();
                members_line(
                    &mut self.line,
                    &items[0],
                    event::number(items[1].as_bytes()),
                    &items[2..],
                );
                out.send(c.key, self.line.as_bytes());
            }
            Op::Rooms(c) => {
                if self.local_of(c).is_none() {
                    return;
                }
                let items = reply.items();
                let n: usize = items.first().map_or(0, |s| event::number(s.as_bytes()));
                self.line.clear();
                lines::listing(
                    &mut self.line,
                    format_args!("{n} room{}: ", lines::plural(n)),
                    n,
                    items[1.min(items.len())..]
                        .chunks(2)
                        .filter(|p| p.len() == 2)
                        .map(|p| RoomCount(&p[0], event::number(p[1].as_bytes()))),
                    MAX_LISTED,
                );
                out.send(c.key, self.line.as_bytes());
            }
            Op::TopicShow(c) => {
                if self.local_of(c).is_none() {
                    return;
                }
                let items = reply.items();
                if items.len() == 2 {
                    self.line.clear();
                    let topic = (!items[1].is_empty()).then_some(items[1].as_str());
                    lines::topic(&mut self.line, &items[0], topic);
                    out.send(c.key, self.line.as_bytes());
                } else if reply.is("gone") {
                    self.lost_name(c, out);
                }
            }
            Op::Restore(c) => {
                if reply.is("taken") && self.local_of(c).is_some() {
                    self.lost_name(c, out);
                }
            }
        }
    }

    /// The client's name is no longer its own in Redis (it was reclaimed
    /// while this node was cut off, and someone took it): it must leave.
    fn lost_name(&mut self, c: ClientId, out: &mut impl Outbox) {
        warn!(
            "conn #{}: its name was reclaimed by the cluster; closing it",
            c.id
        );
        self.notice(
            c.key,
            "your name was lost while this server was cut off from the chat; please reconnect",
            out,
        );
        self.forget(c.key);
        out.close(c.key);
    }

    /// A message on a room channel.
    fn room_event(&mut self, lroom: &str, f: &[&[u8]], out: &mut impl Outbox) {
        let me = self.node.as_bytes();
        let limit = self.settings.notice_limit;
        match f {
            [b"S", line] => {
                let Some(room) = self.rooms.get(lroom) else {
                    return;
                };
                self.line.clear();
                self.line.push_str(event::text(line));
                self.line.push('\n');
                out.send_all(&room.members, self.line.as_bytes());
            }
            [b"J", name, shown, node, key, id, count] => {
                let (key, id): (usize, u64) = (event::number(key), event::number(id));
                let count: usize = event::number(count);
                let local = (*node == me)
                    .then(|| self.local_of(ClientId { key, id }))
                    .flatten();
                let subject = local.map(|_| key);
                // A client put back by RESTORE may be in this room here
                // already (only then is its room this one: a scan of the
                // members for that case only).
                let back = local.is_some_and(|l| l.room.as_deref() == Some(lroom));
                let Some(room) = self.rooms.get_mut(lroom) else {
                    return;
                };
                let here = back && room.members.contains(&key);
                room.shown = event::text(shown).to_owned();
                if let Some(key) = subject {
                    room.arriving.retain(|a| a.key != key);
                    if !here {
                        room.members.push(key);
                    }
                    if let Some(l) = self.clients[key].as_mut() {
                        l.room = Some(lroom.to_owned());
                    }
                }
                self.line.clear();
                lines::joined(&mut self.line, event::text(name), event::text(shown));
                if count > limit {
                    if let Some(key) = subject {
                        out.send(key, self.line.as_bytes());
                    }
                    room.joins += 1;
                } else {
                    out.send_all(&room.members, self.line.as_bytes());
                }
            }
            [b"L", name, shown, node, key, id, before, kind, detail] => {
                let (key, id): (usize, u64) = (event::number(key), event::number(id));
                let before: usize = event::number(before);
                let Some(room) = self.rooms.get_mut(lroom) else {
                    return;
                };
                if *node == me {
                    // Its local state went when it left (or moved on).
                    room.members
                        .retain(|&k| !(k == key && self_id(&self.clients, k) == Some(id)));
                }
                let detail = event::text(detail);
                let how = match *kind {
                    b"quit" => Leave::Quit((!detail.is_empty()).then_some(detail)),
                    b"because" => Leave::Because(detail),
                    b"for" => Leave::For(detail),
                    _ => Leave::Closed,
                };
                self.line.clear();
                lines::left(&mut self.line, event::text(name), how);
                let _ = shown;
                if before > limit {
                    if before > 1 {
                        room.leaves += 1;
                    }
                } else {
                    out.send_all(&room.members, self.line.as_bytes());
                }
                self.maybe_unsubscribe(lroom);
            }
            [b"N", old, new, node, key, id] => {
                let (key, id): (usize, u64) = (event::number(key), event::number(id));
                if *node == me {
                    if let Some(l) = self.clients.get_mut(key).and_then(Option::as_mut) {
                        if l.id == id {
                            l.name = event::text(new).to_owned();
                            l.lname = l.name.to_ascii_lowercase();
                        }
                    }
                }
                let Some(room) = self.rooms.get(lroom) else {
                    return;
                };
                self.line.clear();
                lines::renamed(&mut self.line, event::text(old), event::text(new));
                out.send_all(&room.members, self.line.as_bytes());
            }
            [b"T", who, shown, mode, text] => {
                let Some(room) = self.rooms.get(lroom) else {
                    return;
                };
                let topic = (*mode == b"set").then(|| event::text(text));
                self.line.clear();
                lines::topic_set(&mut self.line, event::text(who), event::text(shown), topic);
                info!("{}", self.line.trim_start_matches("* ").trim_end());
                out.send_all(&room.members, self.line.as_bytes());
            }
            _ => warn!(
                "cluster: unknown event on room {lroom}: {:?}",
                f.first().map(|k| event::text(k))
            ),
        }
    }

    /// A message on this node's channel.
    fn node_event(&mut self, f: &[&[u8]], out: &mut impl Outbox) {
        match f {
            [b"B", key, id, welcome, shown, topic, rest @ ..] => {
                let c = ClientId {
                    key: event::number(key),
                    id: event::number(id),
                };
                let Some(local) = self.local_of(c) else {
                    return;
                };
                let name = local.name.clone();
                self.line.clear();
                if *welcome == b"1" {
                    lines::welcome(&mut self.line, &name);
                    for m in &self.settings.motd {
                        lines::motd(&mut self.line, m);
                    }
                }
                if !topic.is_empty() {
                    lines::topic(&mut self.line, event::text(shown), Some(event::text(topic)));
                }
                let nhist: usize = rest.first().map_or(0, |n| event::number(n));
                let hist = rest.get(1..1 + nhist).unwrap_or(&[]);
                for h in hist {
                    let h = event::text(h);
                    let (at, line) = h.split_once('\t').unwrap_or(("0", h));
                    lines::history(&mut self.line, at.parse().unwrap_or(0), line);
                }
                let after = rest.get(1 + nhist..).unwrap_or(&[]);
                let count: usize = after.first().map_or(0, |n| event::number(n));
                let names: Vec<String> = after
                    .get(2..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|s| event::text(s).to_owned())
                    .collect();
                members_line(&mut self.line, event::text(shown), count, &names);
                for line in self.line.split_inclusive('\n') {
                    out.send(c.key, line.as_bytes());
                }
            }
            [b"P", key, id, from, to, text] => {
                let c = ClientId {
                    key: event::number(key),
                    id: event::number(id),
                };
                if self.local_of(c).is_none() {
                    return;
                }
                self.line.clear();
                lines::private(
                    &mut self.line,
                    event::text(from),
                    event::text(to),
                    event::text(text),
                );
                out.send(c.key, self.line.as_bytes());
            }
            _ => warn!(
                "cluster: unknown node event {:?}",
                f.first().map(|k| event::text(k))
            ),
        }
    }

    /// A room's subscription was confirmed: run what waited for it.
    fn subscribed(&mut self, lroom: &str) {
        let Some(room) = self.rooms.get_mut(lroom) else {
            return;
        };
        if room.sub != Sub::Pending {
            return;
        }
        room.sub = Sub::On;
        let queued = std::mem::take(&mut room.queued);
        for q in queued {
            self.run_queued(q);
        }
        self.maybe_unsubscribe(lroom);
    }

    /// Redis is lost: every waiting client is told and released; rooms
    /// will be subscribed again on reconnect.
    fn degrade(&mut self, pending: Vec<Op>, tell: bool, out: &mut impl Outbox) {
        for op in pending {
            let c = match op {
                Op::Register(c, name) => {
                    self.release(c.key);
                    if self.local_of(c).is_some() {
                        // Its join may have come back already.
                        self.forget(c.key);
                        self.refuse_name(c.key, Refusal::Unavailable, out);
                    }
                    // Redis may have run it and only the answer be lost:
                    // then the name is held for this connection, which no
                    // longer claims it. Give it back once Redis is here
                    // (a no-op if the claim never happened).
                    let (lname, k, id) = (
                        name.to_ascii_lowercase(),
                        c.key.to_string(),
                        c.id.to_string(),
                    );
                    self.session.leave_later(&[
                        lname.as_bytes(),
                        k.as_bytes(),
                        id.as_bytes(),
                        b"closed",
                        b"",
                    ]);
                    continue;
                }
                Op::Nick(c, new) => {
                    if let Some(l) = self.clients.get_mut(c.key).and_then(Option::as_mut) {
                        // Unless its rename came back already.
                        if l.id == c.id && l.name != new {
                            l.lost_nick = Some(new);
                        }
                    }
                    c
                }
                Op::Join(c, lroom) => {
                    self.arrived(&lroom, c);
                    c
                }
                Op::Say(c) | Op::Msg(c, _, _) => c,
                _ => continue,
            };
            self.release(c.key);
            if self.local_of(c).is_some() {
                self.refuse(c.key, Refusal::NotSent, out);
            }
        }
        let mut queued = Vec::new();
        for room in self.rooms.values_mut() {
            room.sub = Sub::Off;
            queued.append(&mut room.queued);
        }
        for q in queued {
            let c = match q {
                Queued::Register(c) | Queued::Join(c, _) => c,
            };
            self.release(c.key);
            if matches!(q, Queued::Register(_)) && self.local_of(c).is_some() {
                self.forget(c.key);
                self.refuse_name(c.key, Refusal::Unavailable, out);
            } else if self.local_of(c).is_some() {
                self.refuse(c.key, Refusal::NotSent, out);
            }
        }
        self.rooms.retain(|_, r| !r.members.is_empty());
        let keys: Vec<usize> = if tell {
            self.registered_keys()
        } else {
            Vec::new()
        };
        for key in keys {
            self.notice(key, "chat degraded: lost the cluster's Redis, reconnecting; lines are refused until it is back", out);
        }
    }

    /// Back after an outage: every local client is put back in Redis and
    /// told.
    fn restored(&mut self, out: &mut impl Outbox) {
        let lobby = LOBBY.to_owned();
        for key in self.registered_keys() {
            let Some(l) = self.local(key) else { continue };
            let c = ClientId { key, id: l.id };
            let room = l
                .room
                .as_ref()
                .and_then(|r| self.rooms.get(r))
                .map_or(lobby.clone(), |r| r.shown.clone());
            let (name, k, id) = (l.name.clone(), key.to_string(), l.id.to_string());
            let alias = self.clients[key]
                .as_mut()
                .and_then(|l| l.lost_nick.take())
                .unwrap_or_default();
            self.run(
                ScriptId::Restore,
                &[
                    name.as_bytes(),
                    k.as_bytes(),
                    id.as_bytes(),
                    room.as_bytes(),
                    alias.as_bytes(),
                ],
                Op::Restore(c),
            );
            self.notice(key, "chat restored", out);
        }
    }

    fn registered_keys(&self) -> Vec<usize> {
        self.clients
            .iter()
            .enumerate()
            .filter(|(_, l)| l.as_ref().is_some_and(|l| l.registered))
            .map(|(k, _)| k)
            .collect()
    }

    /// The lower-cased rooms this node must hear.
    fn rooms_heard(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    /// True when every room this node hears is subscribed (none pending).
    fn rooms_subscribed(&self) -> bool {
        self.rooms.values().all(|r| r.sub == Sub::On)
    }

    /// Marks every room to be subscribed again (after a reconnect).
    fn resubscribe_all(&mut self) {
        let rooms = self.rooms_heard();
        for lroom in rooms {
            if let Some(room) = self.rooms.get_mut(&lroom) {
                room.sub = Sub::Pending;
            }
            self.session.subscribe(&lroom);
        }
    }
}

/// `key`'s connection id, if it is a local client.
fn self_id(clients: &[Option<Local>], key: usize) -> Option<u64> {
    clients.get(key).and_then(Option::as_ref).map(|l| l.id)
}

/// Appends `* <room> has <n> members: ...` from `name, away` pairs.
fn members_line(buf: &mut String, room: &str, n: usize, pairs: &[String]) {
    lines::listing(
        buf,
        format_args!("{room} has {n} member{}: ", lines::plural(n)),
        n,
        pairs
            .chunks(2)
            .filter(|p| p.len() == 2)
            .map(|p| Member(&p[0], p[1] == "1")),
        MAX_LISTED,
    );
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
