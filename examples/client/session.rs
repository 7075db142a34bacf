//! What both modes share: the received lines ([`Lines`]), registration
//! ([`register`]), the receiving loop ([`receive`]) and how a session ends
//! ([`End`], [`Exit`]). The shutdown notice counts only when the connection
//! then ends cleanly: it must be the last line, and the close an EOF (TLS:
//! close_notify), not a reset.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::process;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatroom::framing::{Frame, LineBuf};
use chatroom::protocol::{
    check_text, parse_command, parse_server_line, Command, ParseError, ServerLine, ERROR_PREFIX,
    LOBBY, SHUTDOWN_NOTICE,
};

use crate::net::{is_timeout, Incoming, Outgoing};
use crate::render::{visible, Style};

/// The longest received line we buffer. The server's lines can exceed its
/// `--max-line` (a name and `: ` are added) and that limit is configurable,
/// so this is far above any sane setting; a line over it is dropped and noted.
pub const MAX_RECEIVED_LINE_BYTES: usize = 1 << 20;
/// How long the server may stay silent after we connect before we say it
/// sent no prompt: a plain-text client on a TLS port waits for a prompt
/// while the server waits for a TLS hello, and neither would say anything.
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines mode: how long the server may stay silent after the end-of-input
/// probe before the client gives up, so a hung server cannot hang a script.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How the program ends: its exit status and a last word for stderr.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: Option<String>,
}

impl Exit {
    pub fn ok() -> Exit {
        Exit {
            code: 0,
            message: None,
        }
    }

    pub fn fail(message: impl Into<String>) -> Exit {
        Exit {
            code: 1,
            message: Some(message.into()),
        }
    }
}

/// Flushes what was received, says the last word and exits. Every mode ends
/// here, from whichever thread learns first that the session is over.
pub fn finish(exit: Exit) -> ! {
    let _ = io::stdout().flush();
    if let Some(message) = exit.message {
        eprintln!("client: {message}");
    }
    process::exit(exit.code)
}

/// State the threads of one session share.
#[derive(Debug)]
pub struct Shared {
    /// The address as the user gave it, for messages.
    pub addr: String,
    /// The sending half.
    pub out: Outgoing,
    /// Set before `/quit` is sent, so the close that follows is no error.
    pub quit_sent: AtomicBool,
    /// Lines mode: when the end-of-input probe was sent.
    probe_sent_at: Mutex<Option<Instant>>,
    /// The command sent as the end-of-input probe: an unknown command whose
    /// word is unique to this run. Unlike `/msg <own name>`, the server
    /// answers it whatever the script did before (even a `/nick`).
    pub probe: String,
    /// The exact answer to [`Shared::probe`]; swallowed, never shown.
    probe_reply: String,
    /// Script mode: error lines (`! `) count against the exit status.
    pub count_errors: bool,
    /// Error lines received (the probe's answer aside).
    errors: AtomicUsize,
}

impl Shared {
    pub fn new(addr: String, out: Outgoing, count_errors: bool) -> Shared {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let word = format!("client-sync-{:x}-{nanos:x}", process::id());
        Shared {
            addr,
            out,
            quit_sent: AtomicBool::new(false),
            probe_sent_at: Mutex::new(None),
            probe: format!("/{word}"),
            probe_reply: format!("{ERROR_PREFIX}{}", ParseError::Unknown(&word)),
            count_errors,
            errors: AtomicUsize::new(0),
        }
    }

    /// Sends one line; a `/quit` marks the close that follows as expected.
    /// Returns true if it was a `/quit`.
    pub fn send(&self, line: &[u8]) -> io::Result<bool> {
        let quit = is_quit(line);
        if quit {
            self.quit_sent.store(true, Ordering::SeqCst);
        }
        self.out.send_line(line)?;
        Ok(quit)
    }

    /// Sends `/quit`, marking the close that follows as expected.
    pub fn leave(&self) {
        let quit = Command::Quit(None).to_string();
        let _ = self.send(quit.as_bytes());
    }

    /// Sends the end-of-input probe and starts its clock.
    pub fn send_probe(&self) -> io::Result<()> {
        if let Ok(mut sent_at) = self.probe_sent_at.lock() {
            *sent_at = Some(Instant::now());
        }
        self.out.send_line(self.probe.as_bytes())
    }

