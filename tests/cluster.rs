//! The cluster bus (issue 13): several in-process nodes as one chat over a
//! real `redis-server` (one per test, see `common::redis`). Chat, notices
//! and commands across nodes with exact lines; one order for every member
//! on every node; one winner when two nodes claim a name at once; Redis
//! killed and restarted mid-chat; and client text that looks like RESP or
//! like our payload fields staying data.
//!
//! A node answers a name with `! the chat is reconnecting ...` until it has
//! reached Redis, so the first registration on a node retries on that line
//! (bounded); everything else synchronises by reading the expected line.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use chatroom::Config;
use common::redis::{send_name_until_served, Proxy, RedisServer, Resp, RECONNECTING};
use common::{start_with, test_config, welcome, Client, TestServer, PROMPT};

const DEGRADED: &str = "* chat degraded: lost the cluster's Redis, reconnecting; \
                        lines are refused until it is back";
const NOT_SENT: &str = "! not sent: the chat lost its cluster connection";
const RESTORED: &str = "* chat restored";
const INVALID_NAME: &str = "! invalid name: use 1-32 of A-Z a-z 0-9 _ -";
const CONTROL: &str = "! control characters are not allowed";

/// True for `* <room> has <n> member(s): ...`, the line that ends a join
/// burst (a room name has no blanks, so no other notice has this shape).
fn is_members_line(line: &str) -> bool {
    let words: Vec<&str> = line.splitn(6, ' ').collect();
    words.len() >= 5
        && words[0] == "*"
        && words[2] == "has"
        && words[3].parse::<usize>().is_ok()
        && words[4].starts_with("member")
}

/// Reads the rest of a join burst, through its member list.
#[track_caller]
fn rest_of_burst(c: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        match c.read_line() {
            Some(line) => {
                let end = is_members_line(&line);
                lines.push(untimed(&line));
                if end {
                    return lines;
                }
            }
            None => panic!("client {:?}: EOF in the join burst after {lines:?}", c.name),
        }
    }
}

/// A history line with its time replaced by `TS`, after checking that the
/// time is `YYYY-MM-DDTHH:MM:SSZ`; other lines unchanged.
#[track_caller]
fn untimed(line: &str) -> String {
    let Some(rest) = line.strip_prefix("# ") else {
        return line.to_string();
    };
    let (ts, text) = rest.split_once(' ').expect("a history line has a time");
    let shape: String = ts
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99Z", "history time in {line:?}");
    format!("# TS {text}")
}

/// Connects to `addr` and sends `name`, again while the node answers that
/// it is still reaching Redis (bounded). Returns the client and what
/// answered the name: the whole join burst (history times as `TS`), or a
/// refusal and the prompt.
#[track_caller]
fn register(addr: SocketAddr, name: &str) -> (Client, Vec<String>) {
    let mut c = Client::connect(addr);
    c.name = name.to_string();
    c.expect_prompt();
    let first = send_name_until_served(&mut c, name);
    if first.starts_with("! ") {
        c.expect_prompt();
        return (c, vec![first, PROMPT.to_string()]);
    }
    let mut burst = vec![first];
    burst.extend(rest_of_burst(&mut c));
    (c, burst)
}

/// Registers `name` on the node at `addr` and checks the burst starts
/// with its join notice and welcome; the rest is not checked.
#[track_caller]
fn login(addr: SocketAddr, name: &str) -> Client {
    let (c, burst) = register(addr, name);
    assert_eq!(
        burst[0],
        format!("* {name} joined lobby"),
        "burst {burst:?}"
    );
    assert_eq!(burst[1], welcome(name), "burst {burst:?}");
    c
}

/// Sends `line` as `from` and checks that `from` and every client in
/// `others` get `want` next.
#[track_caller]
fn say(from: &mut Client, line: &str, want: &str, others: &mut [&mut Client]) {
    from.send(line);
    from.expect(want);
    for c in others.iter_mut() {
        c.expect(want);
    }
}

/// Chat lines cross nodes both ways with exact lines, actions and `//`
/// included, and each node's own members hear their lines from Redis too.
#[test]
fn chat_crosses_nodes_both_ways() {
    let redis = RedisServer::start();
    let a = redis.node("chat-a");
    let b = redis.node("chat-b");
    let (mut alice, burst) = register(a.addr, "alice");
    assert_eq!(
        burst,
        [
            "* alice joined lobby",
            &welcome("alice"),
            "* lobby has 1 member: alice"
        ]
    );
    let (mut bob, burst) = register(b.addr, "bob");
    assert_eq!(
        burst,
        [
            "* bob joined lobby",
            &welcome("bob"),
            "* lobby has 2 members: alice, bob"
        ]
    );
    alice.expect("* bob joined lobby");

    say(
        &mut alice,
        "hello from a",
        "alice: hello from a",
        &mut [&mut bob],
    );
    say(
        &mut bob,
        "hello from b",
        "bob: hello from b",
        &mut [&mut alice],
    );
    say(&mut bob, "/me waves", "+ bob waves", &mut [&mut alice]);
    say(&mut alice, "//shrug", "alice: /shrug", &mut [&mut bob]);
    say(
        &mut alice,
        "  spaced  out  ",
        "alice:   spaced  out  ",
        &mut [&mut bob],
    );
    // A third member on the first node hears both.
    let mut carol = login(a.addr, "carol");
    alice.expect("* carol joined lobby");
    bob.expect("* carol joined lobby");
    say(
        &mut bob,
        "all three",
        "bob: all three",
        &mut [&mut alice, &mut carol],
    );
}

