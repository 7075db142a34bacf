//! Adversarial integration tests against an in-process server: slow-loris
//! logins, floods, endless lines, tiny and slow receivers, vanishing
//! receivers, slow consumers and bad bytes. Each test asserts the exact wire
//! lines of docs/PROTOCOL.md and every byte that reaches a well-behaved client.
//! Connection churn and descriptor counting live in `adversarial_churn.rs`
//! (they need the process to themselves); the real binary under a low
//! open-file limit in `adversarial_process.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{start_with, test_config, Client};
use socket2::SockRef;

/// A small receive buffer (Linux doubles it). Not smaller: below a few KiB
/// loopback TCP falls into sender-side silly-window avoidance and crawls on
/// the persist timer (zero-window probes with exponential backoff, minutes
/// per megabyte), which tests the kernel rather than the server.
const TINY_RCVBUF: usize = 4096;

/// Connects with a tiny receive buffer (set before connecting, so the window
/// the server sees is small from the start).
fn connect_tiny(addr: SocketAddr) -> Client {
    Client::connect_small(addr, TINY_RCVBUF)
}

/// Registers an already connected client as `name`.
#[track_caller]
fn login_with(mut c: Client, name: &str) -> Client {
    c.expect_prompt();
    c.send(name);
    c.expect_joined(name, "lobby");
    c.name = name.to_string();
    c
}

/// Closes the client's socket with a reset (SO_LINGER 0) instead of a FIN.
fn reset(c: Client) {
    SockRef::from(c.stream())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
}

/// Reads and checks the join notices of those who registered after `c`.
#[track_caller]
fn expect_joins(mut c: Client, names: &[&str]) -> Client {
    for name in names {
        c.expect(&format!("* {name} joined lobby"));
    }
    c
}

/// The `i`th test line: a sequence number and a length that varies from 1
/// to about 4,000 bytes, with content that depends on `i` and the position,
/// so a dropped, duplicated, reordered or corrupted byte changes the text.
fn pattern_line(i: usize) -> String {
    let len = 1 + (i * 7919) % 4000;
    let mut s = format!("{i:05}:");
    s.extend((0..len).map(|j| char::from(b'a' + ((i + j) % 26) as u8)));
    s
}

/// Reads exactly `want.len()` bytes and compares them; reads in chunks of at
/// most `chunk` bytes and sleeps `pause` between chunks (a slow reader).
#[track_caller]
fn read_exactly_slowly(stream: &mut TcpStream, want: &[u8], chunk: usize, pause: Duration) {
    let mut got = Vec::with_capacity(want.len());
    let mut buf = vec![0; chunk];
    while got.len() < want.len() {
        let n = (want.len() - got.len()).min(chunk);
        match stream.read(&mut buf[..n]) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after {} of {} bytes: {e}", got.len(), want.len()),
        }
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len());
        panic!(
            "stream differs at byte {at} of {} (got {} bytes): got {:?}, want {:?}",
            want.len(),
            got.len(),
            String::from_utf8_lossy(&got[at..(at + 60).min(got.len())]),
            String::from_utf8_lossy(&want[at..(at + 60).min(want.len())]),
        );
    }
}

/// Connections that drip a name a byte at a time, stop mid-line, send
/// nothing, or send an endless name are sent `! login timeout` and closed
/// once the login timeout passes (not before), while a registered client
/// chats undisturbed.
#[test]
fn slow_loris_connections_are_timed_out() {
    const DRIP: usize = 8;
    const PARTIAL: usize = 8;
    const SILENT: usize = 4;
    const ENDLESS: usize = 4;
    let server = start_with(chatroom::Config {
        login_timeout: Duration::from_secs(1),
        ..test_config()
    });
    let start = Instant::now();
    let mut loris: Vec<(Client, &str)> = Vec::new();
    for _ in 0..DRIP {
        loris.push((Client::connect(server.addr), "drip"));
    }
    for _ in 0..PARTIAL {
        let mut c = Client::connect(server.addr);
        c.send_raw(b"half a na");
        loris.push((c, "partial"));
    }
    for _ in 0..SILENT {
        loris.push((Client::connect(server.addr), "silent"));
    }
    for _ in 0..ENDLESS {
        let mut c = Client::connect(server.addr);
        c.send_raw(&[b'n'; 10_000]);
        loris.push((c, "endless"));
    }
    let mut alice = Client::login(server.addr, "alice");

    // Drip one byte of a name every 50 ms into each drip connection until
    // it is closed; a byte rate no real name finishes at before the timeout.
    let dripping: Vec<TcpStream> = loris[..DRIP]
        .iter()
        .map(|(c, _)| c.stream().try_clone().unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let dripper = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut open = dripping;
            while !stop.load(SeqCst) && !open.is_empty() {
                open.retain_mut(|s| s.write_all(b"x").is_ok());
                thread::sleep(Duration::from_millis(50));
            }
        })
    };

    alice.send("still here");
    alice.expect("alice: still here");
    for (c, kind) in &mut loris {
        c.expect_prompt();
        if *kind == "endless" {
            c.expect("! line too long (max 4096 bytes)");
            c.expect_prompt();
        }
        c.expect("! login timeout");
        c.expect_eof();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(1000),
            "{kind}: timed out after {waited:?}, before the 1 s login timeout"
        );
    }
    stop.store(true, SeqCst);
    dripper.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "timeouts took {:?}",
        start.elapsed()
    );
    server.wait_for("only alice left", |s| {
        s.connections == 1 && s.login_timeouts == (DRIP + PARTIAL + SILENT + ENDLESS) as u64
    });
    // Unregistered connections are never announced: alice's next line is
    // her own.
    alice.send("bye");
    alice.expect("alice: bye");
}

