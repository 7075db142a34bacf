//! The example client: connects to a chatroom server, registers a name, then
//! sends what the user types and shows what the server sends. It owns the
//! terminal side only: the protocol's shapes come from `chatroom::protocol`
//! and line splitting from `chatroom::framing`, never from copies here. It
//! must never write a byte received from the network to the terminal raw.
//!
//! Two modes, chosen by what stdin and stdout are:
//! - **editor** (both are terminals): a rustyline prompt on the main thread
//!   while a reader thread prints incoming lines through rustyline's
//!   `ExternalPrinter`, which redraws the half-typed line below them.
//! - **lines** (anything else, e.g. a script): stdin lines are sent as they
//!   come; at end of input a probe the server always answers is sent, and the
//!   client exits once the answer arrives, so nothing sent is lost.

#![warn(rust_2018_idioms)]

use std::collections::VecDeque;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatroom::framing::{Frame, LineBuf};
use chatroom::protocol::{
    check_text, escape_unsafe, parse_command, parse_server_line, Command, ParseError, ServerLine,
    DEFAULT_PORT, ERROR_PREFIX, LOBBY, SHUTDOWN_NOTICE,
};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, ExternalPrinter};

const HELP: &str = "\
client: chat with a chatroom server, from a terminal or from a script

USAGE:
    cargo run --example client -- [--addr HOST:PORT] [--name NAME] [--plain]

OPTIONS:
    --addr HOST:PORT  the server to connect to [default: 127.0.0.1:5550]
    --name NAME       the name to register as (1-32 of A-Z a-z 0-9 _ -);
                      asked for at the terminal when missing, required when
                      stdin is not a terminal
    --plain           print received lines exactly as received, without
                      timestamps or colours (the default unless both stdin
                      and stdout are terminals; NO_COLOR or TERM=dumb turn
                      off only the colours)
    -h, --help        print this help and exit

AT A TERMINAL:
    Type a line and press Enter to send it: a chat message, or a command such
    as /help, /who, /join ROOM, /msg NAME TEXT (//text sends the literal
    /text). Incoming lines appear above the line you are typing, each with the
    local time; notices (* ), errors (! ) and private messages ([pm ...]) have
    their own colours. Up/Down walk the history; the usual Emacs editing keys
    work. /quit, Ctrl-D or Ctrl-C leave. If a name is refused, the server's
    reason is shown and you are asked for another.

IN A SCRIPT (stdin is not a terminal):
    Each stdin line is sent as it is. At the end of stdin the client waits
    until the server has answered everything it sent, then exits. Received
    lines go to stdout, one per line, with no prompt and no colours; the
    client's own messages go to stderr. A refused name is an error. A /quit
    line is sent and the client exits when the server closes.
    Example: printf 'hi\\n/who\\n' | cargo run --example client -- --name bot

Control characters and escape sequences received from the network are shown
escaped (\\x1b, \\u{202e}), never written raw; invalid UTF-8 shows as U+FFFD.

EXIT STATUS:
    0  left with /quit, Ctrl-D, Ctrl-C or end of input, or the server shut down
    1  could not connect, name refused (script), or the connection was lost or
       closed without the server's shutdown notice
    2  bad command line
";

/// How long connecting to one resolved address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest received line we buffer. The server's lines can exceed its
/// `--max-line` (a name and `: ` are added) and that limit is configurable,
/// so this is far above any sane setting; a line over it is dropped and noted.
const MAX_RECEIVED_LINE_BYTES: usize = 1 << 20;
/// Lines mode: how long the server may stay silent after the end-of-input
/// probe before the client gives up, so a hung server cannot hang a script.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines mode: how often the reader wakes during silence to check
/// [`REPLY_TIMEOUT`].
const READ_TICK: Duration = Duration::from_secs(1);
/// Editor mode: how long to wait for the server to close after `/quit`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(3);
/// Editor mode: how often the reader re-sends its wake-up signal until the
/// main thread has left `readline` (the first may land between two calls).
const WAKE_RETRY: Duration = Duration::from_millis(100);
/// The prompt of the line being typed.
const INPUT_PROMPT: &str = "> ";

