//! How a received line is shown: always escaped (nothing from the network
//! reaches the terminal raw), and at a terminal decorated: the local time,
//! a colour per kind of line, topics highlighted, and a room's history
//! dimmed, marked and stamped with when it was said. Pure: no I/O.

use chatroom::protocol::{escape_unsafe, parse_server_line, ServerLine};

// SGR sequences: the only escape sequences this client ever writes into
// text, and only when colours are on.
const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const NOTICE_COLOUR: &str = "\x1b[36m";
const TOPIC_COLOUR: &str = "\x1b[1;33m";
const ACTION_COLOUR: &str = "\x1b[32m";
const ERROR_COLOUR: &str = "\x1b[1;31m";
const PRIVATE_COLOUR: &str = "\x1b[35m";

/// Marks a history line, after its time.
const HISTORY_MARK: &str = "| ";

/// `line` as it is safe to show: invalid UTF-8 becomes U+FFFD and every
/// character the protocol calls unsafe (C0 but tab, DEL, C1, bidi controls,
/// line separators) is written as a visible escape such as `\x1b` or
/// `\u{202e}`. The server already refuses these, but a client must not trust
/// the server: the output of this function can hold no escape sequence.
pub fn visible(line: &[u8]) -> String {
    escape_unsafe(&String::from_utf8_lossy(line)).into_owned()
}

/// How received lines are decorated; everything off unless a person is at a
/// terminal (or `--decorate`), so scripts get the lines exactly as received.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// The local time before each line, the history marks.
    pub timestamps: bool,
    /// SGR colours.
    pub colours: bool,
}

impl Style {
    /// Renders one received line for display (without a line ending).
    pub fn line(&self, raw: &[u8]) -> String {
        let text = visible(raw);
        if !self.timestamps && !self.colours {
            return text;
        }
        let mut out = String::with_capacity(text.len() + 32);
        // Styling works on the escaped text, so a colour can only ever wrap
        // text that is already harmless.
        let kind = parse_server_line(&text);
        if let ServerLine::History { at, line } = kind {
            // The time it was said, in local time, instead of now: what
            // makes history recognisable at a glance, with the mark and
            // the dimming for terminals without colours.
            let mut body = String::new();
            if self.timestamps {
                body.push_str(&history_time(at));
                body.push(' ');
                body.push_str(HISTORY_MARK);
            }
            body.push_str(line);
            self.paint(&mut out, DIM, &body);
            return out;
        }
        if self.timestamps {
            let now = chrono::Local::now().format("%H:%M:%S").to_string();
            self.paint(&mut out, DIM, &now);
            out.push(' ');
        }
        match kind {
            ServerLine::Notice(notice) if is_topic(notice) => {
                self.paint(&mut out, TOPIC_COLOUR, &text)
            }
            ServerLine::Notice(_) => self.paint(&mut out, NOTICE_COLOUR, &text),
            ServerLine::Error(_) => self.paint(&mut out, ERROR_COLOUR, &text),
            ServerLine::Private { .. } => self.paint(&mut out, PRIVATE_COLOUR, &text),
            ServerLine::Action { .. } => self.paint(&mut out, ACTION_COLOUR, &text),
            ServerLine::Chat { from, text: said } => {
                self.paint(&mut out, BOLD, from);
                out.push_str(": ");
                out.push_str(said);
            }
            ServerLine::History { .. } | ServerLine::Prompt | ServerLine::Other(_) => {
                out.push_str(&text)
            }
        }
        out
    }

    /// A message from this client itself (not from the server).
    pub fn note(&self, text: &str) -> String {
        let mut out = String::new();
        self.paint(&mut out, DIM, &format!("-- {text}"));
        out
    }

    fn paint(&self, out: &mut String, sgr: &str, text: &str) {
        if self.colours {
            out.push_str(sgr);
            out.push_str(text);
            out.push_str(RESET);
        } else {
            out.push_str(text);
        }
    }
}

/// True for the notices that state a topic: `topic for <room>: <topic>` and
/// `<name> set the topic for <room>: <topic>` (not "no topic" or
/// "cleared"). Only the server sends notices, so this cannot be forged.
fn is_topic(notice: &str) -> bool {
    notice.starts_with("topic for ")
        || notice
            .split_once(' ')
            .is_some_and(|(_, rest)| rest.starts_with("set the topic for "))
}

/// A history time (`YYYY-MM-DDTHH:MM:SSZ`, UTC) in local time: `HH:MM:SS`
/// for today, `Mon DD HH:MM` for an earlier day. Shown as received if it
/// does not parse.
fn history_time(at: &str) -> String {
    let Ok(utc) = chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%SZ") else {
        return at.to_string();
    };
    let local = utc.and_utc().with_timezone(&chrono::Local);
    if local.date_naive() == chrono::Local::now().date_naive() {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%b %d %H:%M").to_string()
    }
}
