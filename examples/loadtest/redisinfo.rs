//! Redis' own totals (bytes in and out, CPU seconds) from `INFO`, read over
//! a short blocking connection before and after the traffic, so a cluster
//! run reports what Redis spent on the chat lines alone. Sends nothing but
//! INFO; parsing is pure and unit tested.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one INFO may take before the figures are given up.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Redis' running totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// `total_net_input_bytes`.
    pub net_in: u64,
    /// `total_net_output_bytes`.
    pub net_out: u64,
    /// `used_cpu_sys + used_cpu_user`, in seconds (main and helper threads).
    pub cpu_s: f64,
}

impl Totals {
    /// What was spent between `self` and the later `after`.
    pub fn until(&self, after: &Totals) -> Totals {
        Totals {
            net_in: after.net_in.saturating_sub(self.net_in),
            net_out: after.net_out.saturating_sub(self.net_out),
            cpu_s: (after.cpu_s - self.cpu_s).max(0.0),
        }
    }
}

/// Asks the Redis at `addr` for its totals.
pub fn read(addr: SocketAddr) -> io::Result<Totals> {
    let mut sock = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.set_write_timeout(Some(TIMEOUT))?;
    // Plain INFO (its default sections hold both): Redis 6 refuses
    // several section names in one call.
    sock.write_all(&crate::wire::resp_command(&[b"INFO"]))?;
    let mut r = BufReader::new(sock);
    let mut head = String::new();
    r.read_line(&mut head)?;
    let len: usize = head
        .strip_prefix('$')
        .and_then(|n| n.trim_end().parse().ok())
        .ok_or_else(|| io::Error::other(format!("INFO: unexpected reply {head:?}")))?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    parse(&String::from_utf8_lossy(&body)).ok_or_else(|| io::Error::other("INFO: counters missing"))
}

/// The totals in an INFO reply's text (`key:value` lines).
fn parse(info: &str) -> Option<Totals> {
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.trim_end().strip_prefix(key)?.strip_prefix(':'))
    };
    let num = |key: &str| field(key)?.parse::<f64>().ok();
    Some(Totals {
        net_in: field("total_net_input_bytes")?.parse().ok()?,
        net_out: field("total_net_output_bytes")?.parse().ok()?,
        cpu_s: num("used_cpu_sys")? + num("used_cpu_user")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_text() {
        let info = "# Stats\r\ntotal_connections_received:3\r\ntotal_net_input_bytes:1200\r\n\
                    total_net_output_bytes:3400\r\n\r\n# CPU\r\nused_cpu_sys:1.500000\r\n\
                    used_cpu_user:0.250000\r\nused_cpu_sys_children:9.000000\r\n";
        let t = parse(info).expect("totals");
        assert_eq!((t.net_in, t.net_out), (1200, 3400));
        assert!((t.cpu_s - 1.75).abs() < 1e-9, "{}", t.cpu_s);
        assert_eq!(parse("# Stats\r\ntotal_net_input_bytes:1\r\n"), None);
        let later = Totals {
            net_in: 1500,
            net_out: 3400,
            cpu_s: 2.0,
        };
        assert_eq!(
            t.until(&later),
            Totals {
                net_in: 300,
                net_out: 0,
                cpu_s: 0.25
            }
        );
    }
}