// SGR sequences: the only escape sequences this client ever writes, and only
// when colours are on.
const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const NOTICE_COLOUR: &str = "\x1b[36m";
const ERROR_COLOUR: &str = "\x1b[1;31m";
const PRIVATE_COLOUR: &str = "\x1b[35m";

#[derive(Debug)]
struct Args {
    addr: String,
    name: Option<String>,
    plain: bool,
}

/// `Ok(None)` means `--help` was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let mut pargs = pico_args::Arguments::from_env();
    if pargs.contains(["-h", "--help"]) {
        return Ok(None);
    }
    let args = Args {
        addr: pargs
            .opt_value_from_str("--addr")
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}")),
        name: pargs
            .opt_value_from_str("--name")
            .map_err(|e| e.to_string())?,
        plain: pargs.contains("--plain"),
    };
    let rest = pargs.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments: {rest:?}"));
    }
    Ok(Some(args))
}

fn main() {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(e) => {
            eprintln!("client: {e}\n(see --help)");
            process::exit(2);
        }
    };
    if args.name.is_none() && !io::stdin().is_terminal() {
        eprintln!("client: --name is required when stdin is not a terminal\n(see --help)");
        process::exit(2);
    }
    finish(run(args))
}

/// How the program ends: its exit status and a last word for stderr.
struct Exit {
    code: i32,
    message: Option<String>,
}

impl Exit {
    fn ok() -> Exit {
        Exit {
            code: 0,
            message: None,
        }
    }

    fn fail(message: impl Into<String>) -> Exit {
        Exit {
            code: 1,
            message: Some(message.into()),
        }
    }
}

/// Flushes what was received, says the last word and exits. Every mode ends
/// here, from whichever thread learns first that the session is over.
fn finish(exit: Exit) -> ! {
    let _ = io::stdout().flush();
    if let Some(message) = exit.message {
        eprintln!("client: {message}");
    }
    process::exit(exit.code)
}

fn run(args: Args) -> Exit {
    let stream = match connect(&args.addr) {
        Ok(stream) => stream,
        Err(message) => return Exit::fail(message),
    };
    let writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => return Exit::fail(format!("cannot use the connection: {e}")),
    };
    let mut lines = Lines::new(stream);
    let shared = Arc::new(Shared::new(args.addr.clone()));
    // Decorations are for a person at a terminal; a script, on either side,
    // gets the lines exactly as received.
    let at_terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
    let style = Style {
        timestamps: at_terminal && !args.plain,
        // NO_COLOR (no-color.org) and TERM=dumb both mean: no escape codes.
        colours: at_terminal
            && !args.plain
            && std::env::var_os("NO_COLOR").is_none()
            && std::env::var_os("TERM").is_none_or(|term| term != "dumb"),
    };

    // The editor needs a terminal on both sides and a terminal rustyline can
    // drive (not TERM=dumb); the printer is what lets lines arrive mid-typing.
    if at_terminal {
        if let Ok(mut editor) = Editor::<(), DefaultHistory>::new() {
            if let Ok(printer) = editor.create_external_printer() {
                let mut asker = Asker::Editor(&mut editor);
                let name = match register(&mut lines, &writer, args.name, &mut asker, style) {
                    Ok(name) => name,
                    Err(exit) => return exit,
                };
                return run_editor(editor, printer, lines, writer, shared, style, &name);
            }
        }
    }
    let mut asker = if io::stdin().is_terminal() {
        Asker::Stdin
    } else {
        Asker::Never
    };
    if let Err(exit) = register(&mut lines, &writer, args.name, &mut asker, style) {
        return exit;
    }
    run_lines(lines, writer, shared, style)
}

