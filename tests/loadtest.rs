//! End-to-end runs of the load tester (`examples/loadtest`) as a separate
//! process against an in-process server on port 0: small enough for debug
//! builds, strict about counts (every expected delivery received, no errors),
//! and about how the tool fails (server down or gone, Ctrl-C, bad flags).
//! The tool's counting logic itself is unit tested inside the example.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::{start_with, test_config, Client, TestServer};

/// The longest any run here may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The load tester's binary (built first if it is stale).
fn loadtest_bin() -> PathBuf {
    common::process::example_bin("loadtest")
}

/// The number at `"key":` in a flat or nested JSON object (first occurrence).
#[track_caller]
fn json_num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let digits: String = json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// Runs the tool with exactly `args`; bounded by [`RUN_LIMIT`].
#[track_caller]
fn loadtest(args: &[&str]) -> Output {
    wait_bounded(spawn_loadtest(args))
}

/// Starts the tool with `args`, its output piped, no stdin.
fn spawn_loadtest(args: &[&str]) -> Child {
    Command::new(loadtest_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the loadtest example")
}

/// Waits for `child` to exit, killing it (and failing) after [`RUN_LIMIT`].
#[track_caller]
fn wait_bounded(mut child: Child) -> Output {
    let deadline = Instant::now() + RUN_LIMIT;
    while child.try_wait().expect("poll the loadtest").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap the loadtest");
            panic!(
                "loadtest still running after {RUN_LIMIT:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = Output {
        status: child.wait().expect("reap the loadtest"),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut out.stdout).expect("read stdout");
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_end(&mut out.stderr).expect("read stderr");
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the tool with `args` plus `--json` against `addr`, asserts it
/// succeeded and returns its JSON.
#[track_caller]
fn run_json(addr: SocketAddr, args: &[&str]) -> String {
    let addr = addr.to_string();
    let mut all = args.to_vec();
    all.extend(["--addr", &addr, "--json", "--quiet", "--timeout", "30"]);
    let out = loadtest(&all);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "loadtest {args:?} failed ({}): {stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

/// Logs a watcher into the lobby, to see the tool's traffic.
fn watcher(server: &TestServer) -> Client {
    Client::login(server.addr, "watcher")
}

/// Reads until a chat line from one of the tool's clients (`lt...: ~...`)
/// arrives: the run is past connecting and sending.
#[track_caller]
fn wait_for_traffic(w: &mut Client) {
    loop {
        match w.read_line() {
            Some(l) if l.starts_with("lt") && l.contains(": ~") => return,
            Some(_) => {}
            None => panic!("the server closed the watcher"),
        }
    }
}

/// Starts a 60 s open-loop run against `server` (10 clients, 2 senders,
/// 100 messages/s, and `extra`) and returns once its lines flow, for tests
/// that stop it early.
fn start_long_run(server: &TestServer, extra: &[&str]) -> Child {
    let mut w = watcher(server);
    let addr = server.addr.to_string();
    let mut args = vec!["latency", "--clients", "10", "--senders", "2"];
    args.extend(["--rate", "100", "--duration", "60", "--addr", &addr]);
    args.extend_from_slice(extra);
    let child = spawn_loadtest(&args);
    wait_for_traffic(&mut w);
    child
}

/// A fanout run in a room bigger than the notice limit (so join summaries
/// flow too) counts every one of its 9,000 deliveries and no error.
#[test]
fn fanout_counts_every_delivery() {
    let server = start_with(test_config());
    let json = run_json(
        server.addr,
        &[
            "fanout",
            "--clients",
            "300",
            "--senders",
            "3",
            "--messages",
            "10",
            "--window",
            "4",
        ],
    );
    assert_eq!(json_num(&json, "clients"), 300.0, "{json}");
    assert_eq!(json_num(&json, "expected"), 9000.0, "{json}");
    assert_eq!(json_num(&json, "received"), 9000.0, "{json}");
    assert_eq!(json_num(&json, "lost"), 0.0, "{json}");
    assert_eq!(json_num(&json, "late"), 0.0, "{json}");
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
    assert!(json_num(&json, "p99") > 0.0, "{json}");
    assert!(json.contains("\"stopped\":\"complete\""), "{json}");
}

/// Over three rooms, each message reaches its sender's room only: 4
/// senders (two in room 0) times 10 messages times 10 members is 400, where
/// one room would have made 1,200.
#[test]
fn fanout_over_rooms_counts_per_room() {
    // A server process of its own, whose CPU is reported by PID.
    let server = server_bin(&["--port", "0"]);
    let pid = server.pid().to_string();
    let json = run_json(
        server.addr,
        &[
            "fanout",
            "--cpu-pids",
            &pid,
            "--clients",
            "30",
            "--rooms",
            "3",
            "--senders",
            "4",
            "--messages",
            "10",
        ],
    );
    assert_eq!(json_num(&json, "rooms"), 3.0, "{json}");
    assert!(
        json.contains(&format!("\"cpu_s_by_pid\":{{\"{pid}\":")),
        "{json}"
    );
    assert!(json_num(&json, &pid) > 0.0, "{json}");
    assert_eq!(json_num(&json, "expected"), 400.0, "{json}");
    assert_eq!(json_num(&json, "received"), 400.0, "{json}");
    assert_eq!(json_num(&json, "order_mismatches"), 0.0, "{json}");
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
}

/// An open-loop run (1 s at 200 messages/s to 20 clients) sends on schedule
/// and loses nothing.
#[test]
fn latency_run_is_on_schedule_and_lossless() {
    let server = start_with(test_config());
    let json = run_json(
        server.addr,
        &[
            "latency",
            "--clients",
            "20",
            "--senders",
            "2",
            "--rate",
            "200",
            "--duration",
            "1",
        ],
    );
    assert_eq!(json_num(&json, "sent"), 200.0, "{json}");
    assert_eq!(json_num(&json, "expected"), 4000.0, "{json}");
    assert_eq!(json_num(&json, "received"), 4000.0, "{json}");
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
}

/// A soak run with churn: clients that leave and rejoin get the room's
/// history in their join burst (this run's own messages), which must count
/// neither as deliveries nor as errors; the stayers lose nothing, and the
/// counters say what happened: every leave followed by a rejoin.
#[test]
fn soak_counts_churn_and_ignores_history() {
    let server = start_with(test_config());
    let json = run_json(
        server.addr,
        &[
            "soak",
            "--clients",
            "20",
            "--senders",
            "2",
            "--churners",
            "10",
            "--churn",
            "20",
            "--rate",
            "200",
            "--duration",
            "1",
        ],
    );
    assert_eq!(json_num(&json, "stayers"), 10.0, "{json}");
    assert_eq!(json_num(&json, "churners"), 10.0, "{json}");
    let sent = json_num(&json, "sent");
    assert_eq!(json_num(&json, "expected"), sent * 10.0, "{json}");
    assert_eq!(json_num(&json, "received"), sent * 10.0, "{json}");
    assert!(json_num(&json, "leaves") >= 5.0, "{json}");
    // Each leave is a rejoin on its way: all but the last few have landed.
    let (leaves, rejoins) = (json_num(&json, "leaves"), json_num(&json, "rejoins"));
    assert!(rejoins <= leaves && rejoins >= leaves - 3.0, "{json}");
    assert!(json_num(&json, "received_churners") > 0.0, "{json}");
    assert_eq!(json_num(&json, "late"), 0.0, "{json}");
    assert_eq!(json_num(&json, "malformed"), 0.0, "{json}");
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
}

/// The connections scenario registers everyone, then one broadcast reaches
/// all of them: one message sent, one delivery per client.
#[test]
fn connections_broadcast_reaches_everyone() {
    let server = start_with(test_config());
    let json = run_json(server.addr, &["connections", "--clients", "150"]);
    assert_eq!(json_num(&json, "senders"), 1.0, "{json}");
    assert_eq!(json_num(&json, "sent"), 1.0, "{json}");
    assert_eq!(json_num(&json, "expected"), 150.0, "{json}");
    assert_eq!(json_num(&json, "received"), 150.0, "{json}");
    assert!(
        json_num(&json, "last_ms") >= json_num(&json, "first_ms"),
        "{json}"
    );
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
}

/// Clients the server turns away (`! server full`, then close) are counted
/// as errors and the run ends at once instead of waiting for its timeout:
/// the error line and the close arrive together, and the tool must still
/// notice the close.
#[test]
fn refused_clients_end_the_run_with_errors() {
    let server = start_with(chatroom::Config {
        max_clients: 5,
        ..test_config()
    });
    let addr = server.addr.to_string();
    let out = loadtest(&[
        "fanout",
        "--clients",
        "20",
        "--senders",
        "1",
        "--messages",
        "1",
        "--addr",
        &addr,
        "--json",
        "--quiet",
        "--timeout",
        "20",
    ]);
    let json = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{json}");
    assert!(json_num(&json, "errors") >= 15.0, "{json}");
    assert!(json_num(&json, "run_s") < 5.0, "{json}");
    assert!(json.contains("server full"), "{json}");
}

/// With no server listening the tool says so in one line and exits 1 at
/// once, without a report.
#[test]
fn server_down_fails_fast() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        l.local_addr().unwrap().port()
    }; // closed again: connecting is refused
    loadtest_bin(); // built before the clock starts
    let t0 = Instant::now();
    let out = loadtest(&["fanout", "--port", &port.to_string()]);
    // It takes milliseconds; the bound is generous for a loaded machine.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("loadtest: cannot connect to 127.0.0.1:{port}: connection refused\n")
    );
    assert_eq!(text(&out.stdout), "");
}

