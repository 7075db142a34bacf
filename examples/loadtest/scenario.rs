//! The four workloads (fanout, latency, connections, soak): each opens its
//! clients, drives the [`Driver`] turn by turn until its work is done, its
//! time is up, the server goes away or the user presses Ctrl-C, watches the
//! server through `/proc`, and returns a [`Report`]. Every loop here is
//! bounded by a deadline; nothing here touches a socket directly or prints
//! anything but the progress line.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{Driver, Health, Options, SendMode};
use crate::procstat::{self, Sample};
use crate::redisinfo;
use crate::report::{thousands, Report, Value};

/// After Ctrl-C, how long messages already sent may take to arrive before
/// the partial summary is printed (a second Ctrl-C exits at once).
const INTERRUPT_DRAIN: Duration = Duration::from_secs(1);

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Closed loop, as fast as the window allows.
    Fanout,
    /// Open loop at a fixed rate.
    Latency,
    /// Many idle connections, then one broadcast.
    Connections,
    /// Steady traffic with clients leaving and joining, memory sampled.
    Soak,
}

impl Scenario {
    /// Every scenario, in the order `--help` lists them.
    pub const ALL: [Scenario; 4] = [
        Scenario::Fanout,
        Scenario::Latency,
        Scenario::Connections,
        Scenario::Soak,
    ];

    /// Parses the scenario word.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Latency => "latency",
            Scenario::Connections => "connections",
            Scenario::Soak => "soak",
        }
    }
}

/// What to run, with every default already applied.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The workload.
    pub scenario: Scenario,
    /// Clients in the room.
    pub clients: usize,
    /// How many of them send (1 for connections: the one broadcast).
    pub senders: usize,
    /// Messages per sender (fanout).
    pub messages: u32,
    /// Unconfirmed messages allowed per sender (fanout).
    pub window: u32,
    /// Messages per second, all senders together (latency, soak).
    pub rate: f64,
    /// How long traffic runs (latency, soak).
    pub duration: Duration,
    /// Clients leaving (and rejoining) per second (soak).
    pub churn: f64,
    /// Clients that may leave; the rest stay for the whole run (soak; 0
    /// otherwise).
    pub churners: usize,
    /// Seconds between memory samples (soak).
    pub sample_every: Duration,
    /// Seed for the churn's random choices.
    pub seed: u64,
    /// Hard limit on the whole run.
    pub timeout: Duration,
    /// Give up waiting for deliveries after this long without one.
    pub drain_timeout: Duration,
    /// The server's process, for CPU and memory.
    pub server_pid: Option<u32>,
    /// Other processes whose CPU during the traffic is reported (cluster
    /// nodes, Redis).
    pub cpu_pids: Vec<u32>,
    /// A Redis whose INFO counters are reported for the traffic phase.
    pub redis_info: Option<std::net::SocketAddr>,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// Set by Ctrl-C: stop sending, drain briefly, report what happened.
    pub interrupt: Arc<AtomicBool>,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// It did all it set out to do (or gave up draining after its drain
    /// timeout: the losses are in the report).
    Complete,
    /// Ctrl-C.
    Interrupted,
    /// A server closed every connection: the message says which.
    ServerGone(String),
    /// `--timeout` passed.
    TimedOut,
}

impl Stop {
    /// Its name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Stop::Complete => "complete",
            Stop::Interrupted => "interrupted",
            Stop::ServerGone(_) => "server gone",
            Stop::TimedOut => "timed out",
        }
    }
}

/// Why there is no report at all.
#[derive(Debug)]
pub enum Fatal {
    /// A server is not there: nothing could be measured.
    Down(String),
    /// A local I/O error (the poller, or a setup call).
    Io(io::Error),
}

