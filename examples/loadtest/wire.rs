//! What each target server expects on the wire and what its lines mean:
//! registration bytes, the message framing around a payload, and a per
//! connection [`Decoder`] that turns one received line into an [`Event`].
//! Pure: no sockets and no counting; chatroom lines are classified by the
//! crate's own `parse_server_line` (chat lines first by a byte check that
//! agrees with it), Redis replies by a small RESP reader.

use chatroom::protocol::{
    is_valid_name, parse_server_line, ServerLine, MAX_NAME_CHARS, NOTICE_PREFIX, SHUTDOWN_NOTICE,
};

use crate::payload::{Template, MAGIC};
use crate::ws;

/// The channel (Redis) or room (chatroom) every client is in.
pub const ROOM: &str = "lobby";

/// Which server the load is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Our server: name line, `* <name> joined lobby`, `<name>: <text>` echoes.
    Chatroom,
    /// `redis-server`: receivers SUBSCRIBE, senders PUBLISH on a second socket
    /// (a subscribed RESP2 connection may not publish).
    Redis,
    /// The tutorial's Python server: no framing and no confirmation, so
    /// payloads are found by their magic byte and reachability by probes.
    Tutorial,
}

impl Target {
    /// Parses the `--target` value.
    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "chatroom" => Some(Target::Chatroom),
            "redis" => Some(Target::Redis),
            "tutorial" => Some(Target::Tutorial),
            _ => None,
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::Chatroom => "chatroom",
            Target::Redis => "redis",
            Target::Tutorial => "tutorial",
        }
    }

    /// The port it listens on unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Target::Chatroom | Target::Tutorial => chatroom::protocol::DEFAULT_PORT,
            Target::Redis => 6379,
        }
    }

    /// True when senders publish on a connection of their own.
    pub fn has_publishers(self) -> bool {
        self == Target::Redis
    }

    /// True when the server confirms registration itself. The tutorial's
    /// prompt only says we were accepted, not that we are in its broadcast
    /// list yet: the load tester sends probes until every client has seen one.
    pub fn confirms_registration(self) -> bool {
        self != Target::Tutorial
    }

    /// The bytes a receiving connection sends first: its name, then (chatroom,
    /// when given) `/join room` (over WebSocket: one text frame each under
    /// `mask`, no newline).
    pub fn register_bytes(
        self,
        name: &str,
        room: Option<&str>,
        ws_mask: Option<[u8; 4]>,
    ) -> Vec<u8> {
        let join = room.map(|r| format!("/join {r}"));
        let lines = std::iter::once(name).chain(join.as_deref());
        match (self, ws_mask) {
            (Target::Chatroom, Some(mask)) => {
                let mut out = Vec::new();
                for line in lines {
                    ws::frame(ws::TEXT, line.as_bytes(), mask, &mut out);
                }
                out
            }
            (Target::Chatroom, None) => lines
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes(),
            (Target::Tutorial, _) => format!("{name}\n").into_bytes(),
            (Target::Redis, _) => resp_command(&[b"SUBSCRIBE", ROOM.as_bytes()]),
        }
    }

    /// A sender's pre-encoded message for lines of `line_bytes` on the wire
    /// (payload plus `\n`; for Redis the payload is the same size; over
    /// WebSocket, the payload alone in one text frame under `ws_mask`).
    pub fn template(self, line_bytes: usize, sender: u32, ws_mask: Option<[u8; 4]>) -> Template {
        let payload = line_bytes - 1;
        match (self, ws_mask) {
            (Target::Chatroom, Some(mask)) => {
                let mut header = Vec::new();
                ws::header(ws::TEXT, payload, mask, &mut header);
                Template::masked(&header, payload, b"", sender, mask)
            }
            (Target::Chatroom | Target::Tutorial, _) => Template::new(b"", payload, b"\n", sender),
            (Target::Redis, _) => {
                let prefix = format!(
                    "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{ROOM}\r\n${payload}\r\n",
                    ROOM.len()
                );
                Template::new(prefix.as_bytes(), payload, b"\r\n", sender)
            }
        }
    }
}

