//! `loadtest`: a load generator for chat servers. This file is the command
//! line only: it parses flags (with the crate's shared `chatroom::cli`) into
//! a [`scenario::Plan`] and [`driver::Options`], runs the scenario and prints
//! its report (a summary table, JSON or CSV). It must not measure or count
//! anything.
//!
//! # Layout
//! - `payload`: the fixed-width message stamp (sender, sequence, send time).
//! - `wire`: per-target registration, framing and line decoding.
//! - `ws`: WebSocket client framing: the upgrade, masked frames out,
//!   the server's frames in.
//! - `base64`: the encoding of its keys (shared with the tests).
//! - `tally`: exact delivery counting and latency percentiles.
//! - `driver`: the mio event loop over every client socket.
//! - `scenario`: fanout, latency, connections and soak.
//! - `procstat`: server CPU and memory from `/proc`.
//! - `report`: summary table, JSON and CSV output.

mod driver;
mod payload;
mod procstat;
mod redisinfo;
mod report;
mod scenario;
mod tally;
mod wire;
mod ws;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chatroom::cli::{self, Args, CliError};
use chatroom::config::{DEFAULT_HTTPS_PORT, DEFAULT_HTTP_PORT, DEFAULT_TLS_PORT};
use driver::{Endpoint, Options, Tls};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use scenario::{Fatal, Plan, Scenario, Stop};
use wire::Target;

const HELP: &str = "\
loadtest: measure a chat server's fan-out, latency and capacity

USAGE:
  cargo run --release --example loadtest -- <SCENARIO> [FLAGS]

SCENARIOS:
  fanout       N clients in one room (or --rooms R); S of them send M lines
               each, at most W of their own unconfirmed (not yet echoed
               back) at a time
  latency      open loop: R messages/s in total from S senders for D seconds,
               each stamped with its intended send time
  connections  open and register C clients, then one broadcast to all
  soak         steady traffic for D seconds while clients leave and rejoin;
               server memory sampled (with --server-pid)

FLAGS (each once; --flag value or --flag=value):
  --target T          chatroom (default), redis or tutorial
  --addr HOST[:PORT]  server address, a name or an IP ([v6]:PORT for IPv6);
                      the port defaults to the target's (chatroom 5550,
                      --tls 5551, --ws 8080, --ws --tls 8443; redis 6379);
                      several, comma-separated, spread the clients over
                      them, client i on address i mod n [default: 127.0.0.1]
  --port N            server port on 127.0.0.1 (instead of --addr)
  --clients N         clients in the room (fanout/latency 100, connections
                      10000, soak 200)
  --senders S         sending clients, at most --clients (fanout/latency 10,
                      soak 5; fewer if there are fewer clients)
  --messages M        messages per sender, fanout (2000)
  --window W          unconfirmed messages per sender, fanout (32)
  --rooms R           spread the clients over R rooms, fanout on chatroom
                      (1): client i (on address i mod A of A --addr
                      addresses) sends /join after its name, into room
                      (i div A) mod R, so every room spans every address;
                      senders take the rooms in turn, and one room's
                      senders the addresses; delivery and one order are
                      checked per room
  --size B            bytes per line on the wire, newline included (64, min
                      36; over WebSocket the line without it, in one frame)
  --rate R            messages/s, all senders together (latency 20000,
                      soak 500)
  --duration SECS     traffic time, latency (10) and soak (60)
  --churn PER_S       clients leaving and rejoining per second, soak (20)
  --churners K        clients that may leave, soak (a quarter of the clients;
                      senders never leave, so K + S <= N)
  --sample-every SECS memory sample interval, soak (5)
  --seed N            seed for the soak's random churn (1)
  --server-pid PID    report the server's CPU seconds and RSS from /proc
  --cpu-pids LIST     also report the CPU seconds each of these processes
                      (comma-separated PIDs: other cluster nodes, Redis)
                      used during the traffic, as cpu_s_by_pid
  --redis-info ADDR   report what the Redis at HOST:PORT spent during the
                      traffic (bytes in and out, CPU), from its INFO
  --src-ips LIST|N    spread client sockets over these local addresses
                      (comma-separated, or N for 127.0.0.1 .. 127.0.0.N)
  --connect-batch N   connects in flight at once (256; tutorial 4)
  --timeout SECS      hard limit for the whole run (300, plus --duration)
  --drain-timeout S   stop waiting after this long without a delivery (5)
  --json              print every figure as one JSON object
  --csv               print every figure as CSV: a header line, a value line
  --quiet             no progress line
  -h, --help          this text

