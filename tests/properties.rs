//! Property tests for the pure core: the line framer (`framing::LineBuf`) and
//! the text check and command parser (`protocol`). They run in CI with
//! proptest's default case count; the cargo-fuzz targets under `fuzz/` check
//! the same properties for much longer.

use chatroom::framing::LineBuf;
use chatroom::protocol::{
    check_text, is_unsafe_char, is_valid_name, parse_command, parse_server_line, Command,
    ParseError, ServerLine, TextError,
};
use proptest::prelude::*;

mod framing_model;

use framing_model::{model, own, Owned};

/// Feeds `stream` to a fresh framer in chunks of `lens` (cycled; zeros are
/// empty reads), then ends it. Fails the test case if the framer ever buffers
/// more than `max + 1` bytes or is late or early with a frame.
fn frame_split(stream: &[u8], max: usize, lens: &[usize]) -> Result<Vec<Owned>, TestCaseError> {
    let lens: Vec<usize> = if lens.iter().all(|&n| n == 0) {
        vec![stream.len().max(1)]
    } else {
        lens.to_vec()
    };
    let mut buf = LineBuf::new();
    let mut out = Vec::new();
    let (mut pos, mut i) = (0, 0);
    while pos < stream.len() {
        let end = (pos + lens[i % lens.len()]).min(stream.len());
        i += 1;
        buf.push(&stream[pos..end], max, &mut |f| out.push(own(f)));
        pos = end;
        prop_assert!(
            buf.buffered_len() <= max + 1,
            "buffered {}",
            buf.buffered_len()
        );
        // Due now: every complete line, plus the report of an unfinished line
        // that has already crossed the limit (its newline may never come):
        // over max + 1 bytes, or max + 1 whose last is not the `\r` of `\r\n`.
        let seen = &stream[..pos];
        let tail = seen.len() - seen.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let crossed = tail > max + 1 || (tail == max + 1 && seen.last() != Some(&b'\r'));
        let due = seen.iter().filter(|&&b| b == b'\n').count() + usize::from(crossed);
        prop_assert_eq!(out.len(), due, "frames after {} bytes", pos);
    }
    buf.finish(max, &mut |f| out.push(own(f)));
    prop_assert!(buf.is_idle() && buf.buffered_len() == 0);
    Ok(out)
}

/// Byte streams rich in the bytes the framer cares about.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => Just(b'\n'),
        2 => Just(b'\r'),
        6 => b'a'..=b'e',
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..400)
}

/// Lines a client might send, biased towards commands and their edge cases.
fn command_line() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just(""),
        Just("help"),
        Just("who"),
        Just("rooms"),
        Just("join"),
        Just("nick"),
        Just("msg"),
        Just("me"),
        Just("quit"),
        Just("QUIT"),
        Just("Msg"),
        Just("/"),
        Just("frob"),
    ];
    let slash = prop_oneof![Just(""), Just("/"), Just("//")];
    (slash, word, "[ a-c/\t\u{3000}é]{0,12}").prop_map(|(s, w, a)| format!("{s}{w}{a}"))
}

/// Checks everything we know about one parse, including the round trip.
fn check_parse(line: &str) -> Result<(), TestCaseError> {
    match parse_command(line) {
        Ok(None) => prop_assert!(line.trim().is_empty(), "non-blank line ignored: {:?}", line),
        Ok(Some(cmd)) => {
            match cmd {
                // Names and rooms: the rest of the line without the blanks
                // around it (the chat checks the name rules).
                Command::Join(a) | Command::Nick(a) => {
                    prop_assert!(!a.is_empty() && !a.starts_with(' ') && !a.ends_with(' '))
                }
                Command::Help(Some(w)) => prop_assert!(!w.is_empty() && !w.contains(' ')),
                Command::Msg { to, text } => {
                    prop_assert!(!to.is_empty() && !to.contains(' '));
                    prop_assert!(!text.trim().is_empty());
                }
                Command::Me(t)
                | Command::Say(t)
                | Command::Quit(Some(t))
                | Command::Topic(Some(t))
                | Command::Away(Some(t)) => prop_assert!(!t.trim().is_empty()),
                Command::Help(None)
                | Command::Who
                | Command::Rooms
                | Command::Quit(None)
                | Command::Topic(None)
                | Command::Away(None) => {}
            }
            let wire = cmd.to_string();
            prop_assert_eq!(parse_command(&wire), Ok(Some(cmd)), "via {:?}", wire);
        }
        Err(ParseError::Usage(usage)) => {
            prop_assert!(line.starts_with('/') && usage.starts_with('/'));
        }
        Err(ParseError::Unknown(word)) => {
            prop_assert!(line.starts_with('/') && !word.contains(' '));
        }
    }
    Ok(())
}

