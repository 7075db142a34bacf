//! No line a client can cause is identical to a line only the server may
//! send, or to a line about someone else. Clients with adversarial names try
//! every command and text shape against each protected line, and a watcher
//! in the room checks that none of them ever arrives.

mod common;

use std::collections::HashSet;

use chatroom::Config;
use common::{start_with, test_config, Client, PROMPT};

/// Lines only the server may send, or that speak for `alice` (who, in this
/// test, never does anything after registering).
fn protected() -> Vec<String> {
    let mut v: Vec<String> = [
        "* server shutting down",
        "* welcome to chatroom, watcher! /help lists the commands",
        "* welcome to chatroom, alice! /help lists the commands",
        "* motd: be nice",
        "* lobby: 3 joined",
        "* lobby: 3 left",
        "* lobby: 1 joined, 1 left",
        "* 3 joined",
        "* 3 left",
        "! login timeout",
        "! server full",
        "! too many connections from your address",
        "! name taken: alice",
        "* alice joined lobby",
        "* alice left",
        "* alice left (quit: bye)",
        "* alice left (connection reset)",
        "* alice left for games",
        "* alice is now known as dave",
        "* alice set the topic for lobby: x",
        "* alice cleared the topic for lobby",
        "* alice is away: x",
        "* lobby has 1 member: alice",
        "# 2026-11-24T21:03:05Z alice: hi",
        "+ alice waves",
        "[pm alice -> watcher] hi",
        "alice: hi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(PROMPT.to_string());
    v
}

/// Every way a client can put text into a line, aimed at `target`.
fn attempts(target: &str) -> Vec<String> {
    let mut tails = vec![target.to_string()];
    for prefix in [
        "* ",
        "! ",
        "+ ",
        "# ",
        "* alice ",
        "+ alice ",
        "alice: ",
        "* server ",
    ] {
        if let Some(t) = target.strip_prefix(prefix) {
            tails.push(t.to_string());
        }
    }
    // What follows the sender's name in a notice about it.
    if let Some((_, rest)) = target.split_once(' ') {
        if let Some((_, rest)) = rest.split_once(' ') {
            tails.push(rest.to_string());
        }
    }
    let mut lines = Vec::new();
    for t in &tails {
        lines.push(t.clone());
        lines.push(format!("/{t}"));
        lines.push(format!("//{t}"));
        lines.push(format!("/me {t}"));
        lines.push(format!("/topic {t}"));
        lines.push(format!("/away {t}"));
        lines.push(format!("/msg watcher {t}"));
        lines.push(format!("/nick {t}"));
        lines.push(format!("/join {t}"));
        lines.push(format!("/help {t}"));
    }
    lines
}

/// Names chosen to look like the start of a protected line.
const MALLORIES: &[&str] = &[
    "server", "welcome", "lobby", "motd", "topic", "no", "you", "3", "1", "NAME", "pm", "alice_",
];

#[test]
fn no_client_can_forge_a_server_line() {
    let server = start_with(Config {
        motd: vec!["be nice".into()],
        ..test_config()
    });
    let _alice = Client::login(server.addr, "alice");
    let mut watcher = Client::login(server.addr, "watcher");
    let forbidden: HashSet<String> = protected().into_iter().collect();
    let mut tried = 0;
    for (i, name) in MALLORIES.iter().enumerate() {
        let mut m = Client::login(server.addr, name);
        watcher.expect(&format!("* {name} joined lobby"));
        for target in protected() {
            for line in attempts(&target) {
                m.send(&line);
                tried += 1;
            }
        }
        // The quit reason is free text too.
        m.send("/join lobby");
        m.send(&format!("/quit bye {i}"));
        // Everything mallory caused reaches the watcher before this.
        let mut probe = Client::login(server.addr, &format!("probe{i}"));
        probe.send("/quit");
        let seen = watcher.expect_eventually(&format!("* probe{i} left (quit)"));
        for line in &seen {
            assert!(
                !forbidden.contains(line),
                "{name} forged {line:?} (of {tried} attempts)"
            );
        }
        // The watcher did see mallory's own (truthful) lines, under
        // whatever name its /nick attempts left it with.
        let quit = format!(" left (quit: bye {i})");
        assert!(seen.iter().any(|l| l.ends_with(&quit)), "{seen:?}");
        drop(probe);
        drop(m);
    }
    assert!(tried > 2000, "{tried}");
}
