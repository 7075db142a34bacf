//! The example client at a terminal (editor mode), on a pseudo-terminal
//! with a screen model: the connected banner comes first, a sent line shows
//! once (the server's copy), Ctrl-C clears the line and on an empty line
//! leaves, Ctrl-D leaves, the server's shutdown ends the session, and
//! history and topics are drawn distinctly.

mod client_support;
mod common;

use client_support::pty::PtyClient;
use common::{start_server, Client, TestServer};

/// What a person sees after registering as `name` alone in the lobby.
fn lobby_for(name: &str) -> [String; 3] {
    [
        format!("* {name} joined lobby"),
        format!("* welcome to chatroom, {name}! /help lists the commands"),
        format!("* lobby has 1 member: {name}"),
    ]
}

/// A server with `bob` on it over TCP, and the client at a terminal as
/// `alice`, registered (its prompt drawn after the member list) and seen
/// by bob.
#[track_caller]
fn alice_beside_bob() -> (TestServer, Client, PtyClient) {
    let server = start_server();
    let addr = server.addr.to_string();
    let mut bob = Client::login(server.addr, "bob");
    let client = PtyClient::spawn(&["--addr", &addr, "--name", "alice"]);
    bob.expect("* alice joined lobby");
    client.wait_for_prompt_after("* lobby has 2 members: alice, bob");
    (server, bob, client)
}

/// Strips the `HH:MM:SS ` a decorated line starts with.
#[track_caller]
fn untimed(line: &str) -> &str {
    assert!(line.len() > 9 && line.as_bytes()[2] == b':', "{line:?}");
    &line[9..]
}

/// The banner is the first line on the screen, before anything from the
/// server; then the join burst and the prompt.
#[test]
fn banner_comes_before_the_first_server_line() {
    let server = start_server();
    let addr = server.addr.to_string();
    let client = PtyClient::spawn(&["--addr", &addr, "--name", "alice"]);
    let lobby = lobby_for("alice");
    let lines = client.wait_for_prompt_after(&lobby[2]);
    assert_eq!(lines[0], format!("-- connected to {addr}"));
    let shown: Vec<&str> = lines[1..4].iter().map(|l| untimed(l)).collect();
    assert_eq!(shown, lobby);
}

/// A line typed and sent shows once: the typed copy makes way for the
/// server's, which carries the time and the sender's name.
#[test]
fn own_line_shows_once() {
    let server = start_server();
    let addr = server.addr.to_string();
    let mut client = PtyClient::spawn(&["--addr", &addr, "--name", "alice"]);
    client.wait_for_prompt_after(&lobby_for("alice")[2]);
    let mut bob = Client::login(server.addr, "bob");
    client.wait_for_prompt_after("* bob joined lobby");

    client.type_keys("hello there\r");
    bob.expect("alice: hello there");
    let lines = client.wait_for_prompt_after("alice: hello there");
    let mentions = lines.iter().filter(|l| l.contains("hello there")).count();
    assert_eq!(mentions, 1, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("> hello")),
        "{lines:#?}"
    );

    // A command too: the typed line goes, its answer stays.
    client.type_keys("/who\r");
    let lines = client.wait_for_prompt_after("* lobby has 2 members: alice, bob");
    assert!(!lines.iter().any(|l| l.contains("/who")), "{lines:#?}");
}

/// Ctrl-C clears the line being typed (nothing is sent); Ctrl-C on the
/// empty line leaves with /quit, status 0.
#[test]
fn ctrl_c_clears_then_leaves() {
    let (_server, mut bob, mut client) = alice_beside_bob();

    client.type_keys("oops");
    client.wait_for("the typed text", |s| {
        (s.cursor_line() == "> oops").then_some(())
    });
    client.type_keys("\x03");
    client.wait_for("the cleared line", |s| {
        (s.cursor_line() == "> ").then_some(())
    });
    client.type_keys("fine\r");
    // Only the text typed after Ctrl-C was sent.
    bob.expect("alice: fine");
    client.wait_for_prompt_after("alice: fine");

    client.type_keys("\x03");
    bob.expect("* alice left (quit)");
    assert_eq!(client.wait_exit().code(), Some(0));
}

/// Ctrl-D on an empty line leaves with /quit, status 0.
#[test]
fn ctrl_d_leaves() {
    let (_server, mut bob, mut client) = alice_beside_bob();
    client.type_keys("\x04");
    bob.expect("* alice left (quit)");
    assert_eq!(client.wait_exit().code(), Some(0));
}

/// The server's shutdown ends the editor too: the notice is shown, the
/// client says the server shut down, and exits with status 0.
#[test]
fn server_shutdown_ends_the_editor() {
    let server = start_server();
    let addr = server.addr.to_string();
    let mut client = PtyClient::spawn(&["--addr", &addr, "--name", "alice"]);
    client.wait_for_prompt_after(&lobby_for("alice")[2]);
    server.handle.shutdown();
    assert_eq!(client.wait_exit().code(), Some(0));
    client.wait_for("the last words", |s| {
        let lines = s.lines();
        (lines.iter().any(|l| l.ends_with(" * server shutting down"))
            && lines.iter().any(|l| l == "client: the server shut down"))
        .then_some(())
    });
}

/// On joining, the topic is highlighted and history lines are dimmed and
/// marked, with the time they were said rather than the time received.
#[test]
fn history_and_topic_are_drawn_distinctly() {
    let server = start_server();
    let addr = server.addr.to_string();
    let mut bob = Client::login(server.addr, "bob");
    bob.send("/topic all things rust");
    bob.expect("* bob set the topic for lobby: all things rust");
    bob.send("anyone here?");
    bob.expect("bob: anyone here?");

    let client = PtyClient::spawn(&["--addr", &addr, "--name", "alice"]);
    let lines = client.wait_for_prompt_after("* lobby has 2 members: alice, bob");
    let at = lines
        .iter()
        .position(|l| l.ends_with("* topic for lobby: all things rust"))
        .expect("topic shown");
    let history = &lines[at + 1];
    assert!(
        history.ends_with(" | bob: anyone here?") && history.as_bytes()[2] == b':',
        "{history:?}"
    );
    let raw = String::from_utf8_lossy(&client.raw()).into_owned();
    assert!(
        raw.contains("\x1b[1;33m* topic for lobby: all things rust\x1b[0m"),
        "topic highlighted: {raw:?}"
    );
    assert!(
        raw.contains(" | bob: anyone here?\x1b[0m") && raw.contains("\x1b[2m"),
        "history dimmed: {raw:?}"
    );
}
