//! What Redis' replies and published events do to the cluster bus's local
//! view: a reply completes its client's operation, a room's event reaches
//! its local members, a node's event its one client; losing Redis degrades
//! the chat, its return restores it. Touches no socket (lines go out
//! through an [`Outbox`]).

use log::{info, warn};

use super::scripts::ScriptId;
use super::{event, Local, Op, Queued, RedisBus, Reply, Sub};
use crate::bus::{ClientId, Member, RoomCount, MAX_LISTED};
use crate::outbox::Outbox;
use crate::protocol::lines::{self, Leave, Refusal};
use crate::protocol::LOBBY;

/// What happens when Redis answers or publishes.
impl RedisBus {
    /// A reply to `op`.
    pub(super) fn reply(&mut self, op: Op, reply: Reply, out: &mut impl Outbox) {
        match op {
            Op::Setup | Op::Load(_) | Op::Tick => {}
            Op::Leave => {}
            Op::Register(c, name) => {
                self.release(c);
                if !reply.is("ok") {
                    self.arrived(&LOBBY.to_ascii_lowercase(), c);
                }
                if self.local_of(c).is_none() {
                    // Gone while registering: give the name back.
                    if reply.is("ok") {
                        self.give_back(&name.to_ascii_lowercase(), c, "closed", "");
                    }
                    return;
                }
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
                self.release(c);
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
                self.release(c);
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
                lines::rooms(
                    &mut self.line,
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
    pub(super) fn room_event(&mut self, lroom: &str, f: &[&[u8]], out: &mut impl Outbox) {
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
            [b"L", name, _shown, node, key, id, before, kind, detail] => {
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
    pub(super) fn node_event(&mut self, f: &[&[u8]], out: &mut impl Outbox) {
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
    pub(super) fn subscribed(&mut self, lroom: &str) {
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
    pub(super) fn degrade(&mut self, pending: Vec<Op>, tell: bool, out: &mut impl Outbox) {
        for op in pending {
            let c = match op {
                Op::Register(c, name) => {
                    self.release(c);
                    if self.local_of(c).is_some() {
                        // Its join may have come back already.
                        self.forget(c.key);
                        self.refuse_name(c.key, Refusal::Unavailable, out);
                    }
                    // Redis may have run it and only the answer be lost:
                    // then the name is held for this connection, which no
                    // longer claims it. Give it back once Redis is here
                    // (a no-op if the claim never happened).
                    self.give_back(&name.to_ascii_lowercase(), c, "closed", "");
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
            self.release(c);
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
            self.release(c);
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
    pub(super) fn restored(&mut self, out: &mut impl Outbox) {
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
    pub(super) fn rooms_subscribed(&self) -> bool {
        self.rooms.values().all(|r| r.sub == Sub::On)
    }

    /// Marks every room to be subscribed again (after a reconnect).
    pub(super) fn resubscribe_all(&mut self) {
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
    lines::members(
        buf,
        room,
        n,
        pairs
            .chunks(2)
            .filter(|p| p.len() == 2)
            .map(|p| Member(&p[0], p[1] == "1")),
        MAX_LISTED,
    );
}
