//! The `chatroom` binary: parses flags, sets up logging and runs the server
//! library. Nothing here is needed by tests; all behaviour lives in the lib.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use chatroom::config::{
    default_max_clients, DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_OUTBUF_BYTES, DEFAULT_NOTICE_LIMIT,
};
use chatroom::framing::DEFAULT_MAX_LINE_BYTES;
use chatroom::protocol::DEFAULT_PORT;
use chatroom::{Config, Server, Stopped};
use log::LevelFilter;

const HELP: &str = "\
chatroom: a chat server (one single-threaded mio event loop)

USAGE:
  chatroom [OPTIONS]

OPTIONS:
  --bind ADDR           address to listen on (IPv4 or IPv6) [default: 127.0.0.1]
  --port N              port to listen on; 0 picks a free one [default: 5550]
  --max-line BYTES      longest accepted line [default: 4096]
  --max-outbuf BYTES    unsent output before a client is dropped as a slow
                        consumer [default: 1048576]
  --login-timeout SECS  time to register a name [default: 30]
  --max-clients N       most simultaneous connections [default: the open-file
                        limit less 32]
  --notice-limit N      rooms above N members get join/leave summaries
                        [default: 100]
  --log-level LEVEL     off, error, warn, info, debug or trace [default: info;
                        RUST_LOG is honoured when this flag is absent]
  -h, --help            print this help
  -V, --version         print the version

Logs go to stderr; `listening on ADDR:PORT` is logged once bound.
SIGINT/SIGTERM shut down gracefully; a second signal exits at once.
Protocol: docs/PROTOCOL.md.
";

struct Args {
    config: Config,
    log_level: Option<LevelFilter>,
}

fn parse_args() -> Result<Args, String> {
    let mut pargs = pico_args::Arguments::from_env();
    let bind = opt(&mut pargs, "--bind", |s| {
        s.trim_matches(['[', ']']).parse::<IpAddr>()
    })?;
    let port = opt(&mut pargs, "--port", str::parse::<u16>)?;
    let config = Config {
        addr: SocketAddr::new(
            bind.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port.unwrap_or(DEFAULT_PORT),
        ),
        max_line: opt(&mut pargs, "--max-line", positive)?.unwrap_or(DEFAULT_MAX_LINE_BYTES),
        max_outbuf: opt(&mut pargs, "--max-outbuf", positive)?.unwrap_or(DEFAULT_MAX_OUTBUF_BYTES),
        login_timeout: opt(&mut pargs, "--login-timeout", seconds)?
            .map_or(DEFAULT_LOGIN_TIMEOUT, |s| Duration::from_secs(s as u64)),
        max_clients: opt(&mut pargs, "--max-clients", positive)?
            .unwrap_or_else(default_max_clients),
        notice_limit: opt(&mut pargs, "--notice-limit", str::parse::<usize>)?
            .unwrap_or(DEFAULT_NOTICE_LIMIT),
        handle_signals: true,
        ..Config::default()
    };
    let log_level = opt(&mut pargs, "--log-level", str::parse::<LevelFilter>)?;
    let rest = pargs.finish();
    if !rest.is_empty() {
        let rest: Vec<String> = rest
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return Err(format!("unexpected arguments: {}", rest.join(" ")));
    }
    Ok(Args { config, log_level })
}

/// One optional flag, with the flag named in any error.
fn opt<T, E: std::fmt::Display>(
    pargs: &mut pico_args::Arguments,
    flag: &'static str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<Option<T>, String> {
    pargs.opt_value_from_fn(flag, parse).map_err(|e| match e {
        pico_args::Error::OptionWithoutAValue(_) => format!("{flag} needs a value"),
        pico_args::Error::Utf8ArgumentParsingFailed { value, cause } => {
            format!("{flag} {value:?}: {cause}")
        }
        other => format!("{flag}: {other}"),
    })
}

/// A timeout in whole seconds: at least 1, at most a year (a deadline
/// further out could overflow the clock).
fn seconds(s: &str) -> Result<usize, String> {
    const MAX_SECS: usize = 365 * 24 * 3600;
    match positive(s)? {
        n if n > MAX_SECS => Err(format!("must be at most {MAX_SECS}")),
        n => Ok(n),
    }
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let mut pargs = pico_args::Arguments::from_env();
    if pargs.contains(["-h", "--help"]) {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    if pargs.contains(["-V", "--version"]) {
        println!("chatroom {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("chatroom: {e}\nTry `chatroom --help`.");
            return ExitCode::from(2);
        }
    };
    let logger = simple_logger::SimpleLogger::new();
    let logger = match args.log_level {
        Some(level) => logger.with_level(level),
        None => logger.with_level(LevelFilter::Info).env(),
    };
    if let Err(e) = logger.init() {
        eprintln!("chatroom: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    let addr = args.config.addr;
    let server = match Server::bind(args.config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot listen on {addr}: {e}");
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