/// Joins, `/join` moves, leaves (quit, EOF, reset), `/who` and `/rooms`
/// are seen the same from both nodes.
#[test]
fn rooms_who_and_leaving_across_nodes() {
    let redis = RedisServer::start();
    let a = redis.node("rooms-a");
    let b = redis.node("rooms-b");
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");
    let (mut carol, burst) = register(b.addr, "carol");
    assert_eq!(
        burst.last().unwrap(),
        "* lobby has 3 members: alice, bob, carol"
    );
    alice.expect("* carol joined lobby");
    bob.expect("* carol joined lobby");

    alice.send("/who");
    alice.expect("* lobby has 3 members: alice, bob, carol");
    bob.send("/rooms");
    bob.expect("* 1 room: lobby (3)");

    carol.send("/join games");
    carol.expect("* carol joined games");
    assert_eq!(rest_of_burst(&mut carol), ["* games has 1 member: carol"]);
    alice.expect("* carol left for games");
    bob.expect("* carol left for games");
    alice.send("/rooms");
    alice.expect("* 2 rooms: games (1), lobby (2)");

    // Room names are case-insensitive: the first spelling is shown.
    alice.send("/join Games");
    alice.expect("* alice joined games");
    assert_eq!(
        rest_of_burst(&mut alice),
        ["* games has 2 members: alice, carol"]
    );
    carol.expect("* alice joined games");
    bob.expect("* alice left for games");
    alice.send("/join GAMES");
    alice.expect("! already in games");
    carol.send("/who");
    carol.expect("* games has 2 members: alice, carol");
    bob.send("/who");
    bob.expect("* lobby has 1 member: bob");

    // /quit: the quitter gets its own line at once, then a clean close;
    // the other node's member hears it from Redis.
    carol.send("/quit see you");
    carol.expect("* carol left (quit: see you)");
    carol.expect_eof();
    alice.expect("* carol left (quit: see you)");

    alice.send("/join lobby");
    alice.expect("* alice joined lobby");
    assert_eq!(
        rest_of_burst(&mut alice),
        ["* lobby has 2 members: alice, bob"]
    );
    bob.expect("* alice joined lobby");
    bob.send("/rooms");
    bob.expect("* 1 room: lobby (2)");

    // A plain close (EOF) and a reset, each told across nodes.
    let mut dave = login(a.addr, "dave");
    alice.expect("* dave joined lobby");
    bob.expect("* dave joined lobby");
    dave.stream().shutdown(Shutdown::Write).unwrap();
    dave.expect_eof();
    alice.expect("* dave left");
    bob.expect("* dave left");

    let erin = login(a.addr, "erin");
    alice.expect("* erin joined lobby");
    bob.expect("* erin joined lobby");
    socket2::SockRef::from(erin.stream())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(erin);
    alice.expect("* erin left (connection reset)");
    bob.expect("* erin left (connection reset)");

    bob.stream().shutdown(Shutdown::Write).unwrap();
    bob.expect_eof();
    alice.expect("* bob left");
    alice.send("/who");
    alice.expect("* lobby has 1 member: alice");
}

/// `/msg` crosses nodes both ways (names case-insensitive, one copy to
/// oneself), and an unknown name is refused.
#[test]
fn private_messages_across_nodes() {
    let redis = RedisServer::start();
    let a = redis.node("msg-a");
    let b = redis.node("msg-b");
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");

    alice.send("/msg bob psst");
    alice.expect("[pm alice -> bob] psst");
    bob.expect("[pm alice -> bob] psst");
    bob.send("/msg ALICE back at you, a: b $3");
    bob.expect("[pm bob -> alice] back at you, a: b $3");
    alice.expect("[pm bob -> alice] back at you, a: b $3");

    alice.send("/msg nobody hello?");
    alice.expect("! no such user: nobody");
    alice.send("/msg bob");
    alice.expect("! usage: /msg <name> <text>");

    // To oneself: one copy (the /who answer comes next, nothing between).
    alice.send("/msg Alice note to self");
    alice.expect("[pm alice -> alice] note to self");
    alice.send("/who");
    alice.expect("* lobby has 2 members: alice, bob");
    // Nothing leaked into the room.
    bob.send("/who");
    bob.expect("* lobby has 2 members: alice, bob");
}

/// `/nick` is seen on the other node, the new name is the one `/msg` and
/// `/who` know, and the old one is free again.
#[test]
fn nick_is_seen_on_the_other_node() {
    let redis = RedisServer::start();
    let a = redis.node("nick-a");
    let b = redis.node("nick-b");
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");

    bob.send("/nick Robert");
    bob.expect("* bob is now known as Robert");
    alice.expect("* bob is now known as Robert");
    alice.send("/msg robert hi");
    alice.expect("[pm alice -> Robert] hi");
    bob.expect("[pm alice -> Robert] hi");
    alice.send("/msg bob hi");
    alice.expect("! no such user: bob");
    alice.send("/who");
    alice.expect("* lobby has 2 members: alice, Robert");
    say(&mut bob, "still me", "Robert: still me", &mut [&mut alice]);

    alice.send("/nick ROBERT");
    alice.expect("! name taken: ROBERT");
    bob.send("/nick robert");
    bob.expect("* Robert is now known as robert");
    alice.expect("* Robert is now known as robert");
    bob.send("/nick robert");
    bob.expect("! you are already robert");
    bob.send("/nick bad:name");
    bob.expect(INVALID_NAME);

    // The old name is free on either node; the new one is not.
    let (mut c, burst) = register(a.addr, "Robert");
    assert_eq!(burst, ["! name taken: Robert", PROMPT]);
    c.send("bob");
    c.expect("* bob joined lobby");
    alice.expect("* bob joined lobby");
    bob.expect("* bob joined lobby");
}