/// Resolves `addr` and connects to the first address that answers; the error
/// is one line naming the address and the OS's reason.
fn connect(addr: &str) -> Result<TcpStream, String> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .collect();
    let mut last_error = None;
    for candidate in &resolved {
        match TcpStream::connect_timeout(candidate, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Typed lines are small and should leave at once.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => format!("cannot connect to {addr}: {e}"),
        None => format!("cannot connect to {addr}: no address found"),
    })
}

/// State both threads read: set once by the sender, checked by the reader.
struct Shared {
    /// The address as the user gave it, for messages.
    addr: String,
    /// Set before `/quit` is sent, so the close that follows is no error.
    quit_sent: AtomicBool,
    /// Lines mode: when the end-of-input probe was sent.
    probe_sent_at: Mutex<Option<Instant>>,
    /// The command sent as the end-of-input probe: an unknown command whose
    /// word is unique to this run. Unlike `/msg <own name>`, the server
    /// answers it whatever the script did before (even a `/nick`).
    probe: String,
    /// The exact answer to [`Shared::probe`]; swallowed, never shown.
    probe_reply: String,
}

impl Shared {
    fn new(addr: String) -> Shared {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let word = format!("client-sync-{:x}-{nanos:x}", process::id());
        Shared {
            addr,
            quit_sent: AtomicBool::new(false),
            probe_sent_at: Mutex::new(None),
            probe: format!("/{word}"),
            probe_reply: format!("{ERROR_PREFIX}{}", ParseError::Unknown(&word)),
        }
    }

    /// True once the probe has gone unanswered for [`REPLY_TIMEOUT`] and
    /// nothing at all has arrived for as long.
    fn is_reply_overdue(&self, last_received: Instant) -> bool {
        let sent = self.probe_sent_at.lock().map_or(None, |at| *at);
        sent.is_some_and(|at| at.elapsed() >= REPLY_TIMEOUT)
            && last_received.elapsed() >= REPLY_TIMEOUT
    }
}

/// One unit read from the server.
enum Received {
    Line(Vec<u8>),
    /// A line over [`MAX_RECEIVED_LINE_BYTES`], dropped by the framer.
    TooLong,
}

/// The receiving half of the connection, framed into lines. Registration
/// reads from it first, then it moves to the reader thread with whatever it
/// has already buffered, so no line is lost in the hand-over.
struct Lines {
    stream: TcpStream,
    framer: LineBuf,
    ready: VecDeque<Received>,
    at_eof: bool,
}

impl Lines {
    fn new(stream: TcpStream) -> Lines {
        Lines {
            stream,
            framer: LineBuf::new(),
            ready: Default::default(),
            at_eof: false,
        }
    }

    /// The next line; `Ok(None)` once the server has closed and every line
    /// before the close was handed out.
    fn next(&mut self) -> io::Result<Option<Received>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(received) = self.ready.pop_front() {
                return Ok(Some(received));
            }
            if self.at_eof {
                return Ok(None);
            }
            let ready = &mut self.ready;
            let mut on_frame = |frame: Frame<'_>| {
                ready.push_back(match frame {
                    Frame::Line(line) => Received::Line(line.to_vec()),
                    Frame::TooLong => Received::TooLong,
                })
            };
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.at_eof = true;
                    self.framer.finish(MAX_RECEIVED_LINE_BYTES, &mut on_frame);
                }
                Ok(n) => self
                    .framer
                    .push(&chunk[..n], MAX_RECEIVED_LINE_BYTES, &mut on_frame),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sends one line, adding the `\n`.
fn send_line(mut out: &TcpStream, line: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line);
    buf.push(b'\n');
    out.write_all(&buf)
}

/// True when `line` is a `/quit` command (with or without a reason).
fn is_quit(line: &[u8]) -> bool {
    check_text(line)
        .ok()
        .and_then(|text| parse_command(text).ok().flatten())
        .is_some_and(|cmd| matches!(cmd, Command::Quit(_)))
}

