//! `loadtest`: a load generator for chat servers. This file is the command
//! line only: it parses flags into a [`scenario::Plan`] and
//! [`driver::Options`], runs the scenario and prints its report (a table, or
//! one JSON object with `--json`). It must not measure or count anything.
//!
//! # Layout
//! - `payload`: the fixed-width message stamp (sender, sequence, send time).
//! - `wire`: per-target registration, framing and line decoding.
//! - `tally`: exact delivery counting and latency percentiles.
//! - `driver`: the mio event loop over every client socket.
//! - `scenario`: fanout, latency, connections and soak.
//! - `procstat`: server CPU and memory from `/proc`.
//! - `report`: table and JSON output.

mod driver;
mod payload;
mod procstat;
mod report;
mod scenario;
mod tally;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use driver::Options;
use scenario::{Plan, Scenario};
use wire::Target;

const HELP: &str = "\
loadtest: measure a chat server's fan-out, latency and capacity

USAGE:
  cargo run --release --example loadtest -- <SCENARIO> [FLAGS]

SCENARIOS:
  fanout       N clients in one room; S of them send M lines each, at most W
               of their own unconfirmed (not yet echoed back) at a time
  latency      open loop: R messages/s in total from S senders for D seconds,
               each stamped with its intended send time
  connections  open and register C clients, then one broadcast to all
  soak         steady traffic for D seconds while clients leave and rejoin;
               server memory sampled (with --server-pid)

