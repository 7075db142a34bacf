//! What one hostile client can make the server do to others, with the
//! limits at their defaults unless a test says otherwise: flooding a
//! victim or a room no longer drops normal readers or delays third parties;
//! flood control slows a sender without dropping its lines; addresses are
//! limited; vanished peers and stalled writers are freed in bounded time;
//! and every limit is counted on the metrics endpoint.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatroom::limits::flood::Flood;
use chatroom::limits::peers::PeerLimits;
use chatroom::Config;
use common::{flood_config, start_with, test_config, Client};

/// How long each flood lasts.
const FLOOD: Duration = Duration::from_secs(3);

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// What a paced reader saw.
#[derive(Debug)]
struct Seen {
    /// Its connection lasted until `carol: done`.
    stayed: bool,
    /// The worst delay of carol's pings, send to receipt.
    worst_ping: Duration,
    /// Pings received.
    pings: usize,
}

/// Reads `stream` at about `bytes_per_s` (a normal, not infinitely fast
/// reader) until `carol: done` or the connection ends.
fn paced_reader(stream: TcpStream, bytes_per_s: usize) -> thread::JoinHandle<Seen> {
    thread::spawn(move || {
        let mut stream = stream;
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let chunk = bytes_per_s / 50;
        let mut buf = vec![0; chunk];
        let mut pending = Vec::new();
        let mut seen = Seen {
            stayed: false,
            worst_ping: Duration::ZERO,
            pings: 0,
        };
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return seen,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(sent) = line.trim_end().strip_prefix("carol: ping ") {
                    let sent: u128 = sent.parse().unwrap();
                    let delay = Duration::from_micros((micros_now() - sent) as u64);
                    seen.worst_ping = seen.worst_ping.max(delay);
                    seen.pings += 1;
                } else if line.trim_end() == "carol: done" {
                    seen.stayed = true;
                    return seen;
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Reads and discards everything on `stream` (the attacker reads its own
/// echoes, so it is not the slow one).
fn drain(stream: TcpStream) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut stream = stream;
        let mut buf = [0; 65536];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
    })
}

/// Writes `line` over and over for `FLOOD`, as fast as the server takes it.
fn flood(mut stream: TcpStream, line: String) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        stream
            .set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let deadline = Instant::now() + FLOOD;
        let mut sent = 0;
        let bytes = line.into_bytes();
        let mut at = 0;
        while Instant::now() < deadline {
            match stream.write(&bytes[at..]) {
                Ok(n) => {
                    at += n;
                    if at == bytes.len() {
                        at = 0;
                        sent += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
        sent
    })
}

/// Carol pings the room every 100 ms for the flood, then says done.
fn pings(carol: &mut Client) {
    let deadline = Instant::now() + FLOOD;
    while Instant::now() < deadline {
        carol.send(&format!("ping {}", micros_now()));
        thread::sleep(Duration::from_millis(100));
    }
    carol.send("done");
}

/// Flooding `/msg victim <4000 bytes>` at full speed leaves a victim that
/// reads at 200 KB/s connected, and a third party's lines reach it promptly.
#[test]
fn private_message_flood_leaves_a_normal_reader_connected() {
    let server = start_with(flood_config());
    let victim = Client::login(server.addr, "victim");
    let victim = paced_reader(victim.reader.into_inner(), 200_000);
    let mut carol = Client::login(server.addr, "carol");
    let mallory = Client::login(server.addr, "mallory");
    let stream = mallory.reader.into_inner();
    let drainer = drain(stream.try_clone().unwrap());
    let attacker = flood(
        stream.try_clone().unwrap(),
        format!("/msg victim {}\n", "x".repeat(4000)),
    );
    pings(&mut carol);
    let sent = attacker.join().unwrap();
    let seen = victim.join().unwrap();
    assert!(seen.stayed, "the victim was disconnected: {seen:?}");
    assert!(seen.pings >= 20, "{seen:?}");
    assert!(seen.worst_ping < Duration::from_secs(1), "{seen:?}");
    let stats = server.handle.stats();
    assert_eq!(stats.slow_consumers, 0, "{stats:?}");
    assert!(stats.flood_delays >= 1, "{stats:?}");
    assert!(sent > 10, "the attacker sent {sent}");
    stream.shutdown(Shutdown::Both).unwrap();
    drainer.join().unwrap();
}

/// Flooding the room with 4000-byte lines leaves 50 readers at 500 KB/s
/// connected, and a third party's lines reach them promptly.
#[test]
fn room_flood_leaves_normal_readers_connected() {
    let server = start_with(flood_config());
    let readers: Vec<_> = (0..50)
        .map(|i| {
            let c = Client::login(server.addr, &format!("reader{i}"));
            paced_reader(c.reader.into_inner(), 500_000)
        })
        .collect();
    let mut carol = Client::login(server.addr, "carol");
    let mallory = Client::login(server.addr, "mallory");
    let stream = mallory.reader.into_inner();
    let drainer = drain(stream.try_clone().unwrap());
    let attacker = flood(
        stream.try_clone().unwrap(),
        format!("{}\n", "y".repeat(4000)),
    );
    pings(&mut carol);
    attacker.join().unwrap();
    for (i, r) in readers.into_iter().enumerate() {
        let seen = r.join().unwrap();
        assert!(seen.stayed, "reader{i} was disconnected: {seen:?}");
        assert!(
            seen.worst_ping < Duration::from_secs(1),
            "reader{i}: {seen:?}"
        );
    }
    assert_eq!(server.handle.stats().slow_consumers, 0);
    stream.shutdown(Shutdown::Both).unwrap();
    drainer.join().unwrap();
}

/// Over its budget a sender is slowed, never cut: every line arrives, in
/// order, paced; and while it waits, another client is served at once.
#[test]
fn flood_control_delays_lines_but_drops_none() {
    let server = start_with(Config {
        flood: Flood {
            rate: 100,
            burst: 10,
        },
        ..flood_config()
    });
    let mut fast = Client::login(server.addr, "fast");
    let mut other = Client::login(server.addr, "other");
    fast.expect("* other joined lobby");
    let start = Instant::now();
    let batch: String = (0..200).map(|i| format!("line {i}\n")).collect();
    fast.send_raw(batch.as_bytes());
    // Well inside the pacing, another client is not held up by it.
    thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    other.send("hi");
    let mut got_hi = None;
    for i in 0..200 {
        loop {
            let line = other.read_line().expect("other connected");
            if line == "other: hi" {
                got_hi.get_or_insert(asked.elapsed());
                continue;
            }
            assert_eq!(line, format!("fast: line {i}"));
            break;
        }
    }
    let paced = start.elapsed();
    if got_hi.is_none() {
        other.expect("other: hi");
        got_hi = Some(asked.elapsed());
    }
    for i in 0..200 {
        let line = fast.read_line().expect("fast connected");
        if line == "other: hi" {
            fast.expect(&format!("fast: line {i}"));
        } else {
            assert_eq!(line, format!("fast: line {i}"));
        }
    }
    // 190 lines over the burst at 100 a second (each costs a little more
    // than one unit): at least 1.5 s.
    assert!(paced >= Duration::from_millis(1500), "{paced:?}");
    let hi = got_hi.unwrap();
    assert!(hi < Duration::from_millis(500), "other waited {hi:?}");
    assert!(server.handle.stats().flood_delays >= 1);
}

/// At most `--max-per-ip` connections per address (loopback included when
/// told), refused with a line and a clean close; other addresses are
/// unaffected, and a freed slot is usable again.
#[test]
fn connections_per_address_are_limited() {
    let server = start_with(Config {
        peers: PeerLimits {
            max_per_ip: 3,
            connect_rate: 0,
            limit_loopback: true,
        },
        ..test_config()
    });
    let two: IpAddr = "127.0.0.2".parse().unwrap();
    let mut held: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::connect_from(server.addr, two);
            c.expect_prompt();
            c
        })
        .collect();
    let mut fourth = Client::connect_from(server.addr, two);
    fourth.expect("! too many connections from your address");
    fourth.expect_eof();
    let mut other = Client::connect_from(server.addr, "127.0.0.3".parse().unwrap());
    other.expect_prompt();
    held[0].send("/quit");
    held[0].expect_eof();
    drop(held.remove(0));
    server.wait_for("the slot to be freed", |s| s.connections == 3);
    let mut again = Client::connect_from(server.addr, two);
    again.expect_prompt();
    assert_eq!(server.handle.stats().per_ip_refusals, 1);
}

/// An address opening connections faster than `--connect-rate` is refused
/// past its burst; loopback is exempt by default.
#[test]
fn connect_rate_is_limited_and_loopback_exempt_by_default() {
    let limited = start_with(Config {
        peers: PeerLimits {
            max_per_ip: 0,
            connect_rate: 2,
            limit_loopback: true,
        },
        ..test_config()
    });
    let four: IpAddr = "127.0.0.4".parse().unwrap();
    for _ in 0..4 {
        let mut c = Client::connect_from(limited.addr, four);
        c.expect_prompt();
    }
    let mut c = Client::connect_from(limited.addr, four);
    c.expect("! connecting too fast; try again later");
    c.expect_eof();
    assert_eq!(limited.handle.stats().connect_rate_refusals, 1);

    let exempt = start_with(Config {
        peers: PeerLimits {
            max_per_ip: 1,
            connect_rate: 1,
            limit_loopback: false,
        },
        ..test_config()
    });
    let clients: Vec<Client> = (0..20)
        .map(|i| Client::login(exempt.addr, &format!("local{i}")))
        .collect();
    assert_eq!(clients.len(), 20);
}

/// Closes a socket without telling the peer anything (no FIN, no RST), as
/// when a client's network vanishes: TCP_REPAIR mode makes close silent.
fn vanish(c: Client) {
    const TCP_REPAIR: libc::c_int = 19;
    let fd = c.stream().as_raw_fd();
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a valid int option.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_REPAIR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "TCP_REPAIR failed ({}): this test needs CAP_NET_ADMIN (root)",
        std::io::Error::last_os_error()
    );
    drop(c);
}

