//! The single-process bus: names, rooms, topics, history, away messages and
//! big-room counts held here, every decision taken and delivered at once, in
//! the one order of the event loop. Pure: it sees clients as keys and speaks
//! only through an [`Outbox`]; the time comes from the caller.
//!
//! Every line is encoded once into a scratch buffer and the same bytes are
//! handed to each recipient; nothing here allocates per recipient.

use std::collections::{BTreeSet, HashMap};

use log::{debug, info};

use super::{Bus, ChatSettings, ClientId, Member, RoomCount};
use crate::outbox::Outbox;
use crate::protocol::lines::{self, Leave, Refusal, PROMPT_LINE};
use crate::protocol::{self, LOBBY};
use crate::rooms::{RoomId, Rooms};

/// The most names `/who` lists, and rooms `/rooms` lists, in one line: a
/// bigger listing is a denial-of-service lever, not information.
pub const MAX_LISTED: usize = 100;

/// A registered client.
#[derive(Debug)]
struct Client {
    name: Box<str>,
    /// The connection's unique id, for the log.
    id: u64,
    /// Set by `/away`.
    away: Option<Box<str>>,
}

/// All chat state of one process.
#[derive(Debug)]
pub struct LocalBus {
    /// Indexed by client key; `Some` once the client has registered.
    clients: Vec<Option<Client>>,
    /// Lower-cased name to key: names are unique case-insensitively.
    names: HashMap<Box<str>, usize>,
    rooms: Rooms,
    /// Each room's members in listing order, so a join's member list takes
    /// the first 100 without sorting the room: sorting it per join made
    /// 19,000 joins quadratic.
    listed: Listing,
    settings: ChatSettings,
    /// Unix seconds, for history lines.
    now: u64,
    /// Scratch buffer: each outgoing line is encoded here once.
    line: String,
}

/// Lower-cases an ASCII name into a stack buffer: the case-insensitive key
/// for lookups, without allocating on every `/msg`.
struct Folded {
    buf: [u8; protocol::MAX_NAME_CHARS],
    len: usize,
}

impl Folded {
    fn new(name: &str) -> Option<Folded> {
        if !protocol::is_valid_name(name) {
            return None;
        }
        let mut buf = [0u8; protocol::MAX_NAME_CHARS];
        for (d, s) in buf.iter_mut().zip(name.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        Some(Folded {
            buf,
            len: name.len(),
        })
    }

    fn as_str(&self) -> &str {
        // Valid names are ASCII, and lower-casing ASCII keeps it ASCII.
        std::str::from_utf8(&self.buf[..self.len]).expect("folded names are ASCII")
    }
}

impl LocalBus {
    /// An empty chat.
    pub fn new(settings: ChatSettings) -> LocalBus {
        LocalBus {
            clients: Vec::new(),
            names: HashMap::new(),
            rooms: Rooms::new(),
            listed: Listing::default(),
            settings,
            now: 0,
            line: String::with_capacity(256),
        }
    }

    fn client(&self, key: usize) -> Option<&Client> {
        self.clients.get(key).and_then(Option::as_ref)
    }

    /// The room of a registered client.
    fn room_of(&self, key: usize) -> RoomId {
        self.rooms
            .room_of(key)
            .expect("registered clients are in a room")
    }

    /// Sends `r` to `key` only.
    fn refuse(&mut self, key: usize, r: Refusal<'_>, out: &mut impl Outbox) {
        self.line.clear();
        lines::refusal(&mut self.line, r);
        out.send(key, self.line.as_bytes());
    }

    /// Sends the scratch line to every member of `room`.
    fn to_room(&self, room: RoomId, out: &mut impl Outbox) {
        out.send_all(self.rooms.room(room).members(), self.line.as_bytes());
    }

    /// Sends the scratch line (a chat or action line) to `room` and keeps
    /// it in the room's history.
    fn say_to_room(&mut self, room: RoomId, out: &mut impl Outbox) {
        self.to_room(room, out);
        let (now, max) = (self.now, self.settings.history_lines);
        let line = self.line.trim_end_matches('\n');
        self.rooms.room_mut(room).history.push(now, line, max);
    }