/// A server that shuts down mid-run stops the run at once: the partial
/// summary on stdout, one line on stderr saying what happened, exit 1.
#[test]
fn server_going_away_stops_the_run() {
    let server = start_with(test_config());
    let child = start_long_run(&server, &[]);
    let t0 = Instant::now();
    server.stop().expect("server stops");
    let out = wait_bounded(child);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "loadtest: the server at {} closed all connections (it said: server shutting \
             down); stopped after ",
            server_addr_of(&stdout)
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stdout.contains("  stopped "), "{stdout}");
    assert!(stdout.contains("server gone"), "{stdout}");
}

/// The address in the summary's first line (`... at ADDR over ...`).
fn server_addr_of(summary: &str) -> String {
    let first = summary.lines().next().unwrap_or("");
    let at = first.find(" at ").map_or(0, |i| i + 4);
    first[at..].split(' ').next().unwrap_or("").to_string()
}

/// Ctrl-C stops a run: sending stops, what was sent is still counted, and
/// the partial summary is printed; exit status 130.
#[test]
fn ctrl_c_prints_the_partial_summary() {
    let server = start_with(test_config());
    let child = start_long_run(&server, &["--json"]);
    // SAFETY: sends a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = wait_bounded(child);
    let (json, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{json}{stderr}");
    assert!(json.contains("\"stopped\":\"interrupted\""), "{json}");
    assert!(json_num(&json, "sent") >= 1.0, "{json}");
    assert_eq!(json_num(&json, "lost"), 0.0, "{json}");
    assert!(json_num(&json, "run_s") < 20.0, "{json}");
    assert!(
        stderr.starts_with("loadtest: interrupted after "),
        "{stderr}"
    );
}

/// The default output is a small aligned table with thousands separators,
/// the server may be given by name, and `--csv` has one header and one
/// value line of the same width.
#[test]
fn summary_table_csv_and_host_names() {
    let server = start_with(test_config());
    let addr = format!("localhost:{}", server.addr.port());
    let args = [
        "fanout",
        "--clients",
        "20",
        "--senders",
        "2",
        "--messages",
        "50",
        "--addr",
        &addr,
        "--quiet",
    ];
    let out = loadtest(&args);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{table}{}", text(&out.stderr));
    let row = |label: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{label} ")))
            .unwrap_or_else(|| panic!("no {label} row in\n{table}"))
            .to_string()
    };
    assert!(row("sent").contains(" 100  messages in "), "{table}");
    assert!(
        row("delivered").ends_with(" 2,000  of 2,000 expected"),
        "{table}"
    );
    assert!(row("loss").ends_with(" 0  (0.000%)"), "{table}");
    for label in [
        "deliveries/s",
        "MB/s",
        "p50",
        "p99",
        "p99.9",
        "max",
        "errors",
    ] {
        row(label);
    }
    // Values are right-aligned in one column: the errors row has no unit,
    // so it ends where every value ends.
    let end = row("errors").len();
    for label in ["sent", "delivered", "loss", "deliveries/s", "p99.9"] {
        let r = row(label);
        assert!(r.as_bytes()[end - 1].is_ascii_digit(), "{label}:\n{table}");
        assert!(
            r[end..].is_empty() || r[end..].starts_with("  "),
            "{label}:\n{table}"
        );
    }

    let mut csv_args = args.to_vec();
    csv_args.push("--csv");
    let out = loadtest(&csv_args);
    let csv = text(&out.stdout);
    assert!(out.status.success(), "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let values: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(header.len(), values.len(), "{csv}");
    let at = header
        .iter()
        .position(|h| *h == "received")
        .expect("received");
    assert_eq!(values[at], "2000", "{csv}");
}

/// Bad flags: one line naming the flag, `loadtest: ...`, exit status 2,
/// never Rust's debug formatting.
#[test]
fn bad_flags_are_named_with_exit_status_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["fanout", "--clients", "x"],
            "loadtest: --clients: must be a whole number 1-1000000 (got \"x\")",
        ),
        (
            &["fanout", "--clients=5", "--clients", "6"],
            "loadtest: --clients: given more than once",
        ),
        (
            &["fanout", "--senders", "20", "--clients", "10"],
            "loadtest: --senders: 20 senders need at least 20 clients (--clients is 10)",
        ),
        (
            &["fanout", "--addr", "no-such-host.invalid"],
            "loadtest: --addr: cannot resolve \"no-such-host.invalid\"",
        ),
        (&["fanout", "--wat"], "loadtest: --wat: unknown flag"),
    ];
    for (args, want) in cases {
        let out = loadtest(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(first.starts_with(want), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().nth(1),
            Some("Try `loadtest --help`."),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 2, "{stderr}");
        assert!(
            !stderr.contains("Error {") && !stderr.contains("kind:"),
            "{stderr}"
        );
        assert_eq!(text(&out.stdout), "");
    }
}

