//! The `chatroom` binary: parses flags, sets up logging and runs the server
//! library. Nothing here is needed by tests; all behaviour lives in the lib.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use chatroom::cli::{self, Args, CliError};
use chatroom::cluster::link::RedisUrl;
use chatroom::cluster::ClusterConfig;
use chatroom::config::{
    default_max_clients, DEFAULT_HTTPS_PORT, DEFAULT_HTTP_PORT, DEFAULT_TLS_PORT,
    MAX_HISTORY_LINES, MAX_LINE_LIMIT,
};
use chatroom::limits::flood::Flood;
use chatroom::limits::peers::PeerLimits;
use chatroom::protocol::DEFAULT_PORT;
use chatroom::tls::Identity;
use chatroom::{Config, Server, Stopped};
use log::LevelFilter;

const HELP: &str = "\
chatroom: a chat server (one single-threaded mio event loop)

USAGE:
  chatroom [OPTIONS]

OPTIONS:
  --bind ADDR           address or host name to listen on [default: 127.0.0.1]
  --port N|off          port for chat over plain TCP; 0 picks a free one
                        [default: 5550]
  --max-line BYTES      longest accepted line [default: 4096]
  --max-outbuf BYTES    unsent output before a client is dropped as a slow
                        consumer [default: 1048576]
  --login-timeout SECS  time to register a name [default: 30]
  --max-clients N       most simultaneous connections [default: the open-file
                        limit less 32]
  --notice-limit N      rooms above N members get join/leave summaries
                        [default: 100]
  --history N           recent lines each room keeps and shows to joiners;
                        0 turns it off [default: 20]
  --motd FILE           message of the day, shown after the welcome
  --log-level LEVEL     off, error, warn, info, debug or trace [default: info;
                        RUST_LOG is honoured when this flag is absent]
  -h, --help            print this help
  -V, --version         print the version