/// Encodes one RESP command (an array of bulk strings).
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What one received line means to the load tester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Nothing to count: someone else's notice, a PUBLISH reply.
    Nothing,
    /// The server asks for a name (chatroom): once at the start, and again
    /// after refusing the one sent.
    Prompt,
    /// This connection's registration (or subscription) is confirmed.
    Registered,
    /// A relayed message; `from` is the sender's name where the server says it.
    Delivery {
        /// The name the server attributed the message to (chatroom only).
        from: Option<&'a str>,
        /// The payload, to be checked by `payload::decode`.
        payload: &'a [u8],
    },
    /// The server reported an error to this client.
    ServerError(&'a str),
    /// The server said it is shutting down (chatroom's last notice).
    Shutdown,
    /// A line that is none of the above.
    Malformed(&'a [u8]),
}

/// Per-connection decoding state: only Redis replies span several lines.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Elements still to come in the current RESP array (0: none open).
    remaining: u32,
    /// Index of the next element in the current array.
    index: u32,
    /// The next line is the data of a bulk string.
    bulk_next: bool,
    /// What the open array is, from its first element.
    kind: ArrayKind,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ArrayKind {
    #[default]
    Other,
    Message,
    Subscribe,
}

impl Decoder {
    /// Classifies `line` (without its line ending) received by client
    /// `name`, whose registration is complete once it is in `room` (any
    /// room when `None`: the one the server puts newcomers in).
    pub fn line<'a>(
        &mut self,
        target: Target,
        name: &str,
        room: Option<&str>,
        line: &'a [u8],
    ) -> Event<'a> {
        match target {
            Target::Chatroom => chatroom_line(name, room, line),
            Target::Tutorial => match memchr::memrchr(MAGIC, line) {
                Some(i) => Event::Delivery {
                    from: None,
                    payload: &line[i..],
                },
                None => Event::Nothing,
            },
            Target::Redis => self.resp_line(line),
        }
    }

    /// One RESP line. Our payloads hold no CR or LF, so every bulk string we
    /// care about is exactly one line and line framing is enough.
    fn resp_line<'a>(&mut self, line: &'a [u8]) -> Event<'a> {
        if self.bulk_next {
            self.bulk_next = false;
            return self.element(Some(line));
        }
        match line.first() {
            Some(b'*') if self.remaining == 0 => match parse_u32(&line[1..]) {
                Some(n) if n > 0 => {
                    self.remaining = n;
                    self.index = 0;
                    self.kind = ArrayKind::Other;
                    Event::Nothing
                }
                _ => Event::Malformed(line),
            },
            Some(b'$') if &line[1..] == b"-1" => self.element(None),
            Some(b'$') => {
                self.bulk_next = true;
                Event::Nothing
            }
            Some(b':') if self.remaining > 0 => self.element(None),
            // A top-level integer is a PUBLISH reply (the receiver count).
            Some(b':') | Some(b'+') => Event::Nothing,
            Some(b'-') => Event::ServerError(std::str::from_utf8(&line[1..]).unwrap_or("?")),
            _ => Event::Malformed(line),
        }
    }

    /// One element of the open array (`None` for integers and nulls).
    fn element<'a>(&mut self, data: Option<&'a [u8]>) -> Event<'a> {
        if self.remaining == 0 {
            return Event::Nothing; // a top-level bulk reply: not ours to count
        }
        let i = self.index;
        self.index += 1;
        self.remaining -= 1;
        let ev = match (i, self.kind, data) {
            (0, _, Some(b"message")) => {
                self.kind = ArrayKind::Message;
                Event::Nothing
            }
            (0, _, Some(b"subscribe")) => {
                self.kind = ArrayKind::Subscribe;
                Event::Nothing
            }
            (2, ArrayKind::Message, Some(payload)) => Event::Delivery {
                from: None,
                payload,
            },
            (2, ArrayKind::Subscribe, None) => Event::Registered,
            _ => Event::Nothing,
        };
        if self.remaining == 0 {
            self.kind = ArrayKind::Other;
        }
        ev
    }
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The bulk of every run, `<name>: ~<payload>`, recognised from its bytes:
/// the load tester is the limit in small-room fan-out, and validating each
/// whole line as UTF-8 and ruling out every other line shape first was a
/// fifth of its time. Safe because no other server line starts with a
/// valid name followed by `": "` (prompts, notices, errors, actions,
/// history and private messages all start with a space-separated word or a
/// sigil); the payload's header is checked by `payload::decode`, and a
/// payload that is not ASCII is left to the parser.
fn chat_line(line: &[u8]) -> Option<Event<'_>> {
    let head = &line[..line.len().min(MAX_NAME_CHARS + 1)];
    let colon = memchr::memchr(b':', head)?;
    let from = std::str::from_utf8(&line[..colon]).ok()?;
    let rest = &line[colon..];
    // Our payloads are ASCII: anything else goes to the parser, which
    // checks it is UTF-8 as the server promises.
    if !rest.starts_with(&[b':', b' ', MAGIC]) || !is_valid_name(from) || !rest.is_ascii() {
        return None;
    }
    Some(Event::Delivery {
        from: Some(from),
        payload: &rest[2..],
    })
}