/// The real server binary with `args`, flood control off and info logs;
/// killed when dropped. Ask it for each listener's address with
/// [`ServerProcess::listening`].
#[track_caller]
fn server_bin(args: &[&str]) -> ServerProcess {
    let mut all = args.to_vec();
    all.extend(["--flood-rate", "0", "--log-level", "info"]);
    ServerProcess::spawn(None, &all)
}

/// A server binary with TLS (chat and web) on free ports, serving a
/// certificate from a fresh throwaway CA.
fn tls_server(pki: &common::tls::Pki) -> ServerProcess {
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    server_bin(&[
        "--port",
        "0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls-port",
        "0",
        "--http-port",
        "0",
        "--https-port",
        "0",
    ])
}

/// Runs the tool with `args` (and `--json --quiet`), asserts it succeeded
/// without errors over `transport`, and returns its JSON.
#[track_caller]
fn run_ok(transport: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--json", "--quiet", "--timeout", "30"]);
    let out = loadtest(&all);
    let json = text(&out.stdout);
    assert!(
        out.status.success(),
        "loadtest {args:?} failed ({}): {json}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        json.contains(&format!("\"transport\":\"{transport}\"")),
        "{json}"
    );
    assert_eq!(json_num(&json, "errors"), 0.0, "{json}");
    json
}