WEB (a chat page in the browser; see README.md):
  --http-port N|off     port for the web page and its WebSocket (GET /ws)
                        [default: 8080]
  --https-port N|off    the same over TLS, with --tls-cert/--tls-key
                        [default: 8443]
  --allowed-origin LIST comma-separated origins (https://host[:port]) whose
                        pages may open the WebSocket besides the page's own
  --ws-ping SECS        ping a quiet WebSocket client after SECS; drop it
                        after twice that without a word [default: 30]

CLUSTER (several processes as one chat; see docs/CLUSTER.md):
  --redis URL           join the cluster through Redis at
                        redis://[user:password@]host[:port][/db]
  --node-name NAME      this node's name in the cluster, A-Z a-z 0-9 . _ -
                        [default: host-pid-random]
  --reuse-port          bind with SO_REUSEPORT so several processes share
                        the ports (one per core)

TLS (see README.md, Running with TLS):
  --tls-cert FILE       PEM certificate chain, the server's own first
  --tls-key FILE        PEM private key (PKCS#8, RSA or EC)
  --tls-port N|off      port for chat over TLS, with the two above
                        [default: 5551]
  SIGHUP reloads the certificate and key for new connections; a bad new
  pair keeps the old one (the error is logged).

LIMITS ON HOSTILE CLIENTS (see SECURITY.md):
  --flood-rate N        flood budget refilled per second, in units (a line
                        costs 1 unit plus 1 per 32 KiB of output it causes);
                        0 turns flood control off [default: 10]
  --flood-burst N       units a client may spend at once [default: 30]
  --max-per-ip N        connections one address may hold (IPv6: per /64);
                        0 = no limit [default: 16]
  --connect-rate N      new connections per second per address, twice that
                        at once; 0 = no limit [default: 10]
  --limit-loopback      apply the two limits above to loopback addresses too
                        (exempt by default: local tools and load tests)
  --keepalive SECS|off  TCP keepalive idle time; a vanished peer is found
                        within about 1.5 times this [default: 60]
  --write-timeout SECS  drop a client whose output makes no progress this
                        long [default: 30]
  --metrics [ADDR:]PORT serve Prometheus metrics at GET /metrics (ADDR
                        defaults to 127.0.0.1) [default: off]

TIMEOUTS WHILE CLOSING (seconds):
  --close-flush-timeout  a closing client takes its output [default: 5]
  --linger-timeout       after our FIN, wait for the client's [default: 2]
  --shutdown-timeout     shutdown waits for clients [default: 3]
  --request-timeout      an HTTP client sends its request [default: 10]

Logs go to stderr; `listening on ADDR:PORT` is logged once bound.
SIGINT/SIGTERM shut down gracefully; a second signal exits at once (status 1).
Protocol: docs/PROTOCOL.md.
";

struct Parsed {
    config: Config,
    log_level: Option<LevelFilter>,
}

fn parse(mut args: Args) -> Result<Parsed, CliError> {
    let d = Config::default();
    let ip = args
        .value("--bind", |s| cli::address(0)(s).map(|a| a.ip()))?
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let port = args
        .value("--port", cli::port_or_off)?
        .unwrap_or(Some(DEFAULT_PORT));
    let tls_cert = args.value("--tls-cert", |s| Ok::<_, String>(PathBuf::from(s)))?;
    let tls_key = args.value("--tls-key", |s| Ok::<_, String>(PathBuf::from(s)))?;
    let tls_identity = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(Identity { cert, key }),
        (None, None) => None,
        (Some(_), None) => return Err(CliError("--tls-cert needs --tls-key".into())),
        (None, Some(_)) => return Err(CliError("--tls-key needs --tls-cert".into())),
    };
    let tls_port = match (&tls_identity, args.value("--tls-port", cli::port_or_off)?) {
        (Some(_), port) => port.unwrap_or(Some(DEFAULT_TLS_PORT)),
        (None, Some(Some(_))) => {
            return Err(CliError("--tls-port needs --tls-cert and --tls-key".into()))
        }
        (None, _) => None,
    };
    let http_port = args
        .value("--http-port", cli::port_or_off)?
        .unwrap_or(Some(DEFAULT_HTTP_PORT));
    let https_port = match (&tls_identity, args.value("--https-port", cli::port_or_off)?) {
        (Some(_), port) => port.unwrap_or(Some(DEFAULT_HTTPS_PORT)),
        (None, Some(Some(_))) => {
            return Err(CliError(
                "--https-port needs --tls-cert and --tls-key".into(),
            ))
        }
        (None, _) => None,
    };
    let node_name = args.value("--node-name", node_name)?;
    let cluster = match args.value("--redis", |s| s.parse::<RedisUrl>())? {
        Some(url) => Some(ClusterConfig {
            addr: resolve(&url)?,
            node: node_name.unwrap_or_else(default_node_name),
            url,
        }),
        None if node_name.is_some() => {
            return Err(CliError("--node-name needs --redis".into()));
        }
        None => None,
    };
    let secs = cli::seconds(1..=365 * 24 * 3600);
    let flood = Flood {
        rate: args
            .value("--flood-rate", cli::number(0..=1_000_000))?
            .unwrap_or(d.flood.rate),
        burst: args
            .value("--flood-burst", cli::number(1..=1_000_000))?
            .unwrap_or(d.flood.burst),
    };
    let peers = PeerLimits {
        max_per_ip: args
            .value("--max-per-ip", cli::number(0..=1_000_000))?
            .unwrap_or(d.peers.max_per_ip),
        connect_rate: args
            .value("--connect-rate", cli::number(0..=1_000_000))?
            .unwrap_or(d.peers.connect_rate),
        limit_loopback: args.switch("--limit-loopback"),
    };
    let metrics = args.value("--metrics", |s| match cli::port(s) {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => cli::address(0)(s),
    })?;
    let config = Config {
        addr: SocketAddr::new(ip, port.unwrap_or(0)),
        plain: port.is_some(),
        tls_addr: tls_port.map(|p| SocketAddr::new(ip, p)),
        tls_identity,
        http: http_port.map(|p| SocketAddr::new(ip, p)),
        https: https_port.map(|p| SocketAddr::new(ip, p)),
        allowed_origins: args
            .value("--allowed-origin", |s| {
                Ok::<_, String>(s.split(',').map(|o| o.trim().to_owned()).collect())
            })?
            .unwrap_or_default(),
        ws_ping: args.value("--ws-ping", &secs)?.unwrap_or(d.ws_ping),
        cluster,
        reuse_port: args.switch("--reuse-port"),
        max_line: args
            .value("--max-line", cli::number(64..=MAX_LINE_LIMIT))?
            .unwrap_or(d.max_line),
        max_outbuf: args
            .value("--max-outbuf", cli::number(1..=1 << 30))?
            .unwrap_or(d.max_outbuf),
        login_timeout: args
            .value("--login-timeout", &secs)?
            .unwrap_or(d.login_timeout),
        max_clients: args
            .value("--max-clients", cli::number(1..=10_000_000))?
            .unwrap_or_else(default_max_clients),
        notice_limit: args
            .value("--notice-limit", cli::number(0..=10_000_000))?
            .unwrap_or(d.notice_limit),
        close_flush_timeout: args
            .value("--close-flush-timeout", &secs)?
            .unwrap_or(d.close_flush_timeout),
        linger_timeout: args
            .value("--linger-timeout", &secs)?
            .unwrap_or(d.linger_timeout),
        shutdown_timeout: args
            .value("--shutdown-timeout", &secs)?
            .unwrap_or(d.shutdown_timeout),
        write_timeout: args
            .value("--write-timeout", &secs)?
            .unwrap_or(d.write_timeout),
        keepalive: args
            .value("--keepalive", cli::seconds_or_off(1..=7200))?
            .unwrap_or(d.keepalive),
        request_timeout: args
            .value("--request-timeout", &secs)?
            .unwrap_or(d.request_timeout),
        history: args
            .value("--history", cli::number(0..=MAX_HISTORY_LINES))?
            .unwrap_or(d.history),
        motd: args.value("--motd", read_motd)?.unwrap_or_default(),
        flood,
        peers,
        metrics,
        handle_signals: true,
    };
    let log_level = args.value("--log-level", cli::log_level)?;
    args.finish()?;
    // Ranges that depend on other settings (--max-outbuf against --max-line).
    config.validate().map_err(|e| CliError(e.to_string()))?;
    Ok(Parsed { config, log_level })
}

/// A node name: 1-64 of A-Z a-z 0-9 . _ - (it goes into Redis key names).
fn node_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("must be 1-64 of A-Z a-z 0-9 . _ - (got {s:?})"))
    }
}

