//! Tests of the `chatroom` binary itself: flags, the `listening on` log line
//! scripts rely on, IPv6, and shutdown on SIGINT/SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::process::{ServerProcess, BIN};

fn read_lines(stream: &mut TcpStream, n: usize) -> Vec<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    (0..n)
        .map(|_| {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            l.trim_end().to_string()
        })
        .collect()
}

/// `--help` and `--version` print and exit 0; bad flags exit 2 with a
/// clear message.
#[test]
fn flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "--port",
        "--max-line",
        "--max-outbuf",
        "--login-timeout",
        "--max-clients",
        "--notice-limit",
        "--log-level",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("chatroom {}", env!("CARGO_PKG_VERSION"))
    );

    for (args, needle) in [
        (&["--port", "http"][..], "--port"),
        (&["--max-line", "0"][..], "--max-line"),
        (
            &["--login-timeout", "18446744073709551615"][..],
            "--login-timeout",
        ),
        (&["--bind", "nowhere"][..], "--bind"),
        (&["--log-level", "loud"][..], "--log-level"),
        (&["--frobnicate"][..], "--frobnicate"),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(needle) && err.contains("--help"),
            "{args:?}: {err}"
        );
    }
}

/// SIGTERM: every client gets the shutdown notice, the connection closes,
/// the process logs it and exits 0.
#[test]
fn sigterm_shuts_down_gracefully() {
    let mut proc = ServerProcess::spawn(None, &["--port", "0"]);
    let mut c = TcpStream::connect(proc.addr).unwrap();
    c.write_all(b"alice\n").unwrap();
    assert_eq!(
        read_lines(&mut c, 4),
        [
            common::PROMPT,
            "* alice joined lobby",
            "* welcome to chatroom, alice! /help lists the commands",
            "* lobby has 1 member: alice"
        ]
    );
    proc.signal(libc::SIGTERM);
    assert_eq!(read_lines(&mut c, 1), ["* server shutting down"]);
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(proc.wait_exit(), Some(0));
    let log = proc.final_log();
    assert!(
        log.contains("shutting down") && log.contains("shutdown complete"),
        "{log}"
    );
    assert!(log.contains("registered as alice"), "{log}");
    // One line per leave, from the chat, and no second close line for it.
    assert_eq!(log.matches("alice left").count(), 1, "{log}");
    assert!(!log.contains("): closed"), "{log}");
}

/// A second signal exits at once, even while the first one's graceful
/// flush is still waiting on a client that never reads.
#[test]
fn second_signal_exits_at_once() {
    let mut proc = ServerProcess::spawn(
        None,
        &[
            "--port",
            "0",
            "--max-outbuf",
            "100000000",
            "--flood-rate",
            "0",
        ],
    );
    let addr = proc.addr;
    // A client with a tiny receive window that never reads: what is queued
    // for it cannot drain, so the graceful shutdown has to wait for it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stuck: TcpStream = socket.into();
    stuck.write_all(b"stuck\n").unwrap();
    let mut talker = TcpStream::connect(addr).unwrap();
    talker.write_all(b"talker\n").unwrap();
    talker
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(talker.try_clone().unwrap());
    let mut line = String::new();
    while line.trim_end() != "* talker joined lobby" {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "talker closed");
    }
    // 4 MB of chat, which the server queues for `stuck` too; reading our
    // own echo of the last line proves it has all been queued.
    let chunk = format!("{}\n", "x".repeat(999));
    let writer = std::thread::spawn(move || {
        for _ in 0..4000 {
            talker.write_all(chunk.as_bytes()).unwrap();
        }
        talker.write_all(b"end\n").unwrap();
    });
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "talker closed");
        if line == "talker: end\n" {
            break;
        }
    }
    writer.join().unwrap();

    proc.signal(libc::SIGINT);
    // The flush may take up to 3 s; well inside that, it must still be going.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        proc.child.try_wait().unwrap(),
        None,
        "exited before the flush deadline"
    );
    let started = Instant::now();
    proc.signal(libc::SIGINT);
    // A forced exit is not a clean stop: the status says so.
    assert_eq!(proc.wait_exit(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(proc
        .final_log()
        .contains("second signal: exiting now (forced)"));
    drop(stuck);
}

/// `--bind ::1` listens on IPv6 and serves clients there.
#[test]
fn ipv6_bind() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let proc = ServerProcess::spawn(None, &["--bind", "::1", "--port", "0"]);
    let addr = proc.addr;
    assert!(addr.is_ipv6(), "{addr}");
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"six\nhello\n").unwrap();
    assert_eq!(
        read_lines(&mut c, 5),
        [
            common::PROMPT,
            "* six joined lobby",
            "* welcome to chatroom, six! /help lists the commands",
            "* lobby has 1 member: six",
            "six: hello"
        ]
    );
}