/// Over TLS (the real binary, a generated certificate checked against its
/// CA, for the address given in --addr) every delivery is counted.
#[test]
fn tls_run_counts_every_delivery() {
    let pki = common::tls::Pki::new("loadtest test CA");
    let server = tls_server(&pki);
    let addr = format!("127.0.0.1:{}", server.listening("tls").port());
    let json = run_ok(
        "tls",
        &[
            "fanout",
            "--tls",
            "--ca",
            pki.ca.to_str().unwrap(),
            "--addr",
            &addr,
            "--clients",
            "30",
            "--senders",
            "3",
            "--messages",
            "10",
        ],
    );
    assert_eq!(json_num(&json, "expected"), 900.0, "{json}");
    assert_eq!(json_num(&json, "received"), 900.0, "{json}");
}

/// A certificate the tool cannot verify (its CA not trusted, or another
/// name) fails the run at once, saying why, exit 1.
#[test]
fn tls_that_cannot_be_verified_fails_fast() {
    let pki = common::tls::Pki::new("loadtest test CA");
    let other = common::tls::Pki::new("another CA");
    let server = tls_server(&pki);
    let port = server.listening("tls").port();
    let addr = format!("127.0.0.1:{port}");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--ca", other.ca.to_str().unwrap()],
            "TLS: invalid peer certificate: UnknownIssuer",
        ),
        (
            &[
                "--ca",
                pki.ca.to_str().unwrap(),
                "--server-name",
                "example.com",
            ],
            "TLS: invalid peer certificate: certificate not valid for name \"example.com\"",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["fanout", "--tls", "--addr", &addr, "--clients", "5"];
        args.extend_from_slice(extra);
        let out = loadtest(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "loadtest: cannot connect to 127.0.0.1:{port}: {want}"
            )),
            "{extra:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// A server's close_notify ends the client even when more bytes follow it
