//! Editor mode: rustyline reads the keyboard on the main thread while a
//! reader thread prints incoming lines through rustyline's
//! `ExternalPrinter`, which redraws the half-typed line below them. Owns
//! the keys (Ctrl-C clears, Ctrl-C or Ctrl-D on an empty line leaves) and
//! the screen: a sent line is erased so that only the server's copy of it
//! shows, in the server's order.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{
    Cmd, ConditionalEventHandler, Editor, Event, EventContext, EventHandler, ExternalPrinter,
    KeyCode, KeyEvent, Modifiers, Movement, RepeatCount,
};

use crate::net::Conn;
use crate::render::Style;
use crate::session::{self, register, Asker, End, Exit, Lines, Screen, Shared};
use crate::Args;

/// How long to wait for the server to close after `/quit`.
const QUIT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the reader re-sends its wake-up signal until the main thread
/// has left `readline` (the first may land between two calls).
const WAKE_RETRY: Duration = Duration::from_millis(100);
/// How long Enter waits for a print in progress before the line is taken;
/// see [`Gate`].
const GATE_WAIT: Duration = Duration::from_millis(100);
/// The prompt of the line being typed.
const INPUT_PROMPT: &str = "> ";
/// The prompt for a name.
const NAME_PROMPT: &str = "name: ";
/// Columns between tab stops, as rustyline draws them.
const TAB_STOP: usize = 8;

/// The line editor, and the printer the reader thread will use.
pub struct Terminal {
    editor: Editor<(), DefaultHistory>,
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    gate: Arc<Gate>,
}

impl Terminal {
    /// `None` when rustyline cannot drive this terminal (then lines mode is
    /// used instead).
    pub fn new() -> Option<Terminal> {
        let mut editor = Editor::<(), DefaultHistory>::new().ok()?;
        let printer = editor.create_external_printer().ok()?;
        let gate = Arc::new(Gate::default());
        editor.bind_sequence(
            KeyEvent::ctrl('C'),
            EventHandler::Conditional(Box::new(CtrlC)),
        );
        editor.bind_sequence(
            KeyEvent(KeyCode::Enter, Modifiers::NONE),
            EventHandler::Conditional(Box::new(Enter(Arc::clone(&gate)))),
        );
        Some(Terminal {
            editor,
            printer: Some(Box::new(printer)),
            gate,
        })
    }

    /// Reads one line. A line taken with Enter is erased from the screen,
    /// prompt and all, before anything else is printed.
    fn read_line(&mut self, prompt: &str) -> Result<String, ReadlineError> {
        let read = self.editor.readline(prompt);
        if let Ok(line) = &read {
            // The gate is closed (Enter closed it), so no incoming line can
            // land between the typed rows and this.
            let rows = typed_rows(prompt, line, terminal_columns());
            let mut stdout = io::stdout().lock();
            let _ = write!(stdout, "\x1b[{rows}A\r\x1b[J");
            let _ = stdout.flush();
        }
        self.gate.open();
        read
    }
}

/// Ctrl-C: clears the line being typed; on an empty line, leaves (so a
/// second Ctrl-C after clearing leaves, as in shells that exit on it).
struct CtrlC;

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext<'_>) -> Option<Cmd> {
        if ctx.line().is_empty() {
            Some(Cmd::Interrupt)
        } else {
            Some(Cmd::Kill(Movement::WholeBuffer))
        }
    }
}

/// Enter: closes the [`Gate`] just before rustyline takes the line, then
/// lets it do so.
struct Enter(Arc<Gate>);

impl ConditionalEventHandler for Enter {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext<'_>) -> Option<Cmd> {
        self.0.close();
        None
    }
}

/// Keeps incoming lines off the screen between Enter and the erasing of the
/// typed line, so the rows erased are the typed ones.
///
/// rustyline's printer queues a line while `readline` runs (drawn above the
/// prompt) but writes it straight out between two calls; a line written
/// straight out after the typed rows would be erased instead of them. So
/// Enter closes the gate (inside `readline`, while lines are still queued),
/// the reader waits at the gate to print, and the main thread opens it once
/// the typed rows are gone. Enter waits at most [`GATE_WAIT`] for a print in
/// progress: that print may be blocked handing its line to `readline`,
/// which is busy with the Enter, and a line handed over that way is drawn
/// by the next `readline`, in the right place.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    printing: bool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        let state = self.lock();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, GATE_WAIT, |s| s.printing)
            .unwrap_or_else(|p| p.into_inner());
        state.closed = true;
    }

    fn open(&self) {
        self.lock().closed = false;
        self.changed.notify_all();
    }

    /// Runs `print` once the gate is open, marked as printing.
    fn print<R>(&self, print: impl FnOnce() -> R) -> R {
        {
            let state = self.lock();
            let mut state = self
                .changed
                .wait_while(state, |s| s.closed)
                .unwrap_or_else(|p| p.into_inner());
            state.printing = true;
        }
        let result = print();
        self.lock().printing = false;
        self.changed.notify_all();
        result
    }
}