/// `text` as it is safe to show: invalid UTF-8 becomes U+FFFD and every
/// character the protocol calls unsafe (C0 but tab, DEL, C1, bidi controls,
/// line separators) is written as a visible escape such as `\x1b` or
/// `\u{202e}`. The server already refuses these, but a client must not trust
/// the server: the output of this function can hold no escape sequence.
fn visible(line: &[u8]) -> String {
    escape_unsafe(&String::from_utf8_lossy(line)).into_owned()
}

/// How received lines are decorated; everything off unless a person is at a
/// terminal, so scripts get the lines exactly as received.
#[derive(Debug, Clone, Copy)]
struct Style {
    timestamps: bool,
    colours: bool,
}

impl Style {
    /// Renders one received line for display (without a line ending).
    fn line(&self, raw: &[u8]) -> String {
        let text = visible(raw);
        if !self.timestamps && !self.colours {
            return text;
        }
        let mut out = String::with_capacity(text.len() + 32);
        if self.timestamps {
            let now = chrono::Local::now().format("%H:%M:%S").to_string();
            self.paint(&mut out, DIM, &now);
            out.push(' ');
        }
        // Styling works on the escaped text, so a colour can only ever wrap
        // text that is already harmless.
        match parse_server_line(&text) {
            ServerLine::Notice(_) => self.paint(&mut out, NOTICE_COLOUR, &text),
            ServerLine::Error(_) => self.paint(&mut out, ERROR_COLOUR, &text),
            ServerLine::Private { .. } => self.paint(&mut out, PRIVATE_COLOUR, &text),
            ServerLine::Chat { from, text: said } => {
                self.paint(&mut out, BOLD, from);
                out.push_str(": ");
                out.push_str(said);
            }
            ServerLine::Action { .. } => self.paint(&mut out, NOTICE_COLOUR, &text),
            ServerLine::History { .. } => self.paint(&mut out, NOTICE_COLOUR, &text),
            ServerLine::Prompt | ServerLine::Other(_) => out.push_str(&text),
        }
        out
    }

    /// A message from this client itself (not from the server).
    fn note(&self, text: &str) -> String {
        let mut out = String::new();
        self.paint(&mut out, DIM, &format!("-- {text}"));
        out
    }

    fn paint(&self, out: &mut String, sgr: &str, text: &str) {
        if self.colours {
            out.push_str(sgr);
            out.push_str(text);
            out.push_str(RESET);
        } else {
            out.push_str(text);
        }
    }
}

/// Where a name comes from when the server asks for one (again).
enum Asker<'a> {
    /// Not at a terminal: a refused name ends the program.
    Never,
    /// The line editor (editor mode).
    Editor(&'a mut Editor<(), DefaultHistory>),
    /// A terminal on stdin but not on stdout: ask on stderr, read stdin.
    Stdin,
}

impl Asker<'_> {
    /// `Ok(None)` when the user gave up (Ctrl-C, Ctrl-D).
    fn ask(&mut self) -> Result<Option<String>, Exit> {
        match self {
            Asker::Never => Ok(None),
            Asker::Editor(editor) => match editor.readline("name: ") {
                Ok(name) => Ok(Some(name)),
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => Ok(None),
                Err(e) => Err(Exit::fail(format!("cannot read from the terminal: {e}"))),
            },
            Asker::Stdin => {
                eprint!("name: ");
                let mut name = String::new();
                match io::stdin().lock().read_line(&mut name) {
                    Ok(0) => Ok(None),
                    Ok(_) => Ok(Some(name)),
                    Err(e) => Err(Exit::fail(format!("cannot read stdin: {e}"))),
                }
            }
        }
    }
}

