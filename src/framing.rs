//! Line framing: turns a byte stream into `\n`-terminated lines with a hard
//! bound on what it buffers. Pure: no I/O and no idea what a line means, so the
//! server, the example client and the load tester all frame with this code.
//!
//! TCP delivers bytes, not messages: one read may hold half a line or many
//! lines. [`LineBuf`] keeps only the unfinished tail of the stream, never more
//! than the line limit (plus one byte for a `\r` that may precede `\n`).

/// The default longest line, in bytes, without its line ending.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4096;

/// One unit of framed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its `\n` and without a `\r` right before it.
    Line(&'a [u8]),
    /// A line went over the limit. Reported once per overlong line, as soon as
    /// the limit is known to be crossed; its bytes up to the next `\n` are
    /// discarded without being buffered.
    TooLong,
}

/// The framing state of one stream: the unfinished line carried between reads.
#[derive(Debug, Default)]
pub struct LineBuf {
    /// Bytes of a line whose `\n` has not arrived yet. At most `max + 1` bytes
    /// (content plus a possible `\r`), and released when the line completes so
    /// an idle connection holds no framing memory.
    partial: Vec<u8>,
    /// True while skipping the rest of an overlong line up to its `\n`.
    discarding: bool,
    /// True when the last frame handed out was assembled in `partial`, which
    /// is released at the next call (the frame borrowed it until then).
    completed: bool,
}

impl LineBuf {
    /// An empty framer; allocates nothing until a line is split across reads.
    pub fn new() -> LineBuf {
        LineBuf::default()
    }

    /// Bytes currently buffered for an unfinished line.
    pub fn buffered_len(&self) -> usize {
        if self.completed {
            0
        } else {
            self.partial.len()
        }
    }

    /// True when there is no unfinished line and no overlong line being skipped.
    pub fn is_idle(&self) -> bool {
        (self.partial.is_empty() || self.completed) && !self.discarding
    }

    /// Takes the next frame from `data`, advancing it past what was used.
    /// `None` means `data` is used up (an unfinished line is kept for the
    /// next call). Lines that fit entirely in `data` are handed out without
    /// copying. Pulling one frame at a time lets a caller stop between
    /// frames (a client over its flood budget) and keep the rest of `data`.
    pub fn next<'s, 'd, 'f>(&'s mut self, data: &mut &'d [u8], max: usize) -> Option<Frame<'f>>
    where
        's: 'f,
        'd: 'f,
    {
        if self.completed {
            // The line handed out last time was assembled here; release it.
            self.completed = false;
            self.partial = Vec::new();
        }
        while let Some(i) = memchr::memchr(b'\n', data) {
            let head: &'d [u8] = &data[..i];
            *data = &data[i + 1..];
            if self.discarding {
                // The overlong line was already reported; this is its end.
                self.discarding = false;
            } else if self.partial.is_empty() {
                return Some(frame(head, max));
            } else if self.partial.len() + head.len() > max.saturating_add(1) {
                self.partial = Vec::new();
                return Some(Frame::TooLong);
            } else {
                self.partial.extend_from_slice(head);
                self.completed = true;
                return Some(frame(&self.partial, max));
            }
        }
        let rest = std::mem::take(data);
        if rest.is_empty() || self.discarding {
            return None;
        }
        let len = self.partial.len() + rest.len();
        // max + 1 bytes are only a line in the making if the last is the `\r`
        // of a `\r\n`; otherwise the limit is already crossed.
        let crossed = len > max.saturating_add(1)
            || (len == max.saturating_add(1) && rest.last() != Some(&b'\r'));
        if crossed {
            // Report now rather than at the newline: the newline may never come,
            // and the limit is what bounds our memory.
            self.partial = Vec::new();
            self.discarding = true;
            return Some(Frame::TooLong);
        }
        self.partial.extend_from_slice(rest);
        None
    }

