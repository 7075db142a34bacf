//! Runs the example client (`examples/client/`) as a child process for
//! the `tests/client*.rs` tests: finds the binary (building it when missing
//! or older than its sources), feeds its stdin, reads its stdout line by
//! line with a deadline, and kills it if it outlives one. Also a scripted
//! fake server for the bytes a real server never sends; [`pty`] runs the
//! client at a terminal and [`tls`] provides certificates and TLS servers.
//! Nothing here may wait unbounded.
#![allow(dead_code)]

pub mod pty;
pub mod tls;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one expected line, or the client's exit, may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// The client binary: `target/<profile>/examples/client`, next to the
/// `deps/` folder this test binary runs from.
///
/// A plain `cargo test` builds examples first; `cargo test --test client`
/// does not, so a missing binary, or one older than the sources it is built
/// from, is (re)built here rather than silently testing stale code.
pub fn client_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| crate::common::process::example_bin("client"))
}

/// A running client process.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    /// One item per stdout line, without its `\n`, as raw bytes.
    stdout: Receiver<Vec<u8>>,
    stderr: Option<JoinHandle<String>>,
    deadline: Instant,
}

/// What a client did, once it exited.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// Stdout lines not already taken by [`Running::expect_line`].
    pub stdout: Vec<Vec<u8>>,
    pub stderr: String,
}

impl Finished {
    /// The remaining stdout lines as text (test lines are UTF-8).
    #[track_caller]
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .iter()
            .map(|l| String::from_utf8(l.clone()).expect("client stdout is UTF-8"))
            .collect()
    }
}

/// Starts the client with `args`, stdin, stdout and stderr piped.
pub fn spawn(args: &[&str]) -> Running {
    spawn_with_env(args, &[])
}

/// Starts the client with `args` and the environment changed by `env`
/// (`Some` sets a variable, `None` removes it).
pub fn spawn_with_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Running {
    let mut cmd = Command::new(client_path());
    for (key, value) in env {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A client that panics should say where, not suggest backtraces.
        .env_remove("RUST_BACKTRACE")
        .spawn()
        .expect("start the client");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Running {
        stdin: child.stdin.take(),
        child,
        stdout: rx,
        stderr: Some(stderr),
        deadline: Instant::now() + CLIENT_TIMEOUT,
    }
}

/// Runs the client with `args` and `input` as its whole stdin, to its exit.
pub fn run(args: &[&str], input: &[u8]) -> Finished {
    let mut client = spawn(args);
    client.write_stdin(input);
    client.finish()
}

impl Running {
    /// Writes `bytes` to the client's stdin.
    #[track_caller]
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        // The client may already have exited (a refused name, say); what
        // it did is what the test checks, so a broken pipe is no failure.
        match stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("writing to the client's stdin: {e}"),
        }
    }

    /// Reads the client's next stdout line, as raw bytes without `\n`.
    #[track_caller]
    pub fn next_line(&mut self) -> Vec<u8> {
        let wait = self.deadline.saturating_duration_since(Instant::now());
        match self.stdout.recv_timeout(wait) {
            Ok(line) => line,
            Err(_) => {
                let finished = self.finish_inner(true);
                panic!("no stdout line from the client; it did: {finished:#?}");
            }
        }
    }

    /// Reads the client's next stdout line and asserts it is exactly `want`.
    #[track_caller]
    pub fn expect_line(&mut self, want: &str) {
        let line = self.next_line();
        assert_eq!(
            String::from_utf8_lossy(&line),
            want,
            "client stdout line (raw {line:?})"
        );
    }

    /// Closes stdin (the end of the script) and waits, bounded, for the
    /// client to exit. A client still running at the deadline is killed and
    /// the test fails.
    #[track_caller]
    pub fn finish(mut self) -> Finished {
        let finished = self.finish_inner(true);
        assert_exited(&finished);
        finished
    }

    /// Waits, bounded, for the client to exit by itself with stdin still
    /// open, for sessions the server ends: the client must not be sending
    /// its end-of-input probe to a server that is closing.
    #[track_caller]
    pub fn wait_exit(mut self) -> Finished {
        let finished = self.finish_inner(false);
        assert_exited(&finished);
        finished
    }

    fn finish_inner(&mut self, close_stdin: bool) -> Finished {
        if close_stdin {
            drop(self.stdin.take());
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => {
                    // std has no wait with a timeout; polling the exit is
                    // the bound, not a synchronisation.
                    thread::sleep(Duration::from_millis(5));
                }
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    break self.child.wait().expect("reap the killed client");
                }
            }
        };
        drop(self.stdin.take());
        // The process is gone, so both pipes reach EOF.
        let stdout = self.stdout.iter().collect();
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

#[track_caller]
fn assert_exited(finished: &Finished) {
    assert!(
        finished.status.code().is_some(),
        "client killed (by the test's deadline?): {finished:#?}"
    );
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave a client running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-connection fake server on a free loopback port, driven by a script.
pub struct FakeServer {
    pub addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Accepts one connection and runs `script` on it in a thread.
    pub fn start(script: impl FnOnce(TcpStream) + Send + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        Self::start_with(listener, script)
    }

    /// As [`start`](Self::start), on a listener the caller bound.
    pub fn start_with(
        listener: TcpListener,
        script: impl FnOnce(TcpStream) + Send + 'static,
    ) -> FakeServer {
        let addr = listener.local_addr().expect("fake server address");
        let thread = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("fake server accept");
            stream
                .set_read_timeout(Some(CLIENT_TIMEOUT))
                .expect("set read timeout");
            script(stream);
        });
        FakeServer {
            addr,
            thread: Some(thread),
        }
    }

    /// Waits for the script to finish; fails the test if it panicked.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            t.join().expect("fake server script panicked");
        }
    }
}

/// The registration a real server does: prompt, read the name, announce the
/// join. Returns the name and a reader over the rest of the client's lines.
#[track_caller]
pub fn fake_login(stream: &TcpStream) -> (String, BufReader<TcpStream>) {
    let mut out = stream;
    out.write_all(b"NAME\n").expect("send prompt");
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut name = String::new();
    reader.read_line(&mut name).expect("read name");
    let name = name.trim_end().to_string();
    out.write_all(format!("* {name} joined lobby\n").as_bytes())
        .expect("send join notice");
    (name, reader)
}

/// The arguments that point the client at `addr` as `name`.
pub fn args(addr: impl ToString, name: &str) -> Vec<String> {
    vec![
        "--addr".to_string(),
        addr.to_string(),
        "--name".to_string(),
        name.to_string(),
    ]
}

/// The strings of `args`, as [`spawn`] and [`run`] take them.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Asserts the exit status code, showing everything the client did if not.
#[track_caller]
pub fn assert_code(finished: &Finished, code: i32) {
    assert_eq!(
        finished.status.code(),
        Some(code),
        "client exit status; it did: {finished:#?}"
    );
}

/// Reads the lines a real server sends on registration in the lobby (no
/// topic, no history): the join notice, the welcome and the member list.
#[track_caller]
pub fn expect_join_burst(client: &mut Running, name: &str, members: &str) {
    client.expect_line(&format!("* {name} joined lobby"));
    client.expect_line(&format!(
        "* welcome to chatroom, {name}! /help lists the commands"
    ));
    let n = members.split(", ").count();
    let s = if n == 1 { "" } else { "s" };
    client.expect_line(&format!("* lobby has {n} member{s}: {members}"));
}