/// Answers the server's name prompts until the own join notice
/// (`* <name> joined lobby`) arrives, and returns the name as the server
/// spelled it. A refused name is shown with the server's reason, then asked
/// again at a terminal or reported as an error otherwise.
fn register(
    lines: &mut Lines,
    out: &TcpStream,
    mut name: Option<String>,
    asker: &mut Asker<'_>,
    style: Style,
) -> Result<String, Exit> {
    let show = |raw: &[u8]| {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{}", style.line(raw));
        let _ = stdout.flush();
    };
    let mut sent: Option<String> = None;
    let mut last_error: Option<String> = None;
    loop {
        let raw = match lines.next() {
            Ok(Some(Received::Line(raw))) => raw,
            Ok(Some(Received::TooLong)) => continue,
            Ok(None) => {
                return Err(Exit::fail(match last_error {
                    Some(why) => format!("the server closed the connection: {why}"),
                    None => {
                        "the server closed the connection before the name was accepted".to_string()
                    }
                }))
            }
            Err(e) => return Err(Exit::fail(format!("connection lost: {e}"))),
        };
        let text = visible(&raw);
        match parse_server_line(&text) {
            ServerLine::Prompt => {
                let next = match name.take() {
                    Some(n) => n,
                    None => match asker.ask()? {
                        Some(n) => n,
                        // Leaving before registering needs no goodbye.
                        None => return Err(Exit::ok()),
                    },
                };
                // The server ignores blanks around a name; so do we, so
                // the join notice matches what was sent.
                let next = next.trim().to_string();
                if let Err(e) = send_line(out, next.as_bytes()) {
                    return Err(Exit::fail(format!("connection lost: {e}")));
                }
                sent = Some(next);
            }
            ServerLine::Notice(rest) => {
                show(&raw);
                let joined = rest
                    .strip_suffix(LOBBY)
                    .and_then(|r| r.strip_suffix(" joined "));
                if let (Some(who), Some(me)) = (joined, sent.as_deref()) {
                    if who.eq_ignore_ascii_case(me) {
                        return Ok(who.to_string());
                    }
                }
            }
            ServerLine::Error(why) => {
                show(&raw);
                if matches!(asker, Asker::Never) {
                    return Err(Exit::fail(match sent {
                        Some(me) => format!("cannot register as {me}: {why}"),
                        None => format!("the server refused: {why}"),
                    }));
                }
                last_error = Some(why.to_string());
            }
            _ => show(&raw),
        }
    }
}

/// How the receiving side of a session ended.
enum End {
    /// We sent `/quit` and the server closed the connection.
    Quit,
    /// The server sent its shutdown notice, then closed.
    Shutdown,
    /// Lines mode: the probe came back, so everything sent was answered.
    Synced,
    /// The server closed without a shutdown notice.
    Closed,
    /// A read failed (a reset, for instance).
    Lost(io::Error),
    /// Lines mode: the server stopped answering.
    NoReply,
    /// Showing a line failed (stdout closed, terminal gone).
    Output(io::Error),
}

impl End {
    fn exit(self, addr: &str) -> Exit {
        match self {
            End::Quit | End::Synced => Exit::ok(),
            End::Shutdown => Exit {
                code: 0,
                message: Some("the server shut down".to_string()),
            },
            End::Closed => Exit::fail("the server closed the connection"),
            End::Lost(e) => Exit::fail(format!("connection to {addr} lost: {e}")),
            End::NoReply => Exit::fail(format!(
                "no reply from the server for {} s",
                REPLY_TIMEOUT.as_secs()
            )),
            End::Output(e) => Exit::fail(format!("cannot show received lines: {e}")),
        }
    }
}

/// Where the reader thread puts what it received.
trait Screen {
    /// Shows one received line.
    fn line(&mut self, raw: &[u8]) -> io::Result<()>;
    /// Shows a message from the client itself.
    fn note(&mut self, text: &str) -> io::Result<()>;
}

/// Lines mode: received lines to stdout, the client's notes to stderr.
struct Stdout {
    style: Style,
}

impl Screen for Stdout {
    fn line(&mut self, raw: &[u8]) -> io::Result<()> {
        // Stdout is line-buffered, so a script reading us sees each line as
        // soon as it arrives.
        writeln!(io::stdout().lock(), "{}", self.style.line(raw))
    }

    fn note(&mut self, text: &str) -> io::Result<()> {
        writeln!(io::stderr().lock(), "client: {text}")
    }
}

