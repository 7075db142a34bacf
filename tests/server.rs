//! End-to-end tests of the server over real TCP: a server runs in-process on
//! port 0 and the tests assert the exact lines of `docs/PROTOCOL.md`.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{start_server, start_with, test_config, Client};

/// A newcomer gets the prompt, may send its name before reading it, and
/// bad or taken names (case-insensitively) are refused with a new prompt.
#[test]
fn registration() {
    let server = start_server();
    let mut alice = Client::connect(server.addr);
    alice.send("alice"); // before reading the prompt
    alice.expect_prompt();
    alice.expect_joined("alice", "lobby");

    let mut other = Client::connect(server.addr);
    other.expect_prompt();
    for (bad, err) in [
        ("ALICE", "! name taken: ALICE"),
        ("two words", "! invalid name: use 1-32 of A-Z a-z 0-9 _ -"),
        (
            &"x".repeat(33),
            "! invalid name: use 1-32 of A-Z a-z 0-9 _ -",
        ),
        ("", "! invalid name: use 1-32 of A-Z a-z 0-9 _ -"),
    ] {
        other.send(bad);
        other.expect(err);
        other.expect_prompt();
    }
    other.send("  bob  ");
    other.expect_joined("bob", "lobby");
    alice.expect("* bob joined lobby");
}

/// Chat lines reach the whole room, sender included, as `<name>: <text>`,
/// whatever way the bytes were split or batched; `\r\n` works too.
#[test]
fn messages_framing_and_echo() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");

    // One line split over several writes, then many lines in one write.
    for part in ["hel", "lo wor", "ld\r", "\n"] {
        alice.send_raw(part.as_bytes());
        alice.stream().flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    alice.send_raw(b"one\ntwo\r\n\n   \nthree\n//slash\n");
    for want in [
        "alice: hello world",
        "alice: one",
        "alice: two",
        "alice: three",
        "alice: /slash",
    ] {
        alice.expect(want);
        bob.expect(want);
    }
}

/// Every command of the protocol, with the exact lines each party sees.
#[test]
fn commands() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");

    alice.send("/help");
    let lines = chatroom::protocol::help_lines(78);
    for line in &lines {
        alice.expect(&format!("* {line}"));
    }
    alice.send("/help away");
    alice.expect("* /away [message]: mark yourself away with a message; alone: back");
    alice.send("/who");
    alice.expect("* lobby has 2 members: alice, bob");
    alice.send("/msg BOB psst");
    alice.expect("[pm alice -> bob] psst");
    bob.expect("[pm alice -> bob] psst");
    alice.send("/msg nobody hi");
    alice.expect("! no such user: nobody");
    alice.send("/me waves");
    alice.expect("+ alice waves");
    bob.expect("+ alice waves");
    bob.send("/topic rust");
    bob.expect("* bob set the topic for lobby: rust");
    alice.expect("* bob set the topic for lobby: rust");
    bob.send("/away brb");
    bob.expect("* you are away: brb");
    alice.send("/msg bob hi");
    alice.expect("[pm alice -> bob] hi");
    alice.expect("* bob is away: brb");
    bob.expect("[pm alice -> bob] hi");
    alice.send("/nick Al");
    alice.expect("* alice is now known as Al");
    bob.expect("* alice is now known as Al");
    bob.send("/nick al");
    bob.expect("! name taken: al");
    alice.send("/join games");
    alice.expect_joined("Al", "games");
    bob.expect("* Al left for games");
    alice.send("/rooms");
    alice.expect("* 2 rooms: games (1), lobby (1)");
    alice.send("/join");
    alice.expect("! usage: /join <room>");
    alice.send("/dance");
    alice.expect("! unknown command: /dance (try /help)");
    alice.send("/quit see you");
    alice.expect("* Al left (quit: see you)");
    alice.expect_eof();
    // bob is in another room: not told; the name is free again, and a
    // newcomer to the lobby sees its topic, its history and who is away.
    let mut al2 = Client::connect(server.addr);
    al2.expect_prompt();
    al2.send("al");
    let burst = al2.expect_joined("al", "lobby");
    assert_eq!(burst.len(), 3, "{burst:?}");
    assert_eq!(
        burst[0],
        "* welcome to chatroom, al! /help lists the commands"
    );
    assert_eq!(burst[1], "* topic for lobby: rust");
    assert!(
        burst[2].starts_with("# ") && burst[2].ends_with("Z + alice waves"),
        "{burst:?}"
    );
    al2.send("/who");
    al2.expect("* lobby has 2 members: al, bob (away)");
}

