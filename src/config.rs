//! Server settings, their defaults and their sane ranges. Plain data plus
//! [`Config::validate`], which [`crate::Server::bind`] calls so that no
//! setting, however it was built, can make the loop misbehave. Parsing flags
//! is `main.rs`'s job and enforcing limits the server's.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::cluster::ClusterConfig;
use crate::framing::DEFAULT_MAX_LINE_BYTES;
use crate::limits::flood::Flood;
use crate::limits::peers::PeerLimits;
use crate::protocol::DEFAULT_PORT;
use crate::tls::Identity;

/// Default port of the TLS chat listener (`--tls-port`).
pub const DEFAULT_TLS_PORT: u16 = 5551;
/// Default port of the web page and WebSocket (`--http-port`).
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default port of the web page and WebSocket over TLS (`--https-port`).
pub const DEFAULT_HTTPS_PORT: u16 = 8443;
/// Default interval between pings to a quiet WebSocket client.
pub const DEFAULT_WS_PING: Duration = Duration::from_secs(30);

/// Default bound on one client's unsent output before it counts as a slow
/// consumer and is disconnected.
pub const DEFAULT_MAX_OUTBUF_BYTES: usize = 1 << 20;
/// Default time a connection has to register a name.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default room size above which joins and leaves are summarised.
pub const DEFAULT_NOTICE_LIMIT: usize = 100;
/// Default time a closing client (after `/quit`, EOF or an error sent to
/// it) has to take what is queued for it.
pub const DEFAULT_CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time we wait, after our FIN, for the peer's EOF before closing.
pub const DEFAULT_LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time shutdown waits for clients to take their queued output.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time a client's pending output may make no progress.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default idle time before TCP keepalive probes start; probes then go every
/// sixth of that (at least 1 s), three of them.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);
/// Default time an HTTP client (metrics, web page) has to send its request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors kept back from clients for the listener, the poller, the
/// signal pipe, the waker, stdio, logging and refusals being written.
pub const RESERVED_FDS: usize = 32;

