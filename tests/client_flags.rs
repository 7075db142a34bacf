//! The example client's command line: both value forms, duplicates, every
//! usage error as exactly one `client: ...` line naming the flag (exit 2),
//! `--addr` without a port, and host names that resolve. Runs the real
//! client program against servers on loopback.

mod client_support;
mod common;

use std::net::{SocketAddr, TcpListener};

use client_support::{assert_code, expect_join_burst, fake_login, run, spawn, FakeServer};
use common::start_server;

/// `--help` names every flag and what an error line does to the exit
/// status, and exits 0.
#[test]
fn help_lists_every_flag() {
    let help = run(&["--help"], b"");
    assert_code(&help, 0);
    let text = String::from_utf8(help.stdout.join(&b'\n')).expect("UTF-8 help");
    for needle in [
        "--addr HOST[:PORT]",
        "--name NAME",
        "--tls",
        "--ca FILE",
        "--server-name NAME",
        "--plain",
        "--decorate",
        "--help",
        "(--name=bob)",
        "PORT defaults to 5550, or to\n                        5551 with --tls",
        "any error line (! ) the server sends",
        "Ctrl-C clears the line being typed; Ctrl-C on an empty line, Ctrl-D on an\n    empty line, or /quit leave",
    ] {
        assert!(text.contains(needle), "help mentions {needle:?}: {text}");
    }
    assert_eq!(help.stderr, "");
}

/// Every usage error is one line, `client: <flag>: <what is wrong> (see
/// --help)`, on stderr, with exit status 2 and nothing on stdout: no
/// backtrace, no Rust debug formatting.
#[test]
fn usage_errors_are_one_line_naming_the_flag() {
    let dir = std::env::temp_dir().join(format!("chatroom-client-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello\n").expect("write not.pem");
    let not_pem = not_pem.to_str().expect("UTF-8 path").to_string();
    let missing = dir.join("missing.pem");
    let missing = missing.to_str().expect("UTF-8 path").to_string();

    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--frobnicate"], "--frobnicate: unknown flag".into()),
        (vec!["stray"], "unexpected argument \"stray\"".into()),
        (
            vec!["--name", "a", "--name", "b"],
            "--name: given more than once".into(),
        ),
        (
            vec!["--name=a", "--name", "b"],
            "--name: given more than once".into(),
        ),
        (vec!["--tls", "--tls"], "--tls: given more than once".into()),
        (vec!["--addr"], "--addr: needs a value".into()),
        (
            vec!["--addr", "127.0.0.1:99999"],
            "--addr: must be a whole number 0-65535 (got \"99999\")".into(),
        ),
        (
            vec!["--addr=localhost:0"],
            "--addr: port 0 cannot be connected to".into(),
        ),
        (
            vec!["--addr", "[::1"],
            "--addr: unclosed [ in \"[::1\"".into(),
        ),
        (
            vec!["--addr", ":5550"],
            "--addr: needs a host (got \":5550\")".into(),
        ),
        (
            vec!["--server-name", "localhost"],
            "--server-name: only with --tls or --ca".into(),
        ),
        (
            vec!["--tls", "--server-name", "no such name!"],
            "--server-name: \"no such name!\" is not a valid DNS name or IP address".into(),
        ),
        (
            vec!["--ca", &missing],
            format!("--ca: cannot read {missing}: No such file or directory (os error 2)"),
        ),
        (
            vec!["--ca", &not_pem],
            format!("--ca: {not_pem}: no certificate in it (expected PEM \"BEGIN CERTIFICATE\")"),
        ),
        (
            vec!["--plain", "--decorate"],
            "--plain and --decorate exclude each other".into(),
        ),
        // Everything right but the name, which a script must give.
        (
            vec!["--addr", "127.0.0.1:1"],
            "--name: required when stdin is not a terminal".into(),
        ),
    ];
    for (args, want) in cases {
        let finished = run(&args, b"");
        assert_code(&finished, 2);
        assert_eq!(
            finished.stderr,
            format!("client: {want} (see --help)\n"),
            "{args:?}"
        );
        assert!(finished.stdout.is_empty(), "{args:?}: {finished:#?}");
    }
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

/// `--flag=value` works as well as `--flag value`.
#[test]
fn values_may_be_joined_with_equals() {
    let server = start_server();
    let addr = format!("--addr={}", server.addr);
    let finished = run(&[&addr, "--name=bot"], b"hi\n");
    assert_code(&finished, 0);
    assert_eq!(
        finished.stdout_lines(),
        [
            "* bot joined lobby",
            "* welcome to chatroom, bot! /help lists the commands",
            "* lobby has 1 member: bot",
            "bot: hi",
        ]
    );
    assert_eq!(finished.stderr, "");
}

/// A host name resolves, and every address it resolves to is tried: the
/// server listens on 127.0.0.1 only, while `localhost` may also be ::1.
#[test]
fn host_names_resolve() {
    let server = start_server();
    let addr = format!("localhost:{}", server.addr.port());
    let mut bot = spawn(&["--addr", &addr, "--name", "bot"]);
    expect_join_burst(&mut bot, "bot", "bot");
    let finished = bot.finish();
    assert_code(&finished, 0);
}

/// Binds `port` on some loopback address other than 127.0.0.1 (Linux
/// routes all of 127/8 to lo), so a test can own the default port without
/// clashing with a server someone runs on 127.0.0.1. `None` if every
/// candidate is taken.
fn bind_loopback_port(port: u16) -> Option<TcpListener> {
    (2..40u8).find_map(|last| TcpListener::bind(SocketAddr::from(([127, 0, 7, last], port))).ok())
}

/// `--addr HOST` without a port connects to 5550, the server's default.
#[test]
fn addr_without_port_uses_5550() {
    let Some(listener) = bind_loopback_port(5550) else {
        eprintln!("skipped: no free 127.0.7.x:5550 to listen on");
        return;
    };
    let host = listener.local_addr().expect("address").ip().to_string();
    let server = FakeServer::start_with(listener, |stream| {
        let (name, _rest) = fake_login(&stream);
        assert_eq!(name, "bot");
        let mut out = &stream;
        std::io::Write::write_all(&mut out, b"* server shutting down\n").expect("notice");
    });
    let mut client = spawn(&["--addr", &host, "--name", "bot"]);
    client.expect_line("* bot joined lobby");
    client.expect_line("* server shutting down");
    let finished = client.wait_exit();
    server.join();
    assert_code(&finished, 0);
    assert_eq!(finished.stderr, "client: the server shut down\n");
}

/// With `--tls` the default port is 5551, the server's TLS default: the
/// first bytes there are a TLS handshake record.
#[test]
fn addr_without_port_uses_5551_with_tls() {
    let Some(listener) = bind_loopback_port(5551) else {
        eprintln!("skipped: no free 127.0.7.x:5551 to listen on");
        return;
    };
    let host = listener.local_addr().expect("address").ip().to_string();
    let server = FakeServer::start_with(listener, |stream| {
        // A TLS record: type 22 (handshake: the ClientHello), version,
        // length. Read it whole, so hanging up sends FIN, not RST.
        let mut header = [0u8; 5];
        std::io::Read::read_exact(&mut &stream, &mut header).expect("read the record header");
        assert_eq!(header[0], 22, "a TLS handshake record");
        let mut hello = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        std::io::Read::read_exact(&mut &stream, &mut hello).expect("read the hello");
    });
    let finished = run(&["--tls", "--addr", &host, "--name", "bot"], b"");
    server.join();
    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        format!(
            "client: the server at {host}:5551 closed the connection during the TLS handshake\n"
        )
    );
}
