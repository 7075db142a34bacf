//! Chat over TLS, in-process: a server on port 0 with a TLS listener beside
//! plain TCP, and blocking rustls clients. Every test pins exact lines and
//! how each connection ends (close_notify, cut, reset), with certificates
//! generated per test (no private key is committed).

use std::io::{ErrorKind, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use chatroom::{Config, Stopped};
use common::tls::{start_tls, tls_config, tls_error, write_file, Pki, TlsClient, TlsGot};
use common::ws::read_to_close;
use common::{tcp, tcp_small, Client, Got, Lines as _, PROMPT};
use rustls::{AlertDescription, ClientConfig};

/// A TLS client and a plain-TCP client share the lobby: each sees the
/// other's lines and notices, exactly, in the same order.
#[test]
fn tls_and_plain_clients_chat_in_one_room() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut alice = TlsClient::connect(server.tls, &pki.client());
    alice.expect(PROMPT);
    alice.send("alice");
    alice.expect("* alice joined lobby");
    alice.expect("* welcome to chatroom, alice! /help lists the commands");
    alice.expect("* lobby has 1 member: alice");
    assert_eq!(alice.server_leaf(), pki.leaf());

    let mut bob = Client::connect(server.addr);
    bob.expect(PROMPT);
    bob.send("bob");
    bob.expect("* bob joined lobby");
    bob.expect("* welcome to chatroom, bob! /help lists the commands");
    bob.expect("* lobby has 2 members: alice, bob");
    alice.expect("* bob joined lobby");

    alice.send("hello over TLS");
    alice.expect("alice: hello over TLS");
    bob.expect("alice: hello over TLS");
    bob.send("hello over TCP");
    bob.expect("bob: hello over TCP");
    alice.expect("bob: hello over TCP");
    alice.send("/me waves");
    alice.expect("+ alice waves");
    bob.expect("+ alice waves");
    bob.send("/msg alice psst");
    bob.expect("[pm bob -> alice] psst");
    alice.expect("[pm bob -> alice] psst");

    // Both talking at once: one order, the same for both.
    for i in 0..50 {
        alice.send(&format!("tls {i}"));
        bob.send(&format!("tcp {i}"));
    }
    let (mut seen_by_alice, mut seen_by_bob) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        seen_by_alice.push(alice.read_line().expect("a line"));
        seen_by_bob.push(bob.read_line().expect("a line"));
    }
    assert_eq!(seen_by_alice, seen_by_bob);
    for (who, sender) in [("alice", "tls"), ("bob", "tcp")] {
        let from: Vec<&String> = seen_by_bob
            .iter()
            .filter(|l| l.starts_with(&format!("{who}: ")))
            .collect();
        let want: Vec<String> = (0..50).map(|i| format!("{who}: {sender} {i}")).collect();
        assert_eq!(from, want.iter().collect::<Vec<_>>());
    }

    alice.send("/quit done");
    alice.expect("* alice left (quit: done)");
    alice.expect_eof();
    bob.expect("* alice left (quit: done)");
    server.wait_for("alice to be freed", |s| s.connections == 1);
    assert_eq!(server.handle.stats().tls_errors, 0);
}

/// A ClientHello that arrives one byte per TCP segment is reassembled:
/// the handshake completes and the client chats.
#[test]
fn client_hello_split_byte_by_byte() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    for config in [pki.client(), pki.client_tls12()] {
        let mut slow = TlsClient::connect_bytewise(server.tls, &config);
        slow.expect(PROMPT);
        slow.send("slow");
        slow.expect_joined("slow", "lobby");
        slow.send("one byte at a time");
        slow.expect("slow: one byte at a time");
        slow.send("/quit");
        slow.expect("* slow left (quit)");
        slow.expect_eof();
        server.wait_for("slow to be freed", |s| s.connections == 0);
    }
}

