//! The chat itself: registration, names, rooms, commands and who is told what.
//! Pure: it sees clients as keys and lines as bytes, and speaks only through
//! an [`Outbox`], so it knows nothing of sockets, mio or buffers. A TLS or
//! WebSocket transport, or a Redis bridge, plugs in by implementing `Outbox`.
//!
//! Every line is encoded once into a scratch buffer and the same bytes are
//! handed to each recipient; nothing here allocates per recipient.

use std::collections::HashMap;
use std::fmt::Write as _;

use log::{debug, info};

use crate::framing::Frame;
use crate::protocol::{self, Command, LOBBY};
use crate::rooms::{Left, RoomId, Rooms};

/// Where the chat sends its output. Implemented by the server over its
/// connections, and by tests over plain vectors.
pub trait Outbox {
    /// Queues one complete line (ending in `\n`) for client `key`.
    fn send(&mut self, key: usize, line: &[u8]);
    /// Closes `key` once what is queued for it has been written.
    fn close(&mut self, key: usize);
}

/// The most names `/who` lists, and rooms `/rooms` lists, in one line: a
/// bigger listing is a denial-of-service lever, not information.
pub const MAX_LISTED: usize = 100;

/// The prompt as a line, sent on connect and after every refused name.
const PROMPT_LINE: &[u8] = b"NAME\n";

/// A registered client.
#[derive(Debug)]
struct Client {
    name: Box<str>,
}

/// All chat state.
#[derive(Debug)]
pub struct Chat {
    /// Indexed by client key; `Some` once the client has registered.
    clients: Vec<Option<Client>>,
    /// Lower-cased name to key: names are unique case-insensitively.
    names: HashMap<Box<str>, usize>,
    rooms: Rooms,
    /// Rooms above this many members get summaries instead of per-client
    /// join/leave notices.
    notice_limit: usize,
    /// The largest line a client may send, for the "line too long" error.
    max_line: usize,
    /// Scratch buffer: each outgoing line is encoded here once.
    line: String,
}

/// Lower-cases an ASCII name into a stack buffer: the case-insensitive key
/// for lookups, without allocating on every `/msg`.
fn fold(name: &str) -> Option<([u8; protocol::MAX_NAME_CHARS], usize)> {
    if !protocol::is_valid_name(name) {
        return None;
    }
    let mut buf = [0u8; protocol::MAX_NAME_CHARS];
    for (d, s) in buf.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    Some((buf, name.len()))
}

fn folded_str(key: &([u8; protocol::MAX_NAME_CHARS], usize)) -> &str {
    // Valid names are ASCII, and lower-casing ASCII keeps it ASCII.
    std::str::from_utf8(&key.0[..key.1]).expect("folded names are ASCII")
}

impl Chat {
    /// An empty chat. `notice_limit` and `max_line` come from the config.
    pub fn new(notice_limit: usize, max_line: usize) -> Chat {
        Chat {
            clients: Vec::new(),
            names: HashMap::new(),
            rooms: Rooms::new(),
            notice_limit,
            max_line,
            line: String::with_capacity(256),
        }
    }

    /// Registered clients.
    pub fn registered(&self) -> usize {
        self.names.len()
    }

    /// True once `key` has a name.
    pub fn is_registered(&self, key: usize) -> bool {
        self.client(key).is_some()
    }

    /// `key`'s name, once registered.
    pub fn name_of(&self, key: usize) -> Option<&str> {
        self.client(key).map(|c| &*c.name)
    }

    fn client(&self, key: usize) -> Option<&Client> {
        self.clients.get(key).and_then(Option::as_ref)
    }

    /// A new connection: ask for a name.
    pub fn connected(&mut self, key: usize, out: &mut impl Outbox) {
        out.send(key, PROMPT_LINE);
    }