/// The terminal's width in columns (80 if unknown).
fn terminal_columns() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize and reads nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

/// How many rows rustyline's drawing of `prompt` and `line` takes, counting
/// the row it moved down to when the line was taken: the rows to go back up.
/// Follows rustyline's own layout (a character that does not fit goes to
/// the next row; a row filled exactly moves the cursor down), with
/// [`char_width`] for widths.
fn typed_rows(prompt: &str, line: &str, columns: usize) -> usize {
    let columns = columns.max(1);
    let (mut row, mut col) = (0, 0);
    for c in prompt.chars().chain(line.chars()) {
        if c == '\n' {
            row += 1;
            col = 0;
            continue;
        }
        let width = if c == '\t' {
            TAB_STOP - col % TAB_STOP
        } else {
            char_width(c)
        };
        col += width;
        if col > columns {
            row += 1;
            col = width;
        }
    }
    if col == columns {
        row += 1;
    }
    row + 1
}

/// Columns a character takes in a terminal: 0 for controls, combining
/// marks and zero-width characters, 2 for East Asian wide characters and
/// emoji, 1 otherwise. An approximation of Unicode's tables good for the
/// scripts and symbols people type.
fn char_width(c: char) -> usize {
    match u32::from(c) {
        0..=0x1f | 0x7f..=0x9f => 0,
        0x0300..=0x036f
        | 0x0483..=0x0489
        | 0x0591..=0x05bd
        | 0x0610..=0x061a
        | 0x064b..=0x065f
        | 0x1ab0..=0x1aff
        | 0x1dc0..=0x1dff
        | 0x200b..=0x200f
        | 0x2028..=0x202e
        | 0x2060..=0x2064
        | 0x20d0..=0x20ff
        | 0xfe00..=0xfe0f
        | 0xfe20..=0xfe2f
        | 0xfeff => 0,
        0x1100..=0x115f
        | 0x231a..=0x231b
        | 0x2329..=0x232a
        | 0x23e9..=0x23ec
        | 0x23f0
        | 0x23f3
        | 0x25fd..=0x25fe
        | 0x2614..=0x2615
        | 0x2648..=0x2653
        | 0x267f
        | 0x2693
        | 0x26a1
        | 0x26aa..=0x26ab
        | 0x26bd..=0x26be
        | 0x26c4..=0x26c5
        | 0x26ce
        | 0x26d4
        | 0x26ea
        | 0x26f2..=0x26f3
        | 0x26f5
        | 0x26fa
        | 0x26fd
        | 0x2705
        | 0x270a..=0x270b
        | 0x2728
        | 0x274c
        | 0x274e
        | 0x2753..=0x2755
        | 0x2757
        | 0x2795..=0x2797
        | 0x27b0
        | 0x27bf
        | 0x2b1b..=0x2b1c
        | 0x2b50
        | 0x2b55
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xa960..=0xa97f
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe10..=0xfe19
        | 0xfe30..=0xfe6f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f004
        | 0x1f0cf
        | 0x1f18e
        | 0x1f191..=0x1f19a
        | 0x1f200..=0x1f251
        | 0x1f300..=0x1f64f
        | 0x1f680..=0x1f6ff
        | 0x1f7e0..=0x1f7eb
        | 0x1f90c..=0x1f9ff
        | 0x1fa70..=0x1faff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

/// Registration at the terminal: names are asked for with the editor, and
/// lines are printed directly (the reader thread does not run yet).
struct EditorAsker<'a> {
    terminal: &'a mut Terminal,
}

impl Asker for EditorAsker<'_> {
    fn can_ask(&self) -> bool {
        true
    }

    fn ask(&mut self) -> Result<Option<String>, Exit> {
        match self.terminal.read_line(NAME_PROMPT) {
            Ok(name) => Ok(Some(name)),
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => Ok(None),
            Err(e) => Err(Exit::fail(format!("cannot read from the terminal: {e}"))),
        }
    }
}

