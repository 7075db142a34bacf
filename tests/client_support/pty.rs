//! The client at a terminal, for tests of editor mode: runs the client
//! program on a pseudo-terminal (stdin, stdout and stderr all the pty, as
//! in a real terminal window), types keys into it, and keeps a small screen
//! model of what it drew, so tests assert what a person would see. The
//! screen understands what rustyline and the client write: printable text,
//! CR, LF, backspace, and CSI cursor moves and erases; colours and modes
//! are ignored. Every wait has a deadline.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{client_path, CLIENT_TIMEOUT};

/// The terminal's size.
pub const ROWS: usize = 24;
pub const COLUMNS: usize = 80;

/// A screen: rows of characters and a cursor, plus the rows scrolled off
/// the top, and every byte received (for escape sequences tests look for).
#[derive(Debug, Default)]
pub struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    scrolled: Vec<String>,
    pub raw: Vec<u8>,
    /// An escape sequence not complete yet (split across reads).
    pending: Vec<u8>,
    /// The child closed the terminal (it exited).
    pub closed: bool,
}

impl Screen {
    fn new() -> Screen {
        Screen {
            rows: vec![Vec::new(); ROWS],
            ..Screen::default()
        }
    }

    /// Every row ever drawn that is still on screen or scrolled off, as
    /// text without trailing blanks; trailing empty rows left out.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = self.scrolled.clone();
        lines.extend(
            self.rows
                .iter()
                .map(|r| r.iter().collect::<String>().trim_end().to_string()),
        );
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    /// The row the cursor is on, as text.
    pub fn cursor_line(&self) -> String {
        self.rows[self.row].iter().collect::<String>()
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(bytes);
        let text = String::from_utf8_lossy(&data).into_owned();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\x1b' => match self.escape(&chars[i..]) {
                    Some(n) => i += n,
                    None => {
                        // Incomplete: keep it for the next read.
                        self.pending = chars[i..].iter().collect::<String>().into_bytes();
                        return;
                    }
                },
                '\r' => {
                    self.col = 0;
                    i += 1;
                }
                '\n' => {
                    self.line_feed();
                    i += 1;
                }
                '\x08' => {
                    self.col = self.col.saturating_sub(1);
                    i += 1;
                }
                c if (c as u32) < 0x20 => i += 1,
                c => {
                    if self.col >= COLUMNS {
                        self.col = 0;
                        self.line_feed();
                    }
                    let row = &mut self.rows[self.row];
                    if row.len() <= self.col {
                        row.resize(self.col + 1, ' ');
                    }
                    row[self.col] = c;
                    self.col += 1;
                    i += 1;
                }
            }
        }
    }

    fn line_feed(&mut self) {
        if self.row + 1 < ROWS {
            self.row += 1;
        } else {
            let top = self.rows.remove(0);
            self.scrolled
                .push(top.iter().collect::<String>().trim_end().to_string());
            self.rows.push(Vec::new());
        }
    }

    /// Handles the escape sequence at the start of `s`; the number of chars
    /// it took, or `None` if it is not complete yet.
    fn escape(&mut self, s: &[char]) -> Option<usize> {
        match s.get(1)? {
            '[' => {
                let end = s[2..].iter().position(|c| ('@'..='~').contains(c))? + 2;
                let params: String = s[2..end].iter().collect();
                self.csi(&params, s[end]);
                Some(end + 1)
            }
            ']' => {
                // OSC, up to BEL or ST.
                let end = s.iter().position(|&c| c == '\x07' || c == '\u{9c}')?;
                Some(end + 1)
            }
            _ => Some(2),
        }
    }

    fn csi(&mut self, params: &str, command: char) {
        if params.starts_with('?') || params.starts_with('>') {
            return; // modes: bracketed paste, synchronized output, cursor
        }
        let nums: Vec<usize> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let n = nums.first().copied().unwrap_or(0).max(1);
        match command {
            'A' => self.row = self.row.saturating_sub(n),
            'B' => self.row = (self.row + n).min(ROWS - 1),
            'C' => self.col = (self.col + n).min(COLUMNS - 1),
            'D' => self.col = self.col.saturating_sub(n),
            'G' => self.col = (n - 1).min(COLUMNS - 1),
            'H' => {
                self.row = (n - 1).min(ROWS - 1);
                self.col = (nums.get(1).copied().unwrap_or(1).max(1) - 1).min(COLUMNS - 1);
            }
            'J' => match nums.first().copied().unwrap_or(0) {
                0 => {
                    self.rows[self.row].truncate(self.col);
                    for row in &mut self.rows[self.row + 1..] {
                        row.clear();
                    }
                }
                _ => {
                    for row in &mut self.rows {
                        row.clear();
                    }
                }
            },
            'K' => match nums.first().copied().unwrap_or(0) {
                0 => self.rows[self.row].truncate(self.col),
                1 => {
                    let row = &mut self.rows[self.row];
                    for c in row.iter_mut().take(self.col + 1) {
                        *c = ' ';
                    }
                }
                _ => self.rows[self.row].clear(),
            },
            _ => {} // colours ('m') and the rest
        }
    }
}