/// in the same read (rustls ignores them and takes no more): the tool
/// reports the closed connection, exit 1, instead of feeding rustls
/// forever. The fake server keeps its socket open, so only the alert can
/// end the run.
#[test]
fn tls_close_notify_followed_by_bytes_ends_the_client() {
    use std::io::Write;
    let pki = common::tls::Pki::new("loadtest test CA");
    let config = pki.identity().load().expect("the test identity loads");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = listener.local_addr().expect("its address").to_string();
    let fake = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("the tool connects");
        let mut tls = rustls::ServerConnection::new(config).expect("a session");
        while tls.is_handshaking() {
            tls.complete_io(&mut sock).expect("the handshake");
        }
        tls.send_close_notify();
        let mut out = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut out).expect("encode the records");
        }
        // More than rustls takes from one read_tls, so some is left over.
        out.extend_from_slice(&[0x17; 3 * 4096]);
        sock.write_all(&out)
            .expect("send the alert and what follows");
        let _ = sock.read_to_end(&mut Vec::new()); // until the tool closes
    });
    let ca = pki.ca.to_str().unwrap();
    let one = ["--clients", "1", "--senders", "1", "--messages", "1"];
    let out = loadtest(&[&["fanout", "--tls", "--ca", ca, "--addr", &addr], &one[..]].concat());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "loadtest: the server at {addr} closed every connection before any client registered\n"
        )
    );
    fake.join().expect("the fake server ends");
}

/// Over WebSocket (`GET /ws` on the web port, a masked text frame per
/// line) an open-loop run loses nothing.
#[test]
fn websocket_run_counts_every_delivery() {
    let server = server_bin(&["--port", "0", "--http-port", "0"]);
    let addr = format!("127.0.0.1:{}", server.listening("http").port());
    let json = run_ok(
        "ws",
        &[
            "latency",
            "--ws",
            "--addr",
            &addr,
            "--clients",
            "20",
            "--senders",
            "2",
            "--rate",
            "200",
            "--duration",
            "1",
        ],
    );
    assert_eq!(json_num(&json, "sent"), 200.0, "{json}");
    assert_eq!(json_num(&json, "received"), 4000.0, "{json}");
}

/// WebSocket over TLS (the https port, the certificate checked for the
/// name given by --server-name) with churn: clients leave and rejoin
/// through the handshake and the upgrade, and the stayers lose nothing.
#[test]
fn websocket_over_tls_soak() {
    let pki = common::tls::Pki::new("loadtest test CA");
    let server = tls_server(&pki);
    let addr = format!("127.0.0.1:{}", server.listening("https").port());
    let json = run_ok(
        "wss",
        &[
            "soak",
            "--ws",
            "--tls",
            "--ca",
            pki.ca.to_str().unwrap(),
            "--server-name",
            "localhost",
            "--addr",
            &addr,
            "--clients",
            "12",
            "--senders",
            "2",
            "--churners",
            "4",
            "--churn",
            "10",
            "--rate",
            "100",
            "--duration",
            "1",
        ],
    );
    let sent = json_num(&json, "sent");
    assert_eq!(json_num(&json, "received"), sent * 8.0, "{json}");
    assert!(json_num(&json, "rejoins") >= 1.0, "{json}");
}

/// Clients spread over several addresses (here two names for one server)
/// are each checked for every delivery.
#[test]
fn clients_spread_over_several_addresses() {
    let server = start_with(test_config());
    let port = server.addr.port();
    let addrs = format!("127.0.0.1:{port},localhost:{port}");
    let json = run_ok(
        "tcp",
        &[
            "fanout",
            "--addr",
            &addrs,
            "--clients",
            "21",
            "--senders",
            "3",
            "--messages",
            "10",
        ],
    );
    assert!(
        json.contains(&format!("\"addr\":\"127.0.0.1:{port},")),
        "{json}"
    );
    assert_eq!(json_num(&json, "received"), 630.0, "{json}");
}

