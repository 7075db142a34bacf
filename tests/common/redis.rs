//! A real `redis-server` for the cluster tests: one per test, on a free
//! loopback port, persisting nothing (`--save ''`, `--appendonly no`, its
//! own temp dir), stopped by its PID when dropped and restartable on the
//! same port. A small RESP client reads what the cluster keeps in it, and
//! a [`Proxy`] can cut one node off it.
//! Without `redis-server` the test fails, saying how to install it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chatroom::cluster::ClusterConfig;
use chatroom::Config;

use super::{start_with, test_config, Client, TestServer, LINE_TIMEOUT};

/// What a node answers a name with while it has not reached Redis.
pub const RECONNECTING: &str = "! the chat is reconnecting to its cluster; try again in a moment";

/// Sends `name` on `c` (already prompted), again while the node answers
/// [`RECONNECTING`] (it is still reaching Redis), within [`LINE_TIMEOUT`];
/// returns the first other answer.
#[track_caller]
pub fn send_name_until_served(c: &mut Client, name: &str) -> String {
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        c.send(name);
        let answer = c.read_line().expect("EOF instead of an answer to the name");
        if answer != RECONNECTING {
            return answer;
        }
        c.expect_prompt();
        assert!(
            Instant::now() < deadline,
            "the node did not reach Redis in {LINE_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Gives each server of this test binary its own directory.
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A `redis-server` child process.
pub struct RedisServer {
    /// `None` while it is stopped (killed and not yet restarted).
    child: Option<Child>,
    /// Its port: the same across restarts.
    pub port: u16,
    /// Its `--dir` (and log file), removed when dropped.
    dir: PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The items of an array reply, each as text (bulk or simple strings).
    #[track_caller]
    pub fn strings(&self) -> Vec<String> {
        match self {
            Resp::Array(Some(items)) => items.iter().map(Resp::text).collect(),
            other => panic!("expected an array reply, got {other:?}"),
        }
    }

    /// A bulk or simple string reply as text.
    #[track_caller]
    pub fn text(&self) -> String {
        match self {
            Resp::Bulk(Some(b)) => String::from_utf8(b.clone()).expect("UTF-8 reply"),
            Resp::Simple(s) => s.clone(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers
    /// PING.
    #[track_caller]
    pub fn start() -> RedisServer {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("redis-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the redis temp dir");
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
        };
        // The free port is found by binding port 0 and letting it go, so
        // another process may take it first: then try another one.
        let mut why = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => why = e,
            }
        }
        panic!("redis-server would not start: {why}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A node config for this server, named `node`.
    pub fn cluster(&self, node: &str) -> ClusterConfig {
        ClusterConfig {
            url: self.url().parse().expect("a valid redis URL"),
            addr: self.addr(),
            node: node.to_string(),
        }
    }

    /// Starts an in-process node named `node` on a free port, joined to
    /// the cluster through this server.
    pub fn node(&self, node: &str) -> TestServer {
        start_with(Config {
            cluster: Some(self.cluster(node)),
            ..test_config()
        })
    }

    #[track_caller]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// Kills it at once (SIGKILL, no shutdown): its clients see the
    /// connection drop. Waits until it is gone.
    #[track_caller]
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("redis-server is running");
        child.kill().expect("kill redis-server");
        child.wait().expect("reap redis-server");
    }

    /// Stops it with SIGSTOP: it keeps its sockets but reads nothing, so
    /// what is sent to it stays in flight. [`kill`](Self::kill) still works.
    #[track_caller]
    pub fn freeze(&self) {
        // SAFETY: signals our own child process.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGSTOP) };
        assert_eq!(rc, 0, "SIGSTOP redis-server");
        // The signal is delivered asynchronously: wait until it is stopped,
        // so nothing sent from now on is read before it thaws.
        let deadline = Instant::now() + LINE_TIMEOUT;
        while self.state() != Some('T') {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Its process state (`R`, `S`, `T`...), from /proc/PID/stat.
    fn state(&self) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        stat[stat.rfind(')')? + 2..].chars().next()
    }

    /// Lets a frozen server run again (SIGCONT).
    #[track_caller]
    pub fn thaw(&self) {
        // SAFETY: signals our own child process.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGCONT) };
        assert_eq!(rc, 0, "SIGCONT redis-server");
    }

    /// Opens a connection for commands sent raw (e.g. while it is frozen,
    /// to be run when it thaws).
    #[track_caller]
    pub fn raw(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("connect to redis-server");
        stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
        stream
    }

    /// Bytes the server has not read yet from its connection with the
    /// client at loopback port `peer` (from /proc/net/tcp).
    #[track_caller]
    pub fn unread_from(&self, peer: u16) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let (local, remote) = (format!(":{:04X}", self.port), format!(":{peer:04X}"));
        table
            .lines()
            .skip(1)
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 4 && f[1].ends_with(&local) && f[2].ends_with(&remote))
                    .then(|| usize::from_str_radix(f[4].split(':').nth(1)?, 16).ok())
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no connection from port {peer} in /proc/net/tcp"))
    }

    /// Waits (bounded) until the server has more than `than` unread bytes
    /// from port `peer`: what was written to it has reached its socket.
    #[track_caller]
    pub fn wait_unread(&self, peer: u16, than: usize) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        while self.unread_from(peer) <= than {
            assert!(
                Instant::now() < deadline,
                "nothing reached redis from port {peer}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Starts it again on the same port (empty: it persists nothing).
    #[track_caller]
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running redis-server");
        if let Err(why) = self.spawn() {
            panic!(
                "redis-server would not restart on port {}: {why}",
                self.port
            );
        }
    }

    /// Sends one command on a new connection and returns its reply.
    #[track_caller]
    pub fn command(&self, args: &[&[u8]]) -> Resp {
        let stream = TcpStream::connect(self.addr()).expect("connect to redis-server");
        stream.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
        let mut reader = BufReader::new(stream);
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        reader
            .get_mut()
            .write_all(&out)
            .expect("send to redis-server");
        read_resp(&mut reader).expect("a reply from redis-server")
    }

    /// As [`command`](Self::command), for text arguments.
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Resp {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command(&args)
    }

    /// What its log says, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Only our own child, by its PID.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Spawns `redis-server` on `self.port` and waits until it answers
    /// PING; on failure it is stopped and the reason returned.
    fn spawn(&mut self) -> Result<(), String> {
        let stderr = File::create(self.dir.join("stderr.txt")).expect("create redis stderr file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: run `bash scripts/test-deps.sh` to install it"
            ),
            Err(e) => panic!("spawn redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                let stderr =
                    std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default();
                return Err(format!(
                    "exited with {status}; stderr: {stderr}; log: {}",
                    self.log()
                ));
            }
            if self.pings() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "no PONG within {LINE_TIMEOUT:?}; log: {}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// True if it answers PING with PONG now.
    fn pings(&self) -> bool {
        let Ok(stream) = TcpStream::connect(self.addr()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reader = BufReader::new(stream);
        if reader.get_mut().write_all(b"PING\r\n").is_err() {
            return false;
        }
        matches!(read_resp(&mut reader), Ok(Resp::Simple(s)) if s == "PONG")
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    l.local_addr().unwrap().port()
}

/// Reads one RESP2 reply.
fn read_resp(r: &mut impl BufRead) -> io::Result<Resp> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("unterminated reply: {line:?}"),
        ));
    }
    line.truncate(line.len() - 2);
    let rest = String::from_utf8_lossy(&line[1..]).into_owned();
    let number = |s: &str| -> io::Result<i64> {
        s.parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad number {s:?}")))
    };
    Ok(match line.first() {
        Some(b'+') => Resp::Simple(rest),
        Some(b'-') => Resp::Error(rest),
        Some(b':') => Resp::Int(number(&rest)?),
        Some(b'$') => {
            let n = number(&rest)?;
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
        }
        Some(b'*') => {
            let n = number(&rest)?;
            if n < 0 {
                Resp::Array(None)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(read_resp(r)?);
                }
                Resp::Array(Some(items))
            }
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a RESP reply: {line:?}"),
            ))
        }
    })
}

/// A TCP relay between one node and Redis that a test can cut, to cut that
/// node alone off the cluster (a partition) while the others keep Redis.
/// While cut, relayed connections are shut and new ones closed at once.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: Option<thread::JoinHandle<()>>,
}

struct ProxyShared {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every relayed connection, to shut them on a cut.
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Relays connections on a free loopback port to `to`.
    pub fn start(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(ProxyShared {
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let accept = thread::spawn({
            let shared = Arc::clone(&shared);
            move || {
                for conn in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(down) = conn else { continue };
                    if shared.cut.load(Ordering::SeqCst) {
                        continue; // dropped: closed at once
                    }
                    let Ok(up) = TcpStream::connect(to) else {
                        continue;
                    };
                    let mut open = shared.open.lock().unwrap();
                    open.push(down.try_clone().unwrap());
                    open.push(up.try_clone().unwrap());
                    drop(open);
                    relay(down.try_clone().unwrap(), up.try_clone().unwrap());
                    relay(up, down);
                }
            }
        });
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Shuts every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for s in self.shared.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Relays new connections again.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to` on a thread until either side ends, then shuts
/// both, so the relay ends as a whole.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