    /// Puts `key` into room `name` and announces it (big rooms: to the
    /// joiner only, the rest counted for a summary); `welcome` adds the
    /// welcome and message of the day. Then tells the joiner the room's
    /// topic, its recent history and its members, the member list last.
    fn enter(&mut self, key: usize, name: &str, welcome: bool, out: &mut impl Outbox) {
        let (id, members) = self.rooms.join(key, name);
        let who = name_in(&self.clients, key);
        self.listed.add(id, key, who);
        self.line.clear();
        lines::joined(&mut self.line, who, self.rooms.room(id).name());
        if members > self.settings.notice_limit {
            out.send(key, self.line.as_bytes());
            self.rooms.count(id, true);
        } else {
            self.to_room(id, out);
        }
        self.line.clear();
        if welcome {
            lines::welcome(&mut self.line, who);
            for m in &self.settings.motd {
                lines::motd(&mut self.line, m);
            }
        }
        let room = self.rooms.room(id);
        if let Some(topic) = &room.topic {
            lines::topic(&mut self.line, room.name(), Some(topic));
        }
        for (at, line) in room.history.iter() {
            lines::history(&mut self.line, at, line);
        }
        self.members_line(id);
        // One send per line: a codec frames each line on its own.
        for line in self.line.split_inclusive('\n') {
            out.send(key, line.as_bytes());
        }
    }

    /// Appends `* <room> has <n> members: a, b (away), ...` to the scratch
    /// line, names sorted case-insensitively, at most [`MAX_LISTED`].
    fn members_line(&mut self, id: RoomId) {
        let r = self.rooms.room(id);
        let n = r.members().len();
        let clients = &self.clients;
        let names = self
            .listed
            .keys(id)
            .filter_map(|key| clients.get(key).and_then(Option::as_ref))
            .map(|c| Member(&c.name, c.away.is_some()));
        lines::members(&mut self.line, r.name(), n, names, MAX_LISTED);
    }

    /// Sends the leave notice in the scratch line for room `id`, which had
    /// `before` members before the leave. `subject` is the leaver when it is
    /// still a member and must get the notice itself.
    fn announce_leave(
        &mut self,
        id: RoomId,
        before: usize,
        subject: Option<usize>,
        out: &mut impl Outbox,
    ) {
        if before > self.settings.notice_limit {
            if let Some(k) = subject {
                out.send(k, self.line.as_bytes());
            }
            if before > 1 {
                self.rooms.count(id, false);
            }
        } else if before > 1 || subject.is_some() {
            self.to_room(id, out);
        }
    }
}

impl Bus for LocalBus {
    fn is_registered(&self, key: usize) -> bool {
        self.client(key).is_some()
    }

    fn registered(&self) -> usize {
        self.names.len()
    }

    fn set_time(&mut self, unix_secs: u64) {
        self.now = unix_secs;
    }

    fn register(&mut self, c: ClientId, name: &str, out: &mut impl Outbox) {
        let Some(folded) = Folded::new(name) else {
            self.refuse(c.key, Refusal::InvalidName, out);
            out.send(c.key, PROMPT_LINE.as_bytes());
            return;
        };
        if self.names.contains_key(folded.as_str()) {
            self.refuse(c.key, Refusal::NameTaken(name), out);
            out.send(c.key, PROMPT_LINE.as_bytes());
            return;
        }
        self.names.insert(folded.as_str().into(), c.key);
        if self.clients.len() <= c.key {
            self.clients.resize_with(c.key + 1, || None);
        }
        self.clients[c.key] = Some(Client {
            name: name.into(),
            id: c.id,
            away: None,
        });
        info!("conn #{}: registered as {name}", c.id);
        self.enter(c.key, LOBBY, true, out);
    }