/// RUST_LOG is honoured when --log-level is absent; --log-level wins.
#[test]
fn log_levels() {
    // No RUST_LOG: info, so the `listening on` line (spawn waits for it).
    let mut proc = ServerProcess::spawn(None, &["--port", "0"]);
    proc.signal(libc::SIGTERM);
    assert!(proc.final_log().contains("INFO"));
    // RUST_LOG=warn but --log-level info: the flag wins.
    let mut proc =
        ServerProcess::spawn_with_rust_log(Some("warn"), &["--port", "0", "--log-level", "info"]);
    proc.signal(libc::SIGTERM);
    assert!(proc.final_log().contains("INFO"));

    // RUST_LOG=warn alone: no info lines at all, not even `listening on`, so
    // find the port ourselves and wait until the server answers on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--http-port", "off"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("server never listened: {e}"),
        }
    };
    // A registration and a chat line: the loop runs and logs nothing.
    c.write_all(b"quiet\nhello\n").unwrap();
    assert_eq!(
        read_lines(&mut c, 5),
        [
            common::PROMPT,
            "* quiet joined lobby",
            "* welcome to chatroom, quiet! /help lists the commands",
            "* lobby has 1 member: quiet",
            "quiet: hello"
        ]
    );
    drop(c);
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(log, "", "RUST_LOG=warn should silence info lines");
}

/// Flag errors: one format (`chatroom: <flag>: <what is wrong>`, exit 2,
/// no Rust debug output), ranges stated, both `--flag value` and
/// `--flag=value`, duplicates refused, and `--bind` takes host names.
#[test]
fn flag_errors_are_clear() {
    for (args, want) in [
        (
            &["--port", "70000"][..],
            "chatroom: --port: must be a port 0-65535 or off (got \"70000\")",
        ),
        (
            &["--port=70000"][..],
            "chatroom: --port: must be a port 0-65535 or off (got \"70000\")",
        ),
        (&["--port", "1", "--port", "2"][..], "chatroom: --port: given more than once"),
        (
            &["--log-level", "loud"][..],
            "chatroom: --log-level: must be one of off, error, warn, info, debug, trace (got \"loud\")",
        ),
        (
            &["--max-outbuf", "1"][..],
            "chatroom: --max-outbuf: must be 16896-1073741824 (at least four of the longest lines, 16896 with --max-line 4096)",
        ),
        (&["--motd", "/nonexistent/motd"][..], "chatroom: --motd: cannot read /nonexistent/motd: No such file or directory (os error 2)"),
        (&["--frobnicate"][..], "chatroom: --frobnicate: unknown flag"),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().next(), Some(want), "{args:?}");
        assert!(!err.contains("Os {") && !err.contains("kind:"), "{err}");
    }
}

/// `--bind localhost` resolves; `--port=0` works; a port in use says so
/// and suggests `--port 0`.
#[test]
fn bind_by_name_and_address_in_use() {
    let first = ServerProcess::spawn(None, &["--bind", "localhost", "--port=0"]);
    assert!(first.addr.ip().is_loopback(), "{}", first.addr);
    let out = Command::new(BIN)
        .args([
            "--bind",
            &first.addr.ip().to_string(),
            "--port",
            &first.addr.port().to_string(),
            "--http-port",
            "off",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("address in use") && err.contains("--port 0"),
        "{err}"
    );
    first.terminate();
}