/// Lines that arrive in the same TCP segment as the client's Finished
/// (the name and a first chat line, sent without waiting for the prompt)
/// are read once the handshake completes, not left inside rustls.
#[test]
fn first_lines_with_the_last_handshake_message() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut bob = Client::login(server.addr, "bob");
    let mut eager = TlsClient::connect_sending(server.tls, &pki.client(), b"eager\nfirst words\n");
    eager.expect(PROMPT);
    eager.expect_joined("eager", "lobby");
    eager.expect("eager: first words");
    bob.expect("* eager joined lobby");
    bob.expect("eager: first words");
}

/// A burst of many records in one write (240 KB of lines) is delivered to
/// the last line: the tail that rustls still holds once the socket is
/// drained is read without waiting for another readiness event.
#[test]
fn a_burst_of_records_is_read_to_the_end() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut alice = TlsClient::login(server.tls, &pki.client(), "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    let line = |i: usize| format!("{i:05} {}", "b".repeat(54));
    let burst: String = (0..4000).map(|i| format!("{}\n", line(i))).collect();
    alice.send_raw(burst.as_bytes());
    for i in 0..4000 {
        let want = format!("alice: {}", line(i));
        alice.expect(&want);
        bob.expect(&want);
    }
}

/// Record boundaries mean nothing to the line protocol: many lines in one
/// record are each delivered, and lines split over several records (a
/// record ending mid-line, mid-character, or just before the newline) are
/// delivered whole.
#[test]
fn lines_batched_in_one_record_and_split_over_records() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut alice = TlsClient::login(server.tls, &pki.client(), "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");

    // 200 lines in one record (under 16 KiB of plaintext).
    let batch: String = (0..200).map(|i| format!("batched {i:03}\n")).collect();
    assert!(batch.len() < 16 * 1024);
    alice.send_records(&[batch.as_bytes()]);
    for i in 0..200 {
        let want = format!("alice: batched {i:03}");
        alice.expect(&want);
        bob.expect(&want);
    }

    // One line over five records, one of them splitting "é" in two.
    alice.send_records(&[b"sp", b"lit ", b"acr\xc3", b"\xa9ss records", b"\n"]);
    alice.expect("alice: split acréss records");
    bob.expect("alice: split acréss records");

    // A long line over three records, then two lines whose records end
    // and begin mid-line.
    let long = "x".repeat(4000);
    alice.send_records(&[
        &long.as_bytes()[..1],
        &long.as_bytes()[1..3999],
        b"x\nfirst",
    ]);
    alice.send_records(&[b" half\r\nsecond", b" half\n"]);
    for want in [
        format!("alice: {long}"),
        "alice: first half".into(),
        "alice: second half".into(),
    ] {
        alice.expect(&want);
        bob.expect(&want);
    }
}

/// Each kind of non-TLS or broken input on the TLS port gets at most a
/// fatal TLS alert back and the connection closed; it is counted in
/// `tls_errors`, and the server goes on serving both ports.
#[test]
fn plain_text_http_and_bad_records_on_the_tls_port_are_closed() {
    const DECODE_ERROR: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 50];
    const UNEXPECTED_MESSAGE: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 10];
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut bob = Client::login(server.addr, "bob");
    // A header announcing 16 KiB + 2048 + 1 bytes: over any record's limit.
    let mut huge = vec![0x16, 0x03, 0x01, 0x48, 0x01];
    huge.extend(std::iter::repeat_n(0u8, 0x4801));
    let cases: [(&str, Vec<u8>, &[u8], Got); 5] = [
        (
            "plain text",
            b"alice\nhello\n".to_vec(),
            DECODE_ERROR,
            Got::Eof,
        ),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            DECODE_ERROR,
            Got::Eof,
        ),
        (
            "a handshake record of garbage",
            [&[0x16, 0x03, 0x01, 0x00, 0x10][..], &[0xa5; 16]].concat(),
            b"",
            Got::Eof,
        ),
        (
            "an application-data record before any handshake",
            [&[0x17, 0x03, 0x03, 0x00, 0x10][..], &[0x5a; 16]].concat(),
            UNEXPECTED_MESSAGE,
            Got::Eof,
        ),
        // Refused on its header, with the rest unread: hence the reset.
        (
            "a record over 16 KiB + 2048",
            huge,
            DECODE_ERROR,
            Got::Reset,
        ),
    ];
    for (i, (what, bytes, reply, end)) in cases.into_iter().enumerate() {
        let mut sock = tcp(server.tls);
        write_all_or_reset(&mut sock, &bytes);
        assert_eq!(read_to_close(&mut sock), (reply.to_vec(), end), "{what}");
        server.wait_for(what, |s| s.tls_errors == i as u64 + 1);
        // Still serving, over TLS and plain TCP.
        let mut carol = TlsClient::login(server.tls, &pki.client(), "carol");
        bob.expect("* carol joined lobby");
        carol.send(&format!("after {what}"));
        carol.expect(&format!("carol: after {what}"));
        bob.expect(&format!("carol: after {what}"));
        carol.send("/quit");
        carol.expect("* carol left (quit)");
        carol.expect_eof();
        bob.expect("* carol left (quit)");
    }
    assert_eq!(server.handle.stats().tls_errors, 5);
}