/// Clients spread over two nodes of a cluster (joined through a real
/// Redis): each client is still checked for every message, whichever node
/// its sender is on.
#[test]
fn clients_spread_over_two_cluster_nodes() {
    let redis = common::redis::RedisServer::start();
    let (a, b) = (redis.node("a"), redis.node("b"));
    wait_serving(&[a.addr, b.addr]);
    let addrs = format!("{},{}", a.addr, b.addr);
    let json = run_ok(
        "tcp",
        &[
            "fanout",
            "--addr",
            &addrs,
            "--clients",
            "20",
            "--senders",
            "4",
            "--messages",
            "10",
        ],
    );
    assert_eq!(json_num(&json, "expected"), 800.0, "{json}");
    assert_eq!(json_num(&json, "received"), 800.0, "{json}");
}

/// Two rooms spread over two cluster nodes: every room has members on both
/// nodes (client i is on node i mod 2, in room (i div 2) mod 2), each
/// message reaches its own room only, and each room's members agree on one
/// order although its two senders are on different nodes.
#[test]
fn rooms_spread_over_two_cluster_nodes() {
    let redis = common::redis::RedisServer::start();
    let (a, b) = (redis.node("a"), redis.node("b"));
    wait_serving(&[a.addr, b.addr]);
    let addrs = format!("{},{}", a.addr, b.addr);
    let redis_addr = redis.addr().to_string();
    let json = run_ok(
        "tcp",
        &[
            "fanout",
            "--addr",
            &addrs,
            "--redis-info",
            &redis_addr,
            "--clients",
            "20",
            "--rooms",
            "2",
            "--senders",
            "4",
            "--messages",
            "25",
        ],
    );
    assert_eq!(json_num(&json, "expected"), 1000.0, "{json}");
    assert_eq!(json_num(&json, "received"), 1000.0, "{json}");
    assert_eq!(json_num(&json, "order_mismatches"), 0.0, "{json}");
    // Redis saw the 100 lines go in (each one script call of a few hundred
    // bytes) and out to both nodes.
    assert!(!json.contains("\"error\""), "{json}");
    let (rin, rout) = (
        json_num(&json, "net_in_bytes"),
        json_num(&json, "net_out_bytes"),
    );
    assert!(rin > 100.0 * 64.0 && rout > 2.0 * 100.0 * 64.0, "{json}");
}

/// A node that refuses names but keeps the connection (its Redis is gone:
/// `! the chat is reconnecting...`, then the prompt again) ends the run at
/// once, saying so, instead of waiting for registrations that cannot come.
#[test]
fn refused_names_end_the_run_at_once() {
    let mut redis = common::redis::RedisServer::start();
    let node = redis.node("a");
    wait_serving(&[node.addr]);
    redis.kill();
    // The node refuses names as soon as it has noticed.
    let refusal = common::redis::RECONNECTING;
    let deadline = Instant::now() + common::LINE_TIMEOUT;
    loop {
        let mut probe = common::Client::connect(node.addr);
        probe.expect_prompt();
        probe.send("probe");
        if probe.read_line().as_deref() == Some(refusal) {
            break;
        }
        assert!(Instant::now() < deadline, "the node never refused a name");
        std::thread::sleep(Duration::from_millis(20));
    }
    loadtest_bin(); // built before the clock starts
    let t0 = Instant::now();
    let out = loadtest(&[
        "fanout",
        "--clients",
        "5",
        "--senders",
        "1",
        "--messages",
        "1",
        "--addr",
        &node.addr.to_string(),
        "--timeout",
        "60",
        "--json",
        "--quiet",
    ]);
    let json = text(&out.stdout);
    // Before, this waited for the 10 s registration timeout (or, had some
    // clients registered, for --timeout).
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "{:?}: {json}",
        t0.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{json}");
    let want = format!(
        "\"error\":\"only 0 of 5 clients registered: the server at {} refused 5 names ({refusal})\"",
        node.addr
    );
    assert!(json.contains(&want), "{json}");
}

/// Waits until each node serves: a node takes names once it has loaded its
/// scripts and subscribed; until then it refuses them ('! the chat is
/// reconnecting...').
fn wait_serving(nodes: &[SocketAddr]) {
    for &addr in nodes {
        let mut probe = common::Client::connect(addr);
        probe.expect_prompt();
        let first = common::redis::send_name_until_served(&mut probe, "probe");
        assert_eq!(first, "* probe joined lobby", "node {addr}");
        probe.send("/quit");
        probe.expect_eventually("* probe left (quit)");
    }
}