TRANSPORTS (every scenario runs over any of them; redis: --tls only):
  --tls               connect over TLS (the server's --tls-port; redis: its
                      tls-port, give --addr/--port)
  --ca FILE           trust only the CA certificate(s) in this PEM file
                      (default: the public web roots), with --tls
  --server-name NAME  the name the certificate must have, with --tls
                      [default: the host of each --addr]
  --ws                connect over WebSocket (GET /ws on the server's
                      --http-port; with --tls, its --https-port): one masked
                      text frame per line

OUTPUT: a summary table (deliveries/s, MB/s, latency percentiles, loss) on
stdout; a progress line on stderr when it is a terminal. Ctrl-C stops the
run and prints the partial summary; a second Ctrl-C exits at once.

EXIT STATUS: 0 the run had no errors (no loss, no reordering, no
disconnects); 1 it had some, or the server was down or went away; 2 bad
flags or a local I/O error; 130 interrupted by Ctrl-C.
";

/// The largest `--size`: far below the driver's 64 KiB line limit, leaving
/// room for the name the server puts in front.
const MAX_SIZE: usize = 60_000;

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    Run(Box<Cmd>),
}

/// A run, fully specified.
#[derive(Debug)]
struct Cmd {
    plan: Plan,
    opts: Options,
    output: Output,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Summary,
    Json,
    Csv,
}