    /// Ends the stream: an unfinished final line is handed out as a line (the
    /// peer closed without a trailing newline), then the framer is reset.
    pub fn finish_next(&mut self, max: usize) -> Option<Frame<'_>> {
        let was_discarding = std::mem::replace(&mut self.discarding, false);
        if self.completed || was_discarding || self.partial.is_empty() {
            self.completed = false;
            self.partial = Vec::new();
            return None;
        }
        self.completed = true;
        Some(frame(&self.partial, max))
    }

    /// Feeds `data` and calls `on` for each frame it completes, in order.
    pub fn push<F>(&mut self, mut data: &[u8], max: usize, on: &mut F)
    where
        F: FnMut(Frame<'_>),
    {
        while let Some(f) = self.next(&mut data, max) {
            on(f);
        }
    }

    /// Ends the stream, handing an unfinished final line to `on`.
    pub fn finish<F>(&mut self, max: usize, on: &mut F)
    where
        F: FnMut(Frame<'_>),
    {
        if let Some(f) = self.finish_next(max) {
            on(f);
        }
        self.completed = false;
        self.partial = Vec::new();
    }
}

/// Strips one `\r` before the (already removed) `\n` and applies the limit.
fn frame(line: &[u8], max: usize) -> Frame<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max {
        Frame::TooLong
    } else {
        Frame::Line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `chunks` in order (then EOF) and renders each frame as a string.
    fn frames(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut buf = LineBuf::new();
        let mut out = Vec::new();
        let mut on = |f: Frame<'_>| {
            out.push(match f {
                Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                Frame::TooLong => "<too long>".to_string(),
            })
        };
        for c in chunks {
            buf.push(c, max, &mut on);
            assert!(buf.buffered_len() <= max + 1);
        }
        buf.finish(max, &mut on);
        out
    }

    /// Input chunks, the line limit, and the frames expected.
    type Case = (&'static [&'static [u8]], usize, &'static [&'static str]);

    #[test]
    fn table() {
        let cases: &[Case] = &[
            (&[b"a\n"], 8, &["a"]),
            (&[b"a\nb\nc\n"], 8, &["a", "b", "c"]),
            (&[b"a", b"b", b"c\n"], 8, &["abc"]),
            (&[b"a\r\n"], 8, &["a"]),
            (&[b"a\r", b"\n"], 8, &["a"]),
            (&[b"a\r\r\n"], 8, &["a\r"]),
            (&[b"\n\n"], 8, &["", ""]),
            (&[b"no newline"], 16, &["no newline"]),
            (&[b"x\nfinal"], 8, &["x", "final"]),
            // exactly at the limit, with and without \r
            (&[b"12345678\n"], 8, &["12345678"]),
            (&[b"1234", b"5678\r\n"], 8, &["12345678"]),
            // one over: reported once (as soon as it is certain), then framing resumes
            (&[b"123456789"], 8, &["<too long>"]),
            (&[b"12345678\r"], 8, &["12345678"]),
            (&[b"123456789\nok\n"], 8, &["<too long>", "ok"]),
            (&[b"12345", b"6789\nok\n"], 8, &["<too long>", "ok"]),
            (&[b"12345678\r", b"\n"], 8, &["12345678"]),
            // an endless line is reported once, at the point it crosses the limit
            (&[b"1234567890", b"abcdef", b"ghi"], 8, &["<too long>"]),
            (&[b"1234567890", b"abc\ndone\n"], 8, &["<too long>", "done"]),
            (&[b"1234567890\n"], 8, &["<too long>"]),
        ];
        for (chunks, max, want) in cases {
            assert_eq!(frames(chunks, *max), *want, "chunks {chunks:?} max {max}");
        }
    }

    #[test]
    fn idle_after_complete_lines_holds_no_memory() {
        let mut buf = LineBuf::new();
        buf.push(b"abc", 8, &mut |_| {});
        assert_eq!(buf.buffered_len(), 3);
        buf.push(b"\n", 8, &mut |_| {});
        assert!(buf.is_idle());
        assert_eq!(buf.partial.capacity(), 0);
    }

    #[test]
    fn discarding_state_ends_at_newline() {
        let mut buf = LineBuf::new();
        buf.push(b"0123456789", 4, &mut |_| {});
        assert!(!buf.is_idle());
        assert_eq!(buf.buffered_len(), 0);
        buf.push(b"more\n", 4, &mut |_| {});
        assert!(buf.is_idle());
    }
}
