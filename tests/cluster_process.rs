//! The cluster bus in the real binary (issue 13): `--redis`,
//! `--node-name` and `--reuse-port` on the command line, a node killed
//! without cleanup (kill -9) and reclaimed by another node, and two nodes
//! sharing one port. Each test has its own `redis-server` (see
//! `common::redis`); every process is stopped by its PID.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::process::{ServerProcess, BIN};
use common::redis::{send_name_until_served, RedisServer};
use common::{welcome, Client, Got, LINE_TIMEOUT};

/// Starts the binary as node `node` of the cluster at `redis`, with
/// `extra` flags (`--port 0` unless given), and waits for its
/// `cluster: node NAME ready` line.
#[track_caller]
fn spawn_node(redis: &RedisServer, node: &str, extra: &[&str]) -> ServerProcess {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--node-name", node];
    if !extra.contains(&"--port") {
        args.extend(["--port", "0"]);
    }
    args.extend(extra);
    let p = ServerProcess::spawn(None, &args);
    p.wait_for_log(&format!("cluster: node {node} ready"), 1);
    p
}

/// Registers `name` at `addr`, again while the node answers that it is
/// still reaching Redis (bounded); reads the join burst through the member
/// list and returns that list.
#[track_caller]
fn login(addr: std::net::SocketAddr, name: &str) -> (Client, String) {
    let mut c = Client::connect(addr);
    c.name = name.to_string();
    c.expect_prompt();
    let first = send_name_until_served(&mut c, name);
    assert_eq!(first, format!("* {name} joined lobby"));
    c.expect(&welcome(name));
    let members = c.read_line().expect("the member list");
    assert!(members.starts_with("* lobby has "), "{members:?}");
    (c, members)
}

/// A node killed with SIGKILL (no cleanup, its liveness key left to
/// expire): its name stays taken while the key lives, then another node
/// removes its client, the room hears `* <name> left (node lost)` within
/// ~10 s, and the name can be claimed again.
#[test]
fn killed_node_is_reclaimed_by_another() {
    let redis = RedisServer::start();
    let a = redis.node("live");
    let mut doomed = spawn_node(&redis, "doomed", &[]);
    let (mut alice, _) = login(a.addr, "alice");
    let (mut bob, members) = login(doomed.addr, "bob");
    assert_eq!(members, "* lobby has 2 members: alice, bob");
    alice.expect("* bob joined lobby");
    say_both(
        &mut bob,
        &mut alice,
        "from the doomed node",
        "bob: from the doomed node",
    );

    doomed.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    assert_eq!(doomed.wait_exit(), None, "killed by a signal, no status");
    // The kernel closed bob's connection for the dead process (it had read
    // all bob sent, so a FIN, not a reset).
    assert_eq!(bob.next(), Got::Eof);

    // Its liveness key lives up to 5 s after its last tick (at most 1 s
    // ago): the name is still held.
    let mut claimer = Client::connect(a.addr);
    claimer.name = "claimer".into();
    claimer.expect_prompt();
    claimer.send("BOB");
    claimer.expect("! name taken: BOB");
    claimer.expect_prompt();
    assert!(
        killed_at.elapsed() < Duration::from_secs(4),
        "the claim came too late to see the name held"
    );

    alice.expect("* bob left (node lost)");
    let took = killed_at.elapsed();
    assert!(
        took <= Duration::from_secs(10),
        "the room heard of the lost node after {took:?}"
    );
    eprintln!("node lost noticed after {took:?}");
    alice.send("/who");
    alice.expect("* lobby has 1 member: alice");
    assert_eq!(
        redis.cmd(&["SMEMBERS", "cr:nodes"]).strings(),
        ["live"],
        "the dead node is forgotten"
    );

    claimer.send("BOB");
    claimer.expect("* BOB joined lobby");
    claimer.expect(&welcome("BOB"));
    // The room kept its history: the old bob's line is in it.
    let history = claimer.read_line().expect("a history line");
    assert!(
        history.starts_with("# ") && history.ends_with("Z bob: from the doomed node"),
        "{history:?}"
    );
    claimer.expect("* lobby has 2 members: alice, BOB");
    alice.expect("* BOB joined lobby");
    say_both(
        &mut claimer,
        &mut alice,
        "it is mine now",
        "BOB: it is mine now",
    );
}

/// Sends `line` from `from`; both clients get `want`.
#[track_caller]
fn say_both(from: &mut Client, other: &mut Client, line: &str, want: &str) {
    from.send(line);
    from.expect(want);
    other.expect(want);
}