FLAGS:
  --target T          chatroom (default), redis or tutorial
  --addr IP:PORT      server address (default 127.0.0.1 and the target's port)
  --port N            server port on 127.0.0.1
  --clients N         clients in the room (fanout/latency 100, connections
                      10000, soak 200)
  --senders S         sending clients (fanout/latency 10, soak 5)
  --messages M        messages per sender, fanout (2000)
  --window W          unconfirmed messages per sender, fanout (32)
  --size B            bytes per line on the wire, newline included (64, min 36)
  --rate R            messages/s, all senders together (latency 20000, soak 500)
  --duration SECS     traffic time, latency (10) and soak (60)
  --churn PER_S       clients leaving and rejoining per second, soak (20)
  --churners K        clients that may leave, soak (a quarter of the clients)
  --sample-every SECS memory sample interval, soak (5)
  --server-pid PID    report the server's CPU seconds and RSS from /proc
  --src-ips LIST|N    spread client sockets over these local addresses
                      (comma-separated, or N for 127.0.0.1 .. 127.0.0.N)
  --connect-batch N   connects in flight at once (256; tutorial 4)
  --timeout SECS      hard limit for the whole run (300)
  --drain-timeout S   stop waiting after this long without a delivery (5)
  --seed N            seed for the soak's random churn (1)
  --json              print one JSON object instead of the table
  --quiet             no progress line
  -h, --help          this text

Exit status: 0 when the run had no errors (no loss, no reordering, no
disconnects), 1 when it had some, 2 on bad flags or a fatal I/O error.
";

struct Args {
    plan: Plan,
    opts: Options,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut p = pico_args::Arguments::from_env();
    if p.contains(["-h", "--help"]) {
        print!("{HELP}");
        std::process::exit(0);
    }
    let e = |e: pico_args::Error| e.to_string();
    let target = match p.opt_value_from_str::<_, String>("--target").map_err(e)? {
        Some(t) => {
            Target::parse(&t).ok_or(format!("unknown target {t:?} (chatroom, redis, tutorial)"))?
        }
        None => Target::Chatroom,
    };
    let port: Option<u16> = p.opt_value_from_str("--port").map_err(e)?;
    let addr: SocketAddr = match p.opt_value_from_str("--addr").map_err(e)? {
        Some(a) => a,
        None => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.unwrap_or(target.default_port()),
        ),
    };
    let clients: Option<usize> = p.opt_value_from_str("--clients").map_err(e)?;
    let senders: Option<usize> = p.opt_value_from_str("--senders").map_err(e)?;
    let messages: u32 = p
        .opt_value_from_str("--messages")
        .map_err(e)?
        .unwrap_or(2000);
    let window: u32 = p.opt_value_from_str("--window").map_err(e)?.unwrap_or(32);
    let size: usize = p.opt_value_from_str("--size").map_err(e)?.unwrap_or(64);
    let rate: Option<f64> = p.opt_value_from_str("--rate").map_err(e)?;
    let duration: Option<f64> = p.opt_value_from_str("--duration").map_err(e)?;
    let churn: f64 = p.opt_value_from_str("--churn").map_err(e)?.unwrap_or(20.0);
    let churners: Option<usize> = p.opt_value_from_str("--churners").map_err(e)?;
    let sample_every: f64 = p
        .opt_value_from_str("--sample-every")
        .map_err(e)?
        .unwrap_or(5.0);
    let server_pid: Option<u32> = p.opt_value_from_str("--server-pid").map_err(e)?;
    let src_ips = match p.opt_value_from_str::<_, String>("--src-ips").map_err(e)? {
        Some(s) => parse_src_ips(&s)?,
        None => Vec::new(),
    };
    let connect_batch: Option<usize> = p.opt_value_from_str("--connect-batch").map_err(e)?;
    let timeout: f64 = p
        .opt_value_from_str("--timeout")
        .map_err(e)?
        .unwrap_or(300.0);
    let drain_timeout: f64 = p
        .opt_value_from_str("--drain-timeout")
        .map_err(e)?
        .unwrap_or(5.0);
    let seed: u64 = p.opt_value_from_str("--seed").map_err(e)?.unwrap_or(1);
    let json = p.contains("--json");
    let quiet = p.contains("--quiet");
    let scenario_word: String = p
        .free_from_str()
        .map_err(|_| "missing scenario (try --help)".to_string())?;
    let scenario =
        Scenario::parse(&scenario_word).ok_or(format!("unknown scenario {scenario_word:?}"))?;
    let rest = p.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments: {rest:?}"));
    }

    let clients = clients.unwrap_or(match scenario {
        Scenario::Fanout | Scenario::Latency => 100,
        Scenario::Connections => 10_000,
        Scenario::Soak => 200,
    });
    let senders = senders.unwrap_or(if scenario == Scenario::Soak { 5 } else { 10 });
    let min_size = payload::HEADER_BYTES + 1;
    if size < min_size {
        return Err(format!("--size must be at least {min_size} bytes"));
    }
    if clients == 0 || (senders == 0 && scenario != Scenario::Connections) {
        return Err("need at least one client and one sender".into());
    }
    if senders > payload::PROBE_SENDER as usize {
        return Err("too many senders".into());
    }
    if target == Target::Tutorial && matches!(scenario, Scenario::Connections | Scenario::Soak) {
        // Every client is a Python thread, and a closed client makes its
        // thread spin forever: thousands of connections or churn would only
        // measure that.
        return Err("the tutorial server supports only fanout and latency runs".into());
    }
    let churners = churners
        .unwrap_or(clients / 4)
        .min(clients.saturating_sub(senders));
    let plan = Plan {
        scenario,
        clients,
        senders,
        messages,
        window: window.max(1),
        rate: rate.unwrap_or(if scenario == Scenario::Soak {
            500.0
        } else {
            20_000.0
        }),
        duration: Duration::from_secs_f64(duration.unwrap_or(if scenario == Scenario::Soak {
            60.0
        } else {
            10.0
        })),
        churn,
        churners: if scenario == Scenario::Soak {
            churners
        } else {
            0
        },
        sample_every: Duration::from_secs_f64(sample_every.max(0.1)),
        seed,
        timeout: Duration::from_secs_f64(timeout),
        drain_timeout: Duration::from_secs_f64(drain_timeout),
        server_pid,
        progress: !quiet,
    };
    let opts = Options {
        target,
        addr,
        src_ips,
        line_bytes: size,
        connect_batch: connect_batch
            .unwrap_or(if target == Target::Tutorial { 4 } else { 256 })
            .max(1),
        // Unique per run so two runs against one server never collide on names.
        name_prefix: format!("lt{:04x}-", std::process::id() & 0xffff),
    };
    Ok(Args { plan, opts, json })
}

/// `127.0.0.1,127.0.0.2` or a count `N` meaning 127.0.0.1 .. 127.0.0.N.
fn parse_src_ips(s: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok((1..=n)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect());
    }
    s.split(',')
        .map(|ip| {
            ip.trim()
                .parse()
                .map_err(|_| format!("bad address in --src-ips: {ip:?}"))
        })
        .collect()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match scenario::run(&args.plan, args.opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    match report.get("errors") {
        Some(report::Value::U(0)) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_ips() {
        let ip = |d| IpAddr::V4(Ipv4Addr::new(127, 0, 0, d));
        let cases: &[(&str, Result<Vec<IpAddr>, ()>)] = &[
            ("2", Ok(vec![ip(1), ip(2)])),
            ("127.0.0.5, 127.0.0.9", Ok(vec![ip(5), ip(9)])),
            ("127.0.0.x", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_src_ips(input).map_err(|_| ()), *want, "{input}");
        }
    }
}