/// A topic set on one node is shown on the other, and a joiner on the
/// other node gets the topic and the room's history in its join burst.
#[test]
fn topic_and_history_reach_joiners_on_other_nodes() {
    let redis = RedisServer::start();
    let a = redis.node("topic-a");
    let b = redis.node("topic-b");
    let mut alice = login(a.addr, "alice");
    alice.send("/topic rust talk: a, b $1");
    alice.expect("* alice set the topic for lobby: rust talk: a, b $1");
    say(&mut alice, "first", "alice: first", &mut []);
    say(&mut alice, "second", "alice: second", &mut []);
    say(&mut alice, "/me waves", "+ alice waves", &mut []);

    let (mut bob, burst) = register(b.addr, "bob");
    assert_eq!(
        burst,
        [
            "* bob joined lobby",
            &welcome("bob"),
            "* topic for lobby: rust talk: a, b $1",
            "# TS alice: first",
            "# TS alice: second",
            "# TS + alice waves",
            "* lobby has 2 members: alice, bob",
        ]
    );
    alice.expect("* bob joined lobby");
    bob.send("/topic");
    bob.expect("* topic for lobby: rust talk: a, b $1");
    bob.send("/topic -");
    bob.expect("* bob cleared the topic for lobby");
    alice.expect("* bob cleared the topic for lobby");
    alice.send("/topic");
    alice.expect("* no topic for lobby");

    // A new room's history, from the other side.
    bob.send("/join side");
    bob.expect("* bob joined side");
    assert_eq!(rest_of_burst(&mut bob), ["* side has 1 member: bob"]);
    alice.expect("* bob left for side");
    bob.send("/topic quiet");
    bob.expect("* bob set the topic for side: quiet");
    say(&mut bob, "in side", "bob: in side", &mut []);
    alice.send("/join side");
    alice.expect("* alice joined side");
    assert_eq!(
        rest_of_burst(&mut alice),
        [
            "* topic for side: quiet",
            "# TS bob: in side",
            "* side has 2 members: alice, bob"
        ]
    );
    bob.expect("* alice joined side");
    // The lobby, empty now, has gone with its history and topic.
    alice.send("/rooms");
    alice.expect("* 1 room: side (2)");
}

/// `/away` on one node shows in `/who` and in a `/msg` reply on the other.
#[test]
fn away_is_shown_across_nodes() {
    let redis = RedisServer::start();
    let a = redis.node("away-a");
    let b = redis.node("away-b");
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");

    bob.send("/away out to lunch, back at 2:00");
    bob.expect("* you are away: out to lunch, back at 2:00");
    // Bob's /who runs after his /away on the same connection to Redis, so
    // once he has its answer the away mark is there for everyone.
    bob.send("/who");
    bob.expect("* lobby has 2 members: alice, bob (away)");
    alice.send("/who");
    alice.expect("* lobby has 2 members: alice, bob (away)");
    alice.send("/msg bob ping");
    alice.expect("[pm alice -> bob] ping");
    alice.expect("* bob is away: out to lunch, back at 2:00");
    bob.expect("[pm alice -> bob] ping");

    bob.send("/away");
    bob.expect("* you are back");
    bob.send("/who");
    bob.expect("* lobby has 2 members: alice, bob");
    alice.send("/msg bob pong");
    alice.expect("[pm alice -> bob] pong");
    alice.send("/who");
    alice.expect("* lobby has 2 members: alice, bob");
    bob.expect("[pm alice -> bob] pong");
}

/// Three nodes, a sender on each sending numbered lines at once into one
/// room: every member on every node receives the same sequence, with each
/// sender's lines in the order sent, none lost or duplicated.
#[test]
fn one_order_across_three_nodes() {
    const LINES: usize = 300;
    let redis = RedisServer::start();
    let nodes: Vec<TestServer> = (0..3).map(|i| redis.node(&format!("order-{i}"))).collect();
    // A sender and a listener on each node; every join read by everyone.
    let mut clients: Vec<Client> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for role in ["s", "l"] {
            let name = format!("{role}{i}");
            let c = login(node.addr, &name);
            for other in &mut clients {
                other.expect(&format!("* {name} joined lobby"));
            }
            clients.push(c);
        }
    }
    let barrier = Arc::new(Barrier::new(clients.len()));
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                if c.name.starts_with('s') {
                    let batch: String = (0..LINES).map(|j| format!("{} {j}\n", c.name)).collect();
                    c.send_raw(batch.as_bytes());
                }
                let mut got = Vec::with_capacity(3 * LINES);
                while got.len() < 3 * LINES {
                    got.push(c.read_line().expect("EOF while reading the chat"));
                }
                (c.name.clone(), got)
            })
        })
        .collect();
    let results: Vec<(String, Vec<String>)> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();

    let (first_name, first) = &results[0];
    for (name, got) in &results {
        // Same sequence for everyone.
        assert!(
            got == first,
            "{name} and {first_name} differ; first difference at {:?}",
            got.iter().zip(first).position(|(x, y)| x != y)
        );
    }
    // Each sender's lines, all of them, once, in the order sent.
    for s in ["s0", "s1", "s2"] {
        let mine: Vec<&String> = first
            .iter()
            .filter(|l| l.starts_with(&format!("{s}: ")))
            .collect();
        let want: Vec<String> = (0..LINES).map(|j| format!("{s}: {s} {j}")).collect();
        assert_eq!(mine.len(), LINES, "{s}'s lines");
        assert!(
            mine.iter().zip(&want).all(|(g, w)| *g == w),
            "{s}'s lines out of order or changed"
        );
    }
    assert_eq!(first.len(), 3 * LINES);
}

