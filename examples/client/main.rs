//! The example client: connects to a chatroom server (plain TCP or TLS),
//! registers a name, then sends what the user types and shows what the
//! server sends. It owns the terminal side only: the protocol's shapes come
//! from `chatroom::protocol`, line splitting from `chatroom::framing` and
//! flag reading from `chatroom::cli`, never from copies here. It must never
//! write a byte received from the network to the terminal raw.
//!
//! # Layout
//! - `main.rs` (here): the command line, and the choice of mode.
//! - [`net`]: the address, connecting, TLS (trust, handshake, one-line
//!   errors) and the connection's two halves, plain or TLS.
//! - [`session`]: what both modes share: registration, the receiving loop,
//!   how a session ends and the exit status.
//! - [`render`]: how a received line is shown (escaped; decorated at a
//!   terminal: local times, colours, history and topics marked).
//! - [`script`]: **lines** mode (stdin or stdout is not a terminal, e.g. a
//!   script): stdin lines are sent as they come; at end of input a probe
//!   the server always answers is sent, and the client exits once the
//!   answer arrives, so nothing sent is lost.
//! - [`editor`]: **editor** mode (both are terminals): a rustyline prompt on
//!   the main thread while a reader thread prints incoming lines above it.

#![warn(rust_2018_idioms)]

mod editor;
mod net;
mod render;
mod script;
mod session;

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process;

use chatroom::cli::{self, CliError};
use chatroom::config::DEFAULT_TLS_PORT;
use chatroom::protocol::DEFAULT_PORT;

use net::{Target, Tls};
use render::Style;
use session::Exit;

const HELP: &str = "\
client: chat with a chatroom server, from a terminal or from a script

USAGE:
    cargo run --example client -- [OPTIONS]