/// Editor mode: everything goes through rustyline's printer, which clears
/// the line being typed, prints, and draws the line again below.
struct Printer<P> {
    printer: P,
    style: Style,
}

impl<P: ExternalPrinter> Printer<P> {
    /// Prints one line. The `\n` is ours: rustyline adds one only while
    /// `readline` runs, and writes the text as it is between two calls.
    fn print(&mut self, mut text: String) -> io::Result<()> {
        text.push('\n');
        self.printer.print(text).map_err(io::Error::other)
    }

    /// Returns once the editor has taken every earlier message to draw.
    ///
    /// The printer's queue holds one message, so printing blocks until the
    /// editor has taken the one before; that is the only acknowledgement it
    /// gives. The message sent to wait must be invisible, because it may or
    /// may not be drawn: cursor up one row, then the newline (CR LF, output
    /// processing stays on) back down, landing where it started.
    fn drain(&mut self) {
        let _ = self.print("\x1b[1A".to_string());
    }
}

impl<P: ExternalPrinter> Screen for Printer<P> {
    fn line(&mut self, raw: &[u8]) -> io::Result<()> {
        let text = self.style.line(raw);
        self.print(text)
    }

    fn note(&mut self, text: &str) -> io::Result<()> {
        let text = self.style.note(text);
        self.print(text)
    }
}

/// The reader thread's loop: shows every line until the session ends, and
/// says how it ended.
fn receive(lines: &mut Lines, shared: &Shared, screen: &mut dyn Screen) -> End {
    let mut shutdown_seen = false;
    let mut last_received = Instant::now();
    loop {
        let received = match lines.next() {
            Ok(Some(received)) => received,
            Ok(None) if shared.quit_sent.load(Ordering::SeqCst) => return End::Quit,
            Ok(None) if shutdown_seen => return End::Shutdown,
            Ok(None) => return End::Closed,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // Only lines mode sets a read timeout: a tick to check on
                // the probe, not a failure.
                if shared.is_reply_overdue(last_received) {
                    return End::NoReply;
                }
                continue;
            }
            // Once we have quit, or the server has said it is stopping, a
            // close that ends in a reset is still the expected close.
            Err(_) if shared.quit_sent.load(Ordering::SeqCst) => return End::Quit,
            Err(_) if shutdown_seen => return End::Shutdown,
            Err(e) => return End::Lost(e),
        };
        last_received = Instant::now();
        let shown = match received {
            Received::Line(raw) if raw == shared.probe_reply.as_bytes() => return End::Synced,
            Received::Line(raw) => {
                shutdown_seen |= raw == SHUTDOWN_NOTICE.as_bytes();
                screen.line(&raw)
            }
            Received::TooLong => screen.note(&format!(
                "a line over {MAX_RECEIVED_LINE_BYTES} bytes was dropped"
            )),
        };
        if let Err(e) = shown {
            return End::Output(e);
        }
    }
}

/// Lines mode: a reader thread prints and ends the program; this thread
/// sends stdin line by line, then the probe.
fn run_lines(mut lines: Lines, out: TcpStream, shared: Arc<Shared>, style: Style) -> Exit {
    // The reader wakes every tick so it can give up on a silent server.
    if let Err(e) = lines.stream.set_read_timeout(Some(READ_TICK)) {
        return Exit::fail(format!("cannot use the connection: {e}"));
    }
    let reader_shared = Arc::clone(&shared);
    let reader = thread::spawn(move || {
        let end = receive(&mut lines, &reader_shared, &mut Stdout { style });
        // The main thread may be blocked reading stdin: end from here.
        finish(end.exit(&reader_shared.addr))
    });

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Exit::fail(format!("cannot read stdin: {e}")),
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let quit = is_quit(text);
        if quit {
            shared.quit_sent.store(true, Ordering::SeqCst);
        }
        if send_line(&out, text).is_err() || quit {
            // A failed send shows up on the reading side too, which ends
            // the program with the reason; after /quit it waits for the
            // server's close.
            return wait_for(reader);
        }
    }
    // End of input. The server handles one client's lines in order, so when
    // the probe's answer arrives every earlier line has been answered.
    if let Ok(mut sent_at) = shared.probe_sent_at.lock() {
        *sent_at = Some(Instant::now());
    }
    // If this send fails, the reader sees why and ends the program.
    let _ = send_line(&out, shared.probe.as_bytes());
    wait_for(reader)
}

