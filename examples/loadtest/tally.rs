//! Counting deliveries exactly: for every (receiver, sender) pair the next
//! sequence number expected, so each received message is in order, skips
//! ahead (a gap: something was lost) or comes back late (a duplicate or a
//! reordering); for every receiver a digest of the order in which all its
//! messages arrived, so receivers that saw the same messages in different
//! orders (one room, several servers without one sequencer) are caught;
//! plus the latency histogram and its percentiles. Pure: times are passed
//! in, nothing here reads a clock or a socket.

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, up to this (a minute) and clamped above.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// How one delivery relates to what its receiver had seen from that sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Exactly the next sequence number.
    InOrder,
    /// Ahead of the next one by this many: those messages were skipped.
    Gap(u32),
    /// Below the next one: a duplicate or a message overtaken by a later one.
    Late,
}

/// Delivery counts for one run.
#[derive(Debug)]
pub struct Tally {
    senders: usize,
    /// `next[receiver * senders + sender]`: the sequence number expected next.
    next: Vec<u32>,
    /// Receivers that were present for the whole traffic phase: their gaps are
    /// losses. Others (clients that join and leave) are only checked for order.
    strict: Vec<bool>,
    /// In-order or ahead deliveries to strict receivers: what loss is computed from.
    pub received_strict: u64,
    /// In-order or ahead deliveries to the other receivers (clients that
    /// joined or left during the run): real deliveries, but nothing to
    /// compute a loss from.
    pub received_loose: u64,
    /// Messages skipped by strict receivers when a later one arrived.
    pub gaps: u64,
    /// Deliveries below the expected sequence number (duplicates, reorderings).
    pub late: u64,
    /// Latency of every delivery.
    pub latency: Histogram<u64>,
    /// Per receiver: a digest of (sender, seq) in arrival order, and how
    /// many deliveries it covers.
    order: Vec<(u64, u64)>,
    /// Per receiver: its room. Only members of one room must agree on an order.
    group: Vec<usize>,
}

impl Tally {
    /// Counts for `receivers` receivers (all strict) of `senders` senders.
    pub fn new(receivers: usize, senders: usize) -> Tally {
        Tally {
            senders,
            next: vec![0; receivers * senders],
            strict: vec![true; receivers],
            received_strict: 0,
            received_loose: 0,
            gaps: 0,
            late: 0,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
            order: vec![(0, 0); receivers],
            group: vec![0; receivers],
        }
    }

    /// Puts `receiver` in room `group` (all start in room 0): orders are
    /// compared among the members of a room only.
    pub fn set_group(&mut self, receiver: usize, group: usize) {
        self.group[receiver] = group;
    }

    /// Marks `receiver` as one that may miss messages (it joins or leaves
    /// during the run): gaps are then expected and not counted.
    pub fn set_strict(&mut self, receiver: usize, strict: bool) {
        self.strict[receiver] = strict;
    }

    /// Forgets what `receiver` has seen (a client that rejoined under a new name).
    pub fn reset(&mut self, receiver: usize) {
        let s = self.senders;
        self.next[receiver * s..(receiver + 1) * s].fill(0);
        self.order[receiver] = (0, 0);
    }

    /// The sequence number `receiver` expects next from `sender`.
    #[cfg(test)]
    pub fn next_expected(&self, receiver: usize, sender: usize) -> u32 {
        self.next[receiver * self.senders + sender]
    }

    /// Counts one delivery of `sender`'s message `seq` to `receiver`, which
    /// took `latency_ns`.
    pub fn record(&mut self, receiver: usize, sender: usize, seq: u32, latency_ns: u64) -> Seen {
        self.latency
            .saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
        let strict = self.strict[receiver];
        let (digest, count) = &mut self.order[receiver];
        // FNV-1a over the arrival order: equal digests mean equal orders.
        *digest = (*digest ^ ((sender as u64) << 32 | u64::from(seq)))
            .wrapping_mul(0x0000_0100_0000_01b3);
        *count += 1;
        let next = &mut self.next[receiver * self.senders + sender];
        let seen = if seq == *next {
            Seen::InOrder
        } else if seq > *next {
            Seen::Gap(seq - *next)
        } else {
            Seen::Late
        };
        match seen {
            Seen::Late => self.late += 1,
            Seen::InOrder | Seen::Gap(_) => {
                *next = seq + 1;
                if strict {
                    if let Seen::Gap(n) = seen {
                        self.gaps += u64::from(n);
                    }
                    self.received_strict += 1;
                } else {
                    self.received_loose += 1;
                }
            }
        }
        seen
    }