OPTIONS:
    --addr HOST[:PORT]  the server to connect to [default: 127.0.0.1]; HOST is
                        a name (localhost) or an address (IPv6: [::1]:5550,
                        or ::1 without a port); every address a name resolves
                        to is tried in turn. PORT defaults to 5550, or to
                        5551 with --tls
    --name NAME         the name to register as (1-32 of A-Z a-z 0-9 _ -);
                        asked for at the terminal when missing, required when
                        stdin is not a terminal
    --tls               connect over TLS, trusting the public certificate
                        authorities (Mozilla's list, built in)
    --ca FILE           connect over TLS, trusting only the CA certificate(s)
                        in the PEM FILE (a private CA, such as the ca.pem of
                        `cargo run --example gencert -- DIR`); implies --tls
    --server-name NAME  the name the server's certificate must be valid for
                        [default: the HOST of --addr; an IP address is checked
                        as an IP address]. There is no switch to skip the
                        check
    --plain             print received lines exactly as received, without
                        timestamps or colours (the default unless both stdin
                        and stdout are terminals; NO_COLOR or TERM=dumb turn
                        off only the colours)
    --decorate          timestamps, colours and markers as at a terminal, even
                        when stdin or stdout is not one
    -h, --help          print this help and exit

    A flag's value may follow it (--name bob) or be joined to it with =
    (--name=bob). A flag may be given once.

AT A TERMINAL:
    Type a line and press Enter to send it: a chat message, or a command such
    as /help, /who, /join ROOM, /msg NAME TEXT, /topic TEXT, /away TEXT
    (//text sends the literal /text). The line you typed makes way for the
    server's copy of it, so each line shows once, in the server's order.
    Incoming lines appear above the line you are typing, each with the local
    time; notices (* ), errors (! ), actions (+ ), private messages and
    topics have their own colours, and a room's history (# lines, sent on
    joining) is dimmed, marked with |, and shows when each line was said, in
    local time. Up/Down walk the history; the usual Emacs editing keys work.
    Ctrl-C clears the line being typed; Ctrl-C on an empty line, Ctrl-D on an
    empty line, or /quit leave. If a name is refused, the server's reason is
    shown and you are asked for another.

IN A SCRIPT (stdin is not a terminal):
    Each stdin line is sent as it is. At the end of stdin the client waits
    until the server has answered everything it sent, then exits. Received
    lines go to stdout, one per line, with no prompt and no colours; the
    client's own messages go to stderr. A refused name is an error, and so
    is any error line (! ) the server sends: the session goes on, but the
    exit status is 1. A /quit line is sent and the client exits when the
    server closes.
    Example: printf 'hi\\n/who\\n' | cargo run --example client -- --name bot

Control characters and escape sequences received from the network are shown
escaped (\\x1b, \\u{202e}), never written raw; invalid UTF-8 shows as U+FFFD.

EXIT STATUS:
    0  left with /quit, Ctrl-C, Ctrl-D or end of input, or the server shut
       down: its notice `* server shutting down`, then a clean close
    1  could not connect, TLS failed, name refused (script), the connection
       was lost or closed without the shutdown notice, or (script) the
       server sent an error line
    2  bad command line (one line on stderr naming the flag)
";

/// The command line, checked.
#[derive(Debug)]
pub struct Args {
    /// Where to connect.
    pub target: Target,
    /// The name to register as, if given.
    pub name: Option<String>,
    /// `--plain`: received lines exactly as received.
    pub plain: bool,
    /// `--decorate`: decorations even without a terminal.
    pub decorate: bool,
    /// How to speak TLS, with `--tls` or `--ca`.
    pub tls: Option<Tls>,
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args(mut args: cli::Args) -> Result<Option<Args>, CliError> {
    if args.switch(["-h", "--help"]) {
        return Ok(None);
    }
    let addr = args.value("--addr", net::parse_addr)?;
    let name = args.value("--name", |s| Ok::<_, String>(s.to_string()))?;
    let ca = args.value("--ca", |s| Ok::<_, String>(PathBuf::from(s)))?;
    let server_name = args.value("--server-name", net::parse_server_name)?;
    let tls = args.switch("--tls") || ca.is_some();
    let plain = args.switch("--plain");
    let decorate = args.switch("--decorate");
    args.finish()?;

    if plain && decorate {
        return Err(CliError("--plain and --decorate exclude each other".into()));
    }
    let (host, port) = addr.unwrap_or_else(|| ("127.0.0.1".to_string(), None));
    let default_port = if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT };
    let target = Target {
        host,
        port: port.unwrap_or(default_port),
    };
    let tls = if tls {
        let config =
            net::client_config(ca.as_deref()).map_err(|e| CliError(format!("--ca: {e}")))?;
        let server_name = match server_name {
            Some(name) => name,
            None => net::parse_server_name(&target.host)
                .map_err(|e| CliError(format!("--addr: {e} (give --server-name)")))?,
        };
        Some(Tls {
            config,
            server_name,
            ca,
        })
    } else {
        if server_name.is_some() {
            return Err(CliError("--server-name: only with --tls or --ca".into()));
        }
        None
    };
    Ok(Some(Args {
        target,
        name,
        plain,
        decorate,
        tls,
    }))
}

/// A usage error: one line on stderr, exit status 2.
fn usage_error(e: &dyn std::fmt::Display) -> ! {
    eprintln!("client: {e} (see --help)");
    process::exit(2)
}

fn main() {
    let args = match cli::Args::from_env().and_then(parse_args) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(e) => usage_error(&e),
    };
    if args.name.is_none() && !io::stdin().is_terminal() {
        usage_error(&"--name: required when stdin is not a terminal");
    }
    session::finish(run(args))
}

fn run(args: Args) -> Exit {
    // Decorations are for a person at a terminal; a script, on either side,
    // gets the lines exactly as received unless it asks.
    let stdin_is_terminal = io::stdin().is_terminal();
    let at_terminal = stdin_is_terminal && io::stdout().is_terminal();
    let decorated = args.decorate || (at_terminal && !args.plain);
    let style = Style {
        timestamps: decorated,
        // NO_COLOR (no-color.org) and TERM=dumb both mean: no escape codes.
        colours: decorated
            && std::env::var_os("NO_COLOR").is_none()
            && std::env::var_os("TERM").is_none_or(|term| term != "dumb"),
    };
    let conn = match net::connect(&args.target, args.tls.as_ref()) {
        Ok(conn) => conn,
        Err(message) => return Exit::fail(message),
    };
    let banner = format!(
        "connected to {}{}",
        args.target,
        match &args.tls {
            Some(tls) => format!(
                " over TLS, certificate valid for {}",
                tls.server_name_text()
            ),
            None => String::new(),
        }
    );

    // The editor needs a terminal on both sides and a terminal rustyline can
    // drive (not TERM=dumb); its printer is what lets lines arrive
    // mid-typing.
    if at_terminal {
        if let Some(terminal) = editor::Terminal::new() {
            return editor::run(terminal, conn, args, style, &banner);
        }
    }
    script::run(
        conn,
        args,
        style,
        stdin_is_terminal.then_some(banner.as_str()),
    )
}