/// Writes what the server will take: it may close before reading it all.
fn write_all_or_reset(sock: &mut TcpStream, bytes: &[u8]) {
    match sock.write_all(bytes) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
        Err(e) => panic!("write: {e}"),
    }
}

/// A registered TLS client that sends bad records after its handshake is
/// closed and its room told `(connection error)`; the others carry on.
#[test]
fn bad_records_after_the_handshake_close_the_sender() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut bob = Client::login(server.addr, "bob");
    let mut huge = vec![0x17, 0x03, 0x03, 0x48, 0x01];
    huge.extend(std::iter::repeat_n(0u8, 0x4801));
    let cases: [(&str, Vec<u8>, AlertDescription); 3] = [
        (
            "a record that does not decrypt",
            [&[0x17, 0x03, 0x03, 0x00, 0x20][..], &[0x5a; 32]].concat(),
            AlertDescription::BadRecordMac,
        ),
        (
            "a record over 16 KiB + 2048",
            huge,
            AlertDescription::DecodeError,
        ),
        (
            "plain text",
            b"hello\n".to_vec(),
            AlertDescription::DecodeError,
        ),
    ];
    for (i, (what, bytes, alert)) in cases.into_iter().enumerate() {
        let mut mallory = TlsClient::login(server.tls, &pki.client(), "mallory");
        bob.expect("* mallory joined lobby");
        mallory.send("before");
        mallory.expect("mallory: before");
        bob.expect("mallory: before");
        write_all_or_reset(&mut mallory.sock, &bytes);
        assert_eq!(
            mallory.next(),
            TlsGot::Failed(rustls::Error::AlertReceived(alert)),
            "{what}"
        );
        bob.expect("* mallory left (connection error)");
        server.wait_for(what, |s| s.tls_errors == i as u64 + 1);
        bob.send("still here");
        bob.expect("bob: still here");
    }
}

