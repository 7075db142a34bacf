//! Memory under attack, measured on the real binary's RSS: a nick storm in
//! a room of 2,000 and a flood towards clients that keep reading a little
//! stay under the bound SECURITY.md states (`Config::memory_bound`), with
//! flood control off so the bounds themselves are what holds. Each test
//! owns a server process and stops it.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chatroom::Config;
use common::process::ServerProcess;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};

/// Registers `name` on a blocking socket and returns it once its own join
/// notice arrived.
fn register(addr: std::net::SocketAddr, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(common::LINE_TIMEOUT)).unwrap();
    s.write_all(format!("{name}\n").as_bytes()).unwrap();
    let want = format!("* {name} joined lobby\n");
    let mut seen = Vec::new();
    let mut byte = [0; 1];
    while !seen.ends_with(want.as_bytes()) {
        match s.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            other => panic!("{name} registering: {other:?}"),
        }
    }
    s
}

/// Samples the server's RSS every 20 ms until `stop`; returns the peak.
fn rss_sampler(pid: u32, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(SeqCst) {
            if let Some(rss) = rss_of(pid) {
                peak = peak.max(rss);
            }
            thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

fn rss_of(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Reads every stream as fast as readiness allows until `stop` (normal
/// clients that read what they get).
fn read_all(streams: Vec<TcpStream>, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        let mut socks: Vec<MioStream> = streams
            .into_iter()
            .map(|s| {
                s.set_nonblocking(true).unwrap();
                MioStream::from_std(s)
            })
            .collect();
        for (i, s) in socks.iter_mut().enumerate() {
            poll.registry()
                .register(s, Token(i), Interest::READABLE)
                .unwrap();
        }
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0; 65536];
        let mut total = 0u64;
        while !stop.load(SeqCst) {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            for ev in events.iter() {
                let s = &mut socks[ev.token().0];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
            }
        }
        total
    })
}

/// Five clients changing their names as fast as they can in a room of
/// 2,000 whose members read what they get (one 64 KiB read of `/nick` lines
/// is ~5,000 notices to every member: 1.2 GB queued in one turn before any
/// limit, on the old code) keep the server under its stated bounds: the
/// worst case `Config::memory_bound`, and, since the members read, one
/// turn's output budget plus one line's fan-out (allowed four times over
/// for allocator slack and what sockets refuse in a turn).
#[test]
fn nick_storm_in_a_big_room_stays_under_the_memory_bound() {
    const MEMBERS: usize = 2000;
    const ATTACKERS: usize = 5;
    let server = ServerProcess::spawn(None, &["--port", "0", "--flood-rate", "0"]);
    let streams: Vec<TcpStream> = (0..MEMBERS)
        .map(|i| register(server.addr, &format!("m{i}")))
        .collect();
    let attackers: Vec<TcpStream> = (0..ATTACKERS)
        .map(|i| register(server.addr, &format!("nick{i}x0")))
        .collect();
    let base = rss_of(server.pid()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(server.pid(), Arc::clone(&stop));
    let reader = read_all(
        streams.iter().map(|s| s.try_clone().unwrap()).collect(),
        Arc::clone(&stop),
    );
    let storms: Vec<_> = attackers
        .into_iter()
        .enumerate()
        .map(|(a, mut s)| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                s.set_write_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut drain = s.try_clone().unwrap();
                drain.set_nonblocking(true).unwrap();
                let mut sink = vec![0; 65536];
                let mut n = 0;
                while !stop.load(SeqCst) {
                    let batch: String = (0..2000)
                        .map(|_| {
                            n += 1;
                            format!("/nick nick{a}x{}\n", n % 2 + 1)
                        })
                        .collect();
                    let _ = s.write_all(batch.as_bytes());
                    while matches!(drain.read(&mut sink), Ok(k) if k > 0) {}
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(5));
    stop.store(true, SeqCst);
    for s in storms {
        s.join().unwrap();
    }
    let read = reader.join().unwrap();
    let peak = sampler.join().unwrap();
    let clients = MEMBERS + ATTACKERS;
    let bound = Config::default().memory_bound(clients) as usize;
    eprintln!(
        "nick storm: base RSS {} MB, peak {} MB (+{} MB), bound +{} MB; members read {} MB",
        base >> 20,
        peak >> 20,
        (peak - base) >> 20,
        bound >> 20,
        read >> 20
    );
    assert!(read > 10 << 20, "the storm reached the members");
    assert!(
        peak - base <= bound,
        "RSS grew by {} MB, over the bound of {} MB",
        (peak - base) >> 20,
        bound >> 20
    );
    let reading_bound = 4 * chatroom::server::TURN_OUTPUT_BUDGET;
    assert!(
        peak - base <= reading_bound,
        "RSS grew by {} MB while the members read, over {} MB",
        (peak - base) >> 20,
        reading_bound >> 20
    );
    server.terminate();
}

/// Registers `name` on a socket with a small receive buffer (so the kernel
/// does not hold the backlog for it) and returns it once registered.
fn register_small(addr: std::net::SocketAddr, name: &str) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).expect("connect");
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(common::LINE_TIMEOUT)).unwrap();
    s.write_all(format!("{name}\n").as_bytes()).unwrap();
    let want = format!("* {name} joined lobby\n");
    let mut seen = Vec::new();
    let mut byte = [0; 1];
    while !seen.ends_with(want.as_bytes()) {
        match s.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            other => panic!("{name} registering: {other:?}"),
        }
    }
    s
}