/// Two clients on two nodes send the same name (in different case) at the
/// same moment, many times over: each time exactly one gets it, and the
/// other is told it is taken and asked again.
#[test]
fn simultaneous_name_claims_have_one_winner() {
    const ROUNDS: usize = 40;
    let redis = RedisServer::start();
    let a = redis.node("claim-a");
    let b = redis.node("claim-b");
    // Both nodes have reached Redis before the races start.
    for (node, name) in [(&a, "warmup_a"), (&b, "warmup_b")] {
        let mut c = login(node.addr, name);
        c.send("/quit");
        c.expect(&format!("* {name} left (quit)"));
        c.expect_eof();
    }
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let names = [format!("Claim{round}"), format!("cLAIM{round}")];
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [a.addr, b.addr]
            .into_iter()
            .zip(names.clone())
            .map(|(addr, name)| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    c.name = name.clone();
                    c.expect_prompt();
                    barrier.wait();
                    c.send(&name);
                    let first = c.read_line().expect("an answer to the name");
                    (c, first)
                })
            })
            .collect();
        let mut answers: Vec<(Client, String)> = threads
            .into_iter()
            .map(|t| t.join().expect("claim thread"))
            .collect();
        let winners: Vec<usize> = (0..2)
            .filter(|&i| answers[i].1 == format!("* {} joined lobby", names[i]))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: answers {:?}",
            answers.iter().map(|(_, l)| l).collect::<Vec<_>>()
        );
        let w = winners[0];
        let l = 1 - w;
        wins[w] += 1;
        assert_eq!(answers[l].1, format!("! name taken: {}", names[l]));
        let (winner, loser) = if w == 0 {
            let (x, y) = answers.split_at_mut(1);
            (&mut x[0].0, &mut y[0].0)
        } else {
            let (x, y) = answers.split_at_mut(1);
            (&mut y[0].0, &mut x[0].0)
        };
        loser.expect_prompt();
        winner.expect(&welcome(&names[w]));
        winner.expect(&format!("* lobby has 1 member: {}", names[w]));
        // The loser can still pick another name; then both leave.
        loser.send(&format!("other{round}"));
        loser.expect(&format!("* other{round} joined lobby"));
        winner.expect(&format!("* other{round} joined lobby"));
        loser.expect(&welcome(&format!("other{round}")));
        let mut sorted = [names[w].clone(), format!("other{round}")];
        sorted.sort_by_key(|n| n.to_ascii_lowercase());
        loser.expect(&format!(
            "* lobby has 2 members: {}, {}",
            sorted[0], sorted[1]
        ));
        winner.send("/quit");
        winner.expect(&format!("* {} left (quit)", names[w]));
        winner.expect_eof();
        loser.expect(&format!("* {} left (quit)", names[w]));
        loser.send("/quit");
        loser.expect(&format!("* other{round} left (quit)"));
        loser.expect_eof();
    }
    eprintln!("claims won: node a {}, node b {}", wins[0], wins[1]);
}

/// Redis killed mid-chat (with a line in flight) and restarted on the same
/// port, empty: the line in flight is reported not sent, every client is
/// told the chat is degraded, lines and names are refused meanwhile, then
/// `* chat restored` and full service across nodes; nothing delivered
/// before is delivered again.
#[test]
fn redis_restart_degrades_then_restores() {
    let mut redis = RedisServer::start();
    let a = redis.node("restart-a");
    let b = redis.node("restart-b");
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");
    say(&mut alice, "before", "alice: before", &mut [&mut bob]);

    // Frozen, Redis reads nothing: alice's line stays in flight. Node a
    // writes its commands to Redis before it writes to clients in the same
    // turn, so once alice has the answer to /help (sent with the line), the
    // line has been written to Redis.
    redis.freeze();
    alice.send_raw(b"in flight\n/help who\n");
    alice.expect(HELP_WHO);
    redis.kill();
    alice.expect(NOT_SENT);
    alice.expect(DEGRADED);
    bob.expect(DEGRADED);

    // Meanwhile: lines, commands that need Redis and names are refused;
    // local commands still work.
    alice.send("during the outage");
    alice.expect(RECONNECTING);
    bob.send("/who");
    bob.expect(RECONNECTING);
    bob.send("/msg alice are you there");
    bob.expect(RECONNECTING);
    alice.send("/help who");
    alice.expect(HELP_WHO);
    let mut carol = Client::connect(b.addr);
    carol.name = "carol".into();
    carol.expect_prompt();
    carol.send("carol");
    carol.expect(RECONNECTING);
    carol.expect_prompt();

    redis.restart();
    alice.expect(RESTORED);
    bob.expect(RESTORED);
    // Each node puts its clients back with a script sent as it tells them;
    // an answer on node a's own connection comes after alice's is done
    // (carol's registration on node b queues behind bob's the same way).
    alice.send("/topic");
    alice.expect("* no topic for lobby");

    // Full service: a new client, chat and commands across nodes. Redis
    // came back empty, so the lobby has no history to replay.
    carol.send("carol");
    carol.expect("* carol joined lobby");
    assert_eq!(
        rest_of_burst(&mut carol),
        [
            welcome("carol"),
            "* lobby has 3 members: alice, bob, carol".into()
        ]
    );
    alice.expect("* carol joined lobby");
    bob.expect("* carol joined lobby");
    say(
        &mut bob,
        "after",
        "bob: after",
        &mut [&mut alice, &mut carol],
    );
    say(
        &mut alice,
        "again",
        "alice: again",
        &mut [&mut bob, &mut carol],
    );
    bob.send("/msg alice welcome back");
    bob.expect("[pm bob -> alice] welcome back");
    alice.expect("[pm bob -> alice] welcome back");
    // Nothing else was queued for anyone: each client's next line is its
    // /who answer.
    for c in [&mut alice, &mut bob, &mut carol] {
        c.send("/who");
        c.expect("* lobby has 3 members: alice, bob, carol");
    }
    assert_eq!(
        redis
            .cmd(&["LRANGE", "cr:h:lobby", "0", "-1"])
            .strings()
            .iter()
            .map(|h| h.split_once('\t').expect("time TAB line").1.to_string())
            .collect::<Vec<_>>(),
        ["bob: after", "alice: again"]
    );
}