/// A TLS connection that never finishes its handshake (silent, half a
/// ClientHello, or a whole one and then nothing) is closed at the login
/// timeout: nothing can be said to it, so it gets no `! login timeout`,
/// no flush deadline, just the close.
#[test]
fn unfinished_handshakes_are_closed_at_the_login_timeout() {
    const LOGIN_TIMEOUT: Duration = Duration::from_secs(1);
    let pki = Pki::new("chatroom test CA");
    // A flush deadline far beyond the login timeout: closing at it would
    // be plain to see.
    let server = start_tls(Config {
        login_timeout: LOGIN_TIMEOUT,
        close_flush_timeout: Duration::from_secs(30),
        ..tls_config(&pki)
    });
    let hello = common::tls::client_hello(&pki.client());
    let cases: [(&str, &[u8]); 3] = [
        ("silent", b""),
        ("half a ClientHello", &hello[..hello.len() / 2]),
        ("a ClientHello and then nothing", &hello),
    ];
    let started = Instant::now();
    let mut socks: Vec<TcpStream> = cases
        .iter()
        .map(|(_, bytes)| {
            let mut sock = tcp(server.tls);
            sock.write_all(bytes).unwrap();
            sock
        })
        .collect();
    for ((what, _), sock) in cases.iter().zip(&mut socks) {
        let (got, end) = read_to_close(sock);
        let elapsed = started.elapsed();
        assert_eq!(end, Got::Eof, "{what}");
        assert!(
            elapsed >= LOGIN_TIMEOUT && elapsed < LOGIN_TIMEOUT + Duration::from_secs(5),
            "{what}: closed after {elapsed:?}"
        );
        if *what == "a ClientHello and then nothing" {
            // The server's first flight: a ServerHello handshake record.
            assert_eq!(got.first(), Some(&0x16), "{what}: {got:02x?}");
        } else {
            assert_eq!(got, b"", "{what}");
        }
    }
    drop(socks);
    server.wait_for("the three to be freed", |s| s.connections == 0);
    let stats = server.handle.stats();
    assert_eq!(
        (stats.login_timeouts, stats.flush_timeouts, stats.tls_errors),
        (3, 0, 0),
        "{stats:?}"
    );
}

/// A client that finishes its handshake but never sends a name gets
/// `! login timeout` over TLS, then close_notify and a clean EOF.
#[test]
fn login_timeout_over_tls() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(Config {
        login_timeout: Duration::from_secs(1),
        ..tls_config(&pki)
    });
    let mut shy = TlsClient::connect(server.tls, &pki.client());
    shy.expect(PROMPT);
    shy.expect("! login timeout");
    shy.expect_eof();
    server.wait_for("shy to be freed", |s| s.connections == 0);
    assert_eq!(server.handle.stats().login_timeouts, 1);
}

/// A close_notify in the middle of a line ends the client's input as a
/// TCP EOF does: the unfinished line is delivered as a line, the sender
/// still gets what is queued for it, then close_notify and EOF; the room
/// sees the line and a plain `* <name> left`.
#[test]
fn close_notify_mid_line_is_the_end_of_input() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut bob = Client::login(server.addr, "bob");
    let mut half = TlsClient::login(server.tls, &pki.client(), "half");
    bob.expect("* half joined lobby");
    half.send_raw(b"last ");
    half.send_raw(b"words");
    half.close_notify();
    half.expect("half: last words");
    half.expect_eof();
    bob.expect("half: last words");
    bob.expect("* half left");
    server.wait_for("half to be freed", |s| s.connections == 1);
    assert_eq!(server.handle.stats().tls_errors, 0);
}

/// A TCP FIN without a close_notify ends a TLS client's input too (the
/// whole lines before it are delivered); the server still ends its side
/// with close_notify.
#[test]
fn fin_without_close_notify_is_the_end_of_input() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut bob = Client::login(server.addr, "bob");
    let mut cut = TlsClient::login(server.tls, &pki.client(), "cut");
    bob.expect("* cut joined lobby");
    cut.send("whole line");
    cut.sock.shutdown(std::net::Shutdown::Write).unwrap();
    cut.expect("cut: whole line");
    cut.expect_eof();
    bob.expect("cut: whole line");
    bob.expect("* cut left");
}