/// Clients that keep reading, but only half as fast as a flooder fills the
/// room, hold no more than the stated bound: their buffers fill to the
/// limit while they keep taking bytes off the front. (An output buffer that
/// only compacted when half of it was written held up to twice
/// `--max-outbuf` this way.)
#[test]
fn output_buffers_stay_under_the_memory_bound() {
    const READERS: usize = 100;
    let server = ServerProcess::spawn(None, &["--port", "0", "--flood-rate", "0"]);
    let readers: Vec<TcpStream> = (0..READERS)
        .map(|i| register_small(server.addr, &format!("r{i}")))
        .collect();
    let mut flooder = register(server.addr, "flooder");
    let base = rss_of(server.pid()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(server.pid(), Arc::clone(&stop));
    // The flood: a 4 KB line every 2 ms, 2 MB/s to each reader. Each reader
    // takes 4 KB every 20 ms, 200 KB/s: its backlog fills the kernel's
    // socket buffers (up to 4 MiB) and then the server's, to the limit in
    // about four seconds.
    let taken = Arc::new(AtomicUsize::new(0));
    let trickle = {
        let stop = Arc::clone(&stop);
        let taken = Arc::clone(&taken);
        let mut readers: Vec<TcpStream> = readers.iter().map(|s| s.try_clone().unwrap()).collect();
        thread::spawn(move || {
            for r in &mut readers {
                r.set_nonblocking(true).unwrap();
            }
            let mut buf = [0; 4096];
            while !stop.load(SeqCst) {
                for r in &mut readers {
                    if let Ok(n) = r.read(&mut buf) {
                        taken.fetch_add(n, SeqCst);
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let line = format!("{}\n", "f".repeat(4000));
    // Non-blocking (a clone shares the file's flags), so the flooder reads
    // its own echo while a full send buffer makes it wait.
    flooder.set_nonblocking(true).unwrap();
    let mut sink = vec![0; 65536];
    let start = Instant::now();
    let mut sent = 0u32;
    while start.elapsed() < Duration::from_secs(8) {
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            match flooder.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    while matches!(flooder.read(&mut sink), Ok(k) if k > 0) {}
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("the flooder's write failed: {e}"),
            }
        }
        sent += 1;
        while matches!(flooder.read(&mut sink), Ok(k) if k > 0) {}
        let due = start + Duration::from_millis(2) * sent;
        thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    stop.store(true, SeqCst);
    trickle.join().unwrap();
    let peak = sampler.join().unwrap();
    let bound = Config::default().memory_bound(READERS + 1) as usize;
    eprintln!(
        "half-speed readers: base RSS {} MB, peak {} MB (+{} MB), bound +{} MB; readers took {} MB",
        base >> 20,
        peak >> 20,
        (peak - base) >> 20,
        bound >> 20,
        taken.load(SeqCst) >> 20
    );
    assert!(
        taken.load(SeqCst) > READERS * (1 << 20),
        "the readers kept reading"
    );
    assert!(
        peak - base <= bound,
        "RSS grew by {} MB, over the bound of {} MB",
        (peak - base) >> 20,
        bound >> 20
    );
    drop(readers);
    server.terminate();
}