    /// In-order or ahead deliveries, strict receivers or not: what was
    /// delivered.
    pub fn delivered(&self) -> u64 {
        self.received_strict + self.received_loose
    }

    /// Every valid delivery, late ones included.
    pub fn received(&self) -> u64 {
        self.delivered() + self.late
    }

    /// Strict receivers that got as many messages as the most complete one
    /// of their room but in another order than the most common there: zero
    /// when the members of every room saw one order (what one server, or a
    /// cluster with one sequencer, promises).
    pub fn order_mismatches(&self) -> u64 {
        use std::collections::HashMap;
        // Per room: the most deliveries any strict member got, then how
        // many of the members with that many saw each order.
        let mut most: HashMap<usize, u64> = HashMap::new();
        let strict = || {
            (0..self.order.len())
                .filter(|&r| self.strict[r])
                .map(|r| (self.group[r], self.order[r]))
        };
        for (g, (_, count)) in strict() {
            let m = most.entry(g).or_default();
            *m = (*m).max(count);
        }
        let mut orders: HashMap<(usize, u64), u64> = HashMap::new();
        let mut full: HashMap<usize, u64> = HashMap::new();
        for (g, (digest, count)) in strict() {
            if count > 0 && count == most[&g] {
                *orders.entry((g, digest)).or_default() += 1;
                *full.entry(g).or_default() += 1;
            }
        }
        let mut common: HashMap<usize, u64> = HashMap::new();
        for ((g, _), n) in orders {
            let c = common.entry(g).or_default();
            *c = (*c).max(n);
        }
        full.iter().map(|(g, n)| n - common[g]).sum()
    }

    /// Strict deliveries that never came: `expected` minus those received.
    pub fn lost(&self, expected: u64) -> u64 {
        expected.saturating_sub(self.received_strict)
    }

    /// The latency summary.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles::of(&self.latency)
    }
}