/// Names, rooms and text shaped like RESP commands or like our payload
/// fields: names and rooms are refused by the name rules, text with a
/// control character is refused, all other text is delivered exactly as
/// sent (chat, action, pm, topic, away, history), and Redis holds exactly
/// the keys the chat made, with the text as data.
#[test]
fn injection_stays_data() {
    let redis = RedisServer::start();
    let a = redis.node("inj-a");
    let b = redis.node("inj-b");
    let mut alice = login(a.addr, "alice");

    // Names: each refused (then the prompt again), nothing registered.
    let mut m = Client::connect(b.addr);
    m.name = "mallory".into();
    m.expect_prompt();
    for bad in [
        "*3",
        "$3",
        "DEL cr:u:alice",
        "cr:u:alice",
        "a,b",
        "1:S,",
        "x$y",
        ":0",
        "alice\u{0}",
    ] {
        m.send(bad);
        let want = if bad.contains('\u{0}') {
            CONTROL
        } else {
            INVALID_NAME
        };
        m.expect(want);
        m.expect_prompt();
    }
    // A bare \r inside a line is a control character; RESP framing sent
    // whole splits into lines at \n, each refused as a name.
    m.send_raw(b"a\rb\n");
    m.expect(CONTROL);
    m.expect_prompt();
    m.send_raw(b"*1\r\n$4\r\n$-1\r\n:0\r\n+OK\r\n");
    for _ in 0..5 {
        m.expect(INVALID_NAME);
        m.expect_prompt();
    }
    // Until the node has reached Redis, a name is answered "reconnecting".
    assert_eq!(
        send_name_until_served(&mut m, "mallory"),
        "* mallory joined lobby"
    );
    assert_eq!(
        rest_of_burst(&mut m),
        [
            welcome("mallory"),
            "* lobby has 2 members: alice, mallory".into()
        ]
    );
    alice.expect("* mallory joined lobby");

    // Rooms and new names follow the name rules.
    for bad in ["*3", "a:b", "cr:r:lobby", "x,y", "$4", "x:y\r\nDEL"] {
        m.send(&format!("/join {bad}"));
        if bad.contains('\r') {
            // Sent as two lines: a bad room, then a chat line "DEL".
            m.expect(&format!(
                "! invalid room name: {}",
                bad.split('\r').next().unwrap()
            ));
            m.expect("mallory: DEL");
            alice.expect("mallory: DEL");
        } else {
            m.expect(&format!("! invalid room name: {bad}"));
        }
    }
    m.send_raw(b"/join a\rb\n");
    m.expect(CONTROL);
    m.send("/nick cr:u:alice");
    m.expect(INVALID_NAME);
    m.send("/nick $3 DEL");
    m.expect(INVALID_NAME);

    // Text is data: delivered exactly as sent.
    let long = "1:x,".repeat(1000);
    let texts = [
        "*3 $3 DEL $10 cr:u:alice",
        "1:S,5:alice,",
        "0:,",
        "99999999999999999999:x,",
        "a: b, c:d $-1 :0 +OK -ERR",
        "cr:r:lobby cr:n:inj-a",
        "tab\there",
        "ünïcødé ✓ 中文 👍",
        "%s %d {} \\ \" ' -- ]] [[ local x = 1",
        long.as_str(),
    ];
    for text in texts {
        let want = format!("mallory: {text}");
        say(&mut m, text, &want, &mut [&mut alice]);
    }
    // A CRLF line end is framing; a bare CR in the text is refused.
    m.send_raw(b"crlf\r\n");
    m.expect("mallory: crlf");
    alice.expect("mallory: crlf");
    m.send_raw(b"*3\r$3\rDEL\n");
    m.expect(CONTROL);
    say(
        &mut m,
        "/me says $5 :x, 1:S,",
        "+ mallory says $5 :x, 1:S,",
        &mut [&mut alice],
    );
    m.send("/msg alice 2:P,9:x,*1\t$3");
    m.expect("[pm mallory -> alice] 2:P,9:x,*1\t$3");
    alice.expect("[pm mallory -> alice] 2:P,9:x,*1\t$3");
    m.send("/topic *2 $3 DEL $8 cr:rooms 1:T,");
    m.expect("* mallory set the topic for lobby: *2 $3 DEL $8 cr:rooms 1:T,");
    alice.expect("* mallory set the topic for lobby: *2 $3 DEL $8 cr:rooms 1:T,");
    m.send("/away $-1 ,: 0:,");
    m.expect("* you are away: $-1 ,: 0:,");
    m.send("/who");
    m.expect("* lobby has 2 members: alice, mallory (away)");
    alice.send("/msg mallory hi");
    alice.expect("[pm alice -> mallory] hi");
    alice.expect("* mallory is away: $-1 ,: 0:,");
    m.expect("[pm alice -> mallory] hi");

    // Redis holds exactly the chat's keys, the text as data.
    let keys: BTreeSet<String> = redis.cmd(&["KEYS", "*"]).strings().into_iter().collect();
    let want: BTreeSet<String> = [
        "cr:alive:inj-a",
        "cr:alive:inj-b",
        "cr:h:lobby",
        "cr:hb:lobby",
        "cr:m:lobby",
        "cr:nm:inj-a",
        "cr:nm:inj-b",
        "cr:nodes",
        "cr:rooms",
        "cr:t:lobby",
        "cr:u:alice",
        "cr:u:mallory",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, want);
    assert_eq!(
        redis.cmd(&["ZRANGE", "cr:m:lobby", "0", "-1"]).strings(),
        ["alice", "mallory"]
    );
    assert_eq!(
        redis.cmd(&["GET", "cr:t:lobby"]).text(),
        "*2 $3 DEL $8 cr:rooms 1:T,"
    );
    assert_eq!(
        redis.cmd(&["HGET", "cr:u:mallory", "away"]).text(),
        "$-1 ,: 0:,"
    );
    assert_eq!(redis.cmd(&["HGET", "cr:u:alice", "name"]).text(), "alice");
    assert_eq!(redis.cmd(&["SCARD", "cr:nodes"]), Resp::Int(2));
    let history: Vec<String> = redis
        .cmd(&["LRANGE", "cr:h:lobby", "0", "-1"])
        .strings()
        .iter()
        .map(|h| h.split_once('\t').expect("time TAB line").1.to_string())
        .collect();
    let mut said: Vec<String> = vec!["mallory: DEL".into()];
    said.extend(texts.iter().map(|t| format!("mallory: {t}")));
    said.push("mallory: crlf".into());
    said.push("+ mallory says $5 :x, 1:S,".into());
    assert_eq!(history, said);
    let bytes: usize = said.iter().map(String::len).sum();
    assert_eq!(redis.cmd(&["GET", "cr:hb:lobby"]).text(), bytes.to_string());

    // And a joiner on the other node gets it all back, exactly.
    let (_carol, burst) = register(a.addr, "carol");
    let mut want = vec![
        "* carol joined lobby".to_string(),
        welcome("carol"),
        "* topic for lobby: *2 $3 DEL $8 cr:rooms 1:T,".into(),
    ];
    want.extend(said.iter().map(|l| format!("# TS {l}")));
    want.push("* lobby has 3 members: alice, carol, mallory (away)".into());
    assert_eq!(burst, want);
}

