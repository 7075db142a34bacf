//! The wire protocol as data: the prompt, the name rules, which text may be
//! relayed, the client commands and the shapes of server lines. Pure: no I/O
//! and no state. `docs/PROTOCOL.md` is the contract; this module is its code,
//! shared by the server, the example client and the load tester.

use std::borrow::Cow;
use std::fmt;

/// The line the server sends to ask a newcomer for a name.
pub const PROMPT: &str = "NAME";
/// The port the server listens on and the client connects to by default.
pub const DEFAULT_PORT: u16 = 5550;
/// The longest name (and room name), in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// The room every client starts in.
pub const LOBBY: &str = "lobby";
/// Starts every server notice.
pub const NOTICE_PREFIX: &str = "* ";
/// Starts every error sent to one client.
pub const ERROR_PREFIX: &str = "! ";
/// The notice sent to everyone when the server stops.
pub const SHUTDOWN_NOTICE: &str = "* server shutting down";

/// True for a valid name or room name: 1 to 32 of `A-Z a-z 0-9 _ -`.
/// Being ASCII without spaces, a name can never imitate a notice or a prefix.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True for characters that must never reach another client's terminal:
/// C0 controls except tab (ESC starts terminal escape sequences), DEL, C1
/// controls (8-bit CSI), the bidi embedding/override/isolate controls (they
/// can make text read differently from what was sent), and the Unicode line
/// and paragraph separators (some clients treat them as newlines).
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{2028}' | '\u{2029}')
}

/// Renders text for a terminal: every character for which
/// [`is_unsafe_char`] is true becomes a visible escape (`\x1b`, `\u{202e}`);
/// everything else is kept. Clients use it so nothing from the network is
/// ever written raw to a terminal, whatever the server let through.
pub fn escape_unsafe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        let code = u32::from(c);
        if !is_unsafe_char(c) {
            out.push(c);
        } else if code < 0x100 {
            out.push_str(&format!("\\x{code:02x}"));
        } else {
            out.push_str(&format!("\\u{{{code:04x}}}"));
        }
    }
    Cow::Owned(out)
}

/// Why a line of text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    /// Not UTF-8 (this includes overlong encodings and encoded surrogates).
    InvalidUtf8,
    /// Holds a character for which [`is_unsafe_char`] is true.
    UnsafeChar,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextError::InvalidUtf8 => "invalid UTF-8",
            TextError::UnsafeChar => "control characters are not allowed",
        })
    }
}

/// Checks that a received line is text we may relay, and returns it as `&str`.
pub fn check_text(line: &[u8]) -> Result<&str, TextError> {
    let text = std::str::from_utf8(line).map_err(|_| TextError::InvalidUtf8)?;
    // ASCII lines (the common case) only need the byte test.
    let unsafe_found = if text.is_ascii() {
        text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
    } else {
        text.chars().any(is_unsafe_char)
    };
    if unsafe_found {
        return Err(TextError::UnsafeChar);
    }
    Ok(text)
}