/// `host-pid-random`: unique per process, readable in logs.
fn default_node_name() -> String {
    let mut buf = [0u8; 64];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end])
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(32)
            .collect()
    } else {
        String::from("node")
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{:04x}", std::process::id(), nanos & 0xffff)
}

/// Resolves the Redis host once, at startup (the loop never blocks on DNS).
fn resolve(url: &RedisUrl) -> Result<SocketAddr, CliError> {
    use std::net::ToSocketAddrs as _;
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| CliError(format!("--redis: cannot resolve {}: {e}", url.host)))?
        .next()
        .ok_or_else(|| CliError(format!("--redis: {} has no address", url.host)))
}

/// The lines of a message-of-the-day file (blank lines kept, line endings
/// dropped); the error names the file.
fn read_motd(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect())
}

fn main() -> ExitCode {
    let mut args = match Args::from_env() {
        Ok(args) => args,
        Err(e) => return cli::fail("chatroom", &e),
    };
    if args.switch(["-h", "--help"]) {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    if args.switch(["-V", "--version"]) {
        println!("chatroom {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let parsed = match parse(args) {
        Ok(parsed) => parsed,
        Err(e) => return cli::fail("chatroom", &e),
    };
    let logger = simple_logger::SimpleLogger::new();
    let logger = match parsed.log_level {
        Some(level) => logger.with_level(level),
        None => logger.with_level(LevelFilter::Info).env(),
    };
    if let Err(e) = logger.init() {
        eprintln!("chatroom: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    let server = match Server::bind(parsed.config) {
        Ok(server) => server,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            log::error!("{e} (another server running? --port 0 picks a free port)");
            return ExitCode::FAILURE;
        }
        // A certificate or key that cannot be used: a usage error.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            eprintln!("chatroom: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match server.run() {
        Ok(Stopped::Graceful | Stopped::DeadlineExpired(_)) => ExitCode::SUCCESS,
        // Told in the log ("second signal: exiting now (forced)"); the
        // status says it too, so scripts can tell it from a clean stop.
        Ok(Stopped::Forced) => ExitCode::FAILURE,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