    /// True once the probe has gone unanswered for [`REPLY_TIMEOUT`] and
    /// nothing at all has arrived for as long.
    fn is_reply_overdue(&self, last_received: Instant) -> bool {
        let sent = self.probe_sent_at.lock().map_or(None, |at| *at);
        sent.is_some_and(|at| at.elapsed() >= REPLY_TIMEOUT)
            && last_received.elapsed() >= REPLY_TIMEOUT
    }

    /// How the session ends given how its receiving side ended: closes our
    /// side cleanly, and in script mode turns any error line into a
    /// non-zero status.
    pub fn exit(&self, end: End) -> Exit {
        self.out.close();
        let mut exit = end.exit(&self.addr);
        let errors = self.errors.load(Ordering::SeqCst);
        if self.count_errors && errors > 0 && exit.code == 0 {
            let counted = format!(
                "{errors} error{} from the server",
                if errors == 1 { "" } else { "s" }
            );
            exit = Exit::fail(match exit.message {
                Some(message) => format!("{message}; {counted}"),
                None => counted,
            });
        }
        exit
    }
}

/// True when `line` is a `/quit` command (with or without a reason).
pub fn is_quit(line: &[u8]) -> bool {
    check_text(line)
        .ok()
        .and_then(|text| parse_command(text).ok().flatten())
        .is_some_and(|cmd| matches!(cmd, Command::Quit(_)))
}

/// One unit read from the server.
pub enum Received {
    Line(Vec<u8>),
    /// A line over [`MAX_RECEIVED_LINE_BYTES`], dropped by the framer.
    TooLong,
}

/// The receiving half of the connection, framed into lines. Registration
/// reads from it first, then it moves to the reader thread with whatever it
/// has already buffered, so no line is lost in the hand-over.
pub struct Lines {
    pub incoming: Incoming,
    framer: LineBuf,
    ready: VecDeque<Received>,
    at_eof: bool,
    /// Bytes received so far: none means the server never spoke.
    received_bytes: u64,
}

impl Lines {
    pub fn new(incoming: Incoming) -> Lines {
        Lines {
            incoming,
            framer: LineBuf::new(),
            ready: Default::default(),
            at_eof: false,
            received_bytes: 0,
        }
    }

