//! Flood control: a per-client budget, refilled over time, that every line
//! draws from, with a cost that grows with how much the line made the server
//! send (ergo's fakelag and ngircd's penalties, priced in output). Over
//! budget, the loop stops reading that client until the budget has refilled:
//! nothing it sent is dropped, its later lines are processed later, and its
//! own TCP window slows it down. Pure arithmetic over a client's one `u64` of
//! state and a clock given by the caller.
//!
//! The budget is a GCRA (generic cell rate algorithm): a client's state is
//! the time at which its budget would be full again (its "theoretical
//! arrival time"); a line of cost `c` moves it `c / rate` later; the client
//! is over budget while it lies more than `burst / rate` in the future.

/// Output bytes that cost one unit on top of the unit every line costs: a
/// line to a few people costs about 1, a 4 KB line to 50 people about 7, a
/// line to 10,000 people about 31.
pub const BYTES_PER_UNIT: u64 = 32 * 1024;

/// Default units refilled per second (`--flood-rate`).
pub const DEFAULT_RATE: u32 = 10;
/// Default units a client may spend at once (`--flood-burst`).
pub const DEFAULT_BURST: u32 = 30;

/// Flood-control settings; a rate of 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flood {
    /// Units refilled per second.
    pub rate: u32,
    /// Units a client may spend at once.
    pub burst: u32,
}

impl Default for Flood {
    fn default() -> Flood {
        Flood {
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
        }
    }
}

impl Flood {
    /// True when flood control is on.
    pub fn is_on(&self) -> bool {
        self.rate > 0
    }

    /// What a line costs, in microseconds of budget, given the bytes of
    /// output it made the server queue.
    pub fn cost_us(&self, output_bytes: u64) -> u64 {
        if !self.is_on() {
            return 0;
        }
        // (1 + bytes / BYTES_PER_UNIT) units at `rate` units per second.
        let per_unit = 1_000_000 / u64::from(self.rate);
        per_unit + output_bytes.saturating_mul(per_unit) / BYTES_PER_UNIT
    }

    /// How far ahead of now a client's state may run before it is over
    /// budget, in microseconds.
    fn tolerance_us(&self) -> u64 {
        u64::from(self.burst) * 1_000_000 / u64::from(self.rate.max(1))
    }

    /// Charges a line of `cost_us` to a client whose state is `tat`, at time
    /// `now_us`. Returns when the client may be read again if it is now over
    /// budget, `None` if it may go on.
    pub fn charge(&self, tat: &mut u64, now_us: u64, cost_us: u64) -> Option<u64> {
        if !self.is_on() {
            return None;
        }
        *tat = (*tat).max(now_us).saturating_add(cost_us);
        self.resume_at(*tat, now_us)
    }

    /// When a client whose state is `tat` may be read again, if it is over
    /// budget at `now_us`.
    pub fn resume_at(&self, tat: u64, now_us: u64) -> Option<u64> {
        if !self.is_on() {
            return None;
        }
        let free_at = tat.saturating_sub(self.tolerance_us());
        (free_at > now_us).then_some(free_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    /// Lines a client sending as fast as it can gets through in `secs`
    /// seconds, each making the server send `output` bytes.
    fn lines_in(flood: Flood, output: u64, secs: u64) -> u64 {
        let mut tat = 0;
        let mut now = 0;
        let mut lines = 0;
        while now < secs * SEC {
            lines += 1;
            if let Some(resume) = flood.charge(&mut tat, now, flood.cost_us(output)) {
                now = resume;
            }
        }
        lines
    }

    #[test]
    fn off_means_free() {
        let off = Flood { rate: 0, burst: 0 };
        assert_eq!(off.cost_us(1 << 30), 0);
        let mut tat = 0;
        assert_eq!(off.charge(&mut tat, 5, 100), None);
    }

    #[test]
    fn a_burst_then_the_rate() {
        let f = Flood::default();
        // Small lines to a few people: the burst at once, then 10 a second.
        let mut tat = 0;
        let over = (0..40)
            .position(|_| f.charge(&mut tat, 0, f.cost_us(200)).is_some())
            .unwrap();
        assert!((29..=31).contains(&over), "{over}");
        let n = lines_in(f, 200, 60);
        assert!((620..=640).contains(&n), "{n} lines in 60 s");
    }

    #[test]
    fn cost_grows_with_what_a_line_makes_the_server_send() {
        let f = Flood::default();
        // A normal chatter: 2 lines/s in a room of 100 (64-byte lines)
        // stays well inside the budget.
        assert!(2 * f.cost_us(64 * 100) < SEC);
        // /msg flood of 4 KB lines: about 8 a second, 32 KB/s to the victim.
        let msg = lines_in(f, 2 * 4000, 60) / 60;
        assert!((7..=9).contains(&msg), "{msg}/s");
        // A room flood of 4 KB lines to 50 readers: under 2 lines a second.
        let room = lines_in(f, 50 * 4000, 60) / 60;
        assert!(room <= 2, "{room}/s");
        // A nick storm in a room of 10,000: under one a second.
        let nick = lines_in(f, 10_000 * 40, 60);
        assert!(nick < 60, "{nick} in 60 s");
    }

    #[test]
    fn a_quiet_client_refills() {
        let f = Flood::default();
        let mut tat = 0;
        while f.charge(&mut tat, 0, f.cost_us(100)).is_none() {}
        let resume = f.resume_at(tat, 0).unwrap();
        assert!(resume <= SEC / 5);
        assert_eq!(f.resume_at(tat, resume), None);
        // After a long pause the whole burst is back.
        let later = 100 * SEC;
        let n = (0..40)
            .take_while(|_| f.charge(&mut tat, later, f.cost_us(100)).is_none())
            .count();
        assert!(n >= 28, "{n}");
    }
}
