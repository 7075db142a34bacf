//! Every line the server sends: encoded here (so no other module spells a
//! `* ` or `! ` line) and parsed here (so clients read exactly what the
//! server writes). Pure. Encoders append one whole line, `\n` included, to a
//! caller's scratch `String`: the chat encodes a line once and hands the same
//! bytes to every recipient.

use std::fmt::{self, Write as _};

use super::{
    is_valid_name, ParseError, TextError, ACTION_PREFIX, ERROR_PREFIX, HISTORY_PREFIX,
    NOTICE_PREFIX, PROMPT,
};

/// The prompt as a whole line: `NAME` first (clients look at that word),
/// then what to do.
pub const PROMPT_LINE: &str = "NAME choose a name: 1-32 of A-Z a-z 0-9 _ -\n";
/// The notice every client gets when the server stops, as a whole line.
pub const SHUTDOWN_LINE: &str = "* server shutting down\n";

/// Why a client left, as its room is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave<'a> {
    /// A plain close: `* <name> left`.
    Closed,
    /// The connection ended for a reason: `* <name> left (<reason>)`.
    Because(&'a str),
    /// `/quit [reason]`: `* <name> left (quit)` or `(quit: <reason>)`.
    Quit(Option<&'a str>),
    /// `/join <room>`: `* <name> left for <room>`.
    For(&'a str),
}

/// Every error the server sends to one client (the text after `! `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// A line over the limit (the limit in bytes).
    LineTooLong(usize),
    /// Text that may not be relayed.
    Text(TextError),
    /// A command that does not parse.
    Command(ParseError<'a>),
    /// A name that breaks the name rules.
    InvalidName,
    /// A name someone else has.
    NameTaken(&'a str),
    /// `/nick` to the name one already has.
    SameName(&'a str),
    /// A room name that breaks the name rules.
    InvalidRoom(&'a str),
    /// `/join` of the room one is in (its shown name).
    AlreadyIn(&'a str),
    /// `/msg` to nobody.
    NoSuchUser(&'a str),
    /// Registration took too long.
    LoginTimeout,
    /// No free slot.
    ServerFull,
    /// The address holds `--max-per-ip` connections already.
    TooManyFromAddress,
    /// The address opens connections faster than `--connect-rate`.
    TooFast,
    /// The cluster's Redis is away: nothing that needs it can be done.
    Unavailable,
    /// The cluster's Redis went away with this line in flight.
    NotSent,
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::LineTooLong(max) => write!(f, "line too long (max {max} bytes)"),
            Refusal::Text(e) => write!(f, "{e}"),
            Refusal::Command(e) => write!(f, "{e}"),
            Refusal::InvalidName => f.write_str("invalid name: use 1-32 of A-Z a-z 0-9 _ -"),
            Refusal::NameTaken(name) => write!(f, "name taken: {name}"),
            Refusal::SameName(name) => write!(f, "you are already {name}"),
            Refusal::InvalidRoom(room) => write!(f, "invalid room name: {room}"),
            Refusal::AlreadyIn(room) => write!(f, "already in {room}"),
            Refusal::NoSuchUser(name) => write!(f, "no such user: {name}"),
            Refusal::LoginTimeout => f.write_str("login timeout"),
            Refusal::ServerFull => f.write_str("server full"),
            Refusal::TooManyFromAddress => f.write_str("too many connections from your address"),
            Refusal::TooFast => f.write_str("connecting too fast; try again later"),
            Refusal::Unavailable => {
                f.write_str("the chat is reconnecting to its cluster; try again in a moment")
            }
            Refusal::NotSent => f.write_str("not sent: the chat lost its cluster connection"),
        }
    }
}

/// Appends `! <refusal>`.
pub fn refusal(buf: &mut String, r: Refusal<'_>) {
    let _ = writeln!(buf, "{ERROR_PREFIX}{r}");
}

/// Appends `<from>: <text>`.
pub fn chat(buf: &mut String, from: &str, text: &str) {
    buf.reserve(from.len() + text.len() + 3);
    buf.push_str(from);
    buf.push_str(": ");
    buf.push_str(text);
    buf.push('\n');
}

/// Appends `+ <who> <action>`: actions have their own prefix, so no text a
/// client writes can come out as a `* ` line only the server may send.
pub fn action(buf: &mut String, who: &str, action: &str) {
    let _ = writeln!(buf, "{ACTION_PREFIX}{who} {action}");
}

/// Appends `[pm <from> -> <to>] <text>`.
pub fn private(buf: &mut String, from: &str, to: &str, text: &str) {
    let _ = writeln!(buf, "[pm {from} -> {to}] {text}");
}

/// Appends `* <who> joined <room>`.
pub fn joined(buf: &mut String, who: &str, room: &str) {
    let _ = writeln!(buf, "{NOTICE_PREFIX}{who} joined {room}");
}

/// Appends the leave notice for `who`.
pub fn left(buf: &mut String, who: &str, how: Leave<'_>) {
    let _ = match how {
        Leave::Closed => writeln!(buf, "{NOTICE_PREFIX}{who} left"),
        Leave::Because(why) => writeln!(buf, "{NOTICE_PREFIX}{who} left ({why})"),
        Leave::Quit(None) => writeln!(buf, "{NOTICE_PREFIX}{who} left (quit)"),
        Leave::Quit(Some(why)) => writeln!(buf, "{NOTICE_PREFIX}{who} left (quit: {why})"),
        Leave::For(room) => writeln!(buf, "{NOTICE_PREFIX}{who} left for {room}"),
    };
}

/// Appends `* <old> is now known as <new>`.
pub fn renamed(buf: &mut String, old: &str, new: &str) {
    let _ = writeln!(buf, "{NOTICE_PREFIX}{old} is now known as {new}");
}

/// Appends a big room's summary, `* lobby: 3 joined, 1 left` (a zero part
/// is left out; the room and colon keep it apart from a client named `3`
/// leaving). `joins + leaves` must not be 0.
pub fn summary(buf: &mut String, room: &str, joins: u32, leaves: u32) {
    let _ = match (joins, leaves) {
        (0, l) => writeln!(buf, "{NOTICE_PREFIX}{room}: {l} left"),
        (j, 0) => writeln!(buf, "{NOTICE_PREFIX}{room}: {j} joined"),
        (j, l) => writeln!(buf, "{NOTICE_PREFIX}{room}: {j} joined, {l} left"),
    };
}

/// Appends the welcome a client gets once registered.
pub fn welcome(buf: &mut String, name: &str) {
    let _ = writeln!(
        buf,
        "{NOTICE_PREFIX}welcome to chatroom, {name}! /help lists the commands"
    );
}

/// Appends one line of the message of the day.
pub fn motd(buf: &mut String, line: &str) {
    let _ = writeln!(buf, "{NOTICE_PREFIX}motd: {line}");
}

/// Appends a room's topic as shown on joining or to `/topic`.
pub fn topic(buf: &mut String, room: &str, topic: Option<&str>) {
    let _ = match topic {
        Some(t) => writeln!(buf, "{NOTICE_PREFIX}topic for {room}: {t}"),
        None => writeln!(buf, "{NOTICE_PREFIX}no topic for {room}"),
    };
}

/// Appends the notice that `who` set (or, with `None`, cleared) a topic.
pub fn topic_set(buf: &mut String, who: &str, room: &str, topic: Option<&str>) {
    let _ = match topic {
        Some(t) => writeln!(buf, "{NOTICE_PREFIX}{who} set the topic for {room}: {t}"),
        None => writeln!(buf, "{NOTICE_PREFIX}{who} cleared the topic for {room}"),
    };
}

/// Appends what `/away` tells the one who used it.
pub fn away(buf: &mut String, message: Option<&str>) {
    let _ = match message {
        Some(m) => writeln!(buf, "{NOTICE_PREFIX}you are away: {m}"),
        None => writeln!(buf, "{NOTICE_PREFIX}you are back"),
    };
}

/// Appends the away message a `/msg` to `who` gets back.
pub fn is_away(buf: &mut String, who: &str, message: &str) {
    let _ = writeln!(buf, "{NOTICE_PREFIX}{who} is away: {message}");
}

/// Appends a line of a room's recent history: `# <time> <line>`, the time
/// in UTC (RFC 3339), so clients and scripts tell it from live chat. `line`
/// is the chat or action line as it was sent, without its `\n`.
pub fn history(buf: &mut String, unix_secs: u64, line: &str) {
    buf.push_str(HISTORY_PREFIX);
    push_utc(buf, unix_secs);
    buf.push(' ');
    buf.push_str(line);
    buf.push('\n');
}

/// Appends `unix_secs` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn push_utc(buf: &mut String, unix_secs: u64) {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        buf,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
}

/// Appends `* <text>`: a notice with no other shape (the `/help` text).
pub fn notice(buf: &mut String, text: &str) {
    let _ = writeln!(buf, "{NOTICE_PREFIX}{text}");
}

/// Appends a listing of `n` items: `* <head><a>, <b>, ...` with at most
/// `cap` of them, then ` ... and <k> more`. `/who` and `/rooms` use it.
pub fn listing<I, T>(buf: &mut String, head: fmt::Arguments<'_>, n: usize, items: I, cap: usize)
where
    I: Iterator<Item = T>,
    T: fmt::Display,
{
    let _ = write!(buf, "{NOTICE_PREFIX}{head}");
    for (i, item) in items.take(cap).enumerate() {
        if i > 0 {
            buf.push_str(", ");
        }
        let _ = write!(buf, "{item}");
    }
    if n > cap {
        let _ = write!(buf, " ... and {} more", n - cap);
    }
    buf.push('\n');
}

/// Appends `/who`'s answer (also the end of a join burst): `* <room> has
/// <n> members: a, b (away), ...`, at most `cap` named.
pub fn members<I, T>(buf: &mut String, room: &str, n: usize, items: I, cap: usize)
where
    I: Iterator<Item = T>,
    T: fmt::Display,
{
    listing(
        buf,
        format_args!("{room} has {n} member{}: ", plural(n)),
        n,
        items,
        cap,
    );
}

/// Appends `/rooms`' answer: `* <n> rooms: lobby (3), ...`, at most `cap`
/// named.
pub fn rooms<I, T>(buf: &mut String, n: usize, items: I, cap: usize)
where
    I: Iterator<Item = T>,
    T: fmt::Display,
{
    listing(buf, format_args!("{n} room{}: ", plural(n)), n, items, cap);
}

/// `s` when `n` is not 1: `1 member`, `2 members`.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A line from the server, classified (for clients: the load tester counts
/// `Chat` lines, the example client styles each kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLine<'a> {
    /// `NAME ...`: the server asks for a name.
    Prompt,
    /// `* text`: a server notice, text without the prefix. Only the server
    /// can make one: no line a client sends comes out in this shape.
    Notice(&'a str),
    /// `+ name action`: a `/me` action.
    Action {
        /// Who acted.
        from: &'a str,
        /// The action.
        text: &'a str,
    },
    /// `# time line`: a line of the room's history, sent on joining.
    History {
        /// When it was sent, `YYYY-MM-DDTHH:MM:SSZ`.
        at: &'a str,
        /// The line as it was sent (parse it again for its kind).
        line: &'a str,
    },
    /// `! text`: an error for this client, text without the prefix.
    Error(&'a str),
    /// `[pm from -> to] text`: a private message.
    Private {
        /// Sender's name.
        from: &'a str,
        /// Recipient's name.
        to: &'a str,
        /// The message.
        text: &'a str,
    },
    /// `name: text`: a chat message.
    Chat {
        /// Sender's name.
        from: &'a str,
        /// The message.
        text: &'a str,
    },
    /// Anything else (a newer server, or not our server at all).
    Other(&'a str),
}

/// Classifies one line received from the server.
pub fn parse_server_line(line: &str) -> ServerLine<'_> {
    if line == PROMPT
        || line
            .strip_prefix(PROMPT)
            .is_some_and(|r| r.starts_with(' '))
    {
        return ServerLine::Prompt;
    }
    if let Some(rest) = line.strip_prefix(ACTION_PREFIX) {
        if let Some((from, text)) = rest.split_once(' ') {
            if is_valid_name(from) {
                return ServerLine::Action { from, text };
            }
        }
    }
    if let Some(rest) = line.strip_prefix(HISTORY_PREFIX) {
        if let Some((at, inner)) = rest.split_once(' ') {
            if at.len() == 20 && at.ends_with('Z') {
                return ServerLine::History { at, line: inner };
            }
        }
    }
    if let Some(text) = line.strip_prefix(NOTICE_PREFIX) {
        return ServerLine::Notice(text);
    }
    if let Some(text) = line.strip_prefix(ERROR_PREFIX) {
        return ServerLine::Error(text);
    }
    if let Some(rest) = line.strip_prefix("[pm ") {
        if let Some((head, text)) = rest.split_once("] ") {
            if let Some((from, to)) = head.split_once(" -> ") {
                if is_valid_name(from) && is_valid_name(to) {
                    return ServerLine::Private { from, to, text };
                }
            }
        }
    }
    // Names cannot contain ':', so the first ':' decides; a memchr is much
    // cheaper than a substring search for ": " on every received line.
    if let Some(i) = memchr::memchr(b':', line.as_bytes()) {
        let from = &line[..i];
        if let Some(text) = line[i + 1..].strip_prefix(' ') {
            if is_valid_name(from) {
                return ServerLine::Chat { from, text };
            }
        }
    }
    ServerLine::Other(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines() {
        use ServerLine::*;
        let cases: &[(&str, ServerLine<'_>)] = &[
            ("NAME", Prompt),
            ("NAME choose a name", Prompt),
            (
                "NAMES: x",
                Chat {
                    from: "NAMES",
                    text: "x",
                },
            ),
            ("* alice joined lobby", Notice("alice joined lobby")),
            (
                "+ alice waves: hi",
                Action {
                    from: "alice",
                    text: "waves: hi",
                },
            ),
            (
                "# 2026-11-24T21:03:05Z bob: hi",
                History {
                    at: "2026-11-24T21:03:05Z",
                    line: "bob: hi",
                },
            ),
            ("! name taken: bob", Error("name taken: bob")),
            (
                "[pm a -> b] hi: there",
                Private {
                    from: "a",
                    to: "b",
                    text: "hi: there",
                },
            ),
            (
                "alice: hello: world",
                Chat {
                    from: "alice",
                    text: "hello: world",
                },
            ),
            ("not a name: x", Other("not a name: x")),
            ("a:b: c", Other("a:b: c")),
            ("nospace:x", Other("nospace:x")),
            (
                "x: ",
                Chat {
                    from: "x",
                    text: "",
                },
            ),
            ("plain", Other("plain")),
        ];
        for (line, want) in cases {
            assert_eq!(parse_server_line(line), *want, "line {line:?}");
        }
    }

    /// Every encoder writes exactly one line, and clients parse it back as
    /// the kind it is.
    #[test]
    fn encoders_round_trip_through_the_parser() {
        use ServerLine::*;
        let mut cases: Vec<(String, ServerLine<'static>)> = Vec::new();
        let mut enc = |f: &dyn Fn(&mut String), want: ServerLine<'static>| {
            let mut buf = String::new();
            f(&mut buf);
            cases.push((buf, want));
        };
        enc(&|b| b.push_str(PROMPT_LINE), Prompt);
        enc(
            &|b| chat(b, "alice", "hi: x"),
            Chat {
                from: "alice",
                text: "hi: x",
            },
        );
        enc(
            &|b| private(b, "a", "b", "psst"),
            Private {
                from: "a",
                to: "b",
                text: "psst",
            },
        );
        enc(
            &|b| action(b, "a", "waves"),
            Action {
                from: "a",
                text: "waves",
            },
        );
        enc(&|b| joined(b, "a", "lobby"), Notice("a joined lobby"));
        enc(&|b| left(b, "a", Leave::Closed), Notice("a left"));
        enc(
            &|b| left(b, "a", Leave::Because("slow consumer")),
            Notice("a left (slow consumer)"),
        );
        enc(
            &|b| left(b, "a", Leave::Quit(None)),
            Notice("a left (quit)"),
        );
        enc(
            &|b| left(b, "a", Leave::Quit(Some("bye"))),
            Notice("a left (quit: bye)"),
        );
        enc(
            &|b| left(b, "a", Leave::For("games")),
            Notice("a left for games"),
        );
        enc(&|b| renamed(b, "a", "b"), Notice("a is now known as b"));
        enc(&|b| summary(b, "lobby", 3, 0), Notice("lobby: 3 joined"));
        enc(&|b| summary(b, "lobby", 0, 2), Notice("lobby: 2 left"));
        enc(
            &|b| summary(b, "lobby", 3, 2),
            Notice("lobby: 3 joined, 2 left"),
        );
        enc(
            &|b| welcome(b, "a"),
            Notice("welcome to chatroom, a! /help lists the commands"),
        );
        enc(&|b| motd(b, "be nice"), Notice("motd: be nice"));
        enc(
            &|b| topic(b, "lobby", Some("cats")),
            Notice("topic for lobby: cats"),
        );
        enc(&|b| topic(b, "lobby", None), Notice("no topic for lobby"));
        enc(
            &|b| topic_set(b, "a", "lobby", Some("x")),
            Notice("a set the topic for lobby: x"),
        );
        enc(
            &|b| topic_set(b, "a", "lobby", None),
            Notice("a cleared the topic for lobby"),
        );
        enc(&|b| away(b, Some("lunch")), Notice("you are away: lunch"));
        enc(&|b| away(b, None), Notice("you are back"));
        enc(&|b| is_away(b, "a", "lunch"), Notice("a is away: lunch"));
        enc(
            &|b| history(b, 1_796_050_985, "a: hi"),
            History {
                at: "2026-11-30T15:03:05Z",
                line: "a: hi",
            },
        );
        enc(
            &|b| refusal(b, Refusal::NameTaken("bob")),
            Error("name taken: bob"),
        );
        enc(
            &|b| refusal(b, Refusal::LineTooLong(64)),
            Error("line too long (max 64 bytes)"),
        );
        enc(
            &|b| b.push_str(SHUTDOWN_LINE),
            Notice("server shutting down"),
        );
        enc(
            &|b| {
                listing(
                    b,
                    format_args!("x has 3 members: "),
                    3,
                    ["a", "b", "c"].iter(),
                    2,
                )
            },
            Notice("x has 3 members: a, b ... and 1 more"),
        );
        for (line, want) in &cases {
            assert!(
                line.ends_with('\n') && line.matches('\n').count() == 1,
                "{line:?}"
            );
            assert_eq!(
                parse_server_line(line.trim_end_matches('\n')),
                *want,
                "{line:?}"
            );
        }
    }

    #[test]
    fn utc_times() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_050_985, "2026-11-30T15:03:05Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ];
        for (secs, want) in cases {
            let mut s = String::new();
            push_utc(&mut s, secs);
            assert_eq!(s, want);
        }
    }
}