/// On EOF every complete line is processed, a final unterminated line too,
/// the client still gets what was queued for it, and the room is told.
#[test]
fn eof_processes_final_line_then_leaves() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    bob.send_raw(b"first\nlast words");
    bob.stream().shutdown(std::net::Shutdown::Write).unwrap();
    for want in ["bob: first", "bob: last words"] {
        bob.expect(want);
        alice.expect(want);
    }
    bob.expect_eof();
    alice.expect("* bob left");
    server.wait_for("bob to be freed", |s| {
        s.connections == 1 && s.registered == 1
    });
}

/// A reset connection is announced with its reason and freed.
#[test]
fn reset_is_announced() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    let sock = socket2::SockRef::from(bob.stream());
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(bob);
    alice.expect("* bob left (connection reset)");
    server.wait_for("bob to be freed", |s| s.connections == 1);
}

/// A line over --max-line is refused once with its limit, never relayed,
/// and the connection stays usable; the server buffers none of it.
#[test]
fn overlong_line_is_refused_and_connection_stays() {
    let server = start_with(chatroom::Config {
        max_line: 64,
        ..test_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    alice.send(&"x".repeat(65));
    alice.expect("! line too long (max 64 bytes)");
    // An endless line: one error as soon as it crosses the limit.
    alice.send_raw(&[b'y'; 1000]);
    alice.expect("! line too long (max 64 bytes)");
    alice.send_raw(&[b'y'; 1000]);
    alice.send_raw(b"\nstill here\n");
    alice.expect("alice: still here");
    alice.send(&"z".repeat(64));
    alice.expect(&format!("alice: {}", "z".repeat(64)));
}

/// Invalid UTF-8 and control characters are refused, never relayed.
#[test]
fn unsafe_text_is_never_relayed() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    for (bytes, err) in [
        (&b"bad \xff\xfe"[..], "! invalid UTF-8"),
        (b"\xc0\xaf overlong", "! invalid UTF-8"),
        (b"\xed\xa0\x80 surrogate", "! invalid UTF-8"),
        (b"clear \x1b[2J", "! control characters are not allowed"),
        (b"nul \x00", "! control characters are not allowed"),
        (
            "c1 \u{9b}31m".as_bytes(),
            "! control characters are not allowed",
        ),
        (
            "rlo \u{202e}olleh".as_bytes(),
            "! control characters are not allowed",
        ),
    ] {
        bob.send_raw(bytes);
        bob.send_raw(b"\n");
        bob.expect(err);
    }
    bob.send("tab\tand caf\u{e9} ok");
    alice.expect("bob: tab\tand caf\u{e9} ok");
}

/// A client that registers nothing within --login-timeout is told and closed.
#[test]
fn login_timeout() {
    let server = start_with(chatroom::Config {
        login_timeout: Duration::from_millis(300),
        ..test_config()
    });
    let mut idle = Client::connect(server.addr);
    idle.expect_prompt();
    idle.expect("! login timeout");
    idle.expect_eof();
    // A registered client is not affected by the timer.
    let mut alice = Client::login(server.addr, "alice");
    std::thread::sleep(Duration::from_millis(500));
    alice.send("still here");
    alice.expect("alice: still here");
    assert_eq!(server.handle.stats().login_timeouts, 1);
}

/// Connections over --max-clients get `! server full` and are closed; a
/// slot freed is usable again.
#[test]
fn max_clients() {
    let server = start_with(chatroom::Config {
        max_clients: 2,
        ..test_config()
    });
    let alice = Client::login(server.addr, "alice");
    let _bob = Client::login(server.addr, "bob");
    let mut third = Client::connect(server.addr);
    third.expect("! server full");
    third.expect_eof();
    drop(third);
    drop(alice);
    server.wait_for("alice to be freed", |s| s.connections == 1);
    let _carol = Client::login(server.addr, "carol");
    assert_eq!(server.handle.stats().refused, 1);
}

/// A client that does not read is dropped once its unsent output passes
/// --max-outbuf; the room is told and the others keep chatting.
#[test]
fn slow_consumer_is_dropped() {
    let server = start_with(chatroom::Config {
        max_outbuf: 64 * 1024,
        ..test_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let sleepy = Client::login(server.addr, "sleepy");
    socket2::SockRef::from(sleepy.stream())
        .set_recv_buffer_size(4096)
        .unwrap();
    alice.expect("* sleepy joined lobby");
    let line = "m".repeat(1000);
    let mut seen_leave = false;
    // Loopback socket buffers grow to a few MiB before the server's own
    // queue does; 20 MB is far more than both together.
    for i in 0..20_000 {
        alice.send(&format!("{i} {line}"));
        // Read our own echoes so *we* are not the slow one.
        loop {
            let got = alice.read_line().expect("alice still connected");
            if got == "* sleepy left (slow consumer)" {
                seen_leave = true;
                continue;
            }
            assert_eq!(got, format!("alice: {i} {line}"));
            break;
        }
        if seen_leave {
            break;
        }
    }
    assert!(seen_leave, "sleepy was never dropped");
    assert_eq!(server.handle.stats().slow_consumers, 1);
    alice.send("after");
    alice.expect("alice: after");
    drop(sleepy);
}

/// Above --notice-limit, joins and leaves are summarised for the room while
/// each joiner still gets its own notice.
#[test]
fn big_rooms_get_summaries() {
    let server = start_with(chatroom::Config {
        notice_limit: 2,
        ..test_config()
    });
    let mut a = Client::login(server.addr, "a");
    let mut b = Client::login(server.addr, "b");
    a.expect("* b joined lobby");
    let c = Client::login(server.addr, "c"); // 3 members > 2: counted
    let mut d = Client::login(server.addr, "d");
    drop(c);
    a.expect("* lobby: 2 joined, 1 left");
    b.expect("* lobby: 2 joined, 1 left");
    d.expect("* lobby: 2 joined, 1 left");
    // Chat is still delivered to everyone, in order after the summary.
    b.send("hi");
    a.expect("b: hi");
    d.expect("b: hi");
}

/// Every member of a room sees the same order of lines from many senders,
/// and each sender's lines in the order sent.
#[test]
fn one_order_for_everyone() {
    let server = start_server();
    let names = ["s0", "s1", "s2", "s3"];
    let mut clients: Vec<Client> = names
        .iter()
        .map(|n| Client::login(server.addr, n))
        .collect();
    // Drain join notices so every client is at the same point.
    for (i, c) in clients.iter_mut().enumerate() {
        for n in &names[i + 1..] {
            c.expect(&format!("* {n} joined lobby"));
        }
    }
    let per_sender = 200;
    let mut senders: Vec<_> = clients
        .iter()
        .map(|c| c.stream().try_clone().unwrap())
        .collect();
    std::thread::scope(|s| {
        for (i, sock) in senders.iter_mut().enumerate() {
            s.spawn(move || {
                let mut batch = String::new();
                for k in 0..per_sender {
                    batch.push_str(&format!("{i}-{k}\n"));
                }
                sock.write_all(batch.as_bytes()).unwrap();
            });
        }
    });
    let total = names.len() * per_sender;
    let mut orders = Vec::new();
    for c in &mut clients {
        let got: Vec<String> = (0..total).map(|_| c.read_line().unwrap()).collect();
        for (i, n) in names.iter().enumerate() {
            let mine: Vec<&String> = got
                .iter()
                .filter(|l| l.starts_with(&format!("{n}: ")))
                .collect();
            let want: Vec<String> = (0..per_sender).map(|k| format!("{n}: {i}-{k}")).collect();
            assert_eq!(mine.len(), per_sender);
            assert!(
                mine.iter().zip(&want).all(|(a, b)| *a == b),
                "sender order broken"
            );
        }
        orders.push(got);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "members saw different orders"
    );
}

/// Shutdown tells every client, flushes, closes, and `run` returns.
#[test]
fn graceful_shutdown() {
    let server = start_server();
    let mut alice = Client::login(server.addr, "alice");
    let mut pending = Client::connect(server.addr);
    pending.expect_prompt();
    let addr = server.addr;
    server.stop().expect("run returns Ok");
    alice.expect("* server shutting down");
    alice.expect_eof();
    pending.expect("* server shutting down");
    pending.expect_eof();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
}
