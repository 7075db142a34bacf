//! A room's recent history: the last few chat and action lines, with the
//! time each was sent, bounded in lines and in bytes so that memory stays
//! bounded whatever clients send. Pure: times come from the caller.

use std::collections::VecDeque;

/// Default lines kept per room (`--history`).
pub const DEFAULT_HISTORY_LINES: usize = 20;
/// The most bytes of text one room's history keeps, whatever `--history`
/// says: long lines push old ones out sooner.
pub const HISTORY_BYTES_PER_ROOM: usize = 16 * 1024;

/// One room's history.
#[derive(Debug, Default)]
pub struct History {
    /// `(unix seconds, line without its newline)`, oldest first.
    lines: VecDeque<(u64, Box<str>)>,
    /// Bytes of text held.
    bytes: usize,
}

impl History {
    /// Empty; allocates nothing until a line is kept.
    pub fn new() -> History {
        History::default()
    }

    /// Keeps `line` (sent at `unix_secs`), dropping the oldest lines beyond
    /// `max_lines` or [`HISTORY_BYTES_PER_ROOM`]. Does nothing when
    /// `max_lines` is 0.
    pub fn push(&mut self, unix_secs: u64, line: &str, max_lines: usize) {
        if max_lines == 0 || line.len() > HISTORY_BYTES_PER_ROOM {
            return;
        }
        self.lines.push_back((unix_secs, line.into()));
        self.bytes += line.len();
        while self.lines.len() > max_lines || self.bytes > HISTORY_BYTES_PER_ROOM {
            if let Some((_, old)) = self.lines.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The lines kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.lines.iter().map(|(t, l)| (*t, &**l))
    }

    /// Lines kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_within_both_bounds() {
        let mut h = History::new();
        for i in 0..30 {
            h.push(i, &format!("a: {i}"), 20);
        }
        assert_eq!(h.len(), 20);
        assert_eq!(h.iter().next(), Some((10, "a: 10")));
        let long = "x".repeat(4000);
        for i in 0..10 {
            h.push(100 + i, &long, 20);
        }
        assert!(h.bytes <= HISTORY_BYTES_PER_ROOM);
        assert_eq!(h.len(), 4);
        assert!(h.iter().all(|(_, l)| l == long));
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut h = History::new();
        h.push(1, "a: hi", 0);
        assert!(h.is_empty());
    }
}