/// A client whose network vanishes is found by TCP keepalive: its room is
/// told and its name is free again within the bound (`--keepalive 1`: about
/// 1.5 s, 4 s at worst).
#[test]
fn vanished_peer_is_freed_in_bounded_time() {
    let server = start_with(Config {
        keepalive: Some(Duration::from_secs(1)),
        ..test_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let ghost = Client::login(server.addr, "ghost");
    alice.expect("* ghost joined lobby");
    // Let every delayed ACK go out first: a segment from the server that
    // reached the vanished socket's port would be answered with a reset,
    // and then keepalive would not be what found it.
    thread::sleep(Duration::from_millis(500));
    let gone = Instant::now();
    vanish(ghost);
    let line = alice.read_line().expect("alice connected");
    assert!(
        line == "* ghost left (connection reset)" || line == "* ghost left (connection timed out)",
        "{line}"
    );
    assert!(
        gone.elapsed() < Duration::from_secs(5),
        "{:?}",
        gone.elapsed()
    );
    let _ghost = Client::login(server.addr, "ghost");
}

/// A client whose pending output makes no progress for `--write-timeout`
/// is dropped, even below its output limit.
#[test]
fn stalled_writer_is_dropped() {
    let server = start_with(Config {
        write_timeout: Duration::from_secs(1),
        max_outbuf: 64 << 20,
        ..test_config()
    });
    let mut sleepy = Client::connect_small(server.addr, 4096);
    sleepy.expect_prompt();
    sleepy.send("sleepy");
    sleepy.expect_joined("sleepy", "lobby");
    let mut alice = Client::login(server.addr, "alice");
    let line = "z".repeat(1000);
    // More than the kernel's socket buffers take, so output waits in the
    // server; then nothing moves.
    let mut seen = false;
    for i in 0..6000 {
        alice.send(&format!("{i} {line}"));
        let got = alice.read_line().unwrap();
        if got == "* sleepy left (write timeout)" {
            seen = true;
            break;
        }
    }
    // Seen while sending (a fast server stalls early), or still to come.
    if !seen {
        alice.expect_eventually("* sleepy left (write timeout)");
    }
    assert_eq!(server.handle.stats().write_timeouts, 1);
    assert_eq!(server.handle.stats().slow_consumers, 0);
}

/// `GET /metrics` serves every counter in the Prometheus text format, and
/// they count what happened; other requests get 404 or 400.
#[test]
fn metrics_endpoint_serves_the_counters() {
    let server = start_with(Config {
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        peers: PeerLimits {
            max_per_ip: 1,
            connect_rate: 0,
            limit_loopback: true,
        },
        ..test_config()
    });
    let metrics = server.metrics.expect("a metrics address");
    let _alice = Client::login(server.addr, "alice");
    let mut refused = Client::connect(server.addr);
    refused.expect("! too many connections from your address");
    refused.expect_eof();
    let (status, body) = http_get(metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut values = std::collections::HashMap::new();
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(' ').expect("name value");
        values.insert(name.to_string(), value.parse::<u64>().expect("integer"));
    }
    for name in [
        "chatroom_connections",
        "chatroom_registered",
        "chatroom_accepted_total",
        "chatroom_slow_consumers_total",
        "chatroom_flood_delays_total",
        "chatroom_per_ip_refusals_total",
        "chatroom_connect_rate_refusals_total",
        "chatroom_write_timeouts_total",
        "chatroom_timeouts_total",
        "chatroom_turn_budget_hits_total",
        "chatroom_login_timeouts_total",
    ] {
        assert!(values.contains_key(name), "{name} missing in {body}");
    }
    assert_eq!(values["chatroom_registered"], 1);
    assert_eq!(values["chatroom_per_ip_refusals_total"], 1);
    let (status, _) = http_get(metrics, "GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http_get(metrics, "\x16\x03\x01 not http\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
}

/// Sends `request` and reads the whole response: its status line and body.
fn http_get(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::LINE_TIMEOUT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response)
        .expect("a response, then EOF");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    (head.lines().next().unwrap().to_string(), body.to_string())
}