/// One line from a registered client, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// A chat message to the sender's room (`//x` arrives here as `/x`).
    Say(&'a str),
    /// `/help`
    Help,
    /// `/who`
    Who,
    /// `/rooms`
    Rooms,
    /// `/join <room>`
    Join(&'a str),
    /// `/nick <name>`
    Nick(&'a str),
    /// `/msg <name> <text>`
    Msg {
        /// The recipient's name.
        to: &'a str,
        /// The message, never empty.
        text: &'a str,
    },
    /// `/me <action>`
    Me(&'a str),
    /// `/quit [reason]`
    Quit(Option<&'a str>),
}

/// Why a command line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// `/word` where `word` is no command.
    Unknown(&'a str),
    /// A known command with missing or extra arguments; holds its usage.
    Usage(&'static str),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown(cmd) => write!(f, "unknown command: /{cmd} (try /help)"),
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
        }
    }
}

/// The one-line summary `/help` answers with.
pub const HELP_TEXT: &str = "commands: /help, /who, /rooms, /join <room>, /nick <name>, \
/msg <name> <text>, /me <action>, /quit [reason]; //text sends /text";

/// Parses one checked line from a registered client. `Ok(None)` is a line
/// with nothing to send (empty or blank), which the protocol ignores.
pub fn parse_command(line: &str) -> Result<Option<Command<'_>>, ParseError<'_>> {
    let Some(rest) = line.strip_prefix('/') else {
        return Ok((!line.trim().is_empty()).then_some(Command::Say(line)));
    };
    if rest.starts_with('/') {
        return Ok(Some(Command::Say(rest)));
    }
    let (word, args) = match rest.split_once(' ') {
        Some((w, a)) => (w, a.trim_start_matches(' ')),
        None => (rest, ""),
    };
    // Arguments that are names are single words; surrounding blanks are slack.
    let one_word = |usage: &'static str| {
        let arg = args.trim_end_matches(' ');
        if arg.is_empty() || arg.contains(' ') {
            Err(ParseError::Usage(usage))
        } else {
            Ok(arg)
        }
    };
    let no_args = |cmd: Command<'static>, usage: &'static str| {
        if args.trim_end_matches(' ').is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Usage(usage))
        }
    };
    let cmd = match word.to_ascii_lowercase().as_str() {
        "help" => no_args(Command::Help, "/help")?,
        "who" => no_args(Command::Who, "/who")?,
        "rooms" => no_args(Command::Rooms, "/rooms")?,
        "join" => Command::Join(one_word("/join <room>")?),
        "nick" => Command::Nick(one_word("/nick <name>")?),
        "msg" => {
            const USAGE: &str = "/msg <name> <text>";
            let (to, text) = args.split_once(' ').ok_or(ParseError::Usage(USAGE))?;
            let text = text.trim_start_matches(' ');
            if to.is_empty() || text.trim().is_empty() {
                return Err(ParseError::Usage(USAGE));
            }
            Command::Msg { to, text }
        }
        "me" if !args.trim().is_empty() => Command::Me(args),
        "me" => return Err(ParseError::Usage("/me <action>")),
        "quit" => Command::Quit((!args.trim().is_empty()).then_some(args)),
        _ => return Err(ParseError::Unknown(word)),
    };
    Ok(Some(cmd))
}

