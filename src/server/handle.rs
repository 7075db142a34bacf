//! What other threads see of a running server: a [`ServerHandle`] to stop it
//! and a [`Stats`] snapshot of its counters. The loop updates the counters
//! with relaxed atomics; nothing here touches connections.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use log::warn;
use mio::Waker;

/// A snapshot of the server's counters, for tests and monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sockets held now (clients, refusals being written, closing ones).
    pub connections: usize,
    /// Registered clients now.
    pub registered: usize,
    /// Connections accepted since start (refused ones included).
    pub accepted: u64,
    /// Connections refused with `! server full`.
    pub refused: u64,
    /// Connections closed since start (refused ones included).
    pub closed: u64,
    /// Clients dropped for exceeding `max_outbuf`.
    pub slow_consumers: u64,
    /// Clients closed for not registering in time.
    pub login_timeouts: u64,
    /// Closing clients dropped because they did not take their output.
    pub flush_timeouts: u64,
    /// Failed `accept` calls (EMFILE and the like).
    pub accept_errors: u64,
    /// Loop turns that stopped taking input because a turn's output budget
    /// or a client's output limit was reached.
    pub turn_budget_hits: u64,
    /// Times flood control stopped reading a client until its budget refilled.
    pub flood_delays: u64,
    /// Connections refused because their address held `--max-per-ip`.
    pub per_ip_refusals: u64,
    /// Connections refused because their address connected too fast.
    pub connect_rate_refusals: u64,
    /// Clients dropped because their output made no progress for
    /// `--write-timeout`.
    pub write_timeouts: u64,
    /// Connections whose network stopped answering (keepalive or
    /// retransmission timeouts).
    pub timeouts: u64,
    /// Metrics scrapes answered.
    pub scrapes: u64,
    /// TLS connections closed for breaking the protocol (plain text on the
    /// TLS port, bad records, failed handshakes).
    pub tls_errors: u64,
    /// TLS certificate reloads that took effect.
    pub tls_reloads: u64,
    /// TLS certificate reloads refused (the old certificate stays).
    pub tls_reload_failures: u64,
    /// WebSocket upgrades accepted.
    pub ws_upgrades: u64,
}

impl Stats {
    /// The counters in the Prometheus text exposition format (version
    /// 0.0.4), for `GET /metrics`.
    pub fn to_prometheus(&self) -> String {
        let gauges: [(&str, &str, u64); 2] = [
            ("connections", "Sockets held now.", self.connections as u64),
            (
                "registered",
                "Registered clients now.",
                self.registered as u64,
            ),
        ];
        let counters: [(&str, &str, u64); 18] = [
            ("accepted", "Connections accepted.", self.accepted),
            (
                "refused",
                "Connections refused with ! server full.",
                self.refused,
            ),
            ("closed", "Connections closed.", self.closed),
            (
                "slow_consumers",
                "Clients dropped for exceeding --max-outbuf.",
                self.slow_consumers,
            ),
            (
                "login_timeouts",
                "Connections closed for not registering in time.",
                self.login_timeouts,
            ),
            (
                "flush_timeouts",
                "Closing clients dropped with output unsent.",
                self.flush_timeouts,
            ),
            ("accept_errors", "Failed accept calls.", self.accept_errors),
            (
                "turn_budget_hits",
                "Loop turns that stopped taking input to flush.",
                self.turn_budget_hits,
            ),
            (
                "flood_delays",
                "Times flood control stopped reading a client.",
                self.flood_delays,
            ),
            (
                "per_ip_refusals",
                "Connections refused over --max-per-ip.",
                self.per_ip_refusals,
            ),
            (
                "connect_rate_refusals",
                "Connections refused over --connect-rate.",
                self.connect_rate_refusals,
            ),
            (
                "write_timeouts",
                "Clients dropped after --write-timeout without progress.",
                self.write_timeouts,
            ),
            (
                "timeouts",
                "Connections whose network stopped answering.",
                self.timeouts,
            ),
            ("scrapes", "Metrics scrapes answered.", self.scrapes),
            (
                "tls_errors",
                "TLS connections closed for breaking the protocol.",
                self.tls_errors,
            ),
            (
                "tls_reloads",
                "TLS certificate reloads that took effect.",
                self.tls_reloads,
            ),
            (
                "tls_reload_failures",
                "TLS certificate reloads refused (the old one stays).",
                self.tls_reload_failures,
            ),
            (
                "ws_upgrades",
                "WebSocket upgrades accepted.",
                self.ws_upgrades,
            ),
        ];
        let mut out = String::with_capacity(2048);
        for (name, help, value) in gauges {
            out.push_str(&format!(
                "# HELP chatroom_{name} {help}\n# TYPE chatroom_{name} gauge\nchatroom_{name} {value}\n"
            ));
        }
        for (name, help, value) in counters {
            out.push_str(&format!(
                "# HELP chatroom_{name}_total {help}\n# TYPE chatroom_{name}_total counter\nchatroom_{name}_total {value}\n"
            ));
        }
        out
    }
}

