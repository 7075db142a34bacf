//! Every line the server sends: encoded here (so no other module spells a
//! `* ` or `! ` line) and parsed here (so clients read exactly what the
//! server writes). Pure. Encoders append one whole line, `\n` included, to a
//! caller's scratch `String`: the chat encodes a line once and hands the same
//! bytes to every recipient.

use std::fmt::{self, Write as _};

use super::{is_valid_name, ParseError, TextError, ERROR_PREFIX, NOTICE_PREFIX, PROMPT};

/// The prompt as a whole line.
pub const PROMPT_LINE: &str = "NAME\n";
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

/// Appends `* <who> <action>`.
pub fn action(buf: &mut String, who: &str, action: &str) {
    let _ = writeln!(buf, "{NOTICE_PREFIX}{who} {action}");
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

/// Appends a big room's summary, `* 3 joined, 1 left` (a zero part is left
/// out). `joins + leaves` must not be 0.
pub fn summary(buf: &mut String, joins: u32, leaves: u32) {
    let _ = match (joins, leaves) {
        (0, l) => writeln!(buf, "{NOTICE_PREFIX}{l} left"),
        (j, 0) => writeln!(buf, "{NOTICE_PREFIX}{j} joined"),
        (j, l) => writeln!(buf, "{NOTICE_PREFIX}{j} joined, {l} left"),
    };
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
    /// `NAME`: the server asks for a name.
    Prompt,
    /// `* text`: a server notice (or a `/me` action), text without the prefix.
    Notice(&'a str),
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
    if line == PROMPT {
        return ServerLine::Prompt;
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
            ("* alice joined lobby", Notice("alice joined lobby")),
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
        enc(&|b| action(b, "a", "waves"), Notice("a waves"));
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
        enc(&|b| summary(b, 3, 0), Notice("3 joined"));
        enc(&|b| summary(b, 0, 2), Notice("2 left"));
        enc(&|b| summary(b, 3, 2), Notice("3 joined, 2 left"));
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
}