/// Writes the line a client sends for this command (without `\n`); parsing
/// that line gives the command back.
impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Say(text) if text.starts_with('/') => write!(f, "/{text}"),
            Command::Say(text) => f.write_str(text),
            Command::Help => f.write_str("/help"),
            Command::Who => f.write_str("/who"),
            Command::Rooms => f.write_str("/rooms"),
            Command::Join(room) => write!(f, "/join {room}"),
            Command::Nick(name) => write!(f, "/nick {name}"),
            Command::Msg { to, text } => write!(f, "/msg {to} {text}"),
            Command::Me(action) => write!(f, "/me {action}"),
            Command::Quit(None) => f.write_str("/quit"),
            Command::Quit(Some(reason)) => write!(f, "/quit {reason}"),
        }
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
    fn names() {
        for ok in ["a", "Alice", "bob_2", "x-y", &"n".repeat(32)] {
            assert!(is_valid_name(ok), "{ok:?} should be valid");
        }
        for bad in [
            "",
            " a",
            "a b",
            "ünï",
            "a:b",
            "a\u{1b}",
            &"n".repeat(33),
            "*",
            "!",
        ] {
            assert!(!is_valid_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn text_checks() {
        let cases: &[(&[u8], Result<&str, TextError>)] = &[
            (b"hello", Ok("hello")),
            (b"tab\there", Ok("tab\there")),
            ("caf\u{e9} \u{1f600}".as_bytes(), Ok("caf\u{e9} \u{1f600}")),
            (b"esc \x1b[31m", Err(TextError::UnsafeChar)),
            (b"nul \x00", Err(TextError::UnsafeChar)),
            (b"del \x7f", Err(TextError::UnsafeChar)),
            (b"bell \x07", Err(TextError::UnsafeChar)),
            ("c1 \u{9b}".as_bytes(), Err(TextError::UnsafeChar)),
            ("rlo \u{202e}".as_bytes(), Err(TextError::UnsafeChar)),
            ("isolate \u{2067}".as_bytes(), Err(TextError::UnsafeChar)),
            ("sep \u{2028}".as_bytes(), Err(TextError::UnsafeChar)),
            (b"bad \xff", Err(TextError::InvalidUtf8)),
            // overlong encoding of '/'
            (b"\xc0\xaf", Err(TextError::InvalidUtf8)),
            // a lone surrogate (U+D800) encoded as if it were a character
            (b"\xed\xa0\x80", Err(TextError::InvalidUtf8)),
            // truncated sequence
            (b"\xe2\x82", Err(TextError::InvalidUtf8)),
        ];
        for (input, want) in cases {
            assert_eq!(check_text(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn escaping_for_terminals() {
        let cases = [
            ("plain text\tand tab", "plain text\tand tab"),
            ("\u{1b}[2J", "\\x1b[2J"),
            ("bell\u{7}", "bell\\x07"),
            ("c1 \u{9b}31m", "c1 \\x9b31m"),
            ("del\u{7f}", "del\\x7f"),
            ("cr\r", "cr\\x0d"),
            ("rlo \u{202e}x", "rlo \\u{202e}x"),
            ("caf\u{e9}", "caf\u{e9}"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_unsafe(input), want, "input {input:?}");
        }
        assert!(matches!(escape_unsafe("safe"), Cow::Borrowed(_)));
    }

    #[test]
    fn commands() {
        use Command::*;
        let cases: &[(&str, Result<Option<Command<'_>>, ParseError<'_>>)] = &[
            ("hello", Ok(Some(Say("hello")))),
            ("  spaced  ", Ok(Some(Say("  spaced  ")))),
            ("", Ok(None)),
            ("   ", Ok(None)),
            ("//slash", Ok(Some(Say("/slash")))),
            ("//", Ok(Some(Say("/")))),
            ("/help", Ok(Some(Help))),
            ("/HELP", Ok(Some(Help))),
            ("/help me", Err(ParseError::Usage("/help"))),
            ("/who ", Ok(Some(Who))),
            ("/rooms", Ok(Some(Rooms))),
            ("/join games", Ok(Some(Join("games")))),
            ("/join   games  ", Ok(Some(Join("games")))),
            ("/join", Err(ParseError::Usage("/join <room>"))),
            ("/join a b", Err(ParseError::Usage("/join <room>"))),
            ("/nick bob", Ok(Some(Nick("bob")))),
            ("/nick", Err(ParseError::Usage("/nick <name>"))),
            (
                "/msg bob hi there",
                Ok(Some(Msg {
                    to: "bob",
                    text: "hi there",
                })),
            ),
            (
                "/msg  bob   hi ",
                Ok(Some(Msg {
                    to: "bob",
                    text: "hi ",
                })),
            ),
            ("/msg bob", Err(ParseError::Usage("/msg <name> <text>"))),
            ("/msg bob   ", Err(ParseError::Usage("/msg <name> <text>"))),
            ("/msg", Err(ParseError::Usage("/msg <name> <text>"))),
            ("/me waves", Ok(Some(Me("waves")))),
            ("/me", Err(ParseError::Usage("/me <action>"))),
            ("/quit", Ok(Some(Quit(None)))),
            ("/quit gone fishing", Ok(Some(Quit(Some("gone fishing"))))),
            ("/frobnicate", Err(ParseError::Unknown("frobnicate"))),
            ("/", Err(ParseError::Unknown(""))),
        ];
        for (line, want) in cases {
            assert_eq!(parse_command(line), *want, "line {line:?}");
        }
    }

    #[test]
    fn accepted_commands_round_trip() {
        for line in [
            "hi",
            "//x",
            "/join a",
            "/msg b t t",
            "/me x",
            "/quit",
            "/quit r",
            "/who",
        ] {
            let cmd = parse_command(line).unwrap().unwrap();
            assert_eq!(parse_command(&cmd.to_string()), Ok(Some(cmd)), "{line}");
        }
    }

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
}