/// The join burst a joiner on node `join_at` gets after `alice`, on node
/// `say_at`, said `lines` (history times as `TS`).
#[track_caller]
fn burst_after(say_at: SocketAddr, join_at: SocketAddr, lines: &[String]) -> Vec<String> {
    let mut alice = login(say_at, "alice");
    for line in lines {
        alice.send(line);
        alice.expect(&format!("alice: {line}"));
    }
    let (_bob, burst) = register(join_at, "bob");
    alice.expect("* bob joined lobby");
    burst
}

/// History on join keeps the last `--history` lines, across nodes as in
/// one process.
#[test]
fn history_keeps_the_last_lines_as_in_one_process() {
    let redis = RedisServer::start();
    let config = |node: Option<&str>| Config {
        history: 3,
        cluster: node.map(|n| redis.cluster(n)),
        ..test_config()
    };
    let a = start_with(config(Some("hist-a")));
    let b = start_with(config(Some("hist-b")));
    let single = start_with(config(None));
    let lines: Vec<String> = (1..=5).map(|i| format!("line {i}")).collect();
    let want = [
        "* bob joined lobby".to_string(),
        welcome("bob"),
        "# TS alice: line 3".into(),
        "# TS alice: line 4".into(),
        "# TS alice: line 5".into(),
        "* lobby has 2 members: alice, bob".into(),
    ];
    assert_eq!(burst_after(single.addr, single.addr, &lines), want);
    assert_eq!(burst_after(a.addr, b.addr, &lines), want);
}

/// History is bounded in bytes too (16 KiB of lines per room), across
/// nodes as in one process: long lines push old ones out sooner.
#[test]
fn history_is_bounded_in_bytes_as_in_one_process() {
    let redis = RedisServer::start();
    let a = redis.node("bytes-a");
    let b = redis.node("bytes-b");
    let single = start_with(test_config());
    // Each delivered line is `alice: ` and 4,000 bytes: 4 fit in 16 KiB.
    let lines: Vec<String> = (0..6).map(|i| format!("{i}{}", "x".repeat(3999))).collect();
    let mut want = vec!["* bob joined lobby".to_string(), welcome("bob")];
    want.extend(lines[2..].iter().map(|l| format!("# TS alice: {l}")));
    want.push("* lobby has 2 members: alice, bob".into());
    let one = burst_after(single.addr, single.addr, &lines);
    assert_eq!(one.len(), want.len(), "one process keeps 4 lines");
    assert!(one == want, "one process: another burst");
    let cluster = burst_after(a.addr, b.addr, &lines);
    assert_eq!(cluster.len(), want.len(), "the cluster keeps 4 lines");
    assert!(cluster == want, "the cluster: another burst");
}

/// Join and leave notices in a room over `--notice-limit` become
/// summaries, counting members on all nodes; each subject still gets its
/// own notice.
#[test]
fn big_room_summaries_count_members_on_all_nodes() {
    let redis = RedisServer::start();
    let config = |node: &str| Config {
        notice_limit: 2,
        cluster: Some(redis.cluster(node)),
        ..test_config()
    };
    let a = start_with(config("big-a"));
    let b = start_with(config("big-b"));
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");

    // The third member: over the limit.
    let (mut carol, burst) = register(a.addr, "carol");
    assert_eq!(
        burst,
        [
            "* carol joined lobby",
            &welcome("carol"),
            "* lobby has 3 members: alice, bob, carol"
        ]
    );
    // The summary goes to the whole room, the joiner included (as in one
    // process).
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect("* lobby: 1 joined");
    }
    let (mut dave, burst) = register(b.addr, "dave");
    assert_eq!(burst[0], "* dave joined lobby");
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.expect("* lobby: 1 joined");
    }

    carol.send("/quit");
    carol.expect("* carol left (quit)");
    carol.expect_eof();
    for c in [&mut alice, &mut bob, &mut dave] {
        c.expect("* lobby: 1 left");
    }
    dave.stream().shutdown(Shutdown::Write).unwrap();
    dave.expect_eof();
    alice.expect("* lobby: 1 left");
    bob.expect("* lobby: 1 left");
    // Back at the limit: notices again.
    bob.send("/quit");
    bob.expect("* bob left (quit)");
    alice.expect("* bob left (quit)");
}

/// Redis dropping a node's subscription (as its pub/sub output-buffer
/// limit does) is an outage of that node: its clients are told, it
/// reconnects and restores them, and Redis kept its data: the topic and
/// history are intact and nothing is delivered twice.
#[test]
fn dropped_subscription_is_an_outage_and_recovers() {
    let redis = RedisServer::start();
    let a = redis.node("drop-a");
    let b = redis.node("drop-b");
    let mut alice = login(a.addr, "alice");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");
    alice.send("/topic kept");
    alice.expect("* alice set the topic for lobby: kept");
    bob.expect("* alice set the topic for lobby: kept");
    say(&mut alice, "before", "alice: before", &mut [&mut bob]);

    assert_eq!(
        redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]),
        Resp::Int(2),
        "one subscription per node"
    );
    for c in [&mut alice, &mut bob] {
        c.expect(DEGRADED);
        c.expect(RESTORED);
    }
    say(&mut bob, "after", "bob: after", &mut [&mut alice]);
    let (mut carol, burst) = register(a.addr, "carol");
    assert_eq!(
        burst,
        [
            "* carol joined lobby",
            &welcome("carol"),
            "* topic for lobby: kept",
            "# TS alice: before",
            "# TS bob: after",
            "* lobby has 3 members: alice, bob, carol"
        ]
    );
    alice.expect("* carol joined lobby");
    bob.expect("* carol joined lobby");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.send("/who");
        c.expect("* lobby has 3 members: alice, bob, carol");
    }
}