/// One endless line without a newline is reported once with
/// `! line too long (max 4096 bytes)` and discarded; the sender stays
/// connected and chats normally after finally sending the newline, and the
/// room sees nothing of the long line. Lines at the limit pass byte for byte.
#[test]
fn endless_line_is_reported_once_and_the_sender_stays() {
    let server = start_with(test_config());
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");

    let chunk = [b'x'; 16 * 1024];
    for _ in 0..64 {
        alice.send_raw(&chunk); // 1 MiB, no newline
    }
    alice.expect("! line too long (max 4096 bytes)");
    // Meanwhile the server still serves others, and alice's buffer stays
    // bounded: another MiB changes nothing.
    bob.send("meanwhile");
    bob.expect("bob: meanwhile");
    alice.expect("bob: meanwhile");
    for _ in 0..64 {
        alice.send_raw(&chunk);
    }
    alice.send_raw(b"tail of the endless line\n");
    alice.send("hello");
    alice.expect("alice: hello");
    bob.expect("alice: hello");

    // Exactly at the limit (with and without \r) passes; one more byte not.
    let at_limit = "y".repeat(4096);
    alice.send(&at_limit);
    alice.send_raw(format!("{at_limit}\r\n").as_bytes());
    alice.send(&format!("{at_limit}z"));
    alice.send("after");
    for c in [&mut alice, &mut bob] {
        c.expect(&format!("alice: {at_limit}"));
        c.expect(&format!("alice: {at_limit}"));
    }
    alice.expect("! line too long (max 4096 bytes)");
    alice.expect("alice: after");
    bob.expect("alice: after");
    assert_eq!(server.handle.stats().connections, 2);
}

/// A client flooding megabytes of lines as fast as it can does not starve
/// another client: every round trip of the other client stays under 2 s
/// (a fairness check, not a benchmark), and the flooder gets every one of
/// its lines back in order.
#[test]
fn flood_does_not_starve_other_clients() {
    const LINES: usize = 160_000; // 160,000 x ~105 bytes = 16 MiB
    let server = start_with(chatroom::Config {
        // Room for the flooder's own echoes if its reader thread is slow.
        max_outbuf: 64 << 20,
        ..test_config()
    });
    let mut flooder = Client::login(server.addr, "flooder");
    flooder.send("/join flood");
    flooder.expect_joined("flooder", "flood");
    let mut pinger = Client::login(server.addr, "pinger");

    let line = |i: usize| format!("{i:07} {}", "f".repeat(96));
    let mut writer = flooder.stream().try_clone().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let flood = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut batch = String::new();
            for i in 0..LINES {
                batch.push_str(&line(i));
                batch.push('\n');
                if batch.len() > 60_000 {
                    writer.write_all(batch.as_bytes()).unwrap();
                    batch.clear();
                }
            }
            writer.write_all(batch.as_bytes()).unwrap();
            done.store(true, SeqCst);
        })
    };
    let echoes = thread::spawn(move || {
        for i in 0..LINES {
            flooder.expect(&format!("flooder: {}", line(i)));
        }
        flooder
    });

    let mut rtts = Vec::new();
    while !done.load(SeqCst) || rtts.is_empty() {
        let n = rtts.len();
        let t = Instant::now();
        pinger.send(&format!("ping {n}"));
        pinger.expect(&format!("pinger: ping {n}"));
        rtts.push(t.elapsed());
        assert!(rtts.len() < 100_000, "flood never finished");
    }
    flood.join().unwrap();
    let mut flooder = echoes.join().unwrap();
    let worst = rtts.iter().max().unwrap();
    assert!(
        *worst < Duration::from_secs(2),
        "worst round trip {worst:?} over {} pings during the flood",
        rtts.len()
    );
    flooder.send("done");
    flooder.expect("flooder: done");
}

