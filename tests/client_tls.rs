//! The example client over TLS, end to end: the real `chatroom` binary
//! serving a freshly generated certificate, the real client trusting its CA
//! with `--ca`. Pins that chat works over TLS beside plain TCP, that the
//! certificate is checked (issuer and name, with one clear line for each
//! failure), that a wrong port is diagnosed either way round, and that a
//! TLS session ends cleanly only with close_notify.

mod client_support;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use client_support::tls::{tls_server, Certs, FakeTlsServer};
use client_support::{assert_code, expect_join_burst, run, spawn, strs};
use common::Client;

/// The client's arguments for `addr` over TLS trusting `certs`' CA.
fn tls_args(certs: &Certs, addr: impl ToString, name: &str) -> Vec<String> {
    vec![
        "--ca".into(),
        certs.ca(),
        "--addr".into(),
        addr.to_string(),
        "--name".into(),
        name.into(),
    ]
}

/// A script over TLS sends and receives as over plain TCP, and shares the
/// room with a plain-text client.
#[test]
fn chat_over_tls_with_a_private_ca() {
    let certs = Certs::generate("chatroom test CA");
    let server = tls_server(&certs);
    let mut alice = Client::login(server.plain.unwrap(), "alice");

    let finished = run(
        &strs(&tls_args(&certs, server.tls, "bot")),
        b"hi alice\n/who\n",
    );
    assert_code(&finished, 0);
    assert_eq!(
        finished.stdout_lines(),
        [
            "* bot joined lobby",
            "* welcome to chatroom, bot! /help lists the commands",
            "* lobby has 2 members: alice, bot",
            "bot: hi alice",
            "* lobby has 2 members: alice, bot",
        ]
    );
    assert_eq!(finished.stderr, "");
    alice.expect("* bot joined lobby");
    alice.expect("bot: hi alice");
    // Our close_notify and FIN: a plain leave, not a connection error.
    alice.expect("* bot left");
}

/// The server name defaults to the host of `--addr`: `localhost` and
/// `127.0.0.1` (an IP address SAN) are both in the certificate.
#[test]
fn server_name_defaults_to_the_host() {
    let certs = Certs::generate("chatroom test CA");
    let server = tls_server(&certs);
    for host in ["localhost", "127.0.0.1"] {
        let addr = format!("{host}:{}", server.tls.port());
        let mut bot = spawn(&strs(&tls_args(&certs, &addr, "bot")));
        expect_join_burst(&mut bot, "bot", "bot");
        let finished = bot.finish();
        assert_code(&finished, 0);
        assert_eq!(finished.stderr, "", "{host}");
    }
}

/// A certificate for other names is refused with one line naming the name
/// checked, and so is one from a CA the client does not trust; nothing is
/// sent and the status is 1.
#[test]
fn certificate_errors_are_one_clear_line() {
    let certs = Certs::generate("chatroom test CA");
    let other = Certs::generate("another test CA");
    let server = tls_server(&certs);
    let addr = server.tls.to_string();

    let mut argv = tls_args(&certs, &addr, "bot");
    argv.extend(["--server-name".into(), "chat.example.com".into()]);
    let wrong_name = run(&strs(&argv), b"hi\n");
    assert_code(&wrong_name, 1);
    assert_eq!(
        wrong_name.stderr,
        "client: the server's certificate is not valid for chat.example.com \
         (if it is right under another name, give that with --server-name)\n"
    );

    let wrong_ca = run(&strs(&tls_args(&other, &addr, "bot")), b"hi\n");
    assert_code(&wrong_ca, 1);
    assert_eq!(
        wrong_ca.stderr,
        format!(
            "client: the server's certificate is not trusted: it was not issued by the CA in {}\n",
            other.ca()
        )
    );

    // A CA with the same name but another key: the signature gives it away.
    let impostor = Certs::generate("chatroom test CA");
    let same_name = run(&strs(&tls_args(&impostor, &addr, "bot")), b"hi\n");
    assert_code(&same_name, 1);
    assert_eq!(
        same_name.stderr,
        "client: the server's certificate is not trusted: its signature does not verify \
         with its issuer's key\n"
    );

    // Mozilla's roots do not include a throwaway CA.
    let public = run(&["--tls", "--addr", &addr, "--name", "bot"], b"hi\n");
    assert_code(&public, 1);
    assert_eq!(
        public.stderr,
        "client: the server's certificate is not trusted: it was not issued by a public CA \
         (for a private CA, give its certificate with --ca FILE)\n"
    );
    for finished in [&wrong_name, &wrong_ca, &same_name, &public] {
        assert!(finished.stdout.is_empty(), "{finished:#?}");
    }
}

/// `--tls` against the plain-text port: the server's prompt is no TLS
/// record, and the client says what to try.
#[test]
fn tls_to_a_plain_port_says_so() {
    let certs = Certs::generate("chatroom test CA");
    let server = tls_server(&certs);
    let plain = server.plain.unwrap();
    let finished = run(&strs(&tls_args(&certs, plain, "bot")), b"hi\n");
    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        "client: the server did not answer in TLS; is this a plain-text port? try without --tls\n"
    );
}

/// Plain text against the TLS port: the server waits for a TLS hello, the
/// client for a prompt; after about 5 s the client says what to try.
#[test]
fn plain_to_a_tls_port_says_so() {
    let certs = Certs::generate("chatroom test CA");
    let server = tls_server(&certs);
    let started = Instant::now();
    let finished = run(
        &["--addr", &server.tls.to_string(), "--name", "bot"],
        b"hi\n",
    );
    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        "client: no prompt from the server; is this a TLS port? try --tls\n"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

/// The server's shutdown over TLS (notice, close_notify, FIN) is a clean
/// end: status 0.
#[test]
fn server_shutdown_over_tls_is_clean() {
    let certs = Certs::generate("chatroom test CA");
    let server = tls_server(&certs);
    let mut bot = spawn(&strs(&tls_args(&certs, server.tls, "bot")));
    expect_join_burst(&mut bot, "bot", "bot");
    // Asserts a graceful exit, status 0.
    server.terminate();
    bot.expect_line("* server shutting down");
    let finished = bot.wait_exit();
    assert_code(&finished, 0);
    assert_eq!(finished.stderr, "client: the server shut down\n");
}

/// Over TLS a clean end needs close_notify: the shutdown notice followed
/// by a bare TCP close (what a truncation looks like) is an error.
#[test]
fn tls_cut_without_close_notify_is_an_error() {
    let certs = Certs::generate("chatroom test CA");
    let server = FakeTlsServer::start(certs.server_config(), |mut tls| {
        tls.write_all(b"NAME choose a name\n").expect("prompt");
        let mut name = String::new();
        BufReader::new(&mut tls)
            .read_line(&mut name)
            .expect("read name");
        let join = format!("* {} joined lobby\n* server shutting down\n", name.trim());
        tls.write_all(join.as_bytes()).expect("lines");
        tls.flush().expect("flush");
        // Close the TCP connection without close_notify.
        tls.sock
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let _ = std::io::Read::read(&mut tls.sock, &mut [0u8; 64]);
    });
    let addr = server.addr;
    let mut client = spawn(&strs(&tls_args(&certs, addr, "x")));
    client.expect_line("* x joined lobby");
    client.expect_line("* server shutting down");
    let finished = client.wait_exit();
    server.join();

    assert_code(&finished, 1);
    assert_eq!(
        finished.stderr,
        format!(
            "client: connection to {addr} lost: the connection was cut without a TLS close_notify\n"
        )
    );
}
