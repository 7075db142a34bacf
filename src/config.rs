//! Server settings and their defaults: addresses, limits and timeouts. Plain
//! data: parsing flags is `main.rs`'s job and enforcing limits the server's.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::framing::DEFAULT_MAX_LINE_BYTES;
use crate::protocol::DEFAULT_PORT;

/// Default bound on one client's unsent output before it counts as a slow
/// consumer and is disconnected.
pub const DEFAULT_MAX_OUTBUF_BYTES: usize = 1 << 20;
/// Default time a connection has to register a name.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default room size above which joins and leaves are summarised.
pub const DEFAULT_NOTICE_LIMIT: usize = 100;
/// Descriptors kept back from clients for the listener, the poller, the
/// signal pipe, the waker, stdio and logging.
pub const RESERVED_FDS: usize = 32;

/// Everything the server needs to know to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (see `Server::local_addr`).
    pub addr: SocketAddr,
    /// Longest accepted line, in bytes, without its line ending.
    pub max_line: usize,
    /// Most unsent output a client may have before it is disconnected.
    pub max_outbuf: usize,
    /// How long a connection may take to register a name.
    pub login_timeout: Duration,
    /// Most simultaneous connections; more are told `! server full`.
    pub max_clients: usize,
    /// Rooms above this many members get join/leave summaries.
    pub notice_limit: usize,
    /// Handle SIGINT/SIGTERM in the loop (the binary does; in-process tests
    /// use `ServerHandle::shutdown` instead).
    pub handle_signals: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            max_line: DEFAULT_MAX_LINE_BYTES,
            max_outbuf: DEFAULT_MAX_OUTBUF_BYTES,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            max_clients: default_max_clients(),
            notice_limit: DEFAULT_NOTICE_LIMIT,
            handle_signals: false,
        }
    }
}

/// The open-file limit less [`RESERVED_FDS`] (at least 1): as many clients
/// as the process can hold while still accepting, and refusing, the rest.
pub fn default_max_clients() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let fds = if ok && lim.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    if fds > 2 * RESERVED_FDS {
        fds - RESERVED_FDS
    } else {
        (fds / 2).max(1)
    }
}