/// One node cut off from Redis for longer than its liveness key lives
/// (the others keep Redis): the others reclaim its clients (`(node
/// lost)`); a name taken meanwhile is lost to its old owner, who is told
/// so and disconnected when the node is back; a client whose name is still
/// free is put back, and the room, told it had left, is told it is back.
#[test]
fn partitioned_node_comes_back() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.addr());
    let a = start_with(Config {
        cluster: Some(chatroom::cluster::ClusterConfig {
            addr: proxy.addr,
            ..redis.cluster("part-a")
        }),
        ..test_config()
    });
    let b = redis.node("part-b");
    let mut alice = login(a.addr, "alice");
    let mut dave = login(a.addr, "dave");
    alice.expect("* dave joined lobby");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");
    dave.expect("* bob joined lobby");

    proxy.cut();
    let cut_at = Instant::now();
    alice.expect(DEGRADED);
    dave.expect(DEGRADED);
    let mut lost = [bob.read_line().unwrap(), bob.read_line().unwrap()];
    lost.sort();
    assert_eq!(
        lost,
        ["* alice left (node lost)", "* dave left (node lost)"],
        "after {:?}",
        cut_at.elapsed()
    );
    // Meanwhile someone else takes alice's name.
    let (mut carol, burst) = register(b.addr, "Alice");
    assert_eq!(burst.last().unwrap(), "* lobby has 2 members: Alice, bob");
    bob.expect("* Alice joined lobby");

    proxy.heal();
    alice.expect(RESTORED);
    // Alice is still in the room here until Redis answers that her name is
    // gone; dave's return may reach the room before that answer.
    let mut next = alice.read_line();
    if next.as_deref() == Some("* dave joined lobby") {
        next = alice.read_line();
    }
    assert_eq!(
        next.as_deref(),
        Some("* your name was lost while this server was cut off from the chat; please reconnect")
    );
    alice.expect_eof();
    dave.expect(RESTORED);
    // Dave is back in the room, and the room is told so.
    for c in [&mut dave, &mut bob, &mut carol] {
        c.expect("* dave joined lobby");
    }
    say(&mut dave, "back", "dave: back", &mut [&mut bob, &mut carol]);
    for c in [&mut dave, &mut bob, &mut carol] {
        c.send("/who");
        c.expect("* lobby has 3 members: Alice, bob, dave");
    }
}

const HELP_WHO: &str = "* /who: list your room's members (away ones marked)";

/// Reads `maybe` then `then`, or `then` alone; true if `maybe` came.
#[track_caller]
fn expect_unless(c: &mut Client, maybe: &str, then: &str) -> bool {
    let line = c.read_line();
    if line.as_deref() == Some(maybe) {
        c.expect(then);
        return true;
    }
    assert_eq!(line.as_deref(), Some(then), "client {:?}", c.name);
    false
}

/// A node's command connection in Redis: its client id and the node's
/// port.
struct CmdConn {
    id: String,
    port: u16,
}

/// The command connections Redis has now (normal clients, not pub/sub,
/// not the one asking).
fn command_connections(redis: &RedisServer) -> Vec<CmdConn> {
    redis
        .cmd(&["CLIENT", "LIST"])
        .text()
        .lines()
        .filter(|l| l.contains(" flags=N ") && !l.contains(" cmd=client|list "))
        .map(|l| {
            let field = |name: &str| {
                l.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .expect("a CLIENT LIST field")
                    .to_string()
            };
            CmdConn {
                id: field("id="),
                port: field("addr=").rsplit(':').next().unwrap().parse().unwrap(),
            }
        })
        .collect()
}

/// Sends `line` from `client` to its node with Redis frozen, so that the
/// script it causes reaches Redis but is not run; then queues a kill of
/// the node's command connection `conn` behind it and thaws Redis, which
/// runs the script and kills the connection before its answer is written:
/// the answer is lost. Synchronised by reading: the node read the line
/// before the /help of `witness` (a client of the same node, sent after
/// it), and a node writes to Redis before it writes to clients, so once
/// the witness has its answer the script was written; then /proc/net/tcp
/// shows it (and then the kill) in Redis' sockets.
#[track_caller]
fn lose_the_answer(
    redis: &RedisServer,
    conn: &CmdConn,
    client: &mut Client,
    line: &str,
    witness: &mut Client,
) {
    let mut admin = redis.raw();
    let admin_port = admin.local_addr().unwrap().port();
    redis.freeze();
    let before = redis.unread_from(conn.port);
    client.send(line);
    witness.send("/help who");
    witness.expect(HELP_WHO);
    redis.wait_unread(conn.port, before);
    admin
        .write_all(format!("CLIENT KILL ID {}\r\n", conn.id).as_bytes())
        .unwrap();
    redis.wait_unread(admin_port, 0);
    redis.thaw();
    let mut killed = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(admin), &mut killed).unwrap();
    assert_eq!(killed, ":1\r\n", "the command connection killed");
}

/// A registration that Redis ran but whose answer was lost with the
/// connection (Redis killed the node's command connection right after
/// running it): the client is refused and asked again, and when the node
/// is back the name is not left held by nobody: the room hears the lost
/// claim leave, and the name can be registered again.
#[test]
fn registration_lost_in_flight_does_not_hold_the_name() {
    let redis = RedisServer::start();
    let a = redis.node("flight-a");
    let mut alice = login(a.addr, "alice");
    let conns = command_connections(&redis);
    assert_eq!(conns.len(), 1, "node a's command connection");

    let mut x = Client::connect(a.addr);
    x.name = "xavier".into();
    x.expect_prompt();
    lose_the_answer(&redis, &conns[0], &mut x, "xavier", &mut alice);

    // The node may have heard the join come back before the loss.
    let mut first = x.read_line().unwrap();
    let joined = first == "* xavier joined lobby";
    if joined {
        x.expect(&welcome("xavier"));
        x.expect("* lobby has 2 members: alice, xavier");
        first = x.read_line().unwrap();
    }
    if first == DEGRADED {
        // Rarely, Redis answered before the kill (it was stopped in the
        // middle of a turn): an ordinary registration, then the outage.
        eprintln!("the answer was not lost");
        assert!(joined);
        x.expect(RESTORED);
        for line in ["* xavier joined lobby", DEGRADED, RESTORED] {
            alice.expect(line);
        }
        say(&mut x, "hi", "xavier: hi", &mut [&mut alice]);
        alice.send("/who");
        alice.expect("* lobby has 2 members: alice, xavier");
        return;
    }
    eprintln!("the answer was lost; node a heard the join first: {joined}");
    // The answer was lost: refused, asked again, and the name given back.
    assert_eq!(first, RECONNECTING);
    x.expect_prompt();
    let mut want = vec![DEGRADED, RESTORED, "* xavier left"];
    if joined {
        want.insert(0, "* xavier joined lobby");
    }
    for line in want {
        alice.expect(line);
    }
    let (mut x2, burst) = register(a.addr, "xavier");
    assert_eq!(burst[0], "* xavier joined lobby", "burst {burst:?}");
    alice.expect("* xavier joined lobby");
    alice.send("/who");
    alice.expect("* lobby has 2 members: alice, xavier");
    // The first connection, unregistered, hears nothing of the room.
    say(&mut x2, "hi", "xavier: hi", &mut [&mut alice]);
    x.send("/quit");
    x.expect_eof();
}