    /// One framed unit of input from `key`.
    pub fn frame(&mut self, key: usize, frame: Frame<'_>, out: &mut impl Outbox) {
        match frame {
            Frame::Line(line) => self.line(key, line, out),
            Frame::TooLong => {
                let max = self.max_line;
                self.reply(key, out, format_args!("! line too long (max {max} bytes)"));
                if !self.is_registered(key) {
                    out.send(key, PROMPT_LINE);
                }
            }
        }
    }

    /// One complete line from `key` (without its line ending).
    pub fn line(&mut self, key: usize, line: &[u8], out: &mut impl Outbox) {
        let text = match protocol::check_text(line) {
            Ok(text) => text,
            Err(e) => {
                self.reply(key, out, format_args!("! {e}"));
                if !self.is_registered(key) {
                    out.send(key, PROMPT_LINE);
                }
                return;
            }
        };
        if self.is_registered(key) {
            match protocol::parse_command(text) {
                Ok(Some(cmd)) => self.command(key, cmd, out),
                Ok(None) => {}
                Err(e) => self.reply(key, out, format_args!("! {e}")),
            }
        } else {
            self.register(key, text, out);
        }
    }

    /// `key` is gone (or going): forget it and tell its room. `reason` is
    /// shown in brackets. Does nothing for a key that never registered or
    /// already left (a `/quit` is announced when it is processed).
    pub fn disconnected(&mut self, key: usize, reason: Option<&str>, out: &mut impl Outbox) {
        let Some((name, left)) = self.forget(key) else {
            return;
        };
        info!("conn {key}: {name} left{}", fmt_reason(reason));
        self.line.clear();
        let _ = write!(self.line, "* {name} left{}", fmt_reason(reason));
        if let Some(left) = left {
            self.announce_leave(left.room, left.before, None, out);
        }
    }

    /// Takes `key` out of the chat: its name is free again and it leaves
    /// its room. Returns the name and what leaving did; `None` for a key
    /// that never registered or already left.
    fn forget(&mut self, key: usize) -> Option<(Box<str>, Option<Left>)> {
        let client = self.clients.get_mut(key).and_then(Option::take)?;
        if let Some(k) = fold(&client.name) {
            self.names.remove(folded_str(&k));
        }
        Some((client.name, self.rooms.leave(key)))
    }

    /// True when big rooms have counted joins/leaves waiting for a summary.
    pub fn has_pending_notices(&self) -> bool {
        self.rooms.has_counts()
    }

    /// Sends each big room its summary notice (`* 120 joined, 14 left`).
    pub fn flush_notices(&mut self, out: &mut impl Outbox) {
        for (id, joins, leaves) in self.rooms.take_counts() {
            self.line.clear();
            let _ = match (joins, leaves) {
                (0, l) => write!(self.line, "* {l} left"),
                (j, 0) => write!(self.line, "* {j} joined"),
                (j, l) => write!(self.line, "* {j} joined, {l} left"),
            };
            self.line.push('\n');
            deliver(self.rooms.room(id).members(), &self.line, out);
        }
    }

