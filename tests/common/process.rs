//! The real `chatroom` binary as a child process, for tests of what only the
//! binary has: flags, signals, logging and running under an open-file limit.
//! Its stderr is drained on a thread for the whole run, so logging can never
//! fill the pipe and block the server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::LINE_TIMEOUT;

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_chatroom");

/// The kind of the plain-TCP chat listener, which logs `listening on ADDR`
/// (the others log `listening (tls) on ADDR`, `(http)`, `(https)`).
pub const PLAIN: &str = "plain";

/// A running server process, killed if a test fails half-way.
pub struct ServerProcess {
    pub child: Child,
    /// The address from its `listening on ADDR` line (with
    /// [`spawn_on`](Self::spawn_on), from the line of the listener asked for).
    pub addr: SocketAddr,
    /// Everything it logged so far.
    log: Arc<Mutex<String>>,
    drain: Option<JoinHandle<()>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts the binary with exactly `args` (pass `--port 0`), under an
    /// open-file limit of `nofile` if given, and waits for `listening on`.
    #[track_caller]
    pub fn spawn(nofile: Option<u32>, args: &[&str]) -> ServerProcess {
        Self::start(nofile, None, args, PLAIN)
    }

    /// As [`spawn`](Self::spawn), with `RUST_LOG` set (`spawn` removes it,
    /// so a developer's environment cannot silence the `listening on` line).
    #[track_caller]
    pub fn spawn_with_rust_log(rust_log: Option<&str>, args: &[&str]) -> ServerProcess {
        Self::start(None, rust_log, args, PLAIN)
    }

    /// As [`spawn`](Self::spawn) without a limit, but waits for the
    /// listener `kind` (see [`listening`](Self::listening)) and takes `addr`
    /// from it: for a server with no plain listener (`--port off`).
    #[track_caller]
    pub fn spawn_on(kind: &str, args: &[&str]) -> ServerProcess {
        Self::start(None, None, args, kind)
    }

    #[track_caller]
    fn start(
        nofile: Option<u32>,
        rust_log: Option<&str>,
        args: &[&str],
        kind: &str,
    ) -> ServerProcess {
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        match rust_log {
            Some(level) => cmd.env("RUST_LOG", level),
            None => cmd.env_remove("RUST_LOG"),
        };
        // The web listeners' default ports (8080, and 8443 with TLS) would
        // clash between tests run in parallel: off unless a test asks.
        for flag in ["--http-port", "--https-port"] {
            if !args.iter().any(|a| a.starts_with(flag)) {
                cmd.args([flag, "off"]);
            }
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chatroom");
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let log = Arc::new(Mutex::new(String::new()));
        let drain = thread::spawn({
            let log = Arc::clone(&log);
            move || {
                for line in stderr.lines() {
                    let Ok(line) = line else { return };
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        // Built before the wait, so that a failed wait still kills it.
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
            drain: Some(drain),
        };
        server.addr = server.listening(kind);
        server
    }

    /// Waits (bounded) for the line that listener `kind` logs once bound,
    /// `listening (kind) on ADDR` (`plain`: `listening on ADDR`), and
    /// returns ADDR. Fails the test if the server exits first.
    #[track_caller]
    pub fn listening(&self, kind: &str) -> SocketAddr {
        let marker = match kind {
            PLAIN => "listening on ".to_string(),
            kind => format!("listening ({kind}) on "),
        };
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            // Whether the drain had ended before this look at the log.
            let ended = self.drain.as_ref().is_none_or(JoinHandle::is_finished);
            let log = self.log();
            if let Some(addr) = log.lines().find_map(|l| l.split(&marker).nth(1)) {
                return addr.trim().parse().expect("listening address");
            }
            assert!(
                !ended && Instant::now() < deadline,
                "no `{}` line; log: {log}",
                marker.trim_end()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the server.
    #[track_caller]
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid() as libc::pid_t, sig) }, 0);
    }

    /// Waits (bounded) for the process to exit; returns its status code.
    #[track_caller]
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM, asserts a graceful exit with status 0 and returns
    /// the whole log.
    #[track_caller]
    pub fn terminate(mut self) -> String {
        self.signal(libc::SIGTERM);
        assert_eq!(self.wait_exit(), Some(0), "exit status after SIGTERM");
        self.final_log()
    }

    /// The whole log, once the process has exited (waits for the drain).
    #[track_caller]
    pub fn final_log(&mut self) -> String {
        self.wait_exit();
        if let Some(drain) = self.drain.take() {
            drain.join().expect("stderr drain thread");
        }
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log holds `needle` at least `count` times.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let seen = self.log.lock().unwrap().matches(needle).count();
            if seen >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "log has {needle:?} {seen} times, not {count}: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[track_caller]
    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(status.is_none(), "server exited: {status:?}");
    }

    /// User plus system CPU time the server has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name in brackets; utime and stime are
        // fields 14 and 15 of the whole line, in clock ticks.
        let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    /// The server's resident memory, in bytes.
    pub fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .expect("VmRSS in /proc/<pid>/status")
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .unwrap();
        kb * 1024
    }
}

/// The example binary `name` of this test's profile (the test runs from
/// `target/<profile>/deps`, examples live in `target/<profile>/examples`),
/// built first when it is missing or older than a source it is built
/// from: `cargo test --test X` builds no examples. Once per test binary.
pub fn example_bin(name: &str) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static BUILT: OnceLock<Mutex<HashMap<String, std::path::PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if is_stale(&path, name) {
        build_example(profile_dir, name);
    }
    assert!(
        path.exists(),
        "no {name} binary at {}; run `cargo build --example {name}`",
        path.display()
    );
    built.insert(name.to_owned(), path.clone());
    path
}

/// True when `binary` is missing or older than a source it is built from
/// (Cargo.toml, `src/`, and the example's own file or folder).
fn is_stale(binary: &std::path::Path, name: &str) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![
        root.join("Cargo.toml"),
        root.join(format!("examples/{name}.rs")),
    ];
    let mut dirs = vec![root.join("examples").join(name), root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in dir.read_dir().into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                sources.push(path);
            }
        }
    }
    sources.iter().any(|source| {
        source
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > built)
    })
}

/// Runs `cargo build --example name` for the profile and target directory
/// this test runs in.
fn build_example(profile_dir: &std::path::Path, name: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo to build the {name} example: {e}"));
    assert!(status.success(), "building the {name} example failed");
}