/// The most history lines a room may keep.
pub const MAX_HISTORY_LINES: usize = 1000;
/// The most lines a message of the day may have.
pub const MAX_MOTD_LINES: usize = 100;
/// The longest line a client may be allowed to send.
pub const MAX_LINE_LIMIT: usize = 1 << 20;
/// The longest any timeout may be (a deadline further out could overflow
/// the clock).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Everything the server needs to know to run. Each field is set by the
/// flag of the same name in the binary (`max_outbuf` by `--max-outbuf`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen for plain-TCP chat; port 0 picks a free port (see
    /// `Server::local_addr`).
    pub addr: SocketAddr,
    /// Serve plain-TCP chat on `addr` (false with `--port off`).
    pub plain: bool,
    /// The certificate and key for TLS (`--tls-cert`, `--tls-key`).
    pub tls_identity: Option<Identity>,
    /// Where to listen for TLS chat (needs `tls_identity`).
    pub tls_addr: Option<SocketAddr>,
    /// Where to serve the web page and its WebSocket over HTTP.
    pub http: Option<SocketAddr>,
    /// Where to serve them over HTTPS (needs `tls_identity`).
    pub https: Option<SocketAddr>,
    /// Origins besides the page's own allowed to open the WebSocket
    /// (`--allowed-origin`), e.g. `https://chat.example.org`.
    pub allowed_origins: Vec<String>,
    /// A quiet WebSocket client is pinged after this long, and dropped if
    /// it sends nothing for as long again.
    pub ws_ping: Duration,
    /// Join a cluster of nodes over Redis (`--redis`); `None`: this
    /// process is the whole chat.
    pub cluster: Option<ClusterConfig>,
    /// Bind listeners with `SO_REUSEPORT`, so several processes share a
    /// port and the kernel spreads clients over them (`--reuse-port`).
    pub reuse_port: bool,
    /// Longest accepted line, in bytes, without its line ending.
    pub max_line: usize,
    /// Most unsent output a client may have before it is disconnected.
    pub max_outbuf: usize,
    /// How long a connection may take to register a name.
    pub login_timeout: Duration,
    /// Most simultaneous connections; more are told `! server full`.
    pub max_clients: usize,
    /// Rooms above this many members get join/leave summaries.
    pub notice_limit: usize,
    /// How long a closing client may take to receive what is queued for it.
    pub close_flush_timeout: Duration,
    /// How long, after our FIN, we read and discard until the peer's EOF.
    pub linger_timeout: Duration,
    /// How long shutdown waits for clients to take their output.
    pub shutdown_timeout: Duration,
    /// How long a client's pending output may make no progress before it is
    /// dropped (a peer that vanished or stopped reading).
    pub write_timeout: Duration,
    /// Idle time before TCP keepalive probes a silent peer (`None`: off).
    /// A vanished peer is found within about 1.5 times this.
    pub keepalive: Option<Duration>,
    /// Flood control: each client's budget of lines, priced by output.
    pub flood: Flood,
    /// Per-address connection limits.
    pub peers: PeerLimits,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// How long an HTTP client has to send its request head.
    pub request_timeout: Duration,
    /// Lines of recent history kept per room and shown on joining (0: off).
    pub history: usize,
    /// The message of the day, shown after the welcome (`--motd FILE`).
    pub motd: Vec<String>,
    /// Handle SIGINT/SIGTERM in the loop (the binary does; in-process tests
    /// use `ServerHandle::shutdown` instead).
    pub handle_signals: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            plain: true,
            tls_identity: None,
            tls_addr: None,
            http: None,
            https: None,
            allowed_origins: Vec::new(),
            ws_ping: DEFAULT_WS_PING,
            cluster: None,
            reuse_port: false,
            max_line: DEFAULT_MAX_LINE_BYTES,
            max_outbuf: DEFAULT_MAX_OUTBUF_BYTES,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            max_clients: default_max_clients(),
            notice_limit: DEFAULT_NOTICE_LIMIT,
            close_flush_timeout: DEFAULT_CLOSE_FLUSH_TIMEOUT,
            linger_timeout: DEFAULT_LINGER_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            keepalive: Some(DEFAULT_KEEPALIVE),
            flood: Flood::default(),
            peers: PeerLimits::default(),
            metrics: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            history: crate::history::DEFAULT_HISTORY_LINES,
            motd: Vec::new(),
            handle_signals: false,
        }
    }
}

