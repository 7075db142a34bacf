//! The wire protocol as data: the name rules and which text may be relayed
//! (here), the client commands ([`command`]) and every line the server sends,
//! encoded and parsed side by side ([`lines`]). Pure: no I/O and no state.
//! `docs/PROTOCOL.md` is the contract; this module is its code, shared by the
//! server, the example client and the load tester.

pub mod command;
pub mod lines;

pub use command::{
    help_for, help_lines, parse_command, Command, CommandHelp, ParseError, COMMANDS,
};
pub use lines::{parse_server_line, Refusal, ServerLine};

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
/// Starts every server notice; only the server can make such a line.
pub const NOTICE_PREFIX: &str = "* ";
/// Starts every `/me` action.
pub const ACTION_PREFIX: &str = "+ ";
/// Starts every line of a room's history, sent on joining.
pub const HISTORY_PREFIX: &str = "# ";
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
}