impl From<io::Error> for Fatal {
    fn from(e: io::Error) -> Fatal {
        Fatal::Io(e)
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Everything measured, complete or partial.
    pub report: Report,
    /// Why it ended.
    pub stop: Stop,
}

/// Runs `plan` against the servers in `opts` and reports.
pub fn run(plan: &Plan, opts: Options) -> Result<Outcome, Fatal> {
    let stayers = plan.clients - plan.churners;
    // Senders are spread over the clients that stay; over several rooms,
    // over the rooms and within each room over the endpoints.
    let rooms = opts.rooms.max(1);
    let endpoints = opts.endpoints.len().max(1);
    let sender_clients: Vec<usize> = (0..plan.senders)
        .map(|i| {
            if rooms > 1 {
                room_sender(i, rooms, endpoints)
            } else {
                i * stayers / plan.senders
            }
        })
        .collect();
    let addrs: Vec<String> = opts.endpoints.iter().map(|e| e.addr.to_string()).collect();
    let transport = opts.transport_name();
    let line_bytes = opts.line_bytes;
    let mut d = Driver::new(opts, plan.clients, &sender_clients)?;
    let now = Instant::now();
    let mut run = Run {
        plan,
        started: now,
        deadline: now + plan.timeout,
        phase: Phase::Connect,
        phase_started: now,
        progress: Progress::new(plan.progress),
        watch: Watch::new(plan.server_pid),
        report: Report::default(),
        stop: None,
        drain_until: None,
    };
    run.report
        .put("scenario", Value::S(plan.scenario.name().into()))
        .put("target", Value::S(d.target().name().into()))
        .put("addr", Value::S(addrs.join(",")))
        .put("transport", Value::S(transport.into()))
        .put("clients", Value::U(plan.clients as u64))
        .put("senders", Value::U(plan.senders as u64))
        .put("line_bytes", Value::U(line_bytes as u64));
    if rooms > 1 {
        run.report.put("rooms", Value::U(rooms as u64));
    }
    run.watch.begin();
    let result = run.all(&mut d, stayers);
    run.progress.clear();
    result?;
    let stop = run.stop.take().unwrap_or(Stop::Complete);
    run.finish(&d, &stop);
    d.close_all();
    Ok(Outcome {
        report: run.report,
        stop,
    })
}

/// What the run is doing now, for the progress line's estimate of the time left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Opening and registering clients.
    Connect,
    /// Closed-loop sending.
    Fanout,
    /// Open-loop sending until this instant (latency, soak).
    Until(Instant),
    /// Waiting for the last deliveries.
    Drain,
    /// One broadcast to every client.
    Broadcast,
}

impl Phase {
    fn name(self, scenario: Scenario) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Fanout | Phase::Until(_) => scenario.name(),
            Phase::Drain => "drain",
            Phase::Broadcast => "broadcast",
        }
    }
}

/// One run in progress.
struct Run<'a> {
    plan: &'a Plan,
    started: Instant,
    deadline: Instant,
    phase: Phase,
    phase_started: Instant,
    progress: Progress,
    watch: Watch,
    report: Report,
    /// Set once the run must end early; never cleared.
    stop: Option<Stop>,
    /// After Ctrl-C: when to stop waiting for messages already sent.
    drain_until: Option<Instant>,
}