    fn say(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        if let Some(c) = self.client(key) {
            debug!("conn #{} says {} bytes", c.id, text.len());
        }
        let room = self.room_of(key);
        self.line.clear();
        lines::chat(&mut self.line, name_in(&self.clients, key), text);
        self.say_to_room(room, out);
    }

    fn act(&mut self, key: usize, action: &str, out: &mut impl Outbox) {
        let room = self.room_of(key);
        self.line.clear();
        lines::action(&mut self.line, name_in(&self.clients, key), action);
        self.say_to_room(room, out);
    }

    fn join(&mut self, key: usize, target: &str, out: &mut impl Outbox) {
        let room = self.room_of(key);
        if self.rooms.find(target) == Some(room) {
            let current = self.rooms.room(room).name().to_owned();
            self.refuse(key, Refusal::AlreadyIn(&current), out);
            return;
        }
        // Name the room as it will be shown once joined.
        let shown = self
            .rooms
            .find(target)
            .map_or(target, |id| self.rooms.room(id).name());
        self.line.clear();
        lines::left(
            &mut self.line,
            name_in(&self.clients, key),
            Leave::For(shown),
        );
        self.listed.remove(room, key, name_in(&self.clients, key));
        if let Some(left) = self.rooms.leave(key) {
            self.announce_leave(left.room, left.before, None, out);
        }
        self.enter(key, target, false, out);
    }

    fn nick(&mut self, key: usize, new: &str, out: &mut impl Outbox) {
        let Some(folded) = Folded::new(new) else {
            self.refuse(key, Refusal::InvalidName, out);
            return;
        };
        if name_in(&self.clients, key) == new {
            self.refuse(key, Refusal::SameName(new), out);
            return;
        }
        match self.names.get(folded.as_str()) {
            Some(&owner) if owner != key => {
                self.refuse(key, Refusal::NameTaken(new), out);
                return;
            }
            _ => {}
        }
        let room = self.room_of(key);
        let Some(client) = self.clients.get_mut(key).and_then(Option::as_mut) else {
            return;
        };
        let id = client.id;
        let old = std::mem::replace(&mut client.name, new.into());
        if let Some(f) = Folded::new(&old) {
            self.names.remove(f.as_str());
        }
        self.names.insert(folded.as_str().into(), key);
        self.listed.remove(room, key, &old);
        self.listed.add(room, key, new);
        info!("conn #{id}: {old} is now known as {new}");
        self.line.clear();
        lines::renamed(&mut self.line, &old, new);
        self.to_room(room, out);
    }

    fn msg(&mut self, key: usize, to: &str, text: &str, out: &mut impl Outbox) {
        let to_key = Folded::new(to).and_then(|f| self.names.get(f.as_str()).copied());
        let Some(to_key) = to_key else {
            self.refuse(key, Refusal::NoSuchUser(to), out);
            return;
        };
        self.line.clear();
        lines::private(
            &mut self.line,
            name_in(&self.clients, key),
            name_in(&self.clients, to_key),
            text,
        );
        out.send(key, self.line.as_bytes());
        if to_key != key {
            out.send(to_key, self.line.as_bytes());
        }
        if let Some(to) = self.clients.get(to_key).and_then(Option::as_ref) {
            if let Some(away) = &to.away {
                self.line.clear();
                lines::is_away(&mut self.line, &to.name, away);
                out.send(key, self.line.as_bytes());
            }
        }
    }

    fn who(&mut self, key: usize, out: &mut impl Outbox) {
        self.line.clear();
        self.members_line(self.room_of(key));
        out.send(key, self.line.as_bytes());
    }

    fn rooms(&mut self, key: usize, out: &mut impl Outbox) {
        let n = self.rooms.len();
        self.line.clear();
        lines::rooms(
            &mut self.line,
            n,
            self.rooms
                .iter()
                .map(|r| RoomCount(r.name(), r.members().len())),
            MAX_LISTED,
        );
        out.send(key, self.line.as_bytes());
    }

