//! How the example client ends a session and renders lines: the shutdown
//! notice counts only from the server and only before a clean close, error
//! lines fail a script, a silent server is diagnosed, and decorated output
//! marks history (with its own local time) and topics. The real client runs
//! as a child process against a real server in-process or a fake one.

mod client_support;
mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client_support::{
    args, assert_code, expect_join_burst, fake_login, run, spawn, spawn_with_env, strs, FakeServer,
};
use common::{start_server, Client};

/// A user named `server` cannot end anyone's session: `/me shutting down`
/// arrives as an action, `+ server shutting down`, and the client goes on.
#[test]
fn a_user_named_server_cannot_shut_the_client_down() {
    let server = start_server();
    let mut bot = spawn(&strs(&args(server.addr, "bot")));
    expect_join_burst(&mut bot, "bot", "bot");
    let mut mallory = Client::login(server.addr, "server");
    mallory.send("/me shutting down");
    bot.expect_line("* server joined lobby");
    bot.expect_line("+ server shutting down");
    // Still connected and answering.
    mallory.send("still here");
    bot.expect_line("server: still here");

    let finished = bot.finish();
    assert_code(&finished, 0);
    assert_eq!(finished.stderr, "");
    assert!(finished.stdout.is_empty(), "{finished:#?}");
}

/// The shutdown notice followed by a reset is a lost connection, not a
/// clean shutdown: status 1, and the reason.
#[test]
fn shutdown_notice_then_reset_is_an_error() {
    let (shown_tx, shown_rx) = mpsc::channel::<()>();
    let server = FakeServer::start(move |stream| {
        let (_name, _rest) = fake_login(&stream);
        let mut out = &stream;
        out.write_all(b"* server shutting down\n").expect("notice");
        // Reset only once the client has shown the line, so the reset
        // cannot overtake it.
        shown_rx
            .recv_timeout(client_support::CLIENT_TIMEOUT)
            .expect("client showed the notice");
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .expect("set linger");
    });
    let addr = server.addr;
    let mut client = spawn(&strs(&args(addr, "x")));
    client.expect_line("* x joined lobby");
    client.expect_line("* server shutting down");
    shown_tx.send(()).expect("tell the server");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 1);
    let prefix = format!("client: connection to {addr} lost: ");
    assert!(
        finished.stderr.starts_with(&prefix) && finished.stderr.contains("reset"),
        "{:?}",
        finished.stderr
    );
}

/// A line that reads like the shutdown notice but is followed by more
/// lines was not the server stopping: the close after them is unexpected.
#[test]
fn shutdown_notice_must_be_the_last_line() {
    let server = FakeServer::start(|stream| {
        let (_name, _rest) = fake_login(&stream);
        let mut out = &stream;
        out.write_all(b"* server shutting down\nbob: ha, fooled you\n")
            .expect("lines");
    });
    let mut client = spawn(&strs(&args(server.addr, "x")));
    client.expect_line("* x joined lobby");
    client.expect_line("* server shutting down");
    client.expect_line("bob: ha, fooled you");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        "client: the server closed the connection\n"
    );
}

/// In a script, any error line from the server makes the exit status 1,
/// after the whole script ran and every answer was printed; stderr says
/// how many.
#[test]
fn script_error_lines_make_the_exit_status_nonzero() {
    let server = start_server();
    let finished = run(
        &strs(&args(server.addr, "bot")),
        b"/frobnicate\nhi\n/join no!room\nbye\n",
    );
    assert_code(&finished, 1);
    assert_eq!(
        finished.stdout_lines(),
        [
            "* bot joined lobby",
            "* welcome to chatroom, bot! /help lists the commands",
            "* lobby has 1 member: bot",
            "! unknown command: /frobnicate (try /help)",
            "bot: hi",
            "! invalid room name: no!room",
            "bot: bye",
        ]
    );
    assert_eq!(finished.stderr, "client: 2 errors from the server\n");

    // After /quit, too.
    let finished = run(&strs(&args(server.addr, "bot")), b"/frobnicate\n/quit\n");
    assert_code(&finished, 1);
    assert_eq!(
        finished.stdout_lines()[3..],
        [
            "! unknown command: /frobnicate (try /help)",
            "* bot left (quit)"
        ]
    );
    assert_eq!(finished.stderr, "client: 1 error from the server\n");

    // And a clean script still exits 0.
    let finished = run(&strs(&args(server.addr, "bot")), b"/who\n");
    assert_code(&finished, 0);
    assert_eq!(finished.stderr, "");
}

/// A server that accepts and says nothing (a TLS port, waiting for a TLS
/// hello) is diagnosed after about 5 s, not waited on forever.
#[test]
fn silent_server_is_probably_a_tls_port() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = FakeServer::start_with(listener, move |_stream| {
        // Say nothing until the client has given up.
        let _ = done_rx.recv_timeout(client_support::CLIENT_TIMEOUT);
    });
    let started = Instant::now();
    let finished = run(&strs(&args(server.addr, "bot")), b"hi\n");
    let waited = started.elapsed();
    let _ = done_tx.send(());
    server.join();

    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        "client: no prompt from the server; is this a TLS port? try --tls\n"
    );
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Splits a decorated line into its `HH:MM:SS` time (dimmed) and the rest.
#[track_caller]
fn after_time(line: &[u8]) -> String {
    let line = String::from_utf8(line.to_vec()).expect("UTF-8");
    let rest = line.strip_prefix(DIM).unwrap_or_else(|| panic!("{line:?}"));
    let (time, rest) = rest.split_at(8);
    assert!(
        time.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
            b == b':'
        } else {
            b.is_ascii_digit()
        }),
        "a time: {line:?}"
    );
    rest.strip_prefix(RESET)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string()
}