impl Run<'_> {
    /// Connects, then runs the scenario if every client got in.
    fn all(&mut self, d: &mut Driver, stayers: usize) -> Result<(), Fatal> {
        if !self.connect_all(d)? {
            return Ok(());
        }
        match self.plan.scenario {
            Scenario::Fanout => self.fanout(d),
            Scenario::Latency => self.latency(d),
            Scenario::Connections => self.connections(d),
            Scenario::Soak => self.soak(d, stayers),
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.phase_started = Instant::now();
    }

    /// One driver turn, then what every phase checks after one: the
    /// progress line, the servers' health, Ctrl-C and the deadline. A
    /// server that is down is fatal; the others set `stop`.
    fn turn(&mut self, d: &mut Driver, wait: Duration) -> Result<(), Fatal> {
        d.turn(wait)?;
        self.watch.tick();
        match d.health() {
            Health::Fine => {}
            Health::Down(why) => return Err(Fatal::Down(why)),
            Health::Gone(why) => {
                self.stop.get_or_insert(Stop::ServerGone(why));
            }
        }
        if self.stop.is_none() && self.plan.interrupt.load(Ordering::Relaxed) {
            self.stop = Some(Stop::Interrupted);
            self.drain_until = Some(Instant::now() + INTERRUPT_DRAIN);
            d.mode = SendMode::Off;
        }
        if self.stop.is_none() && Instant::now() >= self.deadline {
            self.stop = Some(Stop::TimedOut);
        }
        self.show_progress(d);
        Ok(())
    }

    /// True once the current phase must end early: at once, or for Ctrl-C
    /// once the brief drain is over.
    fn must_stop(&self) -> bool {
        match self.stop {
            None => false,
            Some(Stop::Interrupted) => self.drain_until.is_none_or(|t| Instant::now() >= t),
            Some(_) => true,
        }
    }

    fn show_progress(&mut self, d: &Driver) {
        if !self.progress.due() {
            return;
        }
        let c = &d.st.c;
        let status = Status {
            phase: self.phase.name(self.plan.scenario),
            elapsed: self.started.elapsed(),
            left: self.time_left(d),
            registered: d.st.registered as u64,
            clients: d.st.clients.len() as u64,
            sent: d.sent_total(),
            delivered: d.st.tally.delivered(),
            errors: c.connect_errors
                + c.disconnects
                + c.server_errors
                + c.malformed
                + d.st.tally.late,
        };
        self.progress.show(&status.line());
    }

    /// The current phase's time left: exact for timed traffic, otherwise
    /// extrapolated from how far it has got; `None` when there is no telling.
    fn time_left(&self, d: &Driver) -> Option<Duration> {
        let n = self.plan.clients as u64;
        let (done, total) = match self.phase {
            Phase::Until(end) => return Some(end.saturating_duration_since(Instant::now())),
            Phase::Drain => return None,
            Phase::Connect => (d.st.registered as u64, n),
            Phase::Broadcast => (d.st.tally.received_strict, n),
            Phase::Fanout => (
                d.st.tally.received_strict,
                self.plan.senders as u64 * u64::from(self.plan.messages) * n,
            ),
        };
        estimate_left(self.phase_started.elapsed(), done, total)
    }

    /// Opens every client and waits for all to be registered; false (and
    /// an `error` in the report) if they were not.
    fn connect_all(&mut self, d: &mut Driver) -> Result<bool, Fatal> {
        let n = self.plan.clients;
        for i in 0..n {
            d.queue_connect(i);
        }
        self.enter(Phase::Connect);
        let t0 = Instant::now();
        let mut last_probe = Instant::now();
        while !d.all_ready() {
            self.turn(d, Duration::from_millis(10))?;
            if self.stop.is_some() {
                break;
            }
            let everyone_in = d.st.registered == n;
            if everyone_in
                && !d.target().confirms_registration()
                && last_probe.elapsed() > Duration::from_millis(100)
            {
                d.send_probe();
                last_probe = Instant::now();
            }
            if d.connects_settled() && !everyone_in {
                break; // some failed for good: no more will come
            }
        }
        let took = t0.elapsed().as_secs_f64();
        let ready = d.all_ready() && self.stop.is_none();
        self.report.put("connect_s", Value::F(took, 3)).put(
            "connect_per_s",
            Value::F(d.st.registered as f64 / took.max(1e-9), 0),
        );
        if !d.all_ready() {
            let mut why = format!("only {} of {n} clients registered", d.st.registered);
            if let Some(refused) = d.refusals() {
                why = format!("{why}: {refused}");
            }
            self.report.put("error", Value::S(why));
        }
        Ok(ready)
    }

    /// Turns until `done` holds, nothing has been delivered for the drain
    /// timeout after sending ended, or the run must stop.
    fn drive(
        &mut self,
        d: &mut Driver,
        phase: Phase,
        done: impl Fn(&Driver) -> bool,
    ) -> Result<(), Fatal> {
        self.enter(phase);
        let mut idle_since: Option<(u64, Instant)> = None;
        loop {
            if done(d) || self.must_stop() {
                return Ok(());
            }
            self.turn(d, Duration::from_millis(10))?;
            if d.sending_done() {
                let r = d.st.tally.received();
                match idle_since {
                    Some((seen, since)) if seen == r => {
                        if since.elapsed() >= self.plan.drain_timeout {
                            return Ok(());
                        }
                    }
                    _ => idle_since = Some((r, Instant::now())),
                }
            }
        }
    }

    fn fanout(&mut self, d: &mut Driver) -> Result<(), Fatal> {
        let (w, m) = (self.plan.window, self.plan.messages);
        let traffic = self.traffic_begin(d);
        d.start(SendMode::Window {
            window: w,
            limit: m,
        });
        self.drive(d, Phase::Fanout, |d| {
            d.sending_done() && d.st.tally.received_strict >= d.deliveries_due()
        })?;
        let expected = d.deliveries_due();
        self.traffic_end(d, traffic, expected);
        Ok(())
    }

    fn latency(&mut self, d: &mut Driver) -> Result<(), Fatal> {
        let n = self.plan.clients as u64;
        let traffic = self.start_schedule(d);
        self.drive(d, Phase::Until(traffic.started + self.plan.duration), |d| {
            d.sending_done() && d.st.tally.received_strict >= d.sent_total() * n
        })?;
        let expected = d.sent_total() * n;
        // Sending lasted --duration, or until Ctrl-C.
        let sending_s = self
            .plan
            .duration
            .min(traffic.started.elapsed())
            .as_secs_f64();
        self.report
            .put("rate_offered", Value::F(self.plan.rate, 0))
            .put(
                "rate_sent",
                Value::F(d.sent_total() as f64 / sending_s.max(1e-9), 0),
            );
        self.traffic_end(d, traffic, expected);
        Ok(())
    }

    fn connections(&mut self, d: &mut Driver) -> Result<(), Fatal> {
        let n = self.plan.clients as u64;
        // Let the server flush join notices and release per-client buffers
        // before memory is read: the figure is for idle connections.
        self.enter(Phase::Drain);
        let settle = Instant::now() + Duration::from_secs(1);
        while Instant::now() < settle && !self.must_stop() {
            self.turn(d, Duration::from_millis(20))?;
        }
        if self.stop.is_some() {
            return Ok(());
        }
        if let (Some(before), Some(now)) = (self.watch.first, self.watch.sample()) {
            let per_conn = (now.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / n as f64;
            self.report
                .put("server_rss_kib", Value::U(now.rss_kib))
                .put("server_bytes_per_conn", Value::F(per_conn, 0));
        }
        let traffic = self.traffic_begin(d);
        let sent_ns = d.st.now_ns();
        d.send_one(0);
        self.drive(d, Phase::Broadcast, |d| d.st.tally.received_strict >= n)?;
        let p = d.st.tally.percentiles();
        let last = d.st.c.last_delivery_ns.saturating_sub(sent_ns);
        self.report.put(
            "broadcast",
            Value::Obj(vec![
                (
                    "first_ms".into(),
                    Value::F(p_ms(min_of(&d.st.tally.latency)), 3),
                ),
                ("p50_ms".into(), Value::F(p_ms(p.p50), 3)),
                ("last_ms".into(), Value::F(p_ms(last), 3)),
            ]),
        );
        self.traffic_end(d, traffic, n);
        Ok(())
    }

    fn soak(&mut self, d: &mut Driver, stayers: usize) -> Result<(), Fatal> {
        let n = self.plan.clients;
        for c in stayers..n {
            d.st.tally.set_strict(c, false);
        }
        let traffic = self.start_schedule(d);
        self.enter(Phase::Until(traffic.started + self.plan.duration));
        let mut rng = XorShift(self.plan.seed | 1);
        let churn_every = Duration::from_secs_f64(1.0 / self.plan.churn.max(1e-3));
        let mut next_churn = Instant::now() + churn_every;
        let mut next_sample = Instant::now();
        let (mut leaves, mut samples) = (0u64, Vec::new());
        while !d.sending_done() && self.stop.is_none() {
            self.turn(d, Duration::from_millis(10))?;
            let now = Instant::now();
            if now >= next_churn && stayers < n && self.plan.churn > 0.0 {
                next_churn += churn_every;
                let c = stayers + (rng.next() % (n - stayers) as u64) as usize;
                // Only a registered client leaves; the others are on their way in.
                if d.st.clients[c].registered {
                    d.close_client(c);
                    d.rejoin(c);
                    leaves += 1;
                }
            }
            if now >= next_sample {
                next_sample += self.plan.sample_every;
                if let Some(x) = self.watch.sample() {
                    samples.push((traffic.started.elapsed().as_secs_f64(), x.rss_kib));
                }
            }
        }
        let stay = stayers as u64;
        self.drive(d, Phase::Drain, |d| {
            d.st.tally.received_strict >= d.sent_total() * stay
        })?;
        let expected = d.sent_total() * stay;
        self.report
            .put("stayers", Value::U(stay))
            .put("churners", Value::U((n - stayers) as u64))
            .put("leaves", Value::U(leaves))
            .put("rejoins", Value::U(d.st.rejoins))
            .put("rate_offered", Value::F(self.plan.rate, 0));
        if !samples.is_empty() {
            let verdict = memory_verdict(&samples, self.plan.duration.as_secs_f64() / 4.0);
            self.report.put(
                "memory",
                Value::Obj(vec![
                    (
                        "samples_kib".into(),
                        Value::List(samples.iter().map(|&(_, k)| Value::U(k)).collect()),
                    ),
                    ("warm_kib".into(), Value::U(verdict.warm_kib)),
                    ("max_after_warmup_kib".into(), Value::U(verdict.max_kib)),
                    ("last_kib".into(), Value::U(verdict.last_kib)),
                    ("flat".into(), Value::B(verdict.flat)),
                ]),
            );
        }
        self.traffic_end(d, traffic, expected);
        Ok(())
    }

    /// Starts open-loop sending: each sender every `senders / rate` seconds
    /// (so `--rate` in total) for `--duration`, by intended send time.
    fn start_schedule(&mut self, d: &mut Driver) -> Traffic {
        let s = d.st.senders.len() as f64;
        let interval_ns = (s * 1e9 / self.plan.rate.max(1e-3)) as u64;
        let traffic = self.traffic_begin(d);
        let end_ns = traffic.start_ns + self.plan.duration.as_nanos() as u64;
        d.start(SendMode::Schedule {
            interval_ns: interval_ns.max(1),
            start_ns: traffic.start_ns,
            end_ns,
        });
        traffic
    }

    fn traffic_begin(&mut self, d: &Driver) -> Traffic {
        // The readings first (INFO is a round trip), then the clock.
        let server = self.watch.sample();
        let others = cpu_each(&self.plan.cpu_pids);
        let redis = self.plan.redis_info.map(redisinfo::read);
        let tool_cpu = procstat::own_cpu();
        Traffic {
            started: Instant::now(),
            start_ns: d.st.now_ns(),
            server,
            others,
            redis,
            tool_cpu,
        }
    }

    /// Reports the traffic phase: counts, rates, latency, server and tool CPU.
    /// `expected`: deliveries due to the clients present all along.
    fn traffic_end(&mut self, d: &Driver, t: Traffic, expected: u64) {
        let tally = &d.st.tally;
        let end_ns = d.st.c.last_delivery_ns.max(t.start_ns + 1);
        let secs = (end_ns - t.start_ns) as f64 / 1e9;
        let wall = t.started.elapsed().as_secs_f64();
        let lost = tally.lost(expected);
        let p = tally.percentiles();
        let c = &d.st.c;
        let delivered = tally.delivered();
        let line_bytes = match self.report.get("line_bytes") {
            Some(Value::U(b)) => *b as f64,
            _ => 0.0,
        };
        self.report
            .put("sent", Value::U(d.sent_total()))
            .put("expected", Value::U(expected))
            .put("received", Value::U(tally.received_strict));
        if self.plan.scenario == Scenario::Soak {
            self.report
                .put("received_churners", Value::U(tally.received_loose));
        }
        self.report
            .put("lost", Value::U(lost))
            .put("gaps", Value::U(tally.gaps))
            .put("late", Value::U(tally.late))
            .put("order_mismatches", Value::U(tally.order_mismatches()))
            .put("elapsed_s", Value::F(secs, 3))
            .put("deliveries_per_s", Value::F(delivered as f64 / secs, 0))
            .put(
                "mb_per_s",
                Value::F(delivered as f64 * line_bytes / secs / 1e6, 1),
            );
        if self.plan.scenario != Scenario::Connections {
            self.report
                .put("messages_per_s", Value::F(d.sent_total() as f64 / secs, 0));
        }
        self.report.put(
            "latency_us",
            Value::Obj(vec![
                ("count".into(), Value::U(p.count)),
                ("p50".into(), Value::F(p.p50 as f64 / 1e3, 1)),
                ("p99".into(), Value::F(p.p99 as f64 / 1e3, 1)),
                ("p999".into(), Value::F(p.p999 as f64 / 1e3, 1)),
                ("max".into(), Value::F(p.max as f64 / 1e3, 1)),
                ("mean".into(), Value::F(p.mean / 1e3, 1)),
            ]),
        );
        let tool_cpu = (procstat::own_cpu() - t.tool_cpu).as_secs_f64();
        self.report.put(
            "tool",
            Value::Obj(vec![
                ("cpu_s".into(), Value::F(tool_cpu, 3)),
                ("cpu_util".into(), Value::F(tool_cpu / wall.max(1e-9), 3)),
            ]),
        );
        if !self.plan.cpu_pids.is_empty() {
            let now = cpu_each(&self.plan.cpu_pids);
            let each = self.plan.cpu_pids.iter().zip(t.others.iter().zip(now));
            let by_pid = each
                .filter_map(|(pid, (a, b))| {
                    let cpu = b?.saturating_sub((*a)?).as_secs_f64();
                    Some((pid.to_string(), Value::F(cpu, 6)))
                })
                .collect();
            self.report.put("cpu_s_by_pid", Value::Obj(by_pid));
        }
        if let (Some(addr), Some(before)) = (self.plan.redis_info, t.redis) {
            let spent = before.and_then(|b| Ok(b.until(&redisinfo::read(addr)?)));
            let figures = match spent {
                Ok(r) => vec![
                    ("net_in_bytes".into(), Value::U(r.net_in)),
                    ("net_out_bytes".into(), Value::U(r.net_out)),
                    ("cpu_s".into(), Value::F(r.cpu_s, 3)),
                ],
                Err(e) => vec![("error".into(), Value::S(e.to_string()))],
            };
            self.report.put("redis", Value::Obj(figures));
        }
        if let (Some(a), Some(b)) = (t.server, self.watch.sample()) {
            let cpu = (b.cpu.saturating_sub(a.cpu)).as_secs_f64();
            self.report.put(
                "server",
                Value::Obj(vec![
                    ("cpu_s".into(), Value::F(cpu, 3)),
                    ("cpu_util".into(), Value::F(cpu / wall.max(1e-9), 3)),
                    (
                        "deliveries_per_cpu_s".into(),
                        Value::F(delivered as f64 / cpu.max(1e-9), 0),
                    ),
                ]),
            );
        }
        self.report.put(
            "problems",
            Value::Obj(vec![
                ("connect_errors".into(), Value::U(c.connect_errors)),
                ("disconnects".into(), Value::U(c.disconnects)),
                ("server_errors".into(), Value::U(c.server_errors)),
                ("malformed".into(), Value::U(c.malformed)),
            ]),
        );
    }

    /// Totals, server memory and the error count, whatever happened before.
    fn finish(&mut self, d: &Driver, stop: &Stop) {
        if let (Some(first), Some(last)) = (self.watch.first, self.watch.sample()) {
            self.report.put(
                "server_mem",
                Value::Obj(vec![
                    ("rss_before_kib".into(), Value::U(first.rss_kib)),
                    ("rss_after_kib".into(), Value::U(last.rss_kib)),
                    (
                        "rss_peak_kib".into(),
                        Value::U(self.watch.peak_kib.max(last.rss_kib)),
                    ),
                    ("hwm_kib".into(), Value::U(last.hwm_kib)),
                    (
                        "cpu_total_s".into(),
                        Value::F(last.cpu.saturating_sub(first.cpu).as_secs_f64(), 3),
                    ),
                ]),
            );
        }
        let c = &d.st.c;
        let expected = match self.report.get("expected") {
            Some(Value::U(e)) => *e,
            _ => 0,
        };
        let not_ready = d.st.clients.len().saturating_sub(d.st.registered) as u64;
        let errors = d.st.tally.lost(expected)
            + d.st.tally.late
            + d.st.tally.order_mismatches()
            + c.malformed
            + c.server_errors
            + c.disconnects
            + c.connect_errors
            + u64::from(*stop == Stop::TimedOut)
            + if self.report.get("error").is_some() {
                not_ready.max(1)
            } else {
                0
            };
        self.report
            .put("stopped", Value::S(stop.name().into()))
            .put("errors", Value::U(errors))
            .put("run_s", Value::F(self.started.elapsed().as_secs_f64(), 3));
        if !c.notes.is_empty() {
            self.report.put(
                "notes",
                Value::List(c.notes.iter().map(|n| Value::S(n.clone())).collect()),
            );
        }
    }
}

/// What the progress line shows.
#[derive(Debug, Clone, PartialEq)]
struct Status {
    phase: &'static str,
    elapsed: Duration,
    left: Option<Duration>,
    registered: u64,
    clients: u64,
    sent: u64,
    delivered: u64,
    errors: u64,
}

impl Status {
    /// `[fanout] 3.2 s elapsed, ~1.8 s left | registered 100/100 | sent 12,000 | ...`
    fn line(&self) -> String {
        let mut s = format!(
            "[{}] {:.1} s elapsed",
            self.phase,
            self.elapsed.as_secs_f64()
        );
        if let Some(left) = self.left {
            let _ = write!(s, ", ~{:.1} s left", left.as_secs_f64());
        }
        let _ = write!(
            s,
            " | registered {}/{} | sent {} | delivered {} | errors {}",
            thousands(self.registered),
            thousands(self.clients),
            thousands(self.sent),
            thousands(self.delivered),
            thousands(self.errors),
        );
        s
    }
}

/// Time left if `done` of `total` took `elapsed` and the pace holds; `None`
/// before there is enough progress to tell.
fn estimate_left(elapsed: Duration, done: u64, total: u64) -> Option<Duration> {
    if total == 0 || done == 0 {
        return None;
    }
    let f = (done.min(total) as f64) / total as f64;
    Some(elapsed.mul_f64((1.0 - f) / f))
}

/// The state at the start of a traffic phase.
struct Traffic {
    started: Instant,
    start_ns: u64,
    server: Option<Sample>,
    /// CPU used so far by each of `Plan::cpu_pids` (None: gone).
    others: Vec<Option<Duration>>,
    /// Redis' totals (`Plan::redis_info`).
    redis: Option<io::Result<redisinfo::Totals>>,
    tool_cpu: Duration,
}

/// The client that is sender `i` when clients are spread over `rooms`
/// rooms and `endpoints` endpoints (client c is on endpoint c mod E, in
/// room (c div E) mod R): the senders take the rooms in turn, and the
/// senders of one room take the endpoints in turn.
pub fn room_sender(i: usize, rooms: usize, endpoints: usize) -> usize {
    let (room, round) = (i % rooms, i / rooms);
    let endpoint = (room + round) % endpoints;
    endpoints * (room + rooms * round) + endpoint
}

fn cpu_each(pids: &[u32]) -> Vec<Option<Duration>> {
    pids.iter()
        .map(|&p| procstat::sample(p).ok().map(|s| s.cpu))
        .collect()
}

fn p_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn min_of(h: &hdrhistogram::Histogram<u64>) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.min()
    }
}