    fn topic(&mut self, key: usize, topic: Option<&str>, out: &mut impl Outbox) {
        let id = self.room_of(key);
        self.line.clear();
        let Some(text) = topic else {
            let room = self.rooms.room(id);
            lines::topic(&mut self.line, room.name(), room.topic.as_deref());
            out.send(key, self.line.as_bytes());
            return;
        };
        let new = (text != "-").then_some(text);
        let who = name_in(&self.clients, key);
        lines::topic_set(&mut self.line, who, self.rooms.room(id).name(), new);
        info!("{}", self.line.trim_start_matches("* ").trim_end());
        self.rooms.room_mut(id).topic = new.map(Into::into);
        self.to_room(id, out);
    }

    fn away(&mut self, key: usize, message: Option<&str>, out: &mut impl Outbox) {
        if let Some(client) = self.clients.get_mut(key).and_then(Option::as_mut) {
            client.away = message.map(Into::into);
        }
        self.line.clear();
        lines::away(&mut self.line, message);
        out.send(key, self.line.as_bytes());
    }

    fn leave(&mut self, key: usize, how: Leave<'_>, out: &mut impl Outbox) -> bool {
        let Some(client) = self.clients.get_mut(key).and_then(Option::take) else {
            return false;
        };
        if let Some(f) = Folded::new(&client.name) {
            self.names.remove(f.as_str());
        }
        let name = client.name;
        self.line.clear();
        lines::left(&mut self.line, &name, how);
        info!(
            "conn #{}: {}",
            client.id,
            self.line.trim_start_matches("* ").trim_end()
        );
        // A quitter is still a member while its quit is announced, so it gets
        // its own notice as confirmation; a disconnected client is not.
        let subject = matches!(how, Leave::Quit(_)).then_some(key);
        if let Some(room) = self.rooms.room_of(key) {
            self.listed.remove(room, key, &name);
            let before = self.rooms.room(room).members().len();
            if subject.is_some() {
                self.announce_leave(room, before, subject, out);
                self.rooms.leave(key);
            } else if let Some(left) = self.rooms.leave(key) {
                self.announce_leave(left.room, left.before, None, out);
            }
        }
        true
    }

    fn has_pending_notices(&self) -> bool {
        self.rooms.has_counts()
    }

    fn flush_notices(&mut self, out: &mut impl Outbox) {
        for (id, joins, leaves) in self.rooms.take_counts() {
            self.line.clear();
            lines::summary(&mut self.line, self.rooms.room(id).name(), joins, leaves);
            self.to_room(id, out);
        }
    }
}

/// Each room's members ordered as member lists show them: by lower-cased
/// name, then key.
#[derive(Debug, Default)]
struct Listing(HashMap<RoomId, BTreeSet<(Box<str>, usize)>>);

impl Listing {
    /// Lists `key` (named `name`) among `room`'s members.
    fn add(&mut self, room: RoomId, key: usize, name: &str) {
        let folded = name.to_ascii_lowercase().into_boxed_str();
        self.0.entry(room).or_default().insert((folded, key));
    }

    /// Takes `key` (named `name`) off `room`'s listing.
    fn remove(&mut self, room: RoomId, key: usize, name: &str) {
        let folded = name.to_ascii_lowercase().into_boxed_str();
        if let Some(set) = self.0.get_mut(&room) {
            set.remove(&(folded, key));
            if set.is_empty() {
                self.0.remove(&room);
            }
        }
    }

    /// `room`'s member keys in listing order.
    fn keys(&self, room: RoomId) -> impl Iterator<Item = usize> + '_ {
        self.0.get(&room).into_iter().flatten().map(|&(_, key)| key)
    }
}

/// `key`'s name, or "" for a key with none (a free function so callers can
/// hold it while writing into the scratch line, a disjoint field).
fn name_in(clients: &[Option<Client>], key: usize) -> &str {
    clients
        .get(key)
        .and_then(Option::as_ref)
        .map_or("", |c| &c.name)
}