/// Parses the arguments (without the program name).
fn parse(argv: Vec<OsString>) -> Result<Command, CliError> {
    let wants_help = argv
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-h" || a == "--help");
    if wants_help {
        return Ok(Command::Help);
    }
    let mut argv = argv.into_iter();
    let scenario = match argv.next() {
        None => return Err(CliError(format!("missing scenario: {}", scenario_names()))),
        Some(w) => match w.to_str() {
            Some(w) if w.starts_with('-') => {
                return Err(CliError(format!(
                    "the scenario comes first ({}), before {w}",
                    scenario_names()
                )))
            }
            Some(w) => Scenario::parse(w).ok_or_else(|| {
                CliError(format!(
                    "unknown scenario {w:?} (one of {})",
                    scenario_names()
                ))
            })?,
            None => return Err(CliError("the scenario is not UTF-8".into())),
        },
    };
    let mut a = Args::from_vec(argv.collect())?;
    let sc = scenario;
    use Scenario::*;

    let target = a.value("--target", target)?.unwrap_or(Target::Chatroom);
    let tls = a.switch("--tls");
    let ws = a.switch("--ws");
    let ca = a.value("--ca", |s| Ok::<_, String>(std::path::PathBuf::from(s)))?;
    let server_name = a.value("--server-name", server_name)?;
    let default_port = match (target, tls, ws) {
        (Target::Chatroom, false, true) => DEFAULT_HTTP_PORT,
        (Target::Chatroom, true, true) => DEFAULT_HTTPS_PORT,
        (Target::Chatroom, true, false) => DEFAULT_TLS_PORT,
        _ => target.default_port(),
    };
    let json = a.switch("--json");
    let csv = a.switch("--csv");
    let quiet = a.switch("--quiet");
    let port = a.value("--port", cli::number(1..=u16::MAX))?;
    let endpoints = a.value("--addr", endpoints(default_port))?;
    let clients = a.value("--clients", cli::number(1..=1_000_000))?;
    let senders = only(
        &mut a,
        sc,
        "--senders",
        &[Fanout, Latency, Soak],
        cli::number(1..=payload::PROBE_SENDER as usize - 1),
    )?;
    let messages = only(
        &mut a,
        sc,
        "--messages",
        &[Fanout],
        cli::number(1..=1_000_000_000),
    )?;
    let window = only(
        &mut a,
        sc,
        "--window",
        &[Fanout],
        cli::number(1..=1_000_000),
    )?;
    let rooms = only(&mut a, sc, "--rooms", &[Fanout], cli::number(1..=1_000_000))?;
    let size = a.value("--size", cli::number(payload::HEADER_BYTES + 1..=MAX_SIZE))?;
    let rate = only(&mut a, sc, "--rate", &[Latency, Soak], decimal(0.001, 1e9))?;
    let duration = only(
        &mut a,
        sc,
        "--duration",
        &[Latency, Soak],
        decimal(0.001, 864_000.0),
    )?;
    let churn = only(&mut a, sc, "--churn", &[Soak], decimal(0.0, 1e6))?;
    let churners = only(
        &mut a,
        sc,
        "--churners",
        &[Soak],
        cli::number(0..=1_000_000),
    )?;
    let sample_every = only(&mut a, sc, "--sample-every", &[Soak], decimal(0.1, 3600.0))?;
    let seed = only(&mut a, sc, "--seed", &[Soak], cli::number(0..=u64::MAX))?;
    let server_pid = a.value("--server-pid", server_pid)?;
    let cpu_pids = a
        .value("--cpu-pids", |s| {
            s.split(',').map(self::server_pid).collect()
        })?
        .unwrap_or_default();
    let redis_info = a.value("--redis-info", |s| {
        self::endpoints(6379)(s).and_then(|mut e| match e.len() {
            1 => Ok(e.remove(0).addr),
            _ => Err("one address only".to_string()),
        })
    })?;
    let src_ips = a.value("--src-ips", parse_src_ips)?.unwrap_or_default();
    let connect_batch = a.value("--connect-batch", cli::number(1..=1_000_000))?;
    let timeout = a.value("--timeout", decimal(0.001, 1e7))?;
    let drain_timeout = a.value("--drain-timeout", decimal(0.001, 3600.0))?;
    a.finish()?;

    // Combinations that cannot work.
    if json && csv {
        return Err(CliError("--csv: cannot be combined with --json".into()));
    }
    // Redis speaks TLS on its own tls-port (to compare TLS with TLS); only
    // chatroom speaks WebSocket, and the tutorial neither.
    if (target == Target::Tutorial && tls) || (target != Target::Chatroom && ws) {
        let flag = if ws { "--ws" } else { "--tls" };
        return Err(CliError(format!(
            "{flag}: the {} target does not speak it",
            target.name()
        )));
    }
    if !tls && ca.is_some() {
        return Err(CliError("--ca: only with --tls".into()));
    }
    if !tls && server_name.is_some() {
        return Err(CliError("--server-name: only with --tls".into()));
    }
    if target == Target::Tutorial && matches!(sc, Connections | Soak) {
        // Every client is a Python thread, and a closed client makes its
        // thread spin forever: thousands of connections or churn would only
        // measure that.
        return Err(CliError(format!(
            "--target: the tutorial server supports only fanout and latency runs, not {}",
            sc.name()
        )));
    }
    let endpoints = match (endpoints, port) {
        (Some(_), Some(_)) => {
            return Err(CliError(
                "--port: cannot be combined with --addr (give HOST:PORT to --addr)".into(),
            ))
        }
        (Some(e), None) => e,
        (None, port) => vec![Endpoint {
            addr: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port.unwrap_or(default_port),
            ),
            host: Ipv4Addr::LOCALHOST.to_string(),
        }],
    };
    let tls = match tls {
        false => None,
        true => Some(Tls {
            config: client_config(ca.as_deref())?,
            names: endpoints
                .iter()
                .map(|e| match &server_name {
                    Some(name) => Ok(name.clone()),
                    None => ServerName::try_from(e.host.clone()).map_err(|_| {
                        CliError(format!(
                            "--addr: {:?} is not a name a certificate can have \
                             (give --server-name)",
                            e.host
                        ))
                    }),
                })
                .collect::<Result<_, _>>()?,
        }),
    };
    if let Some(ip) = src_ips.first() {
        if let Some(ep) = endpoints.iter().find(|e| e.addr.is_ipv4() != ip.is_ipv4()) {
            return Err(CliError(format!(
                "--src-ips: {ip} cannot reach {} (one is IPv4, the other IPv6)",
                ep.addr
            )));
        }
    }

    let clients = clients.unwrap_or(match sc {
        Fanout | Latency => 100,
        Connections => 10_000,
        Soak => 200,
    });
    let senders = match (sc, senders) {
        (Connections, _) => 1,
        (_, Some(s)) if s > clients => {
            return Err(CliError(format!(
                "--senders: {s} senders need at least {s} clients (--clients is {clients})"
            )))
        }
        (_, Some(s)) => s,
        (Soak, None) => clients.min(5),
        (_, None) => clients.min(10),
    };
    let rooms = rooms.unwrap_or(1);
    if rooms > 1 && target != Target::Chatroom {
        return Err(CliError(format!(
            "--rooms: only chatroom has rooms (the {} target has one channel)",
            target.name()
        )));
    }
    if rooms > 1 {
        // Every room needs a member at every address, and every sender a
        // place in its room (see `scenario::room_sender`).
        let addrs = endpoints.len();
        let need = (0..senders)
            .map(|i| scenario::room_sender(i, rooms, addrs) + 1)
            .max()
            .unwrap_or(0)
            .max(rooms * addrs);
        if clients < need {
            let over = match addrs {
                1 => String::new(),
                n => format!(" over {n} addresses"),
            };
            return Err(CliError(format!(
                "--rooms: {rooms} rooms{over} with {senders} senders need at least {need} \
                 clients (--clients is {clients})"
            )));
        }
    }
    let churners = match (sc, churners) {
        (Soak, Some(k)) if k + senders > clients => {
            return Err(CliError(format!(
                "--churners: {k} churners and {senders} senders (who never leave) need at \
                 least {} clients (--clients is {clients})",
                k + senders
            )))
        }
        (Soak, Some(k)) => k,
        (Soak, None) => (clients / 4).min(clients - senders),
        _ => 0,
    };
    if churn.is_some_and(|c| c > 0.0) && churners == 0 {
        return Err(CliError(
            "--churn: no client may leave (--churners is 0, or every client sends)".into(),
        ));
    }
    let duration = match sc {
        Latency | Soak => duration.unwrap_or(if sc == Soak { 60.0 } else { 10.0 }),
        _ => 0.0,
    };
    let timeout = match timeout {
        Some(t) if t <= duration => {
            return Err(CliError(format!(
                "--timeout: {t} s would end the run before its {duration} s of traffic"
            )))
        }
        Some(t) => t,
        None => 300.0 + duration,
    };

    let plan = Plan {
        scenario: sc,
        clients,
        senders,
        messages: messages.unwrap_or(2000),
        window: window.unwrap_or(32),
        rate: rate.unwrap_or(if sc == Soak { 500.0 } else { 20_000.0 }),
        duration: Duration::from_secs_f64(duration),
        churn: churn.unwrap_or(20.0),
        churners,
        sample_every: Duration::from_secs_f64(sample_every.unwrap_or(5.0)),
        seed: seed.unwrap_or(1),
        timeout: Duration::from_secs_f64(timeout),
        drain_timeout: Duration::from_secs_f64(drain_timeout.unwrap_or(5.0)),
        server_pid,
        cpu_pids,
        redis_info,
        progress: !quiet,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let opts = Options {
        target,
        endpoints,
        src_ips,
        line_bytes: size.unwrap_or(64),
        connect_batch: connect_batch.unwrap_or(if target == Target::Tutorial { 4 } else { 256 }),
        // Unique per run so two runs against one server never collide on names.
        name_prefix: format!("lt{:04x}-", std::process::id() & 0xffff),
        rooms,
        tls,
        ws,
    };
    let output = if json {
        Output::Json
    } else if csv {
        Output::Csv
    } else {
        Output::Summary
    };
    Ok(Command::Run(Box::new(Cmd { plan, opts, output })))
}