/// A TLS client that stops reading while the room floods is dropped as a
/// slow consumer, as a plain one is: what rustls holds counts against
/// `max_outbuf`, so the server's memory for it stays bounded. The drop
/// comes before the sender has sent more than the limit plus what the
/// kernel buffers, and what the client never got (what the server held)
/// is about the limit; what it got is an uncut prefix of its stream.
#[test]
fn tls_client_that_stops_reading_is_a_slow_consumer() {
    const MAX_OUTBUF: usize = 128 * 1024;
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(Config {
        max_outbuf: MAX_OUTBUF,
        ..tls_config(&pki)
    });
    let mut alice = Client::login(server.addr, "alice");
    let mut sloth = TlsClient::over(tcp_small(server.tls, 4096), &pki.client()).unwrap();
    sloth.expect(PROMPT);
    sloth.send("sloth");
    sloth.expect_joined("sloth", "lobby");
    alice.expect("* sloth joined lobby");

    // What the kernel can hold between the server and sloth: the server's
    // send buffer at its largest and sloth's receive buffer.
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .expect("tcp_wmem")
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("tcp_wmem's maximum");
    let bound = MAX_OUTBUF + 64 * 1024 + wmem_max + 64 * 1024;
    let line = |i: usize| format!("{i:06} {}", "s".repeat(1000));
    let mut sent = 0;
    let mut i = 0;
    'flood: loop {
        assert!(
            sent < bound,
            "sloth not dropped after {sent} bytes (bound {bound})"
        );
        // 32 lines at a time, each echoed to alice before the next batch,
        // so alice is never a slow consumer herself.
        let batch: String = (i..i + 32).map(|j| format!("{}\n", line(j))).collect();
        alice.send_raw(batch.as_bytes());
        sent += batch.len();
        for j in i..i + 32 {
            let got = alice.read_line().expect("alice is connected");
            if got == "* sloth left (slow consumer)" {
                // The rest of the batch follows the notice.
                for k in j..i + 32 {
                    alice.expect(&format!("alice: {}", line(k)));
                }
                break 'flood;
            }
            assert_eq!(got, format!("alice: {}", line(j)));
        }
        i += 32;
    }
    assert!(sent > MAX_OUTBUF, "dropped after only {sent} bytes");
    server.wait_for("sloth to be freed", |s| s.connections == 1);
    let stats = server.handle.stats();
    assert_eq!(
        (stats.slow_consumers, stats.registered),
        (1, 1),
        "{stats:?}"
    );
    alice.send("after");
    alice.expect("alice: after");

    // What sloth did get is an uncut prefix of its stream, cut without a
    // close_notify (a dropped client is not owed one).
    let mut got = 0;
    loop {
        match sloth.next() {
            TlsGot::Line(l) if l.starts_with("* ") => {}
            TlsGot::Line(l) => {
                assert_eq!(l, format!("alice: {}", line(got)));
                got += 1;
            }
            end => {
                assert_eq!(end, TlsGot::Truncated, "after {got} lines");
                break;
            }
        }
    }
    // The kernel delivered what it held; the rest is what the server held
    // for sloth when it gave up (its buffer and what rustls had), and lines
    // sent after the drop: bounded by the limit, whatever the kernel took.
    let sent_lines = i + 32;
    let lost = (sent_lines - got) * format!("alice: {}\n", line(0)).len();
    assert!(
        lost <= MAX_OUTBUF + 128 * 1024 + 33 * 1015,
        "{lost} bytes lost: the server held more than its limit"
    );
}

/// The handshake error a client got, if its handshake failed on TLS.
#[track_caller]
fn handshake_error(addr: SocketAddr, config: &Arc<ClientConfig>) -> rustls::Error {
    match TlsClient::try_connect(addr, config) {
        Ok(_) => panic!("the handshake succeeded"),
        Err(e) => tls_error(&e)
            .unwrap_or_else(|| panic!("not a TLS error: {e}"))
            .clone(),
    }
}

const UNKNOWN_ISSUER: rustls::Error =
    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);