/// The counters behind [`Stats`], updated by the loop, read by handles.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicUsize,
    pub registered: AtomicUsize,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub closed: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub login_timeouts: AtomicU64,
    pub flush_timeouts: AtomicU64,
    pub accept_errors: AtomicU64,
    pub turn_budget_hits: AtomicU64,
    pub flood_delays: AtomicU64,
    pub per_ip_refusals: AtomicU64,
    pub connect_rate_refusals: AtomicU64,
    pub write_timeouts: AtomicU64,
    pub timeouts: AtomicU64,
    pub scrapes: AtomicU64,
    pub tls_errors: AtomicU64,
    pub tls_reloads: AtomicU64,
    pub tls_reload_failures: AtomicU64,
    pub ws_upgrades: AtomicU64,
}

impl Counters {
    /// Adds one to `c`.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}

/// State shared between the loop and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub waker: Waker,
    pub stop: AtomicBool,
    /// A TLS certificate reload was asked for (SIGHUP does it directly).
    pub reload: AtomicBool,
    pub counters: Counters,
}

/// Controls a running server from another thread.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ServerHandle {
    /// Starts a graceful shutdown, as SIGTERM does for the binary.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Relaxed);
        if let Err(e) = self.shared.waker.wake() {
            warn!("could not wake the server loop: {e}");
        }
    }

    /// Reloads the TLS certificate and key for new connections, as SIGHUP
    /// does for the binary; existing connections keep theirs.
    pub fn reload_tls(&self) {
        self.shared.reload.store(true, Relaxed);
        if let Err(e) = self.shared.waker.wake() {
            warn!("could not wake the server loop: {e}");
        }
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            connections: c.connections.load(Relaxed),
            registered: c.registered.load(Relaxed),
            accepted: c.accepted.load(Relaxed),
            refused: c.refused.load(Relaxed),
            closed: c.closed.load(Relaxed),
            slow_consumers: c.slow_consumers.load(Relaxed),
            login_timeouts: c.login_timeouts.load(Relaxed),
            flush_timeouts: c.flush_timeouts.load(Relaxed),
            accept_errors: c.accept_errors.load(Relaxed),
            turn_budget_hits: c.turn_budget_hits.load(Relaxed),
            flood_delays: c.flood_delays.load(Relaxed),
            per_ip_refusals: c.per_ip_refusals.load(Relaxed),
            connect_rate_refusals: c.connect_rate_refusals.load(Relaxed),
            write_timeouts: c.write_timeouts.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            scrapes: c.scrapes.load(Relaxed),
            tls_errors: c.tls_errors.load(Relaxed),
            tls_reloads: c.tls_reloads.load(Relaxed),
            tls_reload_failures: c.tls_reload_failures.load(Relaxed),
            ws_upgrades: c.ws_upgrades.load(Relaxed),
        }
    }
}
