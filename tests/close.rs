//! How connections end: every close the protocol promises is lossless (the
//! client gets everything queued for it, then a clean EOF, never a reset),
//! even when the client still has input in flight; the close deadlines fire;
//! and no `Config` can make the loop misbehave.

mod common;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use chatroom::{Config, Server, Stopped};
use common::{start_with, test_config, Client};

/// Lines of about 1 KB, numbered, so a lost or reordered one shows.
fn big_line(i: usize) -> String {
    format!("{i:04} {}", "q".repeat(1000))
}

/// Queues `n` big lines for `victim` (which does not read) by having
/// `alice` send them, reading her own echoes so she is not the slow one.
fn flood_victim(alice: &mut Client, n: usize) {
    for i in 0..n {
        alice.send(&big_line(i));
        alice.expect(&format!("alice: {}", big_line(i)));
    }
}

/// A client with ~300 KB queued for it (small receive buffer) sends
/// `/quit` and more bytes after it: it still receives every line, its quit
/// notice, and a clean EOF (Linux resets a socket closed with unread input,
/// throwing away what it had queued; the server must read that input).
#[test]
fn quit_with_input_in_flight_loses_nothing() {
    let server = start_with(test_config());
    let mut victim = Client::connect_small(server.addr, 4096);
    victim.expect_prompt();
    victim.send("victim");
    victim.expect_joined("victim", "lobby");
    let mut alice = Client::login(server.addr, "alice");
    victim.expect("* alice joined lobby");
    flood_victim(&mut alice, 300);
    // More than one read's worth after the quit, so some of it is still
    // unread when the server closes.
    let mut tail = b"/quit\n".to_vec();
    tail.extend(b"more bytes after the quit\n".repeat(6000));
    victim.send_raw(&tail);
    for i in 0..300 {
        victim.expect(&format!("alice: {}", big_line(i)));
    }
    victim.expect("* victim left (quit)");
    victim.expect_eof();
    alice.expect("* victim left (quit)");
}

/// `! login timeout` reaches a client that keeps sending after it, then a
/// clean EOF.
#[test]
fn login_timeout_with_input_in_flight_is_a_clean_close() {
    let server = start_with(Config {
        login_timeout: Duration::from_millis(200),
        ..test_config()
    });
    let mut c = Client::connect(server.addr);
    c.expect_prompt();
    c.expect("! login timeout");
    // Bytes that arrive after the server decided to close.
    let _ = c.reader.get_mut().write_all(b"late name\nlate\n");
    c.expect_eof();
}

/// A client refused as `! server full` that sent its name before reading
/// the prompt still reads the refusal and a clean EOF.
#[test]
fn server_full_with_input_in_flight_is_a_clean_close() {
    let server = start_with(Config {
        max_clients: 1,
        ..test_config()
    });
    let _alice = Client::login(server.addr, "alice");
    for _ in 0..3 {
        let mut c = Client::connect(server.addr);
        c.send_raw(b"bob\nhello\n");
        c.expect("! server full");
        c.expect_eof();
    }
}

/// The shutdown notice reaches a client that is still sending, behind
/// ~300 KB queued for it, then a clean EOF.
#[test]
fn shutdown_with_input_in_flight_loses_nothing() {
    let server = start_with(test_config());
    let mut victim = Client::connect_small(server.addr, 4096);
    victim.expect_prompt();
    victim.send("victim");
    victim.expect_joined("victim", "lobby");
    let mut alice = Client::login(server.addr, "alice");
    victim.expect("* alice joined lobby");
    flood_victim(&mut alice, 300);
    server.handle.shutdown();
    // Blank lines say nothing whenever the server reads them; more than one
    // read's worth, so some are unread when the server closes.
    victim.send_raw(&b"\n".repeat(150_000));
    for i in 0..300 {
        victim.expect(&format!("alice: {}", big_line(i)));
    }
    victim.expect("* server shutting down");
    victim.expect_eof();
    alice.expect("* server shutting down");
    alice.expect_eof();
    assert_eq!(server.stop().expect("run returns"), Stopped::Graceful);
}

/// Lines that fill the kernel's socket buffers (4 MiB at most on Linux)
/// and leave the rest queued in the server.
const OVER_SOCKET_BUFFERS: usize = 6000;

/// A closing client that does not take its output is dropped when the
/// close-flush timeout passes, and counted.
#[test]
fn close_flush_timeout_fires() {
    let server = start_with(Config {
        close_flush_timeout: Duration::from_millis(300),
        max_outbuf: 64 << 20,
        ..test_config()
    });
    let mut sleepy = Client::connect_small(server.addr, 4096);
    sleepy.expect_prompt();
    sleepy.send("sleepy");
    sleepy.expect_joined("sleepy", "lobby");
    let mut alice = Client::login(server.addr, "alice");
    sleepy.expect("* alice joined lobby");
    flood_victim(&mut alice, OVER_SOCKET_BUFFERS);
    sleepy.send("/quit");
    alice.expect("* sleepy left (quit)");
    server.wait_for("the flush timeout", |s| s.flush_timeouts == 1);
    server.wait_for("sleepy to be freed", |s| s.connections == 1);
    drop(sleepy);
}

/// When clients do not take their output before the shutdown deadline,
/// `run` still returns, and says how many connections it dropped.
#[test]
fn shutdown_deadline_expires() {
    let server = start_with(Config {
        shutdown_timeout: Duration::from_millis(300),
        max_outbuf: 64 << 20,
        ..test_config()
    });
    let mut sleepy = Client::connect_small(server.addr, 4096);
    sleepy.expect_prompt();
    sleepy.send("sleepy");
    sleepy.expect_joined("sleepy", "lobby");
    let mut alice = Client::login(server.addr, "alice");
    sleepy.expect("* alice joined lobby");
    flood_victim(&mut alice, OVER_SOCKET_BUFFERS);
    assert_eq!(
        server.stop().expect("run returns"),
        Stopped::DeadlineExpired(1)
    );
    alice.expect("* server shutting down");
    alice.expect_eof();
    drop(sleepy);
}

/// A `Config` out of range is refused by `Server::bind`, naming the flag,
/// instead of panicking the loop later.
#[test]
fn bind_refuses_configs_out_of_range() {
    let cases = [
        (
            Config {
                login_timeout: Duration::MAX,
                ..test_config()
            },
            "--login-timeout",
        ),
        (
            Config {
                max_outbuf: 1,
                ..test_config()
            },
            "--max-outbuf",
        ),
    ];
    for (config, flag) in cases {
        let err = Server::bind(config).expect_err("bind must refuse");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().starts_with(flag), "{err}");
    }
}

/// `/nick` to one's own name changes nothing and says so; a change of case
/// is still announced.
#[test]
fn nick_to_the_same_name_is_refused() {
    let server = start_with(test_config());
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    alice.send("/nick alice");
    alice.expect("! you are already alice");
    alice.send("/nick Alice");
    alice.expect("* alice is now known as Alice");
    bob.expect("* alice is now known as Alice");
}
