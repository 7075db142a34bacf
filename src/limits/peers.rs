//! Per-address limits: how many connections one address may hold at once,
//! and how fast it may open new ones. An IPv6 address counts by its /64 (one
//! host usually owns a whole /64), an IPv4-mapped IPv6 address as its IPv4
//! address. Loopback is exempt unless told otherwise: local tools, tests and
//! load generators open thousands, and whoever runs on this host can exhaust
//! it in plenty of other ways. Pure bookkeeping with a clock given by the
//! caller; memory follows the addresses connected or recently connecting.

use std::collections::HashMap;
use std::net::IpAddr;

/// Default most connections per address (`--max-per-ip`).
pub const DEFAULT_MAX_PER_IP: u32 = 16;
/// Default new connections per second per address, sustained
/// (`--connect-rate`); twice as many may come at once.
pub const DEFAULT_CONNECT_RATE: u32 = 10;

/// Per-address settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// Most connections one address may hold; 0 means no limit.
    pub max_per_ip: u32,
    /// New connections per second one address may open, sustained (twice
    /// that at once); 0 means no limit.
    pub connect_rate: u32,
    /// Apply the limits to loopback addresses too.
    pub limit_loopback: bool,
}

impl Default for PeerLimits {
    fn default() -> PeerLimits {
        PeerLimits {
            max_per_ip: DEFAULT_MAX_PER_IP,
            connect_rate: DEFAULT_CONNECT_RATE,
            limit_loopback: false,
        }
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It holds `max_per_ip` connections already.
    TooMany,
    /// It is opening connections faster than `connect_rate`.
    TooFast,
}

/// What an address is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl AddrKey {
    /// The key `ip` is counted under.
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(v4.octets()),
                None => {
                    let mut prefix = [0; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    AddrKey::V6(prefix)
                }
            },
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    /// Connections held now.
    conns: u32,
    /// GCRA state of the connect rate, in microseconds (see `flood`).
    tat: u64,
}

/// Connections held per address.
#[derive(Debug, Default)]
pub struct Peers {
    limits: PeerLimits,
    table: HashMap<AddrKey, Entry>,
}

impl Peers {
    /// No connections yet.
    pub fn new(limits: PeerLimits) -> Peers {
        Peers {
            limits,
            table: HashMap::new(),
        }
    }

    /// True when `ip` is subject to the limits.
    pub fn is_limited(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.limits.limit_loopback || !ip.is_loopback()
    }

    /// A new connection from `ip` at `now_us`: counts it and returns
    /// `Ok(())`, or refuses it (and counts nothing).
    pub fn admit(&mut self, ip: IpAddr, now_us: u64) -> Result<(), Refused> {
        if !self.is_limited(ip) {
            return Ok(());
        }
        let limits = self.limits;
        let entry = self.table.entry(AddrKey::of(ip)).or_default();
        if limits.max_per_ip > 0 && entry.conns >= limits.max_per_ip {
            return Err(Refused::TooMany);
        }
        if limits.connect_rate > 0 {
            let step = 1_000_000 / u64::from(limits.connect_rate);
            let tat = entry.tat.max(now_us) + step;
            // Twice the rate may come at once.
            if tat > now_us + 2 * u64::from(limits.connect_rate) * step {
                return Err(Refused::TooFast);
            }
            entry.tat = tat;
        }
        entry.conns += 1;
        Ok(())
    }

    /// [`admit`](Self::admit) when `limited`, else admits without counting.
    pub fn admit_if(&mut self, limited: bool, ip: IpAddr, now_us: u64) -> Result<(), Refused> {
        if limited {
            self.admit(ip, now_us)
        } else {
            Ok(())
        }
    }

    /// A connection from `ip` that `admit` counted has closed.
    pub fn release(&mut self, ip: IpAddr) {
        if !self.is_limited(ip) {
            return;
        }
        if let Some(entry) = self.table.get_mut(&AddrKey::of(ip)) {
            entry.conns = entry.conns.saturating_sub(1);
        }
    }

    /// Forgets addresses with no connections whose rate budget is full
    /// again, so memory follows live and recent addresses only.
    pub fn prune(&mut self, now_us: u64) {
        self.table.retain(|_, e| e.conns > 0 || e.tat > now_us);
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_group_ipv6_by_64_and_unmap_ipv4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddrKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:10.0.0.1")),
            AddrKey::of(ip("10.0.0.1"))
        );
    }

    #[test]
    fn at_most_max_per_ip_at_once() {
        let mut p = Peers::new(PeerLimits {
            max_per_ip: 3,
            connect_rate: 0,
            limit_loopback: false,
        });
        for _ in 0..3 {
            assert_eq!(p.admit(ip("10.0.0.1"), 0), Ok(()));
        }
        assert_eq!(p.admit(ip("10.0.0.1"), 0), Err(Refused::TooMany));
        assert_eq!(p.admit(ip("10.0.0.2"), 0), Ok(()));
        p.release(ip("10.0.0.1"));
        assert_eq!(p.admit(ip("10.0.0.1"), 0), Ok(()));
    }

    #[test]
    fn connect_rate_allows_a_burst_then_the_rate() {
        let mut p = Peers::new(PeerLimits {
            max_per_ip: 0,
            connect_rate: 5,
            limit_loopback: false,
        });
        let a = ip("192.0.2.7");
        let burst = (0..100).take_while(|_| p.admit(a, 0).is_ok()).count();
        assert_eq!(burst, 10);
        assert_eq!(p.admit(a, 0), Err(Refused::TooFast));
        // A fifth of a second later, one more.
        assert_eq!(p.admit(a, 200_000), Ok(()));
        assert_eq!(p.admit(a, 200_000), Err(Refused::TooFast));
    }

    #[test]
    fn loopback_is_exempt_unless_told() {
        let limits = PeerLimits {
            max_per_ip: 1,
            connect_rate: 1,
            limit_loopback: false,
        };
        let mut p = Peers::new(limits);
        for _ in 0..100 {
            assert_eq!(p.admit(ip("127.0.0.1"), 0), Ok(()));
            assert_eq!(p.admit(ip("::1"), 0), Ok(()));
            assert_eq!(p.admit(ip("::ffff:127.0.0.2"), 0), Ok(()));
        }
        assert!(p.is_empty());
        let mut p = Peers::new(PeerLimits {
            limit_loopback: true,
            ..limits
        });
        assert_eq!(p.admit(ip("127.0.0.2"), 0), Ok(()));
        assert_eq!(p.admit(ip("127.0.0.2"), 0), Err(Refused::TooMany));
    }

    #[test]
    fn prune_keeps_only_live_and_recent_addresses() {
        let mut p = Peers::new(PeerLimits::default());
        p.admit(ip("10.0.0.1"), 0).unwrap();
        p.admit(ip("10.0.0.2"), 0).unwrap();
        p.release(ip("10.0.0.2"));
        p.prune(10_000_000);
        assert_eq!(p.len(), 1);
    }
}