proptest! {
    /// For any byte stream, line limit and split into reads, the framer yields
    /// exactly the model's lines, on time, never buffering more than max + 1.
    #[test]
    fn framer_matches_model_for_any_split(
        data in stream(),
        max in 0usize..48,
        lens in prop::collection::vec(0usize..64, 0..12),
    ) {
        let want = model(&data, max);
        prop_assert_eq!(&frame_split(&data, max, &lens)?, &want, "split {:?}", lens);
        prop_assert_eq!(&frame_split(&data, max, &[1])?, &want, "byte by byte");
        prop_assert_eq!(&frame_split(&data, max, &[data.len().max(1)])?, &want, "one read");
    }

    /// An endless line (no newline, any split) is reported exactly once and
    /// never costs more than max + 1 bytes; after a newline framing resumes.
    #[test]
    fn endless_line_reported_once_and_bounded(
        len in 1usize..5000,
        max in 0usize..64,
        lens in prop::collection::vec(1usize..700, 1..8),
    ) {
        let mut data = vec![b'x'; len];
        data.extend_from_slice(b"\nok\n");
        let mut want = vec![if len > max { Owned::TooLong } else { Owned::Line(vec![b'x'; len]) }];
        want.push(if max >= 2 { Owned::Line(b"ok".to_vec()) } else { Owned::TooLong });
        prop_assert_eq!(frame_split(&data, max, &lens)?, want);
    }

    /// `check_text` accepts exactly the UTF-8 text without unsafe characters,
    /// and hands it back unchanged.
    #[test]
    fn check_text_accepts_exactly_safe_utf8(data in prop::collection::vec(any::<u8>(), 0..64)) {
        match (std::str::from_utf8(&data), check_text(&data)) {
            (Err(_), r) => prop_assert_eq!(r, Err(TextError::InvalidUtf8)),
            (Ok(s), r) if s.chars().any(is_unsafe_char) => prop_assert_eq!(r, Err(TextError::UnsafeChar)),
            (Ok(s), r) => prop_assert_eq!(r, Ok(s)),
        }
    }

    /// The same for strings of any characters (arbitrary UTF-8).
    #[test]
    fn check_text_on_any_string(s in any::<String>()) {
        let want = if s.chars().any(is_unsafe_char) { Err(TextError::UnsafeChar) } else { Ok(s.as_str()) };
        prop_assert_eq!(check_text(s.as_bytes()), want);
    }

    /// The parser never panics on command-like lines and round-trips every
    /// command it accepts: parse(cmd.to_string()) == cmd.
    #[test]
    fn parser_round_trips_command_lines(line in command_line()) {
        check_parse(&line)?;
    }

    /// The same for arbitrary strings.
    #[test]
    fn parser_round_trips_any_string(line in any::<String>()) {
        check_parse(&line)?;
        check_parse(&format!("/{line}"))?;
    }

    /// A chat line from any valid name classifies as chat from that name,
    /// whatever the text (names cannot forge notices, errors or PMs).
    #[test]
    fn chat_lines_classify_as_chat(name in "[A-Za-z0-9_-]{1,32}", text in any::<String>()) {
        prop_assert!(is_valid_name(&name));
        let line = format!("{name}: {text}");
        prop_assert_eq!(parse_server_line(&line), ServerLine::Chat { from: &name, text: &text });
    }
}