/// A setting out of its range: which flag, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag that sets it, e.g. `--max-outbuf`.
    pub flag: &'static str,
    /// What the value must be, e.g. `must be at least 16384`.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The smallest `max_outbuf` that still lets a client receive any one
    /// line and a burst of replies: four of the longest lines we can send.
    pub fn min_outbuf(&self) -> usize {
        (4 * (self.max_line + 128)).max(16 * 1024)
    }

    /// The most memory the server's buffers can hold for `clients`
    /// connections, in bytes, whatever the clients do (SECURITY.md states
    /// it; a test checks it against the real binary's RSS). Per client: its
    /// output buffer (`max_outbuf`, plus the one line that may cross it, plus
    /// three chunks of slack), the input held while it is paused (one
    /// read), the history of the room it may have made (rooms never
    /// outnumber clients), and a fixed allowance for its connection, name
    /// and seat.
    pub fn memory_bound(&self, clients: usize) -> u64 {
        const PER_CONNECTION: usize = 1024;
        let per_client = self.max_outbuf
            + crate::history::HISTORY_BYTES_PER_ROOM
            + self.max_line
            + 128
            + 3 * crate::conn::outbuf::CHUNK_BYTES
            + crate::server::READ_BUF_BYTES
            + PER_CONNECTION;
        (clients as u64) * (per_client as u64)
    }

    /// Checks every setting against its range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn err(flag: &'static str, message: String) -> Result<(), ConfigError> {
            Err(ConfigError { flag, message })
        }
        if !(64..=MAX_LINE_LIMIT).contains(&self.max_line) {
            return err("--max-line", format!("must be 64-{MAX_LINE_LIMIT}"));
        }
        let min_outbuf = self.min_outbuf();
        if !(min_outbuf..=1 << 30).contains(&self.max_outbuf) {
            return err(
                "--max-outbuf",
                format!(
                    "must be {min_outbuf}-{} (at least four of the longest lines, {} with --max-line {})",
                    1 << 30,
                    min_outbuf,
                    self.max_line
                ),
            );
        }
        if self.history > MAX_HISTORY_LINES {
            return err("--history", format!("must be 0-{MAX_HISTORY_LINES}"));
        }
        if self.motd.len() > MAX_MOTD_LINES {
            return err("--motd", format!("has more than {MAX_MOTD_LINES} lines"));
        }
        for (i, line) in self.motd.iter().enumerate() {
            if let Err(e) = crate::protocol::check_text(line.as_bytes()) {
                return err("--motd", format!("line {}: {e}", i + 1));
            }
            if line.len() > self.max_line {
                return err(
                    "--motd",
                    format!("line {} is longer than --max-line", i + 1),
                );
            }
        }
        if self.tls_identity.is_none() {
            if self.tls_addr.is_some() {
                return err("--tls-port", "needs --tls-cert and --tls-key".into());
            }
            if self.https.is_some() {
                return err("--https-port", "needs --tls-cert and --tls-key".into());
            }
        }
        if !self.plain && self.tls_addr.is_none() && self.http.is_none() && self.https.is_none() {
            return err(
                "--port",
                "is off and no other listener is on (give --tls-cert/--tls-key or --http-port)"
                    .into(),
            );
        }
        // The keepalive check runs once a second, in whole seconds.
        if self.ws_ping < Duration::from_secs(1) || self.ws_ping > MAX_TIMEOUT {
            return err("--ws-ping", "must be 1-31536000 seconds".into());
        }
        for origin in &self.allowed_origins {
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            let valid = host.is_some_and(|h| {
                !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
            });
            if !valid {
                return err(
                    "--allowed-origin",
                    format!("{origin:?} is not an origin like https://chat.example.org"),
                );
            }
        }
        if self.max_clients == 0 {
            return err("--max-clients", "must be at least 1".into());
        }
        if self.flood.rate > 1_000_000 {
            return err(
                "--flood-rate",
                "must be 0-1000000 (0 turns flood control off)".into(),
            );
        }
        if self.flood.is_on() && !(1..=1_000_000).contains(&self.flood.burst) {
            return err("--flood-burst", "must be 1-1000000".into());
        }
        if let Some(k) = self.keepalive {
            if !(1..=7200).contains(&k.as_secs()) {
                return err("--keepalive", "must be 1-7200 seconds (or off)".into());
            }
        }
        for (flag, d) in [
            ("--login-timeout", self.login_timeout),
            ("--close-flush-timeout", self.close_flush_timeout),
            ("--linger-timeout", self.linger_timeout),
            ("--shutdown-timeout", self.shutdown_timeout),
            ("--write-timeout", self.write_timeout),
            ("--request-timeout", self.request_timeout),
        ] {
            if d.is_zero() || d > MAX_TIMEOUT {
                return err(
                    flag,
                    format!(
                        "must be more than 0 and at most {} seconds",
                        MAX_TIMEOUT.as_secs()
                    ),
                );
            }
        }
        Ok(())
    }
}

/// The open-file limit less [`RESERVED_FDS`] (at least 1): as many clients
/// as the process can hold while still accepting, and refusing, the rest.
pub fn default_max_clients() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let fds = if ok && lim.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    if fds > 2 * RESERVED_FDS {
        fds - RESERVED_FDS
    } else {
        (fds / 2).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_settings_name_their_flag() {
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    login_timeout: Duration::MAX,
                    ..Config::default()
                },
                "--login-timeout",
            ),
            (
                Config {
                    shutdown_timeout: Duration::ZERO,
                    ..Config::default()
                },
                "--shutdown-timeout",
            ),
            (
                Config {
                    max_outbuf: 1,
                    ..Config::default()
                },
                "--max-outbuf",
            ),
            (
                Config {
                    max_line: 0,
                    ..Config::default()
                },
                "--max-line",
            ),
            (
                Config {
                    max_clients: 0,
                    ..Config::default()
                },
                "--max-clients",
            ),
        ];
        for (config, flag) in cases {
            assert_eq!(config.validate().map_err(|e| e.flag), Err(flag));
        }
    }
}
