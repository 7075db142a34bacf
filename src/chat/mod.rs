//! The chat front: what a client's lines mean. The first line is a name;
//! after that, chat text and `/` commands, with their usage errors and the
//! text checks. Every decision about shared state (names, rooms, who hears
//! what) belongs to the [`Bus`]. Pure: keys and lines in, an [`Outbox`] out;
//! it knows nothing of sockets, codecs or where the bus keeps its state.

use crate::bus::{Bus, ClientId};
use crate::framing::Frame;
use crate::outbox::Outbox;
use crate::protocol::lines::{self, Leave, Refusal, PROMPT_LINE};
use crate::protocol::{self, Command, ParseError};

/// `/help` lines are at most this wide, so with the `* ` in front they fit
/// an 80-column terminal.
const HELP_WIDTH: usize = 78;

/// The chat front over a bus.
#[derive(Debug)]
pub struct Chat<B> {
    bus: B,
    /// The largest line a client may send, for the "line too long" error.
    max_line: usize,
    /// Scratch buffer for the replies sent from here.
    line: String,
}

impl<B: Bus> Chat<B> {
    /// A chat over `bus`; lines over `max_line` bytes are refused.
    pub fn new(bus: B, max_line: usize) -> Chat<B> {
        Chat {
            bus,
            max_line,
            line: String::with_capacity(128),
        }
    }

    /// The bus, for its counts.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// The bus, for the loop to drive its sockets and timers.
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    /// True once `key` has a name.
    pub fn is_registered(&self, key: usize) -> bool {
        self.bus.is_registered(key)
    }

    /// The wall-clock time (Unix seconds), for history lines.
    pub fn set_time(&mut self, unix_secs: u64) {
        self.bus.set_time(unix_secs);
    }

    /// True while `key` waits for the bus: act on none of its input.
    pub fn is_waiting(&self, key: usize) -> bool {
        self.bus.is_waiting(key)
    }

    /// A new connection: ask for a name.
    pub fn connected(&mut self, key: usize, out: &mut impl Outbox) {
        out.send(key, PROMPT_LINE.as_bytes());
    }

    /// One framed unit of input from client `c`.
    pub fn frame(&mut self, c: ClientId, frame: Frame<'_>, out: &mut impl Outbox) {
        match frame {
            Frame::Line(line) => self.line(c, line, out),
            Frame::TooLong => self.refuse(c.key, Refusal::LineTooLong(self.max_line), out),
        }
    }