/// A `/join` that Redis ran but whose answer was lost with the node's
/// command connection: when the node is back, Redis and the rooms agree
/// with where the node has the client (no member left behind in the
/// other room), and every room was told each move.
#[test]
fn join_lost_in_flight_leaves_no_ghost() {
    let redis = RedisServer::start();
    let a = redis.node("jflight-a");
    let mut alice = login(a.addr, "alice");
    let mut carol = login(a.addr, "carol");
    alice.expect("* carol joined lobby");
    let conns = command_connections(&redis);
    assert_eq!(conns.len(), 1, "node a's command connection");
    let b = redis.node("jflight-b");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");
    carol.expect("* bob joined lobby");
    // carol in games: node a hears it, so alice's join goes straight out.
    carol.send("/join games");
    carol.expect("* carol joined games");
    rest_of_burst(&mut carol);
    alice.expect("* carol left for games");
    bob.expect("* carol left for games");
    lose_the_answer(&redis, &conns[0], &mut alice, "/join games", &mut carol);
    // Redis moved alice; bob's node heard it.
    bob.expect("* alice left for games");
    let first = alice.read_line().unwrap();
    if first == "* alice joined games" {
        // Node a heard the move before it lost the connection (or,
        // rarely, Redis answered before the kill: no `! not sent`): alice
        // is in games, and stays there.
        alice.expect("* games has 2 members: alice, carol");
        let lost = expect_unless(&mut alice, NOT_SENT, DEGRADED);
        eprintln!("node a heard the join before the loss; answer lost: {lost}");
        alice.expect(RESTORED);
        for line in ["* alice joined games", DEGRADED, RESTORED] {
            carol.expect(line);
        }
        bob.send("/rooms");
        bob.expect("* 2 rooms: games (2), lobby (1)");
    } else {
        // It did not: alice is put back in the lobby, and both rooms are
        // told.
        eprintln!("node a did not hear the join before the loss; answer lost");
        assert_eq!(first, NOT_SENT);
        for line in [DEGRADED, RESTORED, "* alice joined lobby"] {
            alice.expect(line);
        }
        for line in [DEGRADED, RESTORED, "* alice left for lobby"] {
            carol.expect(line);
        }
        bob.expect("* alice joined lobby");
        bob.send("/rooms");
        bob.expect("* 2 rooms: games (1), lobby (2)");
        alice.send("/who");
        alice.expect("* lobby has 2 members: alice, bob");
        say(&mut alice, "here", "alice: here", &mut [&mut bob]);
    }
    carol.send("/who");
    let who = carol.read_line().unwrap();
    assert!(who.starts_with("* games has "), "{who}");
}

/// A `/nick` that Redis ran but whose answer was lost with the node's
/// command connection: when the node is back, Redis and the room agree
/// with the name the node has for the client, and the other name is free.
#[test]
fn nick_lost_in_flight_leaves_no_ghost() {
    let redis = RedisServer::start();
    let a = redis.node("nflight-a");
    let mut alice = login(a.addr, "alice");
    let mut carol = login(a.addr, "carol");
    alice.expect("* carol joined lobby");
    let conns = command_connections(&redis);
    assert_eq!(conns.len(), 1, "node a's command connection");
    let b = redis.node("nflight-b");
    let mut bob = login(b.addr, "bob");
    alice.expect("* bob joined lobby");
    carol.expect("* bob joined lobby");
    lose_the_answer(&redis, &conns[0], &mut alice, "/nick alicia", &mut carol);
    bob.expect("* alice is now known as alicia");
    let first = alice.read_line().unwrap();
    let (name, other) = if first == "* alice is now known as alicia" {
        // Node a heard the rename before it lost the connection (or,
        // rarely, Redis answered before the kill: no `! not sent`).
        let lost = expect_unless(&mut alice, NOT_SENT, DEGRADED);
        eprintln!("node a heard the rename before the loss; answer lost: {lost}");
        alice.expect(RESTORED);
        for line in ["* alice is now known as alicia", DEGRADED, RESTORED] {
            carol.expect(line);
        }
        ("alicia", "alice")
    } else {
        // It did not: the rename is undone, and the room told.
        eprintln!("node a did not hear the rename before the loss; answer lost");
        assert_eq!(first, NOT_SENT);
        for line in [DEGRADED, RESTORED, "* alicia is now known as alice"] {
            alice.expect(line);
        }
        for line in [DEGRADED, RESTORED, "* alicia is now known as alice"] {
            carol.expect(line);
        }
        bob.expect("* alicia is now known as alice");
        ("alice", "alicia")
    };
    bob.send("/who");
    bob.expect(&format!("* lobby has 3 members: {name}, bob, carol"));
    say(
        &mut alice,
        "me",
        &format!("{name}: me"),
        &mut [&mut bob, &mut carol],
    );
    // The other name is free.
    let (_d, burst) = register(b.addr, other);
    assert_eq!(burst[0], format!("* {other} joined lobby"));
}