    /// The next line; `Ok(None)` once the server has closed cleanly and
    /// every line before the close was handed out.
    pub fn next(&mut self) -> io::Result<Option<Received>> {
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
            match self.incoming.read(&mut chunk) {
                Ok(0) => {
                    self.at_eof = true;
                    self.framer.finish(MAX_RECEIVED_LINE_BYTES, &mut on_frame);
                }
                Ok(n) => {
                    self.received_bytes += n as u64;
                    self.framer
                        .push(&chunk[..n], MAX_RECEIVED_LINE_BYTES, &mut on_frame)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where a name comes from when the server asks for one (again).
pub trait Asker {
    /// True if a refused name may be asked for again (a person is there).
    fn can_ask(&self) -> bool;
    /// `Ok(None)` when the user gave up (Ctrl-C, Ctrl-D).
    fn ask(&mut self) -> Result<Option<String>, Exit>;
    /// Shows a line received during registration: on stdout, flushed.
    fn show(&mut self, rendered: &str) {
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{rendered}");
        let _ = stdout.flush();
    }
}

/// Answers the server's name prompts until the own join notice
/// (`* <name> joined lobby`) arrives, and returns the name as the server
/// spelled it. A refused name is shown with the server's reason, then asked
/// again at a terminal or reported as an error otherwise. A server that
/// says nothing within [`PROMPT_TIMEOUT`] is an error.
pub fn register(
    lines: &mut Lines,
    shared: &Shared,
    is_tls: bool,
    mut name: Option<String>,
    asker: &mut dyn Asker,
    style: Style,
) -> Result<String, Exit> {
    let lost = |e: io::Error| Exit::fail(format!("connection to {} lost: {e}", shared.addr));
    lines
        .incoming
        .set_read_timeout(Some(PROMPT_TIMEOUT))
        .map_err(lost)?;
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
            Err(e) if is_timeout(&e) && lines.received_bytes == 0 => {
                return Err(Exit::fail(if is_tls {
                    format!(
                        "no prompt from the server within {} s",
                        PROMPT_TIMEOUT.as_secs()
                    )
                } else {
                    "no prompt from the server; is this a TLS port? try --tls".to_string()
                }))
            }
            // It spoke: from now on it may take its time.
            Err(e) if is_timeout(&e) => {
                lines.incoming.set_read_timeout(None).map_err(lost)?;
                continue;
            }
            Err(e) => return Err(lost(e)),
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
                if let Err(e) = shared.out.send_line(next.as_bytes()) {
                    return Err(lost(e));
                }
                sent = Some(next);
            }
            ServerLine::Notice(rest) => {
                asker.show(&style.line(&raw));
                let joined = rest
                    .strip_suffix(LOBBY)
                    .and_then(|r| r.strip_suffix(" joined "));
                if let (Some(who), Some(me)) = (joined, sent.as_deref()) {
                    if who.eq_ignore_ascii_case(me) {
                        lines.incoming.set_read_timeout(None).map_err(lost)?;
                        return Ok(who.to_string());
                    }
                }
            }
            ServerLine::Error(why) => {
                asker.show(&style.line(&raw));
                if !asker.can_ask() {
                    return Err(Exit::fail(match sent {
                        Some(me) => format!("cannot register as {me}: {why}"),
                        None => format!("the server refused: {why}"),
                    }));
                }
                last_error = Some(why.to_string());
            }
            _ => asker.show(&style.line(&raw)),
        }
    }
}

/// How the receiving side of a session ended.
#[derive(Debug)]
pub enum End {
    /// We sent `/quit` and the server closed the connection cleanly.
    Quit,
    /// The server's shutdown notice was the last line, then a clean close.
    Shutdown,
    /// Lines mode: the probe came back, so everything sent was answered.
    Synced,
    /// The server closed cleanly, but not after a shutdown notice or our
    /// `/quit`.
    Closed,
    /// A read failed (a reset, a TLS error, a cut without close_notify).
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
pub trait Screen {
    /// Shows one received line.
    fn line(&mut self, raw: &[u8]) -> io::Result<()>;
    /// Shows a message from the client itself.
    fn note(&mut self, text: &str) -> io::Result<()>;
}

/// The reader thread's loop: shows every line until the session ends, and
/// says how it ended.
///
/// The shutdown notice is believed only as the very last line before a
/// clean close: a line that merely looks like it (an old server relaying a
/// user named `server`, say) is followed by more lines or by no clean
/// close, and ends nothing.
pub fn receive(lines: &mut Lines, shared: &Shared, screen: &mut dyn Screen) -> End {
    let mut shutdown_last = false;
    let mut last_received = Instant::now();
    loop {
        let received = match lines.next() {
            Ok(Some(received)) => received,
            Ok(None) if shared.quit_sent.load(Ordering::SeqCst) => return End::Quit,
            Ok(None) if shutdown_last => return End::Shutdown,
            Ok(None) => return End::Closed,
            // Only lines mode sets a read timeout: a tick to check on the
            // probe, not a failure.
            Err(e) if is_timeout(&e) => {
                if shared.is_reply_overdue(last_received) {
                    return End::NoReply;
                }
                continue;
            }
            Err(e) => return End::Lost(e),
        };
        last_received = Instant::now();
        let shown = match received {
            Received::Line(raw) if raw == shared.probe_reply.as_bytes() => return End::Synced,
            Received::Line(raw) => {
                shutdown_last = raw == SHUTDOWN_NOTICE.as_bytes();
                if raw.starts_with(ERROR_PREFIX.as_bytes()) {
                    shared.errors.fetch_add(1, Ordering::SeqCst);
                }
                screen.line(&raw)
            }
            Received::TooLong => {
                shutdown_last = false;
                screen.note(&format!(
                    "a line over {MAX_RECEIVED_LINE_BYTES} bytes was dropped"
                ))
            }
        };
        if let Err(e) = shown {
            return End::Output(e);
        }
    }
}
