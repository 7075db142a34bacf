//! A WebSocket echo server on the project's own code, for conformance runs
//! (Autobahn|Testsuite, `scripts/autobahn.sh`): text comes back as text,
//! binary as binary, pings get pongs, closes are echoed. The request head
//! is `http::HeadBuf`'s, the 101 is `web::route`'s, the frames are
//! `conn::ws::WsDecoder`'s. One blocking thread per connection: a test
//! harness, not the product.
//!
//! ```text
//! cargo run --example ws_echo -- --port 9001
//! ```

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use chatroom::conn::ws::{self, EchoEvent, FrameHead, WsDecoder, WsEvent};
use chatroom::http::HeadBuf;
use chatroom::web::{self, Reply, Site};

const HELP: &str = "\
ws_echo: a WebSocket echo server on chatroom's own WebSocket code

USAGE:
  ws_echo [--port N] [--bind ADDR]

OPTIONS:
  --port N       port to listen on; 0 picks a free one [default: 9001]
  --bind ADDR    address to listen on [default: 127.0.0.1]
  -h, --help     print this help

Prints the URL it listens on (ws://HOST:PORT) as its first line.
";

/// The longest message echoed; longer ones are closed with 1009.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// One socket read's buffer.
const READ_BYTES: usize = 64 * 1024;
/// A connection silent this long is dropped, so no thread waits forever.
const IDLE: Duration = Duration::from_secs(60);
/// After our close frame and FIN, how long to wait for the peer's EOF.
const LINGER: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Args {
    port: u16,
    bind: IpAddr,
}

fn parse_args() -> Result<Args, pico_args::Error> {
    let mut pargs = pico_args::Arguments::from_env();
    if pargs.contains(["-h", "--help"]) {
        print!("{HELP}");
        std::process::exit(0);
    }
    let args = Args {
        port: pargs.opt_value_from_str("--port")?.unwrap_or(9001),
        bind: pargs
            .opt_value_from_str("--bind")?
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    };
    let rest = pargs.finish();
    if !rest.is_empty() {
        eprintln!("ws_echo: unexpected arguments: {rest:?}");
        std::process::exit(2);
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ws_echo: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(SocketAddr::new(args.bind, args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ws_echo: cannot listen on {}:{}: {e}", args.bind, args.port);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("ws_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A wildcard address is reached through loopback.
    let host = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    println!("ws://{}", SocketAddr::new(host, addr.port()));
    if let Err(e) = io::stdout().flush() {
        eprintln!("ws_echo: stdout: {e}");
        return ExitCode::FAILURE;
    }
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || {
                    let peer = stream.peer_addr();
                    if let Err(e) = serve(stream) {
                        if let Ok(peer) = peer {
                            eprintln!("ws_echo: {peer}: {e}");
                        }
                    }
                });
            }
            // One failed accept (e.g. out of descriptors) is not the end.
            Err(e) => eprintln!("ws_echo: accept: {e}"),
        }
    }
    ExitCode::SUCCESS
}

/// One connection: the upgrade, then echo until a close, an error or EOF.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE))?;
    let mut buf = vec![0u8; READ_BYTES];
    let mut head = HeadBuf::new();
    let (n, used) = loop {
        let n = read(&mut stream, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut data = &buf[..n];
        let Some(request) = head.push(&mut data) else {
            continue;
        };
        // The echo answers on any path; the checks (method, upgrade
        // headers, version 13, Origin) are the chat's own, at its path.
        let request = request.map(|mut r| {
            r.path = "/ws".to_owned();
            r
        });
        let site = Site {
            tls: false,
            allowed_origins: &[],
        };
        match web::route(request, site) {
            Reply::Upgrade(response) => {
                stream.write_all(&response)?;
                break (n, n - data.len());
            }
            Reply::Response(response) | Reply::ForeignOrigin(_, response) => {
                stream.write_all(&response)?;
                return Ok(());
            }
        }
    };
    let mut decoder = WsDecoder::echo();
    let mut out = Vec::new();
    // Frames may have come in the same read as the head.
    let mut data = &buf[used..n];
    loop {
        let closing = echo(&mut decoder, &mut data, &mut out);
        stream.write_all(&out)?;
        out.clear();
        if closing {
            return linger(stream);
        }
        let n = read(&mut stream, &mut buf)?;
        if n == 0 {
            // EOF without a close frame: nothing to answer.
            return Ok(());
        }
        data = &buf[..n];
    }
}

/// One read, retried if a signal interrupts it.
fn read(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Decodes `data` and queues the answers in `out`; true once a close frame
/// was queued (nothing follows it).
fn echo(decoder: &mut WsDecoder, data: &mut &[u8], out: &mut Vec<u8>) -> bool {
    while let Some(event) = decoder.next_echo(data, MAX_MESSAGE_BYTES) {
        match event {
            EchoEvent::Binary(payload) => {
                out.extend_from_slice(FrameHead::binary(payload.len()).as_bytes());
                out.extend_from_slice(payload);
            }
            EchoEvent::Ws(WsEvent::Text(text)) => {
                out.extend_from_slice(FrameHead::new(text.len()).as_bytes());
                out.extend_from_slice(text);
            }
            EchoEvent::Ws(WsEvent::Ping(payload)) => out.extend_from_slice(&ws::pong(payload)),
            EchoEvent::Ws(WsEvent::Close(code)) => {
                out.extend_from_slice(&ws::close(code.unwrap_or(ws::code::NORMAL), ""));
                return true;
            }
            EchoEvent::Ws(WsEvent::Fail(code, why)) => {
                out.extend_from_slice(&ws::close(code, why));
                return true;
            }
        }
    }
    false
}

/// After our close frame: send our FIN first (the server closes the TCP
/// connection, RFC 6455 section 7.1.1), then read and discard until the
/// peer's EOF, so unread bytes never turn the close into a reset.
fn linger(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER))?;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A timeout or a reset: the connection is over either way.
            Err(_) => return Ok(()),
        }
    }
}
