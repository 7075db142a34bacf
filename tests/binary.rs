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
    assert_eq!(read_lines(&mut c, 2), ["NAME", "* alice joined lobby"]);
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

/// A second signal exits at once, even with a client that never reads.
#[test]
fn second_signal_exits_at_once() {
    let mut proc = ServerProcess::spawn(None, &["--port", "0", "--max-outbuf", "100000000"]);
    let addr = proc.addr;
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck.write_all(b"stuck\n").unwrap();
    // Queue a lot of output it will never read, so the flush would wait.
    let mut talker = TcpStream::connect(addr).unwrap();
    talker.write_all(b"talker\n").unwrap();
    assert_eq!(
        read_lines(&mut talker, 2),
        ["NAME", "* talker joined lobby"]
    );
    proc.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    proc.signal(libc::SIGINT);
    assert_eq!(proc.wait_exit(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
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
        read_lines(&mut c, 3),
        ["NAME", "* six joined lobby", "six: hello"]
    );
}

/// RUST_LOG is honoured when --log-level is absent; --log-level wins.
#[test]
fn log_levels() {
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some(v) = env {
            cmd.env("RUST_LOG", v);
        } else {
            cmd.env_remove("RUST_LOG");
        }
        let child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(run(&["--port", "0"], None).contains("listening on"));
    assert!(!run(&["--port", "0"], Some("warn")).contains("listening on"));
    assert!(run(&["--port", "0", "--log-level", "info"], Some("warn")).contains("listening on"));
}