/// With `--decorate`: each line has the local time, notices, errors,
/// actions and private messages their colours, topics are highlighted, and
/// history lines are dimmed and marked with the time they were said, in
/// local time (`HH:MM:SS` today, `Mon DD HH:MM` before), instead of now.
#[test]
fn decorated_lines_mark_history_and_topics() {
    let today = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let today_time = today[11..19].to_string();
    let server = FakeServer::start(move |stream| {
        let (_name, _rest) = fake_login(&stream);
        let mut out = &stream;
        let lines = format!(
            "* topic for lobby: all things rust\n\
             # 2020-01-02T03:04:05Z bob: anyone here?\n\
             # {today} + bob waves\n\
             * lobby has 2 members: bob, x\n\
             bob: hi\n\
             + bob waves\n\
             [pm bob -> x] psst\n\
             ! usage: /join <room>\n\
             * bob set the topic for lobby: games\n\
             * no topic for lobby\n\
             * server shutting down\n"
        );
        out.write_all(lines.as_bytes()).expect("lines");
    });
    let env = [
        ("TZ", Some("UTC")),
        ("NO_COLOR", None),
        ("TERM", Some("xterm")),
    ];
    let mut argv = args(server.addr, "x");
    argv.push("--decorate".into());
    let mut client = spawn_with_env(&strs(&argv), &env);
    assert_eq!(
        after_time(&client.next_line()),
        "\x1b[36m* x joined lobby\x1b[0m"
    );
    assert_eq!(
        after_time(&client.next_line()),
        "\x1b[1;33m* topic for lobby: all things rust\x1b[0m"
    );
    assert_eq!(
        client.next_line(),
        b"\x1b[2mJan 02 03:04 | bob: anyone here?\x1b[0m"
    );
    assert_eq!(
        String::from_utf8(client.next_line()).expect("UTF-8"),
        format!("\x1b[2m{today_time} | + bob waves\x1b[0m")
    );
    for want in [
        "\x1b[36m* lobby has 2 members: bob, x\x1b[0m",
        "\x1b[1mbob\x1b[0m: hi",
        "\x1b[32m+ bob waves\x1b[0m",
        "\x1b[35m[pm bob -> x] psst\x1b[0m",
        "\x1b[1;31m! usage: /join <room>\x1b[0m",
        "\x1b[1;33m* bob set the topic for lobby: games\x1b[0m",
        "\x1b[36m* no topic for lobby\x1b[0m",
        "\x1b[36m* server shutting down\x1b[0m",
    ] {
        assert_eq!(after_time(&client.next_line()), want);
    }
    let finished = client.wait_exit();
    server.join();
    // A script still: the error line counts, after the clean shutdown.
    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        "client: the server shut down; 1 error from the server\n"
    );
}

/// With NO_COLOR, decorations keep the times and the history mark, and
/// write no escape sequence at all.
#[test]
fn decorated_without_colour_still_marks_history() {
    let server = FakeServer::start(|stream| {
        let (_name, _rest) = fake_login(&stream);
        let mut out = &stream;
        out.write_all(
            b"# 2020-01-02T03:04:05Z bob: anyone here?\nbob: hi\n* server shutting down\n",
        )
        .expect("lines");
    });
    let env = [("TZ", Some("UTC")), ("NO_COLOR", Some("1"))];
    let mut argv = args(server.addr, "x");
    argv.push("--decorate".into());
    let mut client = spawn_with_env(&strs(&argv), &env);
    let joined = String::from_utf8(client.next_line()).expect("UTF-8");
    assert!(joined.ends_with(" * x joined lobby"), "{joined:?}");
    client.expect_line("Jan 02 03:04 | bob: anyone here?");
    let hi = String::from_utf8(client.next_line()).expect("UTF-8");
    assert!(!hi.contains('\x1b') && hi.ends_with(" bob: hi"), "{hi:?}");
    let _ = client.next_line();
    let finished = client.wait_exit();
    server.join();
    assert_code(&finished, 0);
}

/// Without `--decorate` a script gets history and topic lines exactly as
/// received.
#[test]
fn plain_output_is_exactly_what_was_received() {
    let server = start_server();
    let mut bob = Client::login(server.addr, "bob");
    bob.send("/topic all things rust");
    bob.expect("* bob set the topic for lobby: all things rust");
    bob.send("anyone here?");
    bob.expect("bob: anyone here?");

    let finished = run(&strs(&args(server.addr, "bot")), b"");
    assert_code(&finished, 0);
    let lines = finished.stdout_lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[2], "* topic for lobby: all things rust");
    let history = lines[3].strip_prefix("# ").expect("a history line");
    let (at, said) = history.split_at(20);
    assert!(at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at:?}");
    assert_eq!(said, " bob: anyone here?");
    assert_eq!(lines[4], "* lobby has 2 members: bob, bot");
}