    fn register(&mut self, key: usize, text: &str, out: &mut impl Outbox) {
        let name = text.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("/quit")
            || name
                .get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case("/quit "))
        {
            out.close(key);
            return;
        }
        let Some(folded) = fold(name) else {
            self.reply(
                key,
                out,
                format_args!("! invalid name: use 1-32 of A-Z a-z 0-9 _ -"),
            );
            out.send(key, PROMPT_LINE);
            return;
        };
        if self.names.contains_key(folded_str(&folded)) {
            self.reply(key, out, format_args!("! name taken: {name}"));
            out.send(key, PROMPT_LINE);
            return;
        }
        self.names.insert(folded_str(&folded).into(), key);
        if self.clients.len() <= key {
            self.clients.resize_with(key + 1, || None);
        }
        self.clients[key] = Some(Client { name: name.into() });
        info!("conn {key}: registered as {name}");
        self.enter(key, LOBBY, out);
    }

    fn command(&mut self, key: usize, cmd: Command<'_>, out: &mut impl Outbox) {
        let room = self
            .rooms
            .room_of(key)
            .expect("registered clients are in a room");
        match cmd {
            Command::Say(text) => {
                debug!("conn {key} says {} bytes", text.len());
                self.line.clear();
                let name = name_in(&self.clients, key);
                let _ = writeln!(self.line, "{name}: {text}");
                deliver(self.rooms.room(room).members(), &self.line, out);
            }
            Command::Me(action) => {
                let name = name_in(&self.clients, key);
                self.line.clear();
                let _ = writeln!(self.line, "* {name} {action}");
                deliver(self.rooms.room(room).members(), &self.line, out);
            }
            Command::Help => self.reply(key, out, format_args!("* {}", protocol::HELP_TEXT)),
            Command::Who => self.who(key, room, out),
            Command::Rooms => self.list_rooms(key, out),
            Command::Join(target) => self.join(key, room, target, out),
            Command::Nick(new) => self.nick(key, room, new, out),
            Command::Msg { to, text } => {
                let from = name_in(&self.clients, key);
                let Some(to_key) = fold(to).and_then(|f| self.names.get(folded_str(&f)).copied())
                else {
                    self.reply(key, out, format_args!("! no such user: {to}"));
                    return;
                };
                let to_name = name_in(&self.clients, to_key);
                self.line.clear();
                let _ = writeln!(self.line, "[pm {from} -> {to_name}] {text}");
                out.send(key, self.line.as_bytes());
                if to_key != key {
                    out.send(to_key, self.line.as_bytes());
                }
            }
            Command::Quit(reason) => {
                let name = name_in(&self.clients, key);
                self.line.clear();
                let _ = match reason {
                    Some(r) => write!(self.line, "* {name} left (quit: {r})"),
                    None => write!(self.line, "* {name} left (quit)"),
                };
                // Announce while the quitter is still a member, so it gets
                // its own notice as confirmation, then forget it.
                let before = self.rooms.room(room).members().len();
                self.announce_leave(room, before, Some(key), out);
                if let Some((name, _)) = self.forget(key) {
                    let why = reason.map_or_else(|| "quit".to_string(), |r| format!("quit: {r}"));
                    info!("conn {key}: {name} left{}", fmt_reason(Some(&why)));
                }
                out.close(key);
            }
        }
    }

    fn who(&mut self, key: usize, room: RoomId, out: &mut impl Outbox) {
        let r = self.rooms.room(room);
        let members = r.members();
        self.line.clear();
        let n = members.len();
        let _ = write!(self.line, "* {} has {n} member{}: ", r.name(), plural(n));
        for (i, &m) in members.iter().take(MAX_LISTED).enumerate() {
            if i > 0 {
                self.line.push_str(", ");
            }
            let name = self
                .clients
                .get(m)
                .and_then(Option::as_ref)
                .map(|c| &*c.name);
            self.line.push_str(name.unwrap_or("?"));
        }
        if n > MAX_LISTED {
            let _ = write!(self.line, " ... and {} more", n - MAX_LISTED);
        }
        self.line.push('\n');
        out.send(key, self.line.as_bytes());
    }

    fn list_rooms(&mut self, key: usize, out: &mut impl Outbox) {
        let n = self.rooms.len();
        self.line.clear();
        let _ = write!(self.line, "* {n} room{}: ", plural(n));
        for (i, r) in self.rooms.iter().take(MAX_LISTED).enumerate() {
            if i > 0 {
                self.line.push_str(", ");
            }
            let _ = write!(self.line, "{} ({})", r.name(), r.members().len());
        }
        if n > MAX_LISTED {
            let _ = write!(self.line, " ... and {} more", n - MAX_LISTED);
        }
        self.line.push('\n');
        out.send(key, self.line.as_bytes());
    }

    fn join(&mut self, key: usize, room: RoomId, target: &str, out: &mut impl Outbox) {
        if !protocol::is_valid_name(target) {
            self.reply(key, out, format_args!("! invalid room name: {target}"));
            return;
        }
        if self.rooms.find(target) == Some(room) {
            let current = self.rooms.room(room).name();
            let msg = format!("! already in {current}");
            self.reply(key, out, format_args!("{msg}"));
            return;
        }
        let name = name_in(&self.clients, key);
        self.line.clear();
        // Name the room as it will be shown once joined.
        let shown = self
            .rooms
            .find(target)
            .map_or(target, |id| self.rooms.room(id).name());
        let _ = write!(self.line, "* {name} left for {shown}");
        if let Some(left) = self.rooms.leave(key) {
            self.announce_leave(left.room, left.before, None, out);
        }
        self.enter(key, target, out);
    }

    fn nick(&mut self, key: usize, room: RoomId, new: &str, out: &mut impl Outbox) {
        let Some(folded) = fold(new) else {
            self.reply(
                key,
                out,
                format_args!("! invalid name: use 1-32 of A-Z a-z 0-9 _ -"),
            );
            return;
        };
        match self.names.get(folded_str(&folded)) {
            Some(&owner) if owner != key => {
                self.reply(key, out, format_args!("! name taken: {new}"));
                return;
            }
            _ => {}
        }
        let client = self.clients[key].as_mut().expect("registered");
        let old = std::mem::replace(&mut client.name, new.into());
        if let Some(k) = fold(&old) {
            self.names.remove(folded_str(&k));
        }
        self.names.insert(folded_str(&folded).into(), key);
        info!("conn {key}: {old} is now known as {new}");
        self.line.clear();
        let _ = writeln!(self.line, "* {old} is now known as {new}");
        deliver(self.rooms.room(room).members(), &self.line, out);
    }

    /// Puts `key` into room `name` and announces it (big rooms: to the
    /// joiner only, the rest counted for a summary).
    fn enter(&mut self, key: usize, name: &str, out: &mut impl Outbox) {
        let (id, members) = self.rooms.join(key, name);
        let who = name_in(&self.clients, key);
        self.line.clear();
        let _ = writeln!(self.line, "* {who} joined {}", self.rooms.room(id).name());
        if members > self.notice_limit {
            out.send(key, self.line.as_bytes());
            self.rooms.count(id, true);
        } else {
            deliver(self.rooms.room(id).members(), &self.line, out);
        }
    }

    /// Sends the leave notice already in `self.line` (without `\n`) for room
    /// `id`, which had `before` members before the leave. `subject` is the
    /// leaver when it is still a member and must get the notice itself.
    fn announce_leave(
        &mut self,
        id: RoomId,
        before: usize,
        subject: Option<usize>,
        out: &mut impl Outbox,
    ) {
        self.line.push('\n');
        if before > self.notice_limit {
            if let Some(k) = subject {
                out.send(k, self.line.as_bytes());
            }
            if before > 1 {
                self.rooms.count(id, false);
            }
        } else if before > 1 || subject.is_some() {
            deliver(self.rooms.room(id).members(), &self.line, out);
        }
    }

    /// Sends one line (given without `\n`) to `key` only.
    fn reply(&mut self, key: usize, out: &mut impl Outbox, args: std::fmt::Arguments<'_>) {
        self.line.clear();
        let _ = self.line.write_fmt(args);
        self.line.push('\n');
        out.send(key, self.line.as_bytes());
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

/// Hands the same encoded line to every member.
fn deliver(members: &[usize], line: &str, out: &mut impl Outbox) {
    for &m in members {
        out.send(m, line.as_bytes());
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// ` (reason)`, or nothing.
fn fmt_reason(reason: Option<&str>) -> String {
    reason.map(|r| format!(" ({r})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what each key was sent, and which keys were closed.
    #[derive(Default)]
    struct Recorder {
        lines: HashMap<usize, Vec<String>>,
        closed: Vec<usize>,
    }

    impl Outbox for Recorder {
        fn send(&mut self, key: usize, line: &[u8]) {
            let s = std::str::from_utf8(line).unwrap();
            assert!(
                s.ends_with('\n') && s.matches('\n').count() == 1,
                "one line: {s:?}"
            );
            self.lines
                .entry(key)
                .or_default()
                .push(s.trim_end_matches('\n').to_string());
        }
        fn close(&mut self, key: usize) {
            self.closed.push(key);
        }
    }

    impl Recorder {
        fn take(&mut self, key: usize) -> Vec<String> {
            self.lines.remove(&key).unwrap_or_default()
        }
    }

    fn chat_with(names: &[&str], limit: usize) -> (Chat, Recorder) {
        let mut chat = Chat::new(limit, 4096);
        let mut out = Recorder::default();
        for (key, name) in names.iter().enumerate() {
            chat.connected(key, &mut out);
            chat.line(key, name.as_bytes(), &mut out);
        }
        out.lines.clear();
        (chat, out)
    }

    #[test]
    fn prompt_line_is_the_protocol_prompt() {
        assert_eq!(PROMPT_LINE, format!("{}\n", protocol::PROMPT).as_bytes());
    }

    #[test]
    fn registration_prompts_validates_and_announces() {
        let mut chat = Chat::new(100, 4096);
        let mut out = Recorder::default();
        chat.connected(0, &mut out);
        chat.line(0, b"bad name", &mut out);
        chat.line(0, b"  alice ", &mut out);
        chat.connected(1, &mut out);
        chat.line(1, b"ALICE", &mut out);
        chat.line(1, b"\xff", &mut out);
        chat.line(1, b"bob", &mut out);
        assert_eq!(
            out.take(0),
            [
                "NAME",
                "! invalid name: use 1-32 of A-Z a-z 0-9 _ -",
                "NAME",
                "* alice joined lobby",
                "* bob joined lobby"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                "NAME",
                "! name taken: ALICE",
                "NAME",
                "! invalid UTF-8",
                "NAME",
                "* bob joined lobby"
            ]
        );
        assert_eq!(chat.registered(), 2);
    }

    #[test]
    fn messages_reach_the_room_including_the_sender() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.line(0, b"hello", &mut out);
        chat.line(1, b"//slash", &mut out);
        chat.line(1, b"", &mut out);
        chat.line(0, b"/me waves", &mut out);
        let want = ["alice: hello", "bob: /slash", "* alice waves"];
        assert_eq!(out.take(0), want);
        assert_eq!(out.take(1), want);
    }

    #[test]
    fn join_moves_between_rooms_and_tells_both() {
        let (mut chat, mut out) = chat_with(&["alice", "bob", "carol"], 100);
        chat.line(0, b"/join Games", &mut out);
        chat.line(1, b"/join games", &mut out);
        chat.line(1, b"/join GAMES", &mut out);
        chat.line(1, b"hi", &mut out);
        chat.line(0, b"/rooms", &mut out);
        chat.line(0, b"/join bad!room", &mut out);
        assert_eq!(
            out.take(0),
            [
                "* alice joined Games",
                "* bob joined Games",
                "bob: hi",
                "* 2 rooms: Games (2), lobby (1)",
                "! invalid room name: bad!room"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                "* alice left for Games",
                "* bob joined Games",
                "! already in Games",
                "bob: hi"
            ]
        );
        assert_eq!(
            out.take(2),
            ["* alice left for Games", "* bob left for Games"]
        );
    }

    #[test]
    fn nick_msg_who_and_errors() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.line(0, b"/nick bob", &mut out);
        chat.line(0, b"/nick Alice", &mut out);
        chat.line(1, b"/msg alice psst", &mut out);
        chat.line(1, b"/msg nobody x", &mut out);
        chat.line(1, b"/msg bob self", &mut out);
        chat.line(1, b"/who", &mut out);
        chat.line(1, b"/frob", &mut out);
        chat.line(1, b"/who now", &mut out);
        chat.line(1, b"esc \x1b[2J", &mut out);
        assert_eq!(
            out.take(0),
            [
                "! name taken: bob",
                "* alice is now known as Alice",
                "[pm bob -> Alice] psst"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                "* alice is now known as Alice",
                "[pm bob -> Alice] psst",
                "! no such user: nobody",
                "[pm bob -> bob] self",
                "* lobby has 2 members: Alice, bob",
                "! unknown command: /frob (try /help)",
                "! usage: /who",
                "! control characters are not allowed"
            ]
        );
    }

    #[test]
    fn quit_confirms_to_the_quitter_and_frees_the_name() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.line(0, b"/quit gone fishing", &mut out);
        assert_eq!(out.take(0), ["* alice left (quit: gone fishing)"]);
        assert_eq!(out.take(1), ["* alice left (quit: gone fishing)"]);
        assert_eq!(out.closed, [0]);
        // The connection's later close must not announce it twice.
        chat.disconnected(0, Some("connection reset"), &mut out);
        assert_eq!(out.take(1), Vec::<String>::new());
        chat.connected(2, &mut out);
        chat.line(2, b"alice", &mut out);
        assert_eq!(out.take(2), ["NAME", "* alice joined lobby"]);
        chat.disconnected(1, Some("slow consumer"), &mut out);
        assert_eq!(out.take(2), ["* bob left (slow consumer)"]);
    }

    #[test]
    fn big_rooms_get_summaries_and_each_subject_its_own_notice() {
        let (mut chat, mut out) = chat_with(&["a", "b", "c"], 2);
        // 3 members > limit 2: registration of c was counted, not broadcast.
        assert!(chat.has_pending_notices());
        chat.flush_notices(&mut out);
        for k in 0..3 {
            assert_eq!(out.take(k), ["* 1 joined"]);
        }
        chat.connected(3, &mut out);
        chat.line(3, b"d", &mut out);
        chat.line(0, b"/quit", &mut out);
        chat.disconnected(1, None, &mut out);
        assert_eq!(out.take(3), ["NAME", "* d joined lobby"]);
        assert_eq!(out.take(0), ["* a left (quit)"]);
        assert_eq!(out.take(2), Vec::<String>::new());
        chat.flush_notices(&mut out);
        // Counted: d joined (4 > 2), a quit (4 before), b left (3 before).
        assert_eq!(out.take(2), ["* 1 joined, 2 left"]);
        assert_eq!(out.take(3), ["* 1 joined, 2 left"]);
        assert!(!chat.has_pending_notices());
    }

    #[test]
    fn listings_are_capped() {
        let names: Vec<String> = (0..MAX_LISTED + 5).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (mut chat, mut out) = chat_with(&refs, 1000);
        chat.line(0, b"/who", &mut out);
        let line = out.take(0).pop().unwrap();
        assert!(line.starts_with("* lobby has 105 members: "), "{line}");
        assert!(line.ends_with(" ... and 5 more"), "{line}");
        assert_eq!(line.matches(", ").count(), MAX_LISTED - 1);
    }

    #[test]
    fn overlong_lines_are_reported_and_reprompt_before_registration() {
        let mut chat = Chat::new(100, 16);
        let mut out = Recorder::default();
        chat.connected(0, &mut out);
        chat.frame(0, Frame::TooLong, &mut out);
        chat.frame(0, Frame::Line(b"zed"), &mut out);
        chat.frame(0, Frame::TooLong, &mut out);
        assert_eq!(
            out.take(0),
            [
                "NAME",
                "! line too long (max 16 bytes)",
                "NAME",
                "* zed joined lobby",
                "! line too long (max 16 bytes)"
            ]
        );
    }
}
