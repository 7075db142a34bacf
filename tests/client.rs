//! Integration tests for the example client (`examples/client/`): the
//! real client program runs as a child process against a server started
//! in-process on port 0, or against a tiny fake server for bytes a real one
//! never sends. They pin what a script can rely on (exact stdout lines, exit
//! statuses, one-line errors) and that network bytes reach the terminal only
//! escaped. The interactive editor needs a terminal and is checked by hand.

mod client_support;
mod common;

use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::time::Duration;

use client_support::{
    args, assert_code, expect_join_burst, fake_login, run, spawn, strs, FakeServer,
};
use common::{start_server, Client};

/// A script's lines are all sent and all answered before the client exits
/// at end of input: stdout is exactly the received lines (no prompt, no
/// colour, no end-of-input probe), even after the script changed its name.
#[test]
fn script_sends_every_line_and_waits_for_the_answers() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");

    let script = "hi\n/who\n/msg alice psst\n/me waves\n//slash\n/nick bot2\nlast words\n";
    let finished = run(&strs(&args(server.addr, "bot")), script.as_bytes());

    assert_code(&finished, 0);
    assert_eq!(
        finished.stdout_lines(),
        [
            "* bot joined lobby",
            "* welcome to chatroom, bot! /help lists the commands",
            "* lobby has 2 members: alice, bot",
            "bot: hi",
            "* lobby has 2 members: alice, bot",
            "[pm bot -> alice] psst",
            "+ bot waves",
            "bot: /slash",
            "* bot is now known as bot2",
            "bot2: last words",
        ]
    );
    assert_eq!(finished.stderr, "");
    // The room got every line, in order, then the plain leave of EOF.
    for want in [
        "* bot joined lobby",
        "bot: hi",
        "[pm bot -> alice] psst",
        "+ bot waves",
        "bot: /slash",
        "* bot is now known as bot2",
        "bot2: last words",
        "* bot2 left",
    ] {
        alice.expect(want);
    }
}

/// Lines other clients send while the script is still running reach stdout
/// as they arrive.
#[test]
fn script_shows_lines_from_others_as_they_arrive() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let mut bot = spawn(&strs(&args(server.addr, "bot")));
    expect_join_burst(&mut bot, "bot", "alice, bot");
    alice.expect("* bot joined lobby");

    alice.send("hello bot");
    bot.expect_line("alice: hello bot");
    alice.send("/msg bot psst");
    bot.expect_line("[pm alice -> bot] psst");

    let finished = bot.finish();
    assert_code(&finished, 0);
    assert!(finished.stdout.is_empty(), "{finished:#?}");
}

/// A `/quit` line in a script is sent, nothing after it is, and the client
/// exits with status 0 once the server has closed the connection.
#[test]
fn script_quit_leaves_and_exits_zero() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");

    let script = b"hi\n/quit bye\nnever sent\n";
    let finished = run(&strs(&args(server.addr, "bot")), script);

    assert_code(&finished, 0);
    assert_eq!(
        finished.stdout_lines(),
        [
            "* bot joined lobby",
            "* welcome to chatroom, bot! /help lists the commands",
            "* lobby has 2 members: alice, bot",
            "bot: hi",
            "* bot left (quit: bye)"
        ]
    );
    assert_eq!(finished.stderr, "");
    alice.expect("* bot joined lobby");
    alice.expect("bot: hi");
    alice.expect("* bot left (quit: bye)");
}

/// In a script a refused name is an error: non-zero exit, the server's
/// reason on stdout (as received) and on stderr, and nothing sent as chat.
#[test]
fn script_with_refused_name_exits_nonzero_with_the_reason() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let cases = [
        ("ALICE", "name taken: ALICE"),
        ("two words", "invalid name: use 1-32 of A-Z a-z 0-9 _ -"),
    ];
    for (name, reason) in cases {
        let finished = run(&strs(&args(server.addr, name)), b"hi\n");
        assert_code(&finished, 1);
        assert_eq!(finished.stdout_lines(), [format!("! {reason}")], "{name}");
        assert_eq!(
            finished.stderr,
            format!("client: cannot register as {name}: {reason}\n")
        );
    }
    // Still alone: neither client got in, and no "hi" reached the room.
    alice.send("/who");
    alice.expect("* lobby has 1 member: alice");
}

/// With no server listening the client prints one line naming the address
/// and the OS's reason, on stderr, and exits non-zero without a backtrace.
#[test]
fn unreachable_server_is_one_clear_line() {
    // A port that was just free and that nothing listens on now.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let finished = run(&strs(&args(addr, "bot")), b"hi\n");

    assert_code(&finished, 1);
    assert!(finished.stdout.is_empty(), "{finished:#?}");
    let lines: Vec<&str> = finished.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", finished.stderr);
    let prefix = format!("client: cannot connect to {addr}: ");
    assert!(lines[0].starts_with(&prefix), "{:?}", lines[0]);
    assert!(
        lines[0].contains("refused"),
        "the OS reason: {:?}",
        lines[0]
    );
}