/// Whether memory stayed flat after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryVerdict {
    /// The first sample at or after the warm-up.
    pub warm_kib: u64,
    /// The largest sample after warm-up.
    pub max_kib: u64,
    /// The last sample.
    pub last_kib: u64,
    /// No sample after warm-up exceeds the warm figure by more than 5% or
    /// 2 MiB, whichever is more (allocator noise, not growth).
    pub flat: bool,
}

/// Judges samples `(seconds since start, KiB)` taken over a run whose first
/// `warmup_s` seconds are excluded.
pub fn memory_verdict(samples: &[(f64, u64)], warmup_s: f64) -> MemoryVerdict {
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= warmup_s)
        .map(|&(_, k)| k)
        .collect();
    let after = if after.is_empty() {
        vec![samples.last().map_or(0, |s| s.1)]
    } else {
        after
    };
    let warm = after[0];
    let max = after.iter().copied().max().unwrap_or(warm);
    let last = *after.last().unwrap_or(&warm);
    let slack = (warm / 20).max(2048);
    MemoryVerdict {
        warm_kib: warm,
        max_kib: max,
        last_kib: last,
        flat: max <= warm + slack,
    }
}

/// Server CPU and memory via /proc, with the peak RSS seen between samples.
struct Watch {
    pid: Option<u32>,
    /// The first reading, before any client connected.
    first: Option<Sample>,
    peak_kib: u64,
    last_tick: Instant,
}

