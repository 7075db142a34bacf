//! Client commands: what a registered client's line means (`/join games`,
//! `//text`, plain chat) and the usage errors. Pure: parsing only; what a
//! command does is the chat's business.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