/// `reload_tls()` (SIGHUP in the binary) re-reads the certificate and key:
/// new connections get the new certificate (a client trusting only the new
/// CA fails before and succeeds after; one trusting only the old CA does
/// the opposite), while a session started before goes on with the old one.
#[test]
fn reload_gives_new_connections_the_new_certificate() {
    let old = Pki::new("old CA");
    let new = Pki::new("new CA");
    let server = start_tls(tls_config(&old));
    let mut alice = TlsClient::login(server.tls, &old.client(), "alice");
    assert_eq!(alice.server_leaf(), old.leaf());
    assert_eq!(handshake_error(server.tls, &new.client()), UNKNOWN_ISSUER);

    old.install(&new);
    server.handle.reload_tls();
    server.wait_for("the reload", |s| s.tls_reloads == 1);

    let mut bob = TlsClient::login(server.tls, &new.client(), "bob");
    assert_eq!(bob.server_leaf(), new.leaf());
    alice.expect("* bob joined lobby");
    assert_eq!(handshake_error(server.tls, &old.client()), UNKNOWN_ISSUER);
    // alice's session, from before the reload, carries on both ways.
    alice.send("from before the reload");
    alice.expect("alice: from before the reload");
    bob.expect("alice: from before the reload");
    bob.send("from after it");
    bob.expect("bob: from after it");
    alice.expect("bob: from after it");
    let stats = server.handle.stats();
    assert_eq!(
        (stats.tls_reloads, stats.tls_reload_failures),
        (1, 0),
        "{stats:?}"
    );
}

/// A reload from files that cannot be used (not PEM, a key that does not
/// match, a missing file) is refused: `tls_reload_failures` counts it and
/// new clients still get the old certificate, even though the new one was
/// valid in one of the cases.
#[test]
fn bad_reload_keeps_the_old_certificate() {
    let pki = Pki::new("chatroom test CA");
    let other = Pki::new("other CA");
    let server = start_tls(tls_config(&pki));
    let mut alice = TlsClient::login(server.tls, &pki.client(), "alice");
    let cases: [(&str, &dyn Fn()); 4] = [
        ("a certificate that is not PEM", &|| {
            write_file(&pki.cert, b"not a certificate\n")
        }),
        ("a key that is not PEM", &|| {
            write_file(&pki.key, b"not a key\n")
        }),
        ("a new certificate with the old key", &|| {
            write_file(&pki.cert, other.chain_pem().as_bytes())
        }),
        ("a missing key", &|| std::fs::remove_file(&pki.key).unwrap()),
    ];
    for (i, (what, damage)) in cases.iter().enumerate() {
        pki.install(&pki); // the good pair again
        damage();
        server.handle.reload_tls();
        server.wait_for(what, |s| s.tls_reload_failures == i as u64 + 1);
        let mut carol = TlsClient::login(server.tls, &pki.client(), "carol");
        assert_eq!(carol.server_leaf(), pki.leaf(), "{what}");
        alice.expect("* carol joined lobby");
        carol.send(&format!("after {what}"));
        carol.expect(&format!("carol: after {what}"));
        alice.expect(&format!("carol: after {what}"));
        carol.send("/quit");
        carol.expect("* carol left (quit)");
        carol.expect_eof();
        alice.expect("* carol left (quit)");
    }
    assert_eq!(server.handle.stats().tls_reloads, 0);
}

/// Shutdown over TLS: each registered client gets `* server shutting
/// down`, then close_notify, then a clean TCP EOF (no reset); a connection
/// still in its handshake just gets the EOF.
#[test]
fn shutdown_ends_tls_sessions_with_close_notify() {
    let pki = Pki::new("chatroom test CA");
    let server = start_tls(tls_config(&pki));
    let mut alice = TlsClient::login(server.tls, &pki.client(), "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    let mut silent = tcp(server.tls);
    server.wait_for("the silent connection", |s| s.connections == 3);
    // `stop` waits for every connection to be closed, ours included.
    let stopping = std::thread::spawn(move || server.stop());
    alice.expect("* server shutting down");
    alice.expect_eof();
    bob.expect("* server shutting down");
    bob.expect_eof();
    assert_eq!(read_to_close(&mut silent), (Vec::new(), Got::Eof));
    drop((alice, bob, silent));
    assert_eq!(
        stopping.join().unwrap().expect("run returns"),
        Stopped::Graceful
    );
}