/// Recipients with tiny receive buffers, recipients that read a few bytes at
/// a time and slowly, and recipients that vanish with output queued: partial
/// writes never reorder, duplicate or corrupt a byte for those who stay, and
/// the vanished ones are announced as `(connection reset)`.
#[test]
fn partial_writes_keep_every_byte_in_order() {
    // About 8 MB per recipient: more than the kernel's buffers for the
    // connection (the server's send buffer autotunes up to 4 MiB), so the
    // server's own writes go partial and its output queue is exercised.
    const LINES: usize = 4000;
    let server = start_with(chatroom::Config {
        // Everything may queue for the slow ones; this test is about order.
        max_outbuf: 16 << 20,
        ..test_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let tiny = login_with(connect_tiny(server.addr), "tiny");
    alice.expect("* tiny joined lobby");
    let slow = login_with(connect_tiny(server.addr), "slow");
    let mut ghosts = Vec::new();
    for name in ["ghost1", "ghost2"] {
        ghosts.push(login_with(connect_tiny(server.addr), name));
    }
    let plain = Client::login(server.addr, "plain");
    // Everyone who joined after someone saw that join; drain those notices.
    alice.expect("* slow joined lobby");
    alice.expect("* ghost1 joined lobby");
    alice.expect("* ghost2 joined lobby");
    alice.expect("* plain joined lobby");
    let tiny = expect_joins(tiny, &["slow", "ghost1", "ghost2", "plain"]);
    let slow = expect_joins(slow, &["ghost1", "ghost2", "plain"]);

    let mut want = Vec::new();
    for i in 0..LINES {
        want.extend_from_slice(format!("alice: {}\n", pattern_line(i)).as_bytes());
    }
    let want = Arc::new(want);
    let readers: Vec<_> = [
        (tiny, 509, Duration::ZERO),
        (slow, 16 * 1024, Duration::from_millis(1)),
        (plain, 65536, Duration::ZERO),
    ]
    .into_iter()
    .map(|(c, chunk, pause)| {
        let want = Arc::clone(&want);
        thread::spawn(move || {
            // The BufReader holds nothing yet: every line so far was
            // read with expect, which consumes whole lines only.
            assert!(c.reader.buffer().is_empty());
            let mut stream = c.reader.into_inner();
            read_exactly_slowly(&mut stream, &want, chunk, pause);
            stream
        })
    })
    .collect();
    let mut writer = alice.stream().try_clone().unwrap();
    let sender = thread::spawn(move || {
        for i in 0..LINES {
            writer
                .write_all(format!("{}\n", pattern_line(i)).as_bytes())
                .unwrap();
        }
    });
    for i in 0..LINES {
        alice.expect(&format!("alice: {}", pattern_line(i)));
    }
    sender.join().unwrap();
    let mut streams: Vec<TcpStream> = readers.into_iter().map(|r| r.join().unwrap()).collect();

    // The ghosts never read a byte of it: they vanish with output queued,
    // one with a reset, one with a plain close (which the kernel turns into
    // a reset, as unread data is thrown away).
    reset(ghosts.remove(0));
    alice.expect("* ghost1 left (connection reset)");
    drop(ghosts.remove(0));
    alice.expect("* ghost2 left (connection reset)");
    let mut rest = Vec::new();
    rest.extend_from_slice(b"* ghost1 left (connection reset)\n* ghost2 left (connection reset)\n");
    for s in &mut streams {
        read_exactly_slowly(s, &rest, 4096, Duration::ZERO);
    }
    server.wait_for("ghosts freed", |s| s.connections == 4 && s.registered == 4);
    alice.send("end");
    alice.expect("alice: end");
    for s in &mut streams {
        read_exactly_slowly(s, b"alice: end\n", 4096, Duration::ZERO);
    }
}

/// A client that never reads is disconnected once its pending output would
/// exceed `max_outbuf`; the room is told `* sloth left (slow consumer)`,
/// the others get every line in order, and what the slow consumer did get
/// is an uncorrupted prefix of its stream, ended by the server's close.
#[test]
fn slow_consumer_is_dropped_and_the_room_told() {
    const MAX_OUTBUF: usize = 128 * 1024;
    const CAP: usize = 50_000; // 50 MB: far beyond any kernel buffering
    let server = start_with(chatroom::Config {
        max_outbuf: MAX_OUTBUF,
        ..test_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    let sloth = login_with(connect_tiny(server.addr), "sloth");
    alice.expect("* sloth joined lobby");
    bob.expect("* sloth joined lobby");
    let line = |i: usize| format!("{i:06} {}", "s".repeat(1000));

    // alice sends until bob has seen the slow-consumer notice; bob and
    // alice's own echo reader check every line on the way.
    // The sender stays at most AHEAD lines ahead of what bob and alice have
    // read, so they are never slow consumers themselves, however slowly the
    // test threads get scheduled; sloth, reading nothing, falls behind.
    const AHEAD: usize = 32;
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut writer = alice.stream().try_clone().unwrap();
    let sender = {
        let (sent, stop, read) = (Arc::clone(&sent), Arc::clone(&stop), Arc::clone(&read));
        thread::spawn(move || {
            let mut i = 0;
            while !stop.load(SeqCst) {
                assert!(i < CAP, "sloth was never dropped");
                let slowest = read.iter().map(|r| r.load(SeqCst)).min().unwrap();
                if i > slowest + AHEAD {
                    thread::sleep(Duration::from_micros(200));
                    continue;
                }
                writer
                    .write_all(format!("{}\n", line(i)).as_bytes())
                    .unwrap();
                i += 1;
                sent.store(i, SeqCst);
            }
        })
    };
    let observer = {
        let (stop, read) = (Arc::clone(&stop), Arc::clone(&read));
        thread::spawn(move || {
            let mut i = 0;
            loop {
                let got = bob
                    .read_line()
                    .unwrap_or_else(|| panic!("bob disconnected after {i} lines"));
                if got == "* sloth left (slow consumer)" {
                    stop.store(true, SeqCst);
                    return (bob, i);
                }
                assert_eq!(got, format!("alice: {}", line(i)));
                i += 1;
                read[0].store(i, SeqCst);
            }
        })
    };
    let mut echoed = 0;
    let mut alice_saw_notice = false;
    while !observer.is_finished() {
        let got = alice
            .read_line()
            .unwrap_or_else(|| panic!("alice disconnected after {echoed} lines"));
        if got == "* sloth left (slow consumer)" {
            alice_saw_notice = true;
            break;
        }
        assert_eq!(got, format!("alice: {}", line(echoed)));
        echoed += 1;
        read[1].store(echoed, SeqCst);
    }
    let (mut bob, seen_before) = observer.join().unwrap();
    sender.join().unwrap();
    let total = sent.load(SeqCst);
    assert!(
        seen_before * 1000 > MAX_OUTBUF,
        "dropped after only {seen_before} lines"
    );
    // Every line alice sent reaches bob and alice, with the notice in the
    // same place for both.
    for i in seen_before..total {
        bob.expect(&format!("alice: {}", line(i)));
    }
    if !alice_saw_notice {
        for i in echoed..seen_before {
            alice.expect(&format!("alice: {}", line(i)));
        }
        alice.expect("* sloth left (slow consumer)");
        echoed = seen_before;
    }
    assert_eq!(
        echoed, seen_before,
        "alice and bob saw the notice at different places"
    );
    for i in seen_before..total {
        alice.expect(&format!("alice: {}", line(i)));
    }
    alice.send("after");
    alice.expect("alice: after");
    bob.expect("alice: after");
    let stats = server.handle.stats();
    assert_eq!(
        (stats.slow_consumers, stats.registered),
        (1, 2),
        "{stats:?}"
    );

    // What sloth received is its stream, uncut but for the very end, then
    // EOF: queued output was dropped, nothing was corrupted.
    let mut want = Vec::new();
    for i in 0..total {
        want.extend_from_slice(format!("alice: {}\n", line(i)).as_bytes());
    }
    let mut got = Vec::new();
    let mut stream = sloth.reader.into_inner();
    let end = stream.read_to_end(&mut got);
    assert!(end.is_ok(), "sloth's stream ended with {end:?}, not EOF");
    assert!(
        got.len() < want.len(),
        "sloth got everything: never dropped?"
    );
    assert!(
        got == want[..got.len()],
        "sloth's bytes are not a prefix of its stream"
    );
}

/// Invalid UTF-8 (including overlong encodings and encoded surrogates), NUL
/// and other control bytes, bidi overrides, over-long and non-ASCII names
/// are refused with the exact errors of docs/PROTOCOL.md, before and after
/// registration, and nothing of them reaches anyone else.
#[test]
fn bad_bytes_are_refused_and_never_relayed() {
    let server = start_with(test_config());
    let mut alice = Client::login(server.addr, "alice");
    let mut m = Client::connect(server.addr);
    m.expect_prompt();
    let invalid_utf8 = "! invalid UTF-8";
    let control = "! control characters are not allowed";
    let bad_name = "! invalid name: use 1-32 of A-Z a-z 0-9 _ -";
    let long_name = "n".repeat(5000);
    let name_33 = "n".repeat(33);
    let names: &[(&[u8], &str)] = &[
        (b"\xff\xfe", invalid_utf8),
        (b"\xc0\xafroot", invalid_utf8),  // overlong '/'
        (b"\xed\xa0\x80x", invalid_utf8), // lone surrogate U+D800
        (b"ev\0il", control),
        ("\u{202e}nimda".as_bytes(), control),
        (b"esc\x1b[31m", control),
        (name_33.as_bytes(), bad_name),
        ("\u{fc}n\u{ef}".as_bytes(), bad_name),
        (b"two words", bad_name),
        (b"star*", bad_name),
        (long_name.as_bytes(), "! line too long (max 4096 bytes)"),
        (b"alice", "! name taken: alice"),
        (b"ALICE", "! name taken: ALICE"),
    ];
    for (name, error) in names {
        m.send_raw(name);
        m.send_raw(b"\n");
        m.expect(error);
        m.expect_prompt();
    }
    m.send_raw(b" \tmallory \t\r\n");
    m.expect_joined("mallory", "lobby");
    m.name = "mallory".into();
    alice.expect("* mallory joined lobby");

    let messages: &[(&[u8], Option<&str>)] = &[
        (b"\xff", Some(invalid_utf8)),
        (b"bad \xc0\xaf", Some(invalid_utf8)), // overlong 2-byte '/'
        (b"bad \xe0\x80\xaf", Some(invalid_utf8)), // overlong 3-byte '/'
        (b"bad \xed\xb0\x80", Some(invalid_utf8)), // lone low surrogate
        (b"bad \xf4\x90\x80\x80", Some(invalid_utf8)), // above U+10FFFF
        (b"cut \xe2\x82", Some(invalid_utf8)), // truncated sequence
        (b"nul \0 byte", Some(control)),
        (b"\x1b[2Jclear screen", Some(control)),
        ("c1 \u{9b}31m".as_bytes(), Some(control)),
        (b"del \x7f", Some(control)),
        (b"bell \x07", Some(control)),
        (b"cr \r inside", Some(control)),
        ("rlo \u{202e}exe.txt".as_bytes(), Some(control)),
        ("isolate \u{2067}x".as_bytes(), Some(control)),
        ("line sep \u{2028}".as_bytes(), Some(control)),
        ("para sep \u{2029}".as_bytes(), Some(control)),
        (b"/nick \xff", Some(invalid_utf8)),
        (b"/msg alice \x1b]0;pwned\x07", Some(control)),
        ("/me \u{202d}x".as_bytes(), Some(control)),
        // Allowed: bidi marks, tabs, any printable text.
        ("mark \u{200f}ok".as_bytes(), None),
        (b"tab\there", None),
        ("caf\u{e9} \u{1f600} \u{4e2d}\u{6587}".as_bytes(), None),
    ];
    let mut relayed = Vec::new();
    for (msg, error) in messages {
        m.send_raw(msg);
        m.send_raw(b"\n");
        match error {
            Some(e) => m.expect(e),
            None => {
                let line = format!("mallory: {}", std::str::from_utf8(msg).unwrap());
                m.expect(&line);
                relayed.push(line);
            }
        }
    }
    m.send("end");
    m.expect("mallory: end");
    relayed.push("mallory: end".into());
    for line in &relayed {
        alice.expect(line);
    }

    // /quit before registering closes the connection.
    let mut q = Client::connect(server.addr);
    q.expect_prompt();
    q.send("/quit");
    q.expect_eof();
}

/// Commands with missing or extra arguments get `! usage: ...`, unknown ones
/// `! unknown command: ...`, bad targets their exact errors; none of it
/// reaches the room, and the sender stays connected.
#[test]
fn malformed_commands_get_exact_errors() {
    let server = start_with(test_config());
    let mut alice = Client::login(server.addr, "alice");
    let mut bob = Client::login(server.addr, "bob");
    alice.expect("* bob joined lobby");
    let cases = [
        ("/join", "! usage: /join <room>"),
        ("/join   ", "! usage: /join <room>"),
        ("/join a b", "! invalid room name: a b"),
        ("/join bad!room", "! invalid room name: bad!room"),
        ("/join lobby", "! already in lobby"),
        ("/JOIN LOBBY", "! already in lobby"),
        ("/nick", "! usage: /nick <name>"),
        (
            "/nick two words",
            "! invalid name: use 1-32 of A-Z a-z 0-9 _ -",
        ),
        (
            "/nick \u{e9}",
            "! invalid name: use 1-32 of A-Z a-z 0-9 _ -",
        ),
        ("/nick alice", "! name taken: alice"),
        ("/msg", "! usage: /msg <name> <text>"),
        ("/msg alice", "! usage: /msg <name> <text>"),
        ("/msg alice    ", "! usage: /msg <name> <text>"),
        ("/msg nobody hi", "! no such user: nobody"),
        ("/me", "! usage: /me <action>"),
        ("/me   ", "! usage: /me <action>"),
        ("/help me now", "! usage: /help [command]"),
        ("/help frob", "! unknown command: /frob (try /help)"),
        ("/who is there", "! usage: /who"),
        ("/rooms x", "! usage: /rooms"),
        ("/frobnicate", "! unknown command: /frobnicate (try /help)"),
        ("/", "! unknown command: / (try /help)"),
        ("/ who", "! unknown command: / (try /help)"),
    ];
    for (line, want) in cases {
        bob.send(line);
        bob.expect(want);
    }
    bob.send("still here");
    bob.expect("bob: still here");
    alice.expect("bob: still here");
}

/// A client that resets while the server is reading a line from it, and one
/// that half-closes (shutdown of its sending side) mid-line, are announced
/// exactly as docs/PROTOCOL.md says, and a final line without a newline is
/// still delivered before the leave notice.
#[test]
fn resets_and_half_closes_are_announced() {
    let server = start_with(test_config());
    let mut alice = Client::login(server.addr, "alice");
    let mut rude = Client::login(server.addr, "rude");
    alice.expect("* rude joined lobby");
    rude.send_raw(b"one ");
    rude.send("line");
    rude.expect("rude: one line");
    // A reset drops the unfinished line: the room never sees it.
    rude.send_raw(b"never finished");
    reset(rude);
    alice.expect("rude: one line");
    alice.expect("* rude left (connection reset)");

    let mut half = Client::login(server.addr, "half");
    alice.expect("* half joined lobby");
    half.send_raw(b"last words");
    half.stream().shutdown(Shutdown::Write).unwrap();
    // The sender still gets what is queued for it, then the close.
    half.expect("half: last words");
    half.expect_eof();
    alice.expect("half: last words");
    alice.expect("* half left");
    server.wait_for("only alice left", |s| s.connections == 1);
}

/// One 64 KiB burst of one-character lines from a client with a 32-character
/// name expands to about 1.1 MiB of chat lines per recipient within a single
/// read. Recipients that read promptly are not slow consumers: with the
/// default limits, they and the sender get every line.
#[test]
fn burst_of_short_lines_does_not_drop_prompt_readers() {
    const LINES: usize = 32 * 1024;
    let server = start_with(test_config());
    let name = "n".repeat(32);
    let mut sender = Client::login(server.addr, &name);
    let mut bob = Client::login(server.addr, "bob");
    sender.expect("* bob joined lobby");
    sender.send_raw("x\n".repeat(LINES).as_bytes()); // 64 KiB, one write
    let want = format!("{name}: x");
    for i in 0..LINES {
        let got = bob.read_line();
        assert_eq!(got.as_deref(), Some(want.as_str()), "bob's line {i}");
    }
    for i in 0..LINES {
        let got = sender.read_line();
        assert_eq!(got.as_deref(), Some(want.as_str()), "sender's line {i}");
    }
    sender.send("ok");
    sender.expect(&format!("{name}: ok"));
    bob.expect(&format!("{name}: ok"));
    assert_eq!(server.handle.stats().slow_consumers, 0);
}