/// The reader thread's screen: everything goes through rustyline's
/// printer, past the [`Gate`].
struct Printer {
    printer: Box<dyn ExternalPrinter + Send>,
    gate: Arc<Gate>,
    style: Style,
}

impl Printer {
    /// Prints one line. The `\n` is ours: rustyline adds one only while
    /// `readline` runs, and writes the text as it is between two calls.
    fn print(&mut self, mut text: String) -> io::Result<()> {
        text.push('\n');
        let printer = &mut self.printer;
        self.gate
            .print(|| printer.print(text))
            .map_err(io::Error::other)
    }

    /// Returns once the editor has taken every earlier message to draw.
    ///
    /// The printer's queue holds one message, so printing blocks until the
    /// editor has taken the one before; that is the only acknowledgement it
    /// gives. The message sent to wait must be invisible, because it may or
    /// may not be drawn: cursor up one row, then the newline (CR LF, output
    /// processing stays on) back down, landing where it started.
    fn drain(&mut self) {
        let printer = &mut self.printer;
        let _ = self.gate.print(|| printer.print("\x1b[1A\n".to_string()));
    }
}

impl Screen for Printer {
    fn line(&mut self, raw: &[u8]) -> io::Result<()> {
        let text = self.style.line(raw);
        self.print(text)
    }

    fn note(&mut self, text: &str) -> io::Result<()> {
        let text = self.style.note(text);
        self.print(text)
    }
}

/// Editor mode, from the banner to the end of the session.
///
/// `readline` blocks until a key is pressed, so when the server goes away
/// the reader must wake it: it raises SIGINT, which rustyline turns into
/// `ReadlineError::Interrupted`, after handing the reason over on a channel.
/// A SIGINT handler installed here keeps the signal harmless in the moments
/// the main thread is not inside `readline`.
pub fn run(mut terminal: Terminal, conn: Conn, args: Args, style: Style, banner: &str) -> Exit {
    // First, before any line from the server.
    println!("{}", style.note(banner));
    let shared = Arc::new(Shared::new(args.target.to_string(), conn.outgoing, false));
    let mut lines = Lines::new(conn.incoming);
    let mut asker = EditorAsker {
        terminal: &mut terminal,
    };
    if let Err(exit) = register(
        &mut lines,
        &shared,
        conn.is_tls,
        args.name,
        &mut asker,
        style,
    ) {
        shared.out.close();
        return exit;
    }

    let swallowed = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGINT, swallowed) {
        return Exit::fail(format!("cannot install a SIGINT handler: {e}"));
    }
    let Some(printer) = terminal.printer.take() else {
        return Exit::fail("the terminal's printer is gone");
    };
    let (end_tx, end_rx) = mpsc::channel::<End>();
    let reader_shared = Arc::clone(&shared);
    let gate = Arc::clone(&terminal.gate);
    thread::spawn(move || {
        let mut screen = Printer {
            printer,
            gate,
            style,
        };
        let end = session::receive(&mut lines, &reader_shared, &mut screen);
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

    loop {
        if let Ok(end) = end_rx.try_recv() {
            return shared.exit(end);
        }
        match terminal.read_line(INPUT_PROMPT) {
            Ok(text) => {
                if !text.trim().is_empty() {
                    let _ = terminal.editor.add_history_entry(text.as_str());
                }
                if !send_lines(&shared, &text) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                if let Ok(end) = end_rx.try_recv() {
                    // Woken by the reader: the server went away.
                    return shared.exit(end);
                }
                // Ctrl-C on an empty line: leave as /quit does, so the
                // room hears why.
                shared.leave();
                break;
            }
            Err(ReadlineError::Eof) => {
                shared.leave();
                break;
            }
            Err(e) => {
                shared.leave();
                return Exit::fail(format!("cannot read from the terminal: {e}"));
            }
        }
    }
    // After /quit (or a failed send), the reader reports the server's close.
    match end_rx.recv_timeout(QUIT_TIMEOUT) {
        Ok(end) => shared.exit(end),
        Err(_) if shared.quit_sent.load(Ordering::SeqCst) => {
            shared.out.close();
            Exit::ok()
        }
        Err(_) => Exit::fail(format!("connection to {} lost", shared.addr)),
    }
}

/// Sends what was typed: one line per line (a paste may hold several),
/// blank ones skipped (the server ignores them). False once the session is
/// over for the sender: after `/quit`, or when a send failed (the reader
/// reports why).
fn send_lines(shared: &Shared, text: &str) -> bool {
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        match shared.send(line.as_bytes()) {
            Ok(false) => {}
            Ok(true) | Err(_) => return false,
        }
    }
    true
}