/// When the server shuts down the client shows the shutdown notice, says
/// the server shut down, and exits with status 0.
#[test]
fn server_shutdown_ends_the_client_with_status_zero() {
    let server = start_server();
    let mut bot = spawn(&strs(&args(server.addr, "bot")));
    expect_join_burst(&mut bot, "bot", "bot");

    server.handle.shutdown();
    bot.expect_line("* server shutting down");
    let finished = bot.wait_exit();

    assert_code(&finished, 0);
    assert!(finished.stdout.is_empty(), "{finished:#?}");
    assert_eq!(finished.stderr, "client: the server shut down\n");
    server.stop().expect("server stops cleanly");
}

/// Control characters and escape sequences from the network are shown as
/// visible escapes and invalid UTF-8 as U+FFFD: no ESC, CSI, BEL, CR or DEL
/// byte reaches stdout. (A real server refuses such text, so a fake one
/// sends it.)
#[test]
fn escape_sequences_from_the_network_are_rendered_harmless() {
    let server = FakeServer::start(|stream| {
        let (_name, _rest) = fake_login(&stream);
        let mut out = &stream;
        let evil: &[u8] = b"mallory: \x1b[2J\x1b]0;pwned\x07 \xc2\x9b31m c1 \x9b raw \r cr \x7f del \xe2\x80\xae rlo\n";
        out.write_all(evil).expect("send evil line");
        out.write_all(b"* server shutting down\n")
            .expect("send notice");
    });
    let mut client = spawn(&strs(&args(server.addr, "x")));
    client.expect_line("* x joined lobby");
    client.expect_line(
        "mallory: \\x1b[2J\\x1b]0;pwned\\x07 \\x9b31m c1 \u{fffd} raw \\x0d cr \\x7f del \\u{202e} rlo",
    );
    client.expect_line("* server shutting down");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 0);
    assert!(finished.stdout.is_empty(), "{finished:#?}");
}

/// No byte of the raw rendering can start a terminal control sequence, even
/// split across reads: checked on the bytes, not on a lossy conversion.
#[test]
fn no_control_byte_reaches_stdout() {
    let server = FakeServer::start(|stream| {
        let (_name, _rest) = fake_login(&stream);
        let mut out = &stream;
        for chunk in [
            &b"a\x1b["[..],
            b"31mred\x1b",
            b"[0m \x9b\xc2",
            b"\x9b\x07\n",
        ] {
            out.write_all(chunk).expect("send chunk");
            out.flush().expect("flush");
        }
        out.write_all(b"* server shutting down\n")
            .expect("send notice");
    });
    let mut client = spawn(&strs(&args(server.addr, "x")));
    client.expect_line("* x joined lobby");
    let line = client.next_line();
    for byte in [0x1b, 0x9b, 0x07] {
        assert!(!line.contains(&byte), "byte {byte:#x} in {line:?}");
    }
    assert_eq!(
        String::from_utf8(line).expect("UTF-8"),
        "a\\x1b[31mred\\x1b[0m \u{fffd}\\x9b\\x07"
    );
    client.expect_line("* server shutting down");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 0);
    assert!(finished.stdout.is_empty(), "{finished:#?}");
}

/// A server that closes without its shutdown notice is an error: the
/// client says so on stderr and exits non-zero.
#[test]
fn unexpected_close_is_an_error() {
    let server = FakeServer::start(|stream| {
        let _ = fake_login(&stream);
    });
    let mut client = spawn(&strs(&args(server.addr, "x")));
    client.expect_line("* x joined lobby");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        "client: the server closed the connection\n"
    );
}

/// A connection reset is an error naming the address and the OS's reason.
#[test]
fn connection_reset_is_an_error() {
    let server = FakeServer::start(|stream| {
        let _ = fake_login(&stream);
        // Linger 0: close with RST instead of FIN.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .expect("set linger");
    });
    let addr = server.addr;
    let mut client = spawn(&strs(&args(addr, "x")));
    client.expect_line("* x joined lobby");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 1);
    let prefix = format!("client: connection to {addr} lost: ");
    assert!(
        finished.stderr.starts_with(&prefix),
        "{:?}",
        finished.stderr
    );
    assert!(finished.stderr.contains("reset"), "{:?}", finished.stderr);
}

/// A refusal before any name is accepted (`! server full`, then close) is
/// an error reported with the server's reason.
#[test]
fn refusal_before_registration_is_reported() {
    let server = FakeServer::start(|stream| {
        let mut out = &stream;
        out.write_all(b"! server full\n").expect("send refusal");
    });
    let finished = run(&strs(&args(server.addr, "x")), b"hi\n");
    server.join();

    assert_code(&finished, 1);
    assert_eq!(finished.stdout_lines(), ["! server full"]);
    assert_eq!(finished.stderr, "client: the server refused: server full\n");
}

/// The name is sent only after the prompt and trimmed of blanks, and the
/// join notice the client waits for may come with the server's spelling.
#[test]
fn name_is_sent_trimmed_after_the_prompt() {
    let server = FakeServer::start(|stream| {
        let mut out = &stream;
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        out.write_all(b"NAME\n").expect("prompt");
        let mut name = String::new();
        reader.read_line(&mut name).expect("read name");
        assert_eq!(name, "Bot\n");
        out.write_all(b"* bot joined lobby\n* server shutting down\n")
            .expect("join and leave");
    });
    let mut client = spawn(&strs(&args(server.addr, "  Bot  ")));
    client.expect_line("* bot joined lobby");
    client.expect_line("* server shutting down");
    let finished = client.wait_exit();
    server.join();
    assert_code(&finished, 0);
}
