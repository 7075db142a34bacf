//! Connection churn against an in-process server: thousands of connections
//! that close, reset (SO_LINGER 0) before, during and after registration,
//! mid-line and mid-write, while three clients chat in their own room. Alone
//! in its own test binary because it counts this process's descriptors.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{start_with, test_config, Client};
use socket2::SockRef;

const CHURN_THREADS: usize = 4;
const CYCLES_PER_THREAD: usize = 750;
const KINDS: usize = 8;
const LIVE: [&str; 3] = ["alice", "bob", "carol"];

/// Descriptors this process holds now.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Drops the connection with a reset instead of a FIN.
fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Reads until the server closes the connection, which must be a clean
/// EOF: a quit or a half-close is never answered with a reset.
fn read_to_close(stream: &mut TcpStream) {
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => panic!("waiting for the server to close: {e}"),
        }
    }
}

/// One connect/disconnect cycle of kind `kind` (0..KINDS).
fn churn_once(addr: SocketAddr, kind: usize, name: &str) {
    match kind {
        // Connect and close at once, maybe before the prompt is even sent.
        0 => drop(TcpStream::connect(addr).unwrap()),
        // Connect and reset at once.
        1 => reset(TcpStream::connect(addr).unwrap()),
        // Reset halfway through the name line.
        2 => {
            let mut c = Client::connect(addr);
            c.expect_prompt();
            c.send_raw(&name.as_bytes()[..3]);
            reset(c.reader.into_inner());
        }
        // Name without waiting for the prompt, then reset mid-line.
        3 => {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(format!("{name}\nhalf a li").as_bytes())
                .unwrap();
            reset(s);
        }
        // Registered, then reset mid-write: the server has replies queued
        // for us (we never read them) and is still reading our input.
        4 => {
            let mut c = Client::login(addr, name);
            let mut burst = "/help\n".repeat(200);
            burst.push_str(&"x".repeat(3000));
            c.send_raw(burst.as_bytes());
            reset(c.reader.into_inner());
        }
        // Registered, then a clean /quit.
        5 => {
            let mut c = Client::login(addr, name);
            c.send("/quit bye");
            c.expect_eventually(&format!("* {name} left (quit: bye)"));
            read_to_close(c.reader.get_mut());
        }
        // Registered, then a half-close with a final line and no newline.
        6 => {
            let mut c = Client::login(addr, name);
            c.send_raw(b"last words");
            c.stream().shutdown(Shutdown::Write).unwrap();
            c.expect_eventually(&format!("{name}: last words"));
            read_to_close(c.reader.get_mut());
        }
        // An over-long line (no newline) then a reset.
        _ => {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&[b'z'; 10_000]).unwrap();
            reset(s);
        }
    }
}

/// What one live client saw: its lines, in order, until every live client's
/// `done` arrived. Returns the client too: it must stay connected until all
/// are done, or its leave notice would reach the others.
fn live_client(mut c: Client, churning: Arc<AtomicBool>) -> (Client, Vec<String>) {
    let me = c.name.clone();
    let mut seen = Vec::new();
    let mut dones = 0;
    let mut n = 0;
    // Chat (one round trip per message) for as long as the churn lasts.
    while churning.load(SeqCst) || n < 20 {
        let line = format!("{me} {n}");
        c.send(&line);
        let mine = format!("{me}: {line}");
        loop {
            let got = c.read_line().expect("live client disconnected");
            dones += usize::from(got.ends_with(" done"));
            let is_mine = got == mine;
            seen.push(got);
            if is_mine {
                break;
            }
        }
        n += 1;
    }
    c.send(&format!("{me} done"));
    while dones < LIVE.len() {
        let got = c.read_line().expect("live client disconnected");
        dones += usize::from(got.ends_with(" done"));
        seen.push(got);
    }
    (c, seen)
}

/// Under thousands of connect/disconnect cycles (clean closes, resets
/// before, during and after registration, mid-line and mid-write), the
/// server frees every connection (slab back to the live clients only, no
/// descriptor leaked) and the live clients receive every message, in one
/// order for all, with nothing else in between.
#[test]
fn churn_leaks_nothing_and_live_clients_get_everything() {
    let server = start_with(test_config());
    let fds_before = open_fds();
    let started = Instant::now();

    let mut live = Vec::new();
    for (i, name) in LIVE.iter().enumerate() {
        let mut c = Client::login(server.addr, name);
        c.send("/join live");
        c.expect_joined(name, "live");
        for earlier in &mut live[..i] {
            let earlier: &mut Client = earlier;
            earlier.expect(&format!("* {name} joined live"));
        }
        live.push(c);
    }

    let churning = Arc::new(AtomicBool::new(true));
    let live_threads: Vec<_> = live
        .into_iter()
        .map(|c| {
            let churning = Arc::clone(&churning);
            thread::spawn(move || live_client(c, churning))
        })
        .collect();
    let churners: Vec<_> = (0..CHURN_THREADS)
        .map(|t| {
            let addr = server.addr;
            thread::spawn(move || {
                for i in 0..CYCLES_PER_THREAD {
                    churn_once(addr, (i + t) % KINDS, &format!("churn{t}x{i}"));
                }
            })
        })
        .collect();
    for t in churners {
        t.join().expect("churn thread failed");
    }
    churning.store(false, SeqCst);
    let mut live = Vec::new();
    let mut seen = HashMap::new();
    for t in live_threads {
        let (c, lines) = t.join().expect("live client failed");
        seen.insert(c.name.clone(), lines);
        live.push(c);
    }

    // One order for everyone, each sender's lines complete and in order,
    // and nothing but chat in the live room.
    let reference = &seen["alice"];
    for name in LIVE {
        assert_eq!(&seen[name], reference, "{name} saw a different stream");
    }
    for sender in LIVE {
        let prefix = format!("{sender}: {sender} ");
        let mine: Vec<&str> = reference
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        let (done, numbered) = mine.split_last().expect("no lines from sender");
        assert_eq!(*done, "done", "{sender}'s last line");
        for (i, n) in numbered.iter().enumerate() {
            assert_eq!(*n, i.to_string(), "{sender}'s line {i}");
        }
    }
    let chat = reference
        .iter()
        .filter(|l| LIVE.iter().any(|s| l.starts_with(&format!("{s}: {s} "))))
        .count();
    assert_eq!(chat, reference.len(), "non-chat lines in the live room");

    let cycles = (CHURN_THREADS * CYCLES_PER_THREAD) as u64;
    server.wait_for("only the live clients left", |s| {
        s.connections == LIVE.len() && s.registered == LIVE.len()
    });
    let stats = server.handle.stats();
    assert_eq!(stats.accepted, cycles + LIVE.len() as u64, "{stats:?}");
    assert_eq!(stats.closed, cycles, "{stats:?}");
    assert_eq!((stats.refused, stats.accept_errors), (0, 0), "{stats:?}");

    // The live clients leave, each seen going by those still there.
    let mut live = live.into_iter();
    let mut alice = live.next().unwrap();
    alice.send("/quit");
    alice.expect("* alice left (quit)");
    alice.expect_eof();
    let (mut bob, mut carol) = (live.next().unwrap(), live.next().unwrap());
    bob.expect("* alice left (quit)");
    carol.expect("* alice left (quit)");
    drop(bob);
    carol.expect("* bob left");
    drop((alice, carol));
    server.wait_for("everyone gone", |s| s.connections == 0);
    assert_eq!(open_fds(), fds_before, "descriptors leaked");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "churn took {:?}",
        started.elapsed()
    );
}