/// A chatroom line, classified by the protocol module the server itself uses.
fn chatroom_line<'a>(name: &str, room: Option<&str>, line: &'a [u8]) -> Event<'a> {
    if let Some(ev) = chat_line(line) {
        return ev;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Event::Malformed(line);
    };
    match parse_server_line(text) {
        ServerLine::Chat { from, text } => Event::Delivery {
            from: Some(from),
            payload: text.as_bytes(),
        },
        ServerLine::Notice(notice)
            if Some(notice) == SHUTDOWN_NOTICE.strip_prefix(NOTICE_PREFIX) =>
        {
            Event::Shutdown
        }
        ServerLine::Notice(notice) => {
            // Only our own join (into our room, when we asked for one)
            // confirms registration; summaries (`* 120 joined`) and others'
            // notices are not ours to count.
            let own = notice
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(" joined "));
            if own.is_some_and(|r| room.is_none_or(|want| r == want)) {
                Event::Registered
            } else {
                Event::Nothing
            }
        }
        // The join burst's history lines are old chat (maybe this run's
        // own messages, to a client that rejoined), never deliveries.
        ServerLine::Prompt => Event::Prompt,
        ServerLine::History { .. } => Event::Nothing,
        ServerLine::Error(e) => Event::ServerError(e),
        // The load tester sends neither actions nor private messages.
        ServerLine::Action { .. } | ServerLine::Private { .. } | ServerLine::Other(_) => {
            Event::Malformed(line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `lines` to one decoder and renders every event that is not `Nothing`.
    fn events(target: Target, lines: &[&[u8]]) -> Vec<String> {
        let mut d = Decoder::default();
        lines
            .iter()
            .map(|l| d.line(target, "lt1", None, l))
            .filter(|e| *e != Event::Nothing)
            .map(|e| match e {
                Event::Registered => "registered".to_string(),
                Event::Delivery { from, payload } => {
                    format!("{:?} {}", from, String::from_utf8_lossy(payload))
                }
                Event::ServerError(e) => format!("error {e}"),
                Event::Shutdown => "shutdown".to_string(),
                Event::Prompt => "prompt".to_string(),
                Event::Malformed(l) => format!("malformed {}", String::from_utf8_lossy(l)),
                Event::Nothing => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn decodes() {
        use Target::*;
        // (target, lines received, events expected)
        type Case<'a> = (Target, &'a [&'a [u8]], &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (
                Chatroom,
                &[b"NAME", b"* lt1 joined lobby"],
                &["prompt", "registered"],
            ),
            // the whole join burst: only the join registers; history lines
            // (even of this run's messages) are neither deliveries nor errors
            (
                Chatroom,
                &[
                    b"NAME choose a name: 1-32 of A-Z a-z 0-9 _ -",
                    b"* lt1 joined lobby",
                    b"* welcome to chatroom, lt1! /help lists the commands",
                    b"* motd: be nice",
                    b"* topic for lobby: load",
                    b"# 2026-11-24T21:03:05Z lt7: ~000001.0000000003.000000000000005.x",
                    b"# 2026-11-24T21:03:05Z + lt7 waves",
                    b"* lobby has 2 members: lt1, lt7 (away)",
                ],
                &["prompt", "registered"],
            ),
            (
                Chatroom,
                &[b"+ lt7 waves", b"[pm lt7 -> lt1] hi"],
                &["malformed + lt7 waves", "malformed [pm lt7 -> lt1] hi"],
            ),
            (
                Chatroom,
                &[b"* server shutting down", b"* lt1 left (quit)"],
                &["shutdown"],
            ),
            (
                Chatroom,
                &[b"* lt12 joined lobby", b"* 120 joined, 4 left"],
                &[],
            ),
            (Chatroom, &[b"lt7: ~abc"], &["Some(\"lt7\") ~abc"]),
            (Chatroom, &[b"! server full"], &["error server full"]),
            (
                Chatroom,
                &[b"garbage", b"\xff"],
                &["malformed garbage", "malformed \u{fffd}"],
            ),
            (
                Tutorial,
                &[
                    b"NAME('127.0.0.1', 5) is Connected!~p1",
                    b"Name of x is lt1",
                ],
                &["None ~p1"],
            ),
            (
                Redis,
                &[b"*3", b"$9", b"subscribe", b"$5", b"lobby", b":1"],
                &["registered"],
            ),
            (
                Redis,
                &[
                    b"*3", b"$7", b"message", b"$5", b"lobby", b"$3", b"~ab", b":5", b"+OK",
                ],
                &["None ~ab"],
            ),
            // a message whose payload looks like a keyword is still a payload
            (
                Redis,
                &[
                    b"*3",
                    b"$7",
                    b"message",
                    b"$5",
                    b"lobby",
                    b"$9",
                    b"subscribe",
                ],
                &["None subscribe"],
            ),
            (Redis, &[b"-ERR max clients"], &["error ERR max clients"]),
            (Redis, &[b"*x", b"?"], &["malformed *x", "malformed ?"]),
        ];
        for (target, lines, want) in cases {
            assert_eq!(events(*target, lines), *want, "{target:?} {lines:?}");
        }
    }

    #[test]
    fn the_chat_line_shortcut_agrees_with_the_parser() {
        let payload = "~000001.0000000002.000000000000003.xx";
        let chat = format!("alice-_9: {payload}");
        let long = format!("{}: {payload}", "n".repeat(33));
        let others = [
            format!("* alice: {payload}"),
            format!("! alice: {payload}"),
            format!("+ alice {payload}"),
            format!("[pm alice -> bob] {payload}"),
            "NAME choose a name: 1-32 of A-Z a-z 0-9 _ -".to_string(),
            format!("alice:{payload}"),
            "alice: hello".to_string(),
            long,
            format!("alice: {payload}\u{e9}"),
        ];
        // A chat line takes the shortcut, with what the parser would say.
        match (chat_line(chat.as_bytes()), parse_server_line(&chat)) {
            (Some(Event::Delivery { from, payload: p }), ServerLine::Chat { from: f, text }) => {
                assert_eq!((from, p), (Some(f), text.as_bytes()));
            }
            other => panic!("{other:?}"),
        }
        // Every other shape is left to the parser.
        for line in &others {
            assert_eq!(chat_line(line.as_bytes()), None, "{line}");
        }
        // Not UTF-8 at all: not a delivery, whichever way it is read.
        let mut bad = chat.clone().into_bytes();
        bad.push(0xff);
        assert_eq!(chat_line(&bad), None);
        assert!(matches!(
            Decoder::default().line(Target::Chatroom, "lt1", None, &bad),
            Event::Malformed(_)
        ));
    }

    #[test]
    fn a_room_is_joined_before_registration_counts() {
        let mut d = Decoder::default();
        let room = Some("lt1-r2");
        let got: Vec<Event<'_>> = [
            &b"* lt1 joined lobby"[..],
            b"* lt1 left lobby",
            b"* lt1 joined lt1-r1",
            b"* lt1 joined lt1-r2",
        ]
        .iter()
        .map(|l| d.line(Target::Chatroom, "lt1", room, l))
        .collect();
        assert_eq!(
            got,
            [
                Event::Nothing,
                Event::Nothing,
                Event::Nothing,
                Event::Registered
            ]
        );
    }

    #[test]
    fn templates_frame_the_payload() {
        let mut t = Target::Redis.template(40, 2, None);
        let wire = String::from_utf8(t.stamp(1, 1).to_vec()).unwrap();
        assert!(wire.starts_with("*3\r\n$7\r\nPUBLISH\r\n$5\r\nlobby\r\n$39\r\n~000002."));
        assert!(wire.ends_with("\r\n"));
        let mut t = Target::Chatroom.template(64, 0, None);
        assert_eq!(t.stamp(0, 0).len(), 64);
        // over WebSocket: a 2-byte header, the mask, 63 masked payload bytes
        let mask = [9, 8, 7, 6];
        let mut t = Target::Chatroom.template(64, 0, Some(mask));
        let wire = t.stamp(0, 0).to_vec();
        assert_eq!(wire[..6], [0x81, 0x80 | 63, 9, 8, 7, 6]);
        assert_eq!(wire.len(), 6 + 63);
        assert_eq!(wire[6], b'~' ^ 9);
        assert_eq!(
            Target::Chatroom.register_bytes("ab", None, Some(mask)),
            [0x81, 0x82, 9, 8, 7, 6, b'a' ^ 9, b'b' ^ 8]
        );
        assert_eq!(
            Target::Chatroom.register_bytes("ab", Some("r1"), None),
            b"ab\n/join r1\n".to_vec()
        );
        let two = Target::Chatroom.register_bytes("ab", Some("r1"), Some(mask));
        assert_eq!(two[..8], [0x81, 0x82, 9, 8, 7, 6, b'a' ^ 9, b'b' ^ 8]);
        assert_eq!(two[8..14], [0x81, 0x80 | 8, 9, 8, 7, 6]);
        assert_eq!(two.len(), 8 + 6 + 8);
        assert_eq!(
            Target::Redis.register_bytes("x", None, None),
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nlobby\r\n".to_vec()
        );
    }
}
