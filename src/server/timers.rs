//! Timers without threads: deadlines feed the poll timeout, and due ones
//! fire at the top of each loop turn. Every timer names its connection by
//! `(key, id)`, so one that outlives its connection never hits a newer one
//! in the same slot. Pure bookkeeping; what a timer does is the caller's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

/// Deadlines that all share one duration, so they expire in the order they
/// were set: a FIFO queue, O(1) per timer.
#[derive(Debug, Default)]
pub struct Deadlines {
    queue: VecDeque<(Instant, usize, u64)>,
}

impl Deadlines {
    /// No deadlines.
    pub fn new() -> Deadlines {
        Deadlines::default()
    }

    /// Sets a deadline for connection `(key, id)`; `at` must not be earlier
    /// than any deadline already set.
    pub fn push(&mut self, at: Instant, key: usize, id: u64) {
        debug_assert!(self.queue.back().is_none_or(|&(last, ..)| last <= at));
        self.queue.push_back((at, key, id));
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.queue.front().map(|&(at, ..)| at)
    }

    /// Takes the earliest deadline if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(usize, u64)> {
        match self.queue.front() {
            Some(&(at, key, id)) if at <= now => {
                self.queue.pop_front();
                Some((key, id))
            }
            _ => None,
        }
    }

    /// Deadlines held, due or not.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when none are held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Drops the deadlines of connections that no longer need one, once
    /// they outnumber the `live` ones that do by more than two to one:
    /// the queue then grows with live connections, not with the rate at
    /// which connections come and go, at O(1) amortised cost.
    pub fn compact(&mut self, live: usize, still_needed: impl Fn(usize, u64) -> bool) {
        if self.queue.len() > 2 * live + 64 {
            self.queue.retain(|&(_, key, id)| still_needed(key, id));
        }
    }
}

/// Deadlines of any duration (a client paused by flood control resumes when
/// its budget has refilled), in microseconds of the server's clock: a heap,
/// O(log n) per timer.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, usize, u64)>>,
}

impl Schedule {
    /// Nothing scheduled.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Schedules connection `(key, id)` at `at_us`.
    pub fn push(&mut self, at_us: u64, key: usize, id: u64) {
        self.heap.push(Reverse((at_us, key, id)));
    }

    /// The earliest time scheduled.
    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// Takes the earliest entry if it is due at `now_us`.
    pub fn pop_due(&mut self, now_us: u64) -> Option<(usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, key, id))) if *at <= now_us => {
                let due = (*key, *id);
                self.heap.pop();
                Some(due)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        d.push(t0 + Duration::from_millis(10), 1, 100);
        d.push(t0 + Duration::from_millis(20), 2, 200);
        assert_eq!(d.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + Duration::from_millis(25)), Some((1, 100)));
        assert_eq!(d.pop_due(t0 + Duration::from_millis(25)), Some((2, 200)));
        assert!(d.is_empty());
    }

    #[test]
    fn schedule_fires_earliest_first() {
        let mut s = Schedule::new();
        s.push(30, 3, 3);
        s.push(10, 1, 1);
        s.push(20, 2, 2);
        assert_eq!(s.next(), Some(10));
        assert_eq!(s.pop_due(5), None);
        assert_eq!(s.pop_due(25), Some((1, 1)));
        assert_eq!(s.pop_due(25), Some((2, 2)));
        assert_eq!(s.pop_due(25), None);
    }

    #[test]
    fn compaction_bounds_the_queue_by_live_connections() {
        let t0 = Instant::now();
        let mut d = Deadlines::new();
        // 10,000 connections come and go; 10 stay.
        for i in 0..10_000u64 {
            d.push(t0, i as usize, i);
            d.compact(10, |_, id| id % 1000 == 0);
        }
        assert!(d.len() <= 2 * 10 + 64 + 1, "{}", d.len());
        let mut left = Vec::new();
        while let Some((_, id)) = d.pop_due(t0) {
            left.push(id);
        }
        assert_eq!(left.iter().filter(|id| *id % 1000 == 0).count(), 10);
    }
}