fn scenario_names() -> String {
    let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
    names.join(", ")
}

/// Reads a flag that only `scenarios` use: giving it to another is an error,
/// since it would silently do nothing.
fn only<T>(
    a: &mut Args,
    sc: Scenario,
    flag: &'static str,
    scenarios: &[Scenario],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, CliError> {
    let v = a.value(flag, parse)?;
    if v.is_some() && !scenarios.contains(&sc) {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
        return Err(CliError(format!(
            "{flag}: not used by {} (only by {})",
            sc.name(),
            names.join(", ")
        )));
    }
    Ok(v)
}

/// `--target`.
fn target(s: &str) -> Result<Target, String> {
    Target::parse(s).ok_or_else(|| format!("must be chatroom, redis or tutorial (got {s:?})"))
}

/// A number from `min` to `max`, fractions allowed (`0.5`).
fn decimal(min: f64, max: f64) -> impl Fn(&str) -> Result<f64, String> {
    move |s| match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(format!("must be a number from {min} to {max} (got {s:?})")),
    }
}

/// `--server-name`: a DNS name or an IP address.
fn server_name(s: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(s.to_string()).map_err(|_| format!("not a DNS name or IP address: {s:?}"))
}

/// The TLS client config: rustls with the ring provider, its safe default
/// protocol versions, trusting the CA certificates in `ca` or, without one,
/// the public web roots.
fn client_config(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, CliError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| {
                CliError(format!(
                    "--ca: cannot read {shown}: {}",
                    driver::describe(&e)
                ))
            })?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError(format!("--ca: {shown}: {e}")))?;
            if certs.is_empty() {
                return Err(CliError(format!("--ca: no certificate in {shown}")));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| CliError(format!("--ca: {shown}: {e}")))?;
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| CliError(format!("--tls: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `--server-pid`: a process that exists now.
fn server_pid(s: &str) -> Result<u32, String> {
    let pid = cli::number(1..=u32::MAX)(s)?;
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        Ok(pid)
    } else {
        Err(format!("no process {pid}"))
    }
}

/// `HOST[:PORT]`, or several comma-separated, each resolved; `default_port`
/// where none is given.
fn endpoints(default_port: u16) -> impl Fn(&str) -> Result<Vec<Endpoint>, String> {
    move |s| {
        s.split(',')
            .map(|item| {
                let item = item.trim();
                if item.is_empty() {
                    return Err(format!("empty address in {s:?}"));
                }
                Ok(Endpoint {
                    addr: cli::address(default_port)(item)?,
                    host: cli::split_host_port(item)?.0.to_string(),
                })
            })
            .collect()
    }
}

/// `127.0.0.1,127.0.0.2` or a count `N` meaning 127.0.0.1 .. 127.0.0.N.
fn parse_src_ips(s: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(n) = s.parse::<u8>() {
        if n == 0 {
            return Err("must name at least one address (got 0)".into());
        }
        return Ok((1..=n)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect());
    }
    s.split(',')
        .map(|ip| {
            ip.trim()
                .parse()
                .map_err(|_| format!("not an IP address: {:?}", ip.trim()))
        })
        .collect()
}

/// Ctrl-C sets `flag` (the run stops and reports); once it is set, a second
/// Ctrl-C exits at once with status 130.
fn on_ctrl_c(flag: &Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::SIGINT;
    // The exit must be registered first: it checks the flag before the
    // second handler sets it.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(flag))?;
    signal_hook::flag::register(SIGINT, Arc::clone(flag))?;
    Ok(())
}

fn main() -> ExitCode {
    let cmd = match parse(std::env::args_os().skip(1).collect()) {
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(cmd)) => cmd,
        Err(e) => return cli::fail("loadtest", &e),
    };
    if let Err(e) = on_ctrl_c(&cmd.plan.interrupt) {
        eprintln!("loadtest: cannot catch Ctrl-C: {}", driver::describe(&e));
        return ExitCode::from(2);
    }
    let outcome = match scenario::run(&cmd.plan, cmd.opts) {
        Ok(o) => o,
        Err(Fatal::Down(why)) => {
            eprintln!("loadtest: {why}");
            return ExitCode::from(1);
        }
        Err(Fatal::Io(e)) => {
            eprintln!("loadtest: {}", driver::describe(&e));
            return ExitCode::from(2);
        }
    };
    let report = &outcome.report;
    match cmd.output {
        Output::Json => println!("{}", report.to_json()),
        Output::Csv => print!("{}", report.to_csv()),
        Output::Summary => print!("{}", report.to_summary()),
    }
    let run_s = match report.get("run_s") {
        Some(report::Value::F(s, _)) => *s,
        _ => 0.0,
    };
    match outcome.stop {
        Stop::ServerGone(why) => {
            eprintln!("loadtest: {why}; stopped after {run_s:.1} s");
            ExitCode::from(1)
        }
        Stop::Interrupted => {
            eprintln!("loadtest: interrupted after {run_s:.1} s; the summary is partial");
            ExitCode::from(130)
        }
        Stop::TimedOut => {
            eprintln!("loadtest: timed out after {run_s:.1} s (--timeout)");
            ExitCode::from(1)
        }
        Stop::Complete => match report.get("errors") {
            Some(report::Value::U(0)) => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_cmd(args: &str) -> Result<Cmd, String> {
        let argv = args.split_whitespace().map(OsString::from).collect();
        match parse(argv) {
            Ok(Command::Run(c)) => Ok(*c),
            Ok(Command::Help) => Err("help".into()),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn parse_errors_name_the_flag() {
        // (arguments, the whole error message)
        let cases: &[(&str, &str)] = &[
            ("", "missing scenario: fanout, latency, connections, soak"),
            (
                "--clients 5 fanout",
                "the scenario comes first (fanout, latency, connections, soak), before --clients",
            ),
            (
                "fan",
                "unknown scenario \"fan\" (one of fanout, latency, connections, soak)",
            ),
            (
                "fanout --clients x",
                "--clients: must be a whole number 1-1000000 (got \"x\")",
            ),
            (
                "fanout --clients=0",
                "--clients: must be a whole number 1-1000000 (got \"0\")",
            ),
            ("fanout --clients", "--clients: needs a value"),
            (
                "fanout --clients 5 --clients=6",
                "--clients: given more than once",
            ),
            ("fanout --json --json", "--json: given more than once"),
            ("fanout --frob 1", "--frob: unknown flag"),
            ("fanout extra", "unexpected argument \"extra\""),
            (
                "fanout --size 10",
                "--size: must be a whole number 36-60000 (got \"10\")",
            ),
            (
                "latency --rate fast",
                "--rate: must be a number from 0.001 to 1000000000 (got \"fast\")",
            ),
            (
                "fanout --target nginx",
                "--target: must be chatroom, redis or tutorial (got \"nginx\")",
            ),
            (
                "fanout --src-ips 127.0.0.x",
                "--src-ips: not an IP address: \"127.0.0.x\"",
            ),
            ("fanout --addr ,", "--addr: empty address in \",\""),
            (
                "fanout --addr 127.0.0.1:99999",
                "--addr: must be a whole number 0-65535 (got \"99999\")",
            ),
            (
                "fanout --server-pid 0",
                "--server-pid: must be a whole number 1-4294967295 (got \"0\")",
            ),
            (
                "fanout --cpu-pids 1,x",
                "--cpu-pids: must be a whole number 1-4294967295 (got \"x\")",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(run_cmd(args).err().as_deref(), Some(*want), "{args}");
        }
    }

    #[test]
    fn combinations_that_cannot_work_are_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "fanout --senders 20 --clients 10",
                "--senders: 20 senders need at least 20 clients (--clients is 10)",
            ),
            (
                "soak --clients 10 --senders 5 --churners 6",
                "--churners: 6 churners and 5 senders (who never leave) need at least 11 \
                 clients (--clients is 10)",
            ),
            (
                "soak --clients 5 --senders 5 --churn 3",
                "--churn: no client may leave (--churners is 0, or every client sends)",
            ),
            (
                "fanout --json --csv",
                "--csv: cannot be combined with --json",
            ),
            (
                "fanout --port 5551 --addr 127.0.0.1",
                "--port: cannot be combined with --addr (give HOST:PORT to --addr)",
            ),
            (
                "latency --messages 5",
                "--messages: not used by latency (only by fanout)",
            ),
            (
                "connections --senders 2",
                "--senders: not used by connections (only by fanout, latency, soak)",
            ),
            (
                "fanout --target redis --rooms 2",
                "--rooms: only chatroom has rooms (the redis target has one channel)",
            ),
            (
                "fanout --clients 4 --rooms 5",
                "--rooms: 5 rooms with 4 senders need at least 5 clients (--clients is 4)",
            ),
            (
                "fanout --clients 4 --rooms 4 --addr 127.0.0.1:1,127.0.0.1:2",
                "--rooms: 4 rooms over 2 addresses with 4 senders need at least 8 clients \
                 (--clients is 4)",
            ),
            (
                "latency --rooms 2",
                "--rooms: not used by latency (only by fanout)",
            ),
            (
                "fanout --duration 5",
                "--duration: not used by fanout (only by latency, soak)",
            ),
            (
                "soak --target tutorial",
                "--target: the tutorial server supports only fanout and latency runs, not soak",
            ),
            (
                "latency --duration 20 --timeout 10",
                "--timeout: 10 s would end the run before its 20 s of traffic",
            ),
            ("fanout --ca ca.pem", "--ca: only with --tls"),
            (
                "fanout --server-name localhost",
                "--server-name: only with --tls",
            ),
            (
                "fanout --target redis --ws",
                "--ws: the redis target does not speak it",
            ),
            (
                "fanout --target tutorial --tls",
                "--tls: the tutorial target does not speak it",
            ),
            (
                "fanout --tls --ca /no/such/ca.pem",
                "--ca: cannot read /no/such/ca.pem: No such file or directory",
            ),
            (
                "fanout --tls --server-name a_b!",
                "--server-name: not a DNS name or IP address: \"a_b!\"",
            ),
            (
                "fanout --addr [::1]:5550 --src-ips 2",
                "--src-ips: 127.0.0.1 cannot reach [::1]:5550 (one is IPv4, the other IPv6)",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(run_cmd(args).err().as_deref(), Some(*want), "{args}");
        }
    }

    #[test]
    fn defaults_and_both_value_forms() {
        let c = run_cmd("fanout").unwrap();
        assert_eq!(
            (c.plan.clients, c.plan.senders, c.plan.churners),
            (100, 10, 0)
        );
        assert_eq!(c.opts.endpoints[0].addr, "127.0.0.1:5550".parse().unwrap());
        assert_eq!(c.output, Output::Summary);
        let c = run_cmd("fanout --clients=4 --window 3 --csv").unwrap();
        // a default adapts to the clients there are; a given value never does
        assert_eq!((c.plan.clients, c.plan.senders, c.plan.window), (4, 4, 3));
        assert_eq!(c.output, Output::Csv);
        let c = run_cmd("soak --clients 40 --duration=0.5").unwrap();
        assert_eq!((c.plan.senders, c.plan.churners), (5, 10));
        assert_eq!(c.plan.duration, Duration::from_millis(500));
        assert_eq!(c.plan.timeout, Duration::from_secs_f64(300.5));
        let c = run_cmd("connections --target redis --port 7000").unwrap();
        assert_eq!(c.plan.senders, 1);
        assert_eq!(c.opts.endpoints[0].addr, "127.0.0.1:7000".parse().unwrap());
        assert!(matches!(run_cmd("fanout --clients x --help"), Err(h) if h == "help"));
    }

    #[test]
    fn transports_and_their_default_ports() {
        // (arguments, transport, port)
        let cases: &[(&str, &str, u16)] = &[
            ("fanout", "tcp", 5550),
            ("fanout --tls", "tls", 5551),
            ("fanout --ws", "ws", 8080),
            ("fanout --ws --tls", "wss", 8443),
            ("fanout --ws --tls --addr=localhost:9", "wss", 9),
            ("fanout --target redis", "tcp", 6379),
        ];
        for (args, transport, port) in cases {
            let c = run_cmd(args).unwrap();
            assert_eq!(c.opts.transport_name(), *transport, "{args}");
            assert_eq!(c.opts.endpoints[0].addr.port(), *port, "{args}");
        }
        // the certificate name: each address's host, or --server-name for all
        let names = |args: &str| {
            let c = run_cmd(args).unwrap();
            let tls = c.opts.tls.expect("--tls");
            tls.names
                .iter()
                .map(|n| n.to_str().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("fanout --tls --addr localhost:1,127.0.0.1:2"),
            ["localhost", "127.0.0.1"]
        );
        assert_eq!(
            names("fanout --tls --addr localhost,127.0.0.1 --server-name chat.example"),
            ["chat.example", "chat.example"]
        );
    }

    #[test]
    fn addresses_and_host_names() {
        // Names resolve to a loopback address (IPv4 or IPv6, as the system
        // says), shown here as `loopback`.
        let one = |args: &str| {
            let c = run_cmd(args).unwrap();
            let e = &c.opts.endpoints;
            e.iter()
                .map(|e| match e.host.parse::<IpAddr>() {
                    Ok(_) => format!("{} {}", e.host, e.addr),
                    Err(_) if e.addr.ip().is_loopback() => {
                        format!("{} loopback:{}", e.host, e.addr.port())
                    }
                    Err(_) => format!("{} {}", e.host, e.addr),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let cases: &[(&str, &str)] = &[
            ("fanout --addr localhost", "localhost loopback:5550"),
            ("fanout --addr=localhost:7", "localhost loopback:7"),
            (
                "fanout --addr localhost --target redis",
                "localhost loopback:6379",
            ),
            ("fanout --addr [::1]:80", "::1 [::1]:80"),
            ("fanout --addr ::1", "::1 [::1]:5550"),
            (
                "fanout --addr 127.0.0.1:1,localhost:2",
                "127.0.0.1 127.0.0.1:1 | localhost loopback:2",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(one(args), *want, "{args}");
        }
    }

    #[test]
    fn src_ips() {
        let ip = |d| IpAddr::V4(Ipv4Addr::new(127, 0, 0, d));
        let cases: &[(&str, Result<Vec<IpAddr>, ()>)] = &[
            ("2", Ok(vec![ip(1), ip(2)])),
            ("127.0.0.5, 127.0.0.9", Ok(vec![ip(5), ip(9)])),
            ("127.0.0.x", Err(())),
            ("0", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_src_ips(input).map_err(|_| ()), *want, "{input}");
        }
    }
}