/// True if the screen row `line` shows `text`, as is or after a
/// `HH:MM:SS ` time.
pub fn shows(line: &str, text: &str) -> bool {
    line == text
        || (line.len() == text.len() + 9
            && line.is_char_boundary(9)
            && line.as_bytes()[2] == b':'
            && line.as_bytes()[8] == b' '
            && &line[9..] == text)
}

/// The client running on a pseudo-terminal.
pub struct PtyClient {
    child: Child,
    master: File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
}

impl PtyClient {
    /// Starts the client with `args` on a fresh 80x24 terminal, with TERM
    /// set and colours on (`NO_COLOR` removed), in time zone UTC.
    pub fn spawn(args: &[&str]) -> PtyClient {
        let (master, slave) = open_pty();
        let slave = File::from(slave);
        let mut cmd = Command::new(client_path());
        cmd.args(args)
            .stdin(Stdio::from(slave.try_clone().expect("dup pty")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty")))
            .stderr(Stdio::from(slave))
            .env("TERM", "xterm")
            .env("TZ", "UTC")
            .env_remove("NO_COLOR")
            .env_remove("RUST_BACKTRACE");
        let child = cmd.spawn().expect("start the client on a pty");
        // Our copies of the slave must go, or the master never sees EOF.
        drop(cmd);
        let master = File::from(master);
        let screen = Arc::new((Mutex::new(Screen::new()), Condvar::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let shared = Arc::clone(&screen);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                // EIO once the child is gone: the terminal is closed.
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, changed) = &*shared;
                let mut screen = lock.lock().unwrap_or_else(|p| p.into_inner());
                if n == 0 {
                    screen.closed = true;
                } else {
                    screen.feed(&buf[..n]);
                }
                changed.notify_all();
                if n == 0 {
                    return;
                }
            }
        });
        PtyClient {
            child,
            master,
            screen,
        }
    }

    /// Types `keys` (`\r` is Enter, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn type_keys(&mut self, keys: &str) {
        self.master
            .write_all(keys.as_bytes())
            .expect("type into the pty");
    }

    /// Waits, bounded, until `ready` holds for the screen; returns what
    /// `ready` returned. Fails the test with the screen at the deadline.
    #[track_caller]
    pub fn wait_for<T>(&self, what: &str, ready: impl Fn(&Screen) -> Option<T>) -> T {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let (lock, changed) = &*self.screen;
        let mut screen = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(t) = ready(&screen) {
                return t;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; screen:\n{}\nraw: {:?}",
                screen.lines().join("\n"),
                String::from_utf8_lossy(&screen.raw)
            );
            screen = changed
                .wait_timeout(screen, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the client shows an empty input prompt on its last row,
    /// right below the row showing `after` (as is, or after a `HH:MM:SS `
    /// time): the editor is ready for keys. Returns the screen's lines.
    #[track_caller]
    pub fn wait_for_prompt_after(&self, after: &str) -> Vec<String> {
        self.wait_for(&format!("the prompt after {after:?}"), |screen| {
            let lines = screen.lines();
            let at = lines.iter().rposition(|l| shows(l, after))?;
            (lines.len() == at + 2 && lines[at + 1] == ">" && screen.cursor_line() == "> ")
                .then_some(lines)
        })
    }

    /// The screen's lines now.
    pub fn lines(&self) -> Vec<String> {
        self.screen
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lines()
    }

    /// Every byte the client wrote so far.
    pub fn raw(&self) -> Vec<u8> {
        self.screen
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .raw
            .clone()
    }

    /// Waits, bounded, for the client to exit; kills it at the deadline.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the client") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("client still running; screen:\n{}", self.lines().join("\n"));
            }
            // std has no wait with a timeout; polling the exit is the
            // bound, not a synchronisation.
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for PtyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a pseudo-terminal of [`ROWS`] x [`COLUMNS`]: (master, slave).
fn open_pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain libc calls on descriptors we own; each result checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let slave = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(
            slave >= 0,
            "open the pty slave: {}",
            std::io::Error::last_os_error()
        );
        let slave = OwnedFd::from_raw_fd(slave);
        let size = libc::winsize {
            ws_row: ROWS as u16,
            ws_col: COLUMNS as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        assert_eq!(
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size),
            0,
            "TIOCSWINSZ"
        );
        (master, slave)
    }
}
