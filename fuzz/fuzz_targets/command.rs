//! Fuzzes the text check and the command parser (`chatroom::protocol`): no
//! input panics them; text that passes `check_text` holds no unsafe character;
//! every command the parser accepts is well formed and round-trips through its
//! `Display` (`parse(cmd.to_string()) == cmd`); and server lines built from
//! valid names classify as what they are.
#![no_main]

use chatroom::protocol::{
    check_text, is_unsafe_char, is_valid_name, parse_command, parse_server_line, Command,
    ParseError, ServerLine, TextError,
};
use libfuzzer_sys::fuzz_target;

fn check_command(line: &str) {
    match parse_command(line) {
        Ok(None) => assert!(line.trim().is_empty(), "non-blank line ignored: {line:?}"),
        Ok(Some(cmd)) => {
            match cmd {
                Command::Join(arg) | Command::Nick(arg) => {
                    assert!(
                        !arg.is_empty() && !arg.starts_with(' ') && !arg.ends_with(' '),
                        "{cmd:?}"
                    )
                }
                Command::Help(Some(word)) => {
                    assert!(!word.is_empty() && !word.contains(' '), "{cmd:?}")
                }
                Command::Msg { to, text } => {
                    assert!(!to.is_empty() && !to.contains(' '), "{cmd:?}");
                    assert!(!text.trim().is_empty(), "{cmd:?}");
                }
                Command::Me(text)
                | Command::Say(text)
                | Command::Quit(Some(text))
                | Command::Topic(Some(text))
                | Command::Away(Some(text)) => assert!(!text.trim().is_empty(), "{cmd:?}"),
                Command::Help(None)
                | Command::Who
                | Command::Rooms
                | Command::Quit(None)
                | Command::Topic(None)
                | Command::Away(None) => {}
            }
            let wire = cmd.to_string();
            if !line.contains('\n') {
                assert!(!wire.contains('\n'), "{wire:?}");
            }
            assert_eq!(
                parse_command(&wire),
                Ok(Some(cmd)),
                "round trip of {line:?} via {wire:?}"
            );
        }
        Err(e) => {
            assert!(
                line.starts_with('/'),
                "only commands can be refused: {line:?}"
            );
            let msg = e.to_string();
            match e {
                ParseError::Usage(usage) => {
                    assert!(usage.starts_with('/'));
                    assert_eq!(msg, format!("usage: {usage}"));
                }
                ParseError::Unknown(word) => {
                    assert!(!word.contains(' '));
                    assert!(msg.starts_with("unknown command: /"));
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match check_text(data) {
        Ok(text) => {
            assert_eq!(text.as_bytes(), data);
            assert!(
                !text.chars().any(is_unsafe_char),
                "unsafe text passed: {text:?}"
            );
            check_command(text);
        }
        Err(TextError::InvalidUtf8) => assert!(std::str::from_utf8(data).is_err()),
        Err(TextError::UnsafeChar) => {
            let text = std::str::from_utf8(data).expect("UnsafeChar only for UTF-8");
            assert!(text.chars().any(is_unsafe_char));
        }
    }
    // The parser must also cope with any string, checked or not.
    let lossy = String::from_utf8_lossy(data);
    check_command(&lossy);

    // Server lines: a chat line from a valid name is always a chat line.
    let _ = parse_server_line(&lossy);
    if let Some((name, text)) = lossy.split_once('\u{1}') {
        if is_valid_name(name) {
            let line = format!("{name}: {text}");
            assert_eq!(
                parse_server_line(&line),
                ServerLine::Chat { from: name, text }
            );
        }
    }
});