/// Latency percentiles in nanoseconds (all zero when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample (exact to the histogram's 3 significant figures).
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Summarises `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs deliveries `(sender, seq)` to receiver 0 of two senders, each
    /// sender having sent `sent` messages; returns (received_strict,
    /// received_loose, gaps, late, lost) and the `Seen` of each delivery.
    fn run(
        strict: bool,
        deliveries: &[(usize, u32)],
        sent: u64,
    ) -> ((u64, u64, u64, u64, u64), Vec<Seen>) {
        let mut t = Tally::new(1, 2);
        t.set_strict(0, strict);
        let seen = deliveries
            .iter()
            .map(|&(s, q)| t.record(0, s, q, 1000))
            .collect();
        let expected = if strict { sent * 2 } else { 0 };
        (
            (
                t.received_strict,
                t.received_loose,
                t.gaps,
                t.late,
                t.lost(expected),
            ),
            seen,
        )
    }

    #[test]
    fn counting_table() {
        use Seen::*;
        type Case = (
            bool,
            &'static [(usize, u32)],
            u64,
            (u64, u64, u64, u64, u64),
            &'static [Seen],
        );
        let cases: &[Case] = &[
            // everything, interleaved senders: clean
            (
                true,
                &[(0, 0), (1, 0), (0, 1), (1, 1)],
                2,
                (4, 0, 0, 0, 0),
                &[InOrder; 4],
            ),
            // sender 1's message 1 never came: one lost, seen as nothing wrong yet
            (
                true,
                &[(0, 0), (0, 1), (1, 0)],
                2,
                (3, 0, 0, 0, 1),
                &[InOrder; 3],
            ),
            // a skipped message: gap now, loss at the end
            (
                true,
                &[(0, 0), (0, 2), (1, 0), (1, 1), (1, 2)],
                3,
                (5, 0, 1, 0, 1),
                &[InOrder, Gap(1), InOrder, InOrder, InOrder],
            ),
            // reordered: the gap and then the late one; counted once, not as received
            (
                true,
                &[(0, 1), (0, 0), (1, 0), (1, 1)],
                2,
                (3, 0, 1, 1, 1),
                &[Gap(1), Late, InOrder, InOrder],
            ),
            // a duplicate is late and does not hide a loss
            (
                true,
                &[(0, 0), (0, 0), (1, 0)],
                2,
                (2, 0, 0, 1, 2),
                &[InOrder, Late, InOrder],
            ),
            // a receiver that joined late: its deliveries count apart, gaps are
            // fine, order is still checked
            (
                false,
                &[(0, 5), (0, 6), (0, 4)],
                7,
                (0, 2, 0, 1, 0),
                &[Gap(5), InOrder, Late],
            ),
            // nothing at all
            (true, &[], 3, (0, 0, 0, 0, 6), &[]),
        ];
        for (strict, deliveries, sent, want, want_seen) in cases {
            let (got, seen) = run(*strict, deliveries, *sent);
            assert_eq!(got, *want, "{deliveries:?}");
            assert_eq!(seen, *want_seen, "{deliveries:?}");
        }
    }

    #[test]
    fn reset_starts_a_receiver_over() {
        let mut t = Tally::new(2, 1);
        t.record(1, 0, 0, 1);
        t.record(1, 0, 1, 1);
        assert_eq!(t.next_expected(1, 0), 2);
        t.reset(1);
        assert_eq!(t.next_expected(1, 0), 0);
        assert_eq!(t.next_expected(0, 0), 0);
    }

    #[test]
    fn percentiles_table() {
        // (samples in ns, p50, p99, p99.9, max); values exact to 3 significant figures
        type Case = (Vec<u64>, u64, u64, u64, u64);
        let cases: Vec<Case> = vec![
            (vec![], 0, 0, 0, 0),
            (vec![1000], 1000, 1000, 1000, 1000),
            (
                (1..=1000).map(|i| i * 1000).collect(),
                500_000,
                990_000,
                999_000,
                1_000_000,
            ),
            // one outlier among 10,000 shows in max and p99.9 only from 0.1% up
            (
                std::iter::repeat_n(20_000, 9_999)
                    .chain([5_000_000])
                    .collect(),
                20_000,
                20_000,
                20_000,
                5_000_000,
            ),
            // a latency over the histogram's range is clamped, not dropped
            (
                vec![u64::MAX],
                MAX_LATENCY_NS,
                MAX_LATENCY_NS,
                MAX_LATENCY_NS,
                MAX_LATENCY_NS,
            ),
        ];
        for (samples, p50, p99, p999, max) in cases {
            let mut t = Tally::new(1, 1);
            for (i, &s) in samples.iter().enumerate() {
                t.record(0, 0, i as u32, s);
            }
            let p = t.percentiles();
            let close = |got: u64, want: u64| got.abs_diff(want) <= want / 500;
            assert_eq!(p.count, samples.len() as u64);
            assert!(close(p.p50, p50), "p50 {} want {p50}", p.p50);
            assert!(close(p.p99, p99), "p99 {} want {p99}", p.p99);
            assert!(close(p.p999, p999), "p99.9 {} want {p999}", p.p999);
            assert!(close(p.max, max), "max {} want {max}", p.max);
        }
    }

    #[test]
    fn receivers_that_disagree_on_the_order_are_counted() {
        let mut t = Tally::new(3, 2);
        for r in 0..3 {
            let order: &[(usize, u32)] = if r == 2 {
                &[(1, 0), (0, 0), (0, 1)]
            } else {
                &[(0, 0), (1, 0), (0, 1)]
            };
            for &(s, q) in order {
                t.record(r, s, q, 1);
            }
        }
        // Per-sender order holds everywhere; only the interleaving differs.
        assert_eq!((t.gaps, t.late), (0, 0));
        assert_eq!(t.order_mismatches(), 1);
        t.reset(2);
        t.set_strict(2, false);
        assert_eq!(t.order_mismatches(), 0);
    }

    #[test]
    fn orders_are_compared_within_a_room_only() {
        // Rooms 0 and 1 hear different senders, so their orders differ by
        // design; within room 1, receiver 3 disagrees with 2 and 4.
        let mut t = Tally::new(5, 3);
        for (r, g) in [0, 0, 1, 1, 1].into_iter().enumerate() {
            t.set_group(r, g);
        }
        let room0: &[(usize, u32)] = &[(0, 0), (0, 1), (0, 2)];
        let room1: &[(usize, u32)] = &[(1, 0), (2, 0), (1, 1)];
        let swapped: &[(usize, u32)] = &[(2, 0), (1, 0), (1, 1)];
        for (r, order) in [room0, room0, room1, swapped, room1]
            .into_iter()
            .enumerate()
        {
            for &(s, q) in order {
                t.record(r, s, q, 1);
            }
        }
        assert_eq!(t.order_mismatches(), 1);
        // Judged as one room, the two rooms' orders would disagree too.
        for r in 0..5 {
            t.set_group(r, 0);
        }
        assert_eq!(t.order_mismatches(), 3);
    }
}