/// Two binary nodes with `--reuse-port` bind the same `--port` (a third
/// without it is refused the port), clients connecting to that one port
/// land on both (their logs say where) and chat as one.
#[test]
fn reuse_port_nodes_share_one_port() {
    const CLIENTS: usize = 16;
    let redis = RedisServer::start();
    let mut one = spawn_node(&redis, "share-1", &["--reuse-port"]);
    let port = one.addr.port().to_string();
    let mut two = spawn_node(&redis, "share-2", &["--reuse-port", "--port", &port]);
    assert_eq!(one.addr, two.addr, "both listen on the same address");

    // Without --reuse-port the port is refused.
    let url = redis.url();
    let mut third = Command::new(BIN)
        .args(["--port", &port, "--http-port", "off", "--redis", &url])
        .args(["--node-name", "share-3"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatroom");
    let deadline = Instant::now() + LINE_TIMEOUT;
    let status = loop {
        if let Some(status) = third.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = third.kill();
            let _ = third.wait();
            panic!("a third node bound the shared port without --reuse-port");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut third.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("address in use"), "stderr: {stderr}");

    // Clients on the one port; each join heard by everyone before.
    let mut clients: Vec<Client> = Vec::new();
    for i in 0..CLIENTS {
        let name = format!("c{i}");
        let (c, members) = login(one.addr, &name);
        let mut names: Vec<String> = (0..=i).map(|j| format!("c{j}")).collect();
        names.sort();
        assert_eq!(
            members,
            format!("* lobby has {} members: {}", i + 1, names.join(", "))
                .replace("has 1 members", "has 1 member")
        );
        for other in &mut clients {
            other.expect(&format!("* {name} joined lobby"));
        }
        clients.push(c);
    }
    // All at once: everyone gets every line, in one order.
    for c in &mut clients {
        let line = format!("hello from {}", c.name);
        c.send(&line);
    }
    let mut orders = Vec::new();
    for c in &mut clients {
        let got: Vec<String> = (0..CLIENTS)
            .map(|_| c.read_line().expect("a chat line"))
            .collect();
        orders.push(got);
    }
    let want: BTreeSet<String> = (0..CLIENTS)
        .map(|i| format!("c{i}: hello from c{i}"))
        .collect();
    assert_eq!(orders[0].iter().cloned().collect::<BTreeSet<_>>(), want);
    for (i, got) in orders.iter().enumerate() {
        assert_eq!(got, &orders[0], "c{i} saw another order");
    }
    clients[0].send("/who");
    let who = clients[0].read_line().unwrap();
    assert!(
        who.starts_with(&format!("* lobby has {CLIENTS} members: ")),
        "{who}"
    );

    // Leave, then stop both nodes; their logs say who landed where.
    for mut c in clients {
        c.send("/quit");
        c.expect_eventually(&format!("* {} left (quit)", c.name));
        c.expect_eof();
    }
    let mut logs = Vec::new();
    for p in [&mut one, &mut two] {
        p.signal(libc::SIGTERM);
        assert_eq!(p.wait_exit(), Some(0));
        logs.push(p.final_log());
    }
    let landed: Vec<Vec<usize>> = logs
        .iter()
        .map(|log| {
            (0..CLIENTS)
                .filter(|i| log.contains(&format!(": registered as c{i}\n")))
                .collect()
        })
        .collect();
    eprintln!(
        "node share-1 had {:?}, share-2 had {:?}",
        landed[0], landed[1]
    );
    assert!(
        !landed[0].is_empty() && !landed[1].is_empty(),
        "all {CLIENTS} clients landed on one node: {landed:?}"
    );
    let mut all: Vec<usize> = landed.concat();
    all.sort();
    assert_eq!(
        all,
        (0..CLIENTS).collect::<Vec<_>>(),
        "each client on one node"
    );
}

/// A node stopped gracefully (SIGTERM) tells its clients the server is
/// shutting down, and their rooms on other nodes hear them leave at once
/// (`* <name> left`, not `(node lost)` seconds later); their names are
/// free again right away.
#[test]
fn stopped_node_releases_its_clients_at_once() {
    let redis = RedisServer::start();
    let a = redis.node("stays");
    let mut going = spawn_node(&redis, "going", &[]);
    let (mut alice, _) = login(a.addr, "alice");
    let (mut bob, members) = login(going.addr, "bob");
    assert_eq!(members, "* lobby has 2 members: alice, bob");
    alice.expect("* bob joined lobby");

    going.signal(libc::SIGTERM);
    let stopped_at = Instant::now();
    bob.expect("* server shutting down");
    bob.expect_eof();
    drop(bob);
    assert_eq!(going.wait_exit(), Some(0));
    alice.expect("* bob left");
    let took = stopped_at.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the room heard bob leave {took:?} after the stop"
    );
    let (_bob, members) = login(a.addr, "bob");
    assert_eq!(members, "* lobby has 2 members: alice, bob");
    alice.expect("* bob joined lobby");
}