impl Watch {
    fn new(pid: Option<u32>) -> Watch {
        Watch {
            pid,
            first: None,
            peak_kib: 0,
            last_tick: Instant::now(),
        }
    }

    fn begin(&mut self) {
        self.first = self.sample();
    }

    fn sample(&mut self) -> Option<Sample> {
        let s = procstat::sample(self.pid?).ok()?;
        self.peak_kib = self.peak_kib.max(s.rss_kib);
        Some(s)
    }

    /// Samples for the peak every 100 ms (cheap: one small /proc read).
    fn tick(&mut self) {
        if self.pid.is_some() && self.last_tick.elapsed() >= Duration::from_millis(100) {
            self.last_tick = Instant::now();
            self.sample();
        }
    }
}

/// The live progress line on a terminal, redrawn at most four times a second.
struct Progress {
    enabled: bool,
    last: Instant,
}

impl Progress {
    fn new(wanted: bool) -> Progress {
        Progress {
            enabled: wanted && io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    /// True when the line should be redrawn now.
    fn due(&self) -> bool {
        self.enabled && self.last.elapsed() >= Duration::from_millis(250)
    }

    fn show(&mut self, line: &str) {
        self.last = Instant::now();
        let _ = write!(io::stderr(), "\r\x1b[2K{line}");
    }

    fn clear(&mut self) {
        if self.enabled {
            let _ = write!(io::stderr(), "\r\x1b[2K");
        }
    }
}

/// A small deterministic generator for churn choices (reproducible by --seed).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_senders_cover_rooms_then_endpoints() {
        for endpoints in 1..=3 {
            for rooms in 2..=5 {
                let senders: Vec<usize> =
                    (0..12).map(|i| room_sender(i, rooms, endpoints)).collect();
                let mut seen = senders.clone();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), senders.len(), "distinct: {senders:?}");
                for (i, &c) in senders.iter().enumerate() {
                    // Sender i is in room i mod R (client c's room is
                    // (c div E) mod R) ...
                    assert_eq!((c / endpoints) % rooms, i % rooms, "{i} -> {c}");
                    // ... and the k-th sender of a room on endpoint
                    // (room + k) mod E: one room's senders alternate.
                    let k = i / rooms;
                    assert_eq!(c % endpoints, (i % rooms + k) % endpoints, "{i} -> {c}");
                }
            }
        }
        // One endpoint: sender i is client i.
        assert!((0..20).all(|i| room_sender(i, 7, 1) == i));
    }

    #[test]
    fn memory_verdicts() {
        // (samples, warm-up, want warm, max, last, flat)
        type Case = (Vec<(f64, u64)>, f64, (u64, u64, u64, bool));
        let cases: Vec<Case> = vec![
            (
                vec![(0.0, 1000), (5.0, 40_000), (10.0, 40_100), (15.0, 40_050)],
                5.0,
                (40_000, 40_100, 40_050, true),
            ),
            (
                vec![(0.0, 1000), (5.0, 40_000), (10.0, 45_000), (15.0, 50_000)],
                5.0,
                (40_000, 50_000, 50_000, false),
            ),
            // small servers get 2 MiB of slack
            (
                vec![(5.0, 3000), (10.0, 5000)],
                1.0,
                (3000, 5000, 5000, true),
            ),
            // no sample after warm-up: judge the last one alone
            (vec![(0.0, 7)], 5.0, (7, 7, 7, true)),
        ];
        for (samples, warmup, (warm, max, last, flat)) in cases {
            let v = memory_verdict(&samples, warmup);
            assert_eq!(
                v,
                MemoryVerdict {
                    warm_kib: warm,
                    max_kib: max,
                    last_kib: last,
                    flat
                },
                "{samples:?}"
            );
        }
    }

    #[test]
    fn scenarios_parse() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
        assert_eq!(Scenario::parse("x"), None);
    }

    #[test]
    fn progress_lines() {
        let ms = Duration::from_millis;
        let base = Status {
            phase: "fanout",
            elapsed: ms(3_240),
            left: Some(ms(1_800)),
            registered: 100,
            clients: 100,
            sent: 12_000,
            delivered: 1_200_000,
            errors: 0,
        };
        let cases = [
            (
                base.clone(),
                "[fanout] 3.2 s elapsed, ~1.8 s left | registered 100/100 | sent 12,000 \
                 | delivered 1,200,000 | errors 0",
            ),
            (
                Status {
                    phase: "drain",
                    left: None,
                    errors: 1_234,
                    ..base
                },
                "[drain] 3.2 s elapsed | registered 100/100 | sent 12,000 \
                 | delivered 1,200,000 | errors 1,234",
            ),
        ];
        for (status, want) in cases {
            assert_eq!(status.line(), want);
        }
    }

    #[test]
    fn time_left_estimates() {
        let s = Duration::from_secs;
        // (elapsed, done, total, want)
        let cases = [
            (s(2), 0, 100, None),
            (s(2), 50, 100, Some(s(2))),
            (s(3), 75, 100, Some(s(1))),
            (s(3), 100, 100, Some(s(0))),
            (s(3), 150, 100, Some(s(0))),
            (s(3), 5, 0, None),
        ];
        for (elapsed, done, total, want) in cases {
            assert_eq!(estimate_left(elapsed, done, total), want, "{done}/{total}");
        }
    }
}
