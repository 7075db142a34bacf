//! Client commands: what a registered client's line means (`/join games`,
//! `//text`, plain chat), their usage and help texts, and the usage errors.
//! Pure: parsing only; what a command does is the chat's business.

use std::fmt;

/// One line from a registered client, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// A chat message to the sender's room (`//x` arrives here as `/x`).
    Say(&'a str),
    /// `/help [command]`
    Help(Option<&'a str>),
    /// `/who`
    Who,
    /// `/rooms`
    Rooms,
    /// `/join <room>` (the room name is checked by the chat)
    Join(&'a str),
    /// `/nick <name>` (the name is checked by the chat)
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
    /// `/topic` shows the topic, `/topic <text>` sets it, `/topic -` clears.
    Topic(Option<&'a str>),
    /// `/away <message>` marks you away; `/away` alone marks you back.
    Away(Option<&'a str>),
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

/// One command's usage and what it does, for `/help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHelp {
    /// The command word, without the slash.
    pub name: &'static str,
    /// Its usage line.
    pub usage: &'static str,
    /// What it does.
    pub about: &'static str,
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "help",
        usage: "/help [command]",
        about: "list the commands, or explain one",
    },
    CommandHelp {
        name: "who",
        usage: "/who",
        about: "list your room's members (away ones marked)",
    },
    CommandHelp {
        name: "rooms",
        usage: "/rooms",
        about: "list the rooms and how many are in each",
    },
    CommandHelp {
        name: "join",
        usage: "/join <room>",
        about: "leave your room for <room> (created if new)",
    },
    CommandHelp {
        name: "nick",
        usage: "/nick <name>",
        about: "change your name (1-32 of A-Z a-z 0-9 _ -)",
    },
    CommandHelp {
        name: "msg",
        usage: "/msg <name> <text>",
        about: "send <text> to <name> only",
    },
    CommandHelp {
        name: "me",
        usage: "/me <action>",
        about: "tell your room what you do (+ alice waves)",
    },
    CommandHelp {
        name: "topic",
        usage: "/topic [text|-]",
        about: "show your room's topic, set it, or clear it with -",
    },
    CommandHelp {
        name: "away",
        usage: "/away [message]",
        about: "mark yourself away with a message; alone: back",
    },
    CommandHelp {
        name: "quit",
        usage: "/quit [reason]",
        about: "leave the chat",
    },
];

/// The help for command `word` (`join` or `/join`, any case).
pub fn help_for(word: &str) -> Option<&'static CommandHelp> {
    let word = word.strip_prefix('/').unwrap_or(word);
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(word))
}

/// `/help`'s answer as lines of at most `width` characters each (before
/// the `* ` the server puts in front): the usages, then how to send a
/// line starting with `/` and how to learn more.
pub fn help_lines(width: usize) -> Vec<String> {
    let mut items: Vec<String> = COMMANDS.iter().map(|c| c.usage.to_string()).collect();
    items.push("//text sends /text".into());
    items.push("/help <command> explains one".into());
    let mut lines = Vec::new();
    let mut line = String::from("commands:");
    for (i, item) in items.iter().enumerate() {
        let sep = if i + 1 < items.len() { "," } else { "" };
        if line.len() + 1 + item.len() + sep.len() > width {
            lines.push(std::mem::replace(&mut line, String::from(" ")));
        }
        line.push(' ');
        line.push_str(item);
        line.push_str(sep);
    }
    lines.push(line);
    lines
}

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
    // A name argument is the rest of the line, blanks around it being
    // slack; the chat checks it, so `/nick two words` says the name is bad.
    let arg = args.trim_end_matches(' ');
    let required = |usage: &'static str| {
        if arg.is_empty() {
            Err(ParseError::Usage(usage))
        } else {
            Ok(arg)
        }
    };
    let no_args = |cmd: Command<'static>, usage: &'static str| {
        if arg.is_empty() {
            Ok(cmd)
        } else {
            Err(ParseError::Usage(usage))
        }
    };
    let optional = (!args.trim().is_empty()).then_some(args);
    let cmd = match word.to_ascii_lowercase().as_str() {
        "help" if arg.contains(' ') => return Err(ParseError::Usage("/help [command]")),
        "help" => Command::Help((!arg.is_empty()).then_some(arg)),
        "who" => no_args(Command::Who, "/who")?,
        "rooms" => no_args(Command::Rooms, "/rooms")?,
        "join" => Command::Join(required("/join <room>")?),
        "nick" => Command::Nick(required("/nick <name>")?),
        "msg" => {
            const USAGE: &str = "/msg <name> <text>";
            let (to, text) = args.split_once(' ').ok_or(ParseError::Usage(USAGE))?;
            let text = text.trim_start_matches(' ');
            if to.is_empty() || text.trim().is_empty() {
                return Err(ParseError::Usage(USAGE));
            }
            Command::Msg { to, text }
        }
        "me" => Command::Me(optional.ok_or(ParseError::Usage("/me <action>"))?),
        "topic" => Command::Topic(optional),
        "away" => Command::Away(optional),
        "quit" => Command::Quit(optional),
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
            Command::Help(None) => f.write_str("/help"),
            Command::Help(Some(word)) => write!(f, "/help {word}"),
            Command::Who => f.write_str("/who"),
            Command::Rooms => f.write_str("/rooms"),
            Command::Join(room) => write!(f, "/join {room}"),
            Command::Nick(name) => write!(f, "/nick {name}"),
            Command::Msg { to, text } => write!(f, "/msg {to} {text}"),
            Command::Me(action) => write!(f, "/me {action}"),
            Command::Topic(None) => f.write_str("/topic"),
            Command::Topic(Some(text)) => write!(f, "/topic {text}"),
            Command::Away(None) => f.write_str("/away"),
            Command::Away(Some(text)) => write!(f, "/away {text}"),
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
            ("/help", Ok(Some(Help(None)))),
            ("/HELP", Ok(Some(Help(None)))),
            ("/help join", Ok(Some(Help(Some("join"))))),
            ("/help me now", Err(ParseError::Usage("/help [command]"))),
            ("/who ", Ok(Some(Who))),
            ("/rooms", Ok(Some(Rooms))),
            ("/join games", Ok(Some(Join("games")))),
            ("/join   games  ", Ok(Some(Join("games")))),
            ("/join", Err(ParseError::Usage("/join <room>"))),
            ("/join a b", Ok(Some(Join("a b")))),
            ("/nick bob", Ok(Some(Nick("bob")))),
            ("/nick", Err(ParseError::Usage("/nick <name>"))),
            ("/nick bad name ", Ok(Some(Nick("bad name")))),
            ("/topic", Ok(Some(Topic(None)))),
            (
                "/topic  cats: all day",
                Ok(Some(Topic(Some("cats: all day")))),
            ),
            ("/topic -", Ok(Some(Topic(Some("-"))))),
            ("/away", Ok(Some(Away(None)))),
            ("/away lunch", Ok(Some(Away(Some("lunch"))))),
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
            "/topic a: b",
            "/away x",
            "/help nick",
        ] {
            let cmd = parse_command(line).unwrap().unwrap();
            assert_eq!(parse_command(&cmd.to_string()), Ok(Some(cmd)), "{line}");
        }
    }

    #[test]
    fn help_fits_an_80_column_terminal_and_names_every_command() {
        let lines = help_lines(78);
        assert!(lines.len() >= 2);
        for line in &lines {
            assert!(line.len() <= 78, "{} columns: {line}", line.len());
        }
        let all = lines.join(" ");
        for c in COMMANDS {
            assert!(all.contains(c.usage), "{} missing", c.usage);
        }
        assert_eq!(help_for("/JOIN").map(|c| c.usage), Some("/join <room>"));
        assert_eq!(help_for("frob"), None);
    }
}