/// Waits for the reader thread, which normally ends the program itself.
fn wait_for(reader: thread::JoinHandle<()>) -> Exit {
    match reader.join() {
        Ok(()) => Exit::ok(),
        Err(_) => Exit::fail("the reader thread panicked"),
    }
}

/// Editor mode: rustyline reads the keyboard on this thread while a reader
/// thread prints through `printer`.
///
/// `readline` blocks until a key is pressed, so when the server goes away
/// the reader must wake it: it raises SIGINT, which rustyline turns into
/// `ReadlineError::Interrupted`, after handing the reason over on a channel.
/// A SIGINT handler installed here keeps the signal harmless in the moments
/// the main thread is not inside `readline`.
fn run_editor<P: ExternalPrinter + Send + 'static>(
    mut editor: Editor<(), DefaultHistory>,
    printer: P,
    mut lines: Lines,
    out: TcpStream,
    shared: Arc<Shared>,
    style: Style,
    name: &str,
) -> Exit {
    let swallowed = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGINT, swallowed) {
        return Exit::fail(format!("cannot install a SIGINT handler: {e}"));
    }
    let (end_tx, end_rx) = mpsc::channel::<End>();
    let reader_shared = Arc::clone(&shared);
    thread::spawn(move || {
        let mut screen = Printer { printer, style };
        let end = receive(&mut lines, &reader_shared, &mut screen);
        // Lines handed to the printer just before the end must be drawn
        // before readline is interrupted, or they would be lost with it.
        screen.drain();
        if end_tx.send(end).is_err() {
            return;
        }
        // Repeat until the program exits: a signal that lands while the main
        // thread is between two readline calls wakes nothing.
        loop {
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGINT);
            thread::sleep(WAKE_RETRY);
        }
    });

    println!(
        "{}",
        style.note(&format!(
            "connected to {} as {name}; /help lists commands, /quit or Ctrl-D leaves",
            shared.addr
        ))
    );
    loop {
        if let Ok(end) = end_rx.try_recv() {
            return end.exit(&shared.addr);
        }
        match editor.readline(INPUT_PROMPT) {
            Ok(line) => {
                if line.trim().is_empty() {
                    // The server ignores blank lines; don't bother it.
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                let quit = is_quit(line.as_bytes());
                if quit {
                    shared.quit_sent.store(true, Ordering::SeqCst);
                }
                if send_line(&out, line.as_bytes()).is_err() || quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                if let Ok(end) = end_rx.try_recv() {
                    // Woken by the reader: the server went away.
                    return end.exit(&shared.addr);
                }
                // Ctrl-C: leave as /quit does, so the room hears why.
                leave(&out, &shared);
                break;
            }
            Err(ReadlineError::Eof) => {
                leave(&out, &shared);
                break;
            }
            Err(e) => {
                leave(&out, &shared);
                return Exit::fail(format!("cannot read from the terminal: {e}"));
            }
        }
    }
    // After /quit (or a failed send), the reader reports the server's close.
    match end_rx.recv_timeout(QUIT_TIMEOUT) {
        Ok(end) => end.exit(&shared.addr),
        Err(_) if shared.quit_sent.load(Ordering::SeqCst) => Exit::ok(),
        Err(_) => Exit::fail(format!("connection to {} lost", shared.addr)),
    }
}

/// Sends `/quit`, marking the close that follows as expected.
fn leave(out: &TcpStream, shared: &Shared) {
    shared.quit_sent.store(true, Ordering::SeqCst);
    let quit = Command::Quit(None).to_string();
    let _ = send_line(out, quit.as_bytes());
}