    /// One complete line from client `c` (without its line ending).
    pub fn line(&mut self, c: ClientId, line: &[u8], out: &mut impl Outbox) {
        let text = match protocol::check_text(line) {
            Ok(text) => text,
            Err(e) => return self.refuse(c.key, Refusal::Text(e), out),
        };
        if !self.bus.is_registered(c.key) {
            return self.register(c, text, out);
        }
        let key = c.key;
        let cmd = match protocol::parse_command(text) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return,
            Err(e) => return self.refuse(key, Refusal::Command(e), out),
        };
        match cmd {
            Command::Say(text) => self.bus.say(key, text, out),
            Command::Me(action) => self.bus.act(key, action, out),
            Command::Help(word) => self.help(key, word, out),
            Command::Who => self.bus.who(key, out),
            Command::Rooms => self.bus.rooms(key, out),
            Command::Join(room) if !protocol::is_valid_name(room) => {
                self.refuse(key, Refusal::InvalidRoom(room), out)
            }
            Command::Join(room) => self.bus.join(key, room, out),
            Command::Nick(new) if !protocol::is_valid_name(new) => {
                self.refuse(key, Refusal::InvalidName, out)
            }
            Command::Nick(new) => self.bus.nick(key, new, out),
            Command::Msg { to, text } => self.bus.msg(key, to, text, out),
            Command::Topic(topic) => self.bus.topic(key, topic, out),
            Command::Away(message) => self.bus.away(key, message, out),
            Command::Quit(reason) => {
                self.bus.leave(key, Leave::Quit(reason), out);
                out.close(key);
            }
        }
    }

    /// The first lines of a connection: a name (blanks around it ignored),
    /// or `/help [command]` (then the prompt again), or `/quit`.
    fn register(&mut self, c: ClientId, text: &str, out: &mut impl Outbox) {
        let name = text.trim_matches([' ', '\t']);
        let (word, rest) = name.split_once(' ').unwrap_or((name, ""));
        if word.eq_ignore_ascii_case("/quit") {
            out.close(c.key);
        } else if word.eq_ignore_ascii_case("/help") {
            let rest = rest.trim_matches(' ');
            self.help(c.key, (!rest.is_empty()).then_some(rest), out);
            out.send(c.key, PROMPT_LINE.as_bytes());
        } else if !protocol::is_valid_name(name) {
            self.refuse(c.key, Refusal::InvalidName, out);
        } else {
            self.bus.register(c, name, out);
        }
    }

    /// `/help`: the commands in lines that fit an 80-column terminal, or one
    /// command's usage and what it does.
    fn help(&mut self, key: usize, word: Option<&str>, out: &mut impl Outbox) {
        let Some(word) = word else {
            for text in protocol::help_lines(HELP_WIDTH) {
                self.line.clear();
                lines::notice(&mut self.line, &text);
                out.send(key, self.line.as_bytes());
            }
            return;
        };
        self.line.clear();
        match protocol::help_for(word) {
            Some(c) => lines::notice(&mut self.line, &format!("{}: {}", c.usage, c.about)),
            None => {
                let word = word.strip_prefix('/').unwrap_or(word);
                lines::refusal(&mut self.line, Refusal::Command(ParseError::Unknown(word)));
            }
        }
        out.send(key, self.line.as_bytes());
    }

    /// `key` is gone (or going): its room is told, with `reason` in brackets
    /// if there is one. False if it never registered or already left.
    pub fn disconnected(
        &mut self,
        key: usize,
        reason: Option<&str>,
        out: &mut impl Outbox,
    ) -> bool {
        let how = reason.map_or(Leave::Closed, Leave::Because);
        self.bus.leave(key, how, out)
    }

    /// True when big rooms have counted joins/leaves waiting for a summary.
    pub fn has_pending_notices(&self) -> bool {
        self.bus.has_pending_notices()
    }

    /// Sends each big room its summary notice (`* 120 joined, 14 left`).
    pub fn flush_notices(&mut self, out: &mut impl Outbox) {
        self.bus.flush_notices(out);
    }

    /// Sends `r` to `key` only; an unregistered client is asked for a name
    /// again, so it always knows what the server expects.
    fn refuse(&mut self, key: usize, r: Refusal<'_>, out: &mut impl Outbox) {
        self.line.clear();
        lines::refusal(&mut self.line, r);
        out.send(key, self.line.as_bytes());
        if !self.bus.is_registered(key) {
            out.send(key, PROMPT_LINE.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::bus::{ChatSettings, LocalBus, MAX_LISTED};

    fn c(key: usize) -> ClientId {
        ClientId {
            key,
            id: key as u64,
        }
    }

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

    fn settings(limit: usize) -> ChatSettings {
        ChatSettings {
            notice_limit: limit,
            history_lines: 20,
            motd: Vec::new(),
        }
    }

    fn new_chat(limit: usize, max_line: usize) -> Chat<LocalBus> {
        Chat::new(LocalBus::new(settings(limit)), max_line)
    }

    /// A chat with `names` registered in order (keys 0, 1, ...), nothing
    /// recorded yet.
    fn chat_with(names: &[&str], limit: usize) -> (Chat<LocalBus>, Recorder) {
        let mut chat = new_chat(limit, 4096);
        let mut out = Recorder::default();
        for (key, name) in names.iter().enumerate() {
            chat.connected(key, &mut out);
            chat.line(c(key), name.as_bytes(), &mut out);
        }
        out.lines.clear();
        (chat, out)
    }

    const PROMPT: &str = "NAME choose a name: 1-32 of A-Z a-z 0-9 _ -";
    const WELCOME: &str = "* welcome to chatroom, ";

    #[test]
    fn prompt_line_starts_with_the_protocol_prompt() {
        assert!(PROMPT_LINE.starts_with(&format!("{} ", protocol::PROMPT)));
        assert_eq!(PROMPT_LINE.trim_end(), PROMPT);
    }

    #[test]
    fn registration_prompts_validates_welcomes_and_lists() {
        let mut chat = new_chat(100, 4096);
        let mut out = Recorder::default();
        chat.connected(0, &mut out);
        chat.line(c(0), b"bad name", &mut out);
        chat.line(c(0), b"  alice ", &mut out);
        chat.connected(1, &mut out);
        chat.line(c(1), b"ALICE", &mut out);
        chat.line(c(1), b"\xff", &mut out);
        chat.line(c(1), b"bob", &mut out);
        assert_eq!(
            out.take(0),
            [
                PROMPT,
                "! invalid name: use 1-32 of A-Z a-z 0-9 _ -",
                PROMPT,
                "* alice joined lobby",
                "* welcome to chatroom, alice! /help lists the commands",
                "* lobby has 1 member: alice",
                "* bob joined lobby"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                PROMPT,
                "! name taken: ALICE",
                PROMPT,
                "! invalid UTF-8",
                PROMPT,
                "* bob joined lobby",
                "* welcome to chatroom, bob! /help lists the commands",
                "* lobby has 2 members: alice, bob"
            ]
        );
        assert_eq!(chat.bus().registered(), 2);
    }

    #[test]
    fn help_and_quit_work_before_registering() {
        let mut chat = new_chat(100, 4096);
        let mut out = Recorder::default();
        chat.connected(0, &mut out);
        chat.line(c(0), b"/help", &mut out);
        chat.line(c(0), b"/help nick", &mut out);
        chat.line(c(0), b"/quit", &mut out);
        let got = out.take(0);
        assert_eq!(got[0], PROMPT);
        assert!(
            got[1].starts_with("* commands: /help [command], /who"),
            "{got:?}"
        );
        assert!(got.iter().all(|l| l.len() <= 80), "{got:?}");
        assert_eq!(got[got.len() - 3], PROMPT);
        assert_eq!(
            got[got.len() - 2],
            "* /nick <name>: change your name (1-32 of A-Z a-z 0-9 _ -)"
        );
        assert_eq!(got[got.len() - 1], PROMPT);
        assert_eq!(out.closed, [0]);
    }

    #[test]
    fn messages_reach_the_room_including_the_sender() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.line(c(0), b"hello", &mut out);
        chat.line(c(1), b"//slash", &mut out);
        chat.line(c(1), b"", &mut out);
        chat.line(c(0), b"/me waves", &mut out);
        let want = ["alice: hello", "bob: /slash", "+ alice waves"];
        assert_eq!(out.take(0), want);
        assert_eq!(out.take(1), want);
    }

    #[test]
    fn joiners_get_topic_history_and_members() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.bus.set_time(1_796_050_985);
        chat.line(c(0), b"/topic cats: all day", &mut out);
        chat.line(c(0), b"first", &mut out);
        chat.line(c(1), b"/me naps", &mut out);
        chat.line(c(1), b"/away lunch", &mut out);
        out.lines.clear();
        chat.connected(2, &mut out);
        chat.line(c(2), b"carol", &mut out);
        assert_eq!(
            out.take(2),
            [
                PROMPT,
                "* carol joined lobby",
                "* welcome to chatroom, carol! /help lists the commands",
                "* topic for lobby: cats: all day",
                "# 2026-11-30T15:03:05Z alice: first",
                "# 2026-11-30T15:03:05Z + bob naps",
                "* lobby has 3 members: alice, bob (away), carol"
            ]
        );
        assert_eq!(out.take(0), ["* carol joined lobby"]);
    }

    #[test]
    fn topic_shows_sets_and_clears() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.line(c(0), b"/topic", &mut out);
        chat.line(c(1), b"/topic rust and chat", &mut out);
        chat.line(c(0), b"/topic", &mut out);
        chat.line(c(0), b"/topic -", &mut out);
        assert_eq!(
            out.take(0),
            [
                "* no topic for lobby",
                "* bob set the topic for lobby: rust and chat",
                "* topic for lobby: rust and chat",
                "* alice cleared the topic for lobby"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                "* bob set the topic for lobby: rust and chat",
                "* alice cleared the topic for lobby"
            ]
        );
    }

    #[test]
    fn away_is_shown_to_senders_and_in_who() {
        let (mut chat, mut out) = chat_with(&["alice", "bob"], 100);
        chat.line(c(1), b"/away at lunch", &mut out);
        chat.line(c(0), b"/msg bob hi", &mut out);
        chat.line(c(0), b"/who", &mut out);
        chat.line(c(1), b"/away", &mut out);
        chat.line(c(0), b"/msg bob again", &mut out);
        assert_eq!(
            out.take(0),
            [
                "[pm alice -> bob] hi",
                "* bob is away: at lunch",
                "* lobby has 2 members: alice, bob (away)",
                "[pm alice -> bob] again"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                "* you are away: at lunch",
                "[pm alice -> bob] hi",
                "* you are back",
                "[pm alice -> bob] again"
            ]
        );
    }

    #[test]
    fn join_moves_between_rooms_and_tells_both() {
        let (mut chat, mut out) = chat_with(&["alice", "bob", "carol"], 100);
        chat.line(c(0), b"/join Games", &mut out);
        chat.line(c(1), b"/join games", &mut out);
        chat.line(c(1), b"/join GAMES", &mut out);
        chat.line(c(1), b"hi", &mut out);
        chat.line(c(0), b"/rooms", &mut out);
        chat.line(c(0), b"/join bad!room", &mut out);
        chat.line(c(0), b"/join two words", &mut out);
        assert_eq!(
            out.take(0),
            [
                "* alice joined Games",
                "* Games has 1 member: alice",
                "* bob joined Games",
                "bob: hi",
                "* 2 rooms: Games (2), lobby (1)",
                "! invalid room name: bad!room",
                "! invalid room name: two words"
            ]
        );
        assert_eq!(
            out.take(1),
            [
                "* alice left for Games",
                "* bob joined Games",
                "* Games has 2 members: alice, bob",
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
        chat.line(c(0), b"/nick bob", &mut out);
        chat.line(c(0), b"/nick alice", &mut out);
        chat.line(c(0), b"/nick bad name", &mut out);
        chat.line(c(0), b"/nick Alice", &mut out);
        chat.line(c(1), b"/msg alice psst", &mut out);
        chat.line(c(1), b"/msg nobody x", &mut out);
        chat.line(c(1), b"/msg bob self", &mut out);
        chat.line(c(1), b"/who", &mut out);
        chat.line(c(1), b"/frob", &mut out);
        chat.line(c(1), b"/who now", &mut out);
        chat.line(c(1), b"esc \x1b[2J", &mut out);
        assert_eq!(
            out.take(0),
            [
                "! name taken: bob",
                "! you are already alice",
                "! invalid name: use 1-32 of A-Z a-z 0-9 _ -",
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
        chat.line(c(0), b"/quit gone fishing", &mut out);
        assert_eq!(out.take(0), ["* alice left (quit: gone fishing)"]);
        assert_eq!(out.take(1), ["* alice left (quit: gone fishing)"]);
        assert_eq!(out.closed, [0]);
        // The connection's later close must not announce it twice.
        chat.disconnected(0, Some("connection reset"), &mut out);
        assert_eq!(out.take(1), Vec::<String>::new());
        chat.connected(2, &mut out);
        chat.line(c(2), b"alice", &mut out);
        let got = out.take(2);
        assert_eq!(got[..2], [PROMPT, "* alice joined lobby"]);
        assert!(got[2].starts_with(WELCOME));
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
            assert_eq!(out.take(k), ["* lobby: 1 joined"]);
        }
        chat.connected(3, &mut out);
        chat.line(c(3), b"d", &mut out);
        chat.line(c(0), b"/quit", &mut out);
        chat.disconnected(1, None, &mut out);
        assert_eq!(out.take(3)[..2], [PROMPT, "* d joined lobby"]);
        assert_eq!(out.take(0), ["* a left (quit)"]);
        assert_eq!(out.take(2), Vec::<String>::new());
        chat.flush_notices(&mut out);
        // Counted: d joined (4 > 2), a quit (4 before), b left (3 before).
        assert_eq!(out.take(2), ["* lobby: 1 joined, 2 left"]);
        assert_eq!(out.take(3), ["* lobby: 1 joined, 2 left"]);
        assert!(!chat.has_pending_notices());
    }

    #[test]
    fn listings_are_sorted_and_capped() {
        let names: Vec<String> = (0..MAX_LISTED + 5).map(|i| format!("n{i:03}")).collect();
        let refs: Vec<&str> = names.iter().rev().map(String::as_str).collect();
        let (mut chat, mut out) = chat_with(&refs, 1000);
        chat.line(c(0), b"/who", &mut out);
        let line = out.take(0).pop().unwrap();
        assert!(
            line.starts_with("* lobby has 105 members: n000, n001, n002, "),
            "{line}"
        );
        assert!(line.ends_with(", n099 ... and 5 more"), "{line}");
        assert_eq!(line.matches(", ").count(), MAX_LISTED - 1);
    }

    #[test]
    fn overlong_lines_are_reported_and_reprompt_before_registration() {
        let mut chat = new_chat(100, 16);
        let mut out = Recorder::default();
        chat.connected(0, &mut out);
        chat.frame(c(0), Frame::TooLong, &mut out);
        chat.frame(c(0), Frame::Line(b"zed"), &mut out);
        chat.frame(c(0), Frame::TooLong, &mut out);
        let got = out.take(0);
        assert_eq!(
            got[..4],
            [
                PROMPT,
                "! line too long (max 16 bytes)",
                PROMPT,
                "* zed joined lobby"
            ]
        );
        assert_eq!(got.last().unwrap(), "! line too long (max 16 bytes)");
    }
}
