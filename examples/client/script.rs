//! Lines mode, for scripts (and for a terminal on stdin with stdout
//! elsewhere): a reader thread prints what arrives and ends the program;
//! the main thread sends stdin line by line, then a probe the server always
//! answers, so the client exits only once everything sent was answered.

use std::io::{self, BufRead, Write};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::net::Conn;
use crate::render::Style;
use crate::session::{self, register, Asker, Exit, Lines, Screen, Shared};
use crate::Args;

/// How often the reader wakes during silence to check on the probe.
const READ_TICK: Duration = Duration::from_secs(1);

/// Lines mode. `banner` is shown on stderr when a person is at stdin;
/// without one (a script), error lines from the server count against the
/// exit status.
pub fn run(conn: Conn, args: Args, style: Style, banner: Option<&str>) -> Exit {
    let is_script = banner.is_none();
    let shared = Arc::new(Shared::new(
        args.target.to_string(),
        conn.outgoing,
        is_script,
    ));
    if let Some(banner) = banner {
        eprintln!("client: {banner}");
    }
    let mut lines = Lines::new(conn.incoming);
    let mut asker = StdinAsker {
        can_ask: !is_script,
    };
    if let Err(exit) = register(
        &mut lines,
        &shared,
        conn.is_tls,
        args.name,
        &mut asker,
        style,
    ) {
        return exit;
    }
    // The reader wakes every tick so it can give up on a silent server.
    if let Err(e) = lines.incoming.set_read_timeout(Some(READ_TICK)) {
        return Exit::fail(format!("cannot use the connection: {e}"));
    }
    let reader_shared = Arc::clone(&shared);
    let reader = thread::spawn(move || {
        let end = session::receive(&mut lines, &reader_shared, &mut Stdout { style });
        // The main thread may be blocked reading stdin: end from here.
        session::finish(reader_shared.exit(end))
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
        match shared.send(text) {
            // After /quit, the reader reports the server's close.
            Ok(true) => return wait_for(reader),
            Ok(false) => {}
            // A failed send shows up on the reading side too, which ends
            // the program with the reason.
            Err(_) => return wait_for(reader),
        }
    }
    // End of input. The server handles one client's lines in order, so when
    // the probe's answer arrives every earlier line has been answered. If
    // this send fails, the reader sees why and ends the program.
    let _ = shared.send_probe();
    wait_for(reader)
}

/// Waits for the reader thread, which normally ends the program itself.
fn wait_for(reader: thread::JoinHandle<()>) -> Exit {
    match reader.join() {
        Ok(()) => Exit::ok(),
        Err(_) => Exit::fail("the reader thread panicked"),
    }
}

/// Asks for a name on stderr and reads it from stdin, if a person is there.
struct StdinAsker {
    can_ask: bool,
}

impl Asker for StdinAsker {
    fn can_ask(&self) -> bool {
        self.can_ask
    }

    fn ask(&mut self) -> Result<Option<String>, Exit> {
        if !self.can_ask {
            return Ok(None);
        }
        eprint!("name: ");
        let mut name = String::new();
        match io::stdin().lock().read_line(&mut name) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(name)),
            Err(e) => Err(Exit::fail(format!("cannot read stdin: {e}"))),
        }
    }
}

/// Received lines to stdout, the client's notes to stderr.
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
