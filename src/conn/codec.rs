//! Codecs: how a connection's byte stream is cut into protocol lines and how
//! lines are framed on the way out (`\n`-terminated lines today). The chat
//! only ever sees lines; a codec never learns what a line means, and never
//! touches a socket.

use crate::framing::{Frame, LineBuf};

use super::outbuf::OutBuf;

/// One outgoing line, ready for every codec. Built once per broadcast; each
/// codec adds only its own framing when queueing it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The line with its `\n`, as the line codec sends it.
    line: &'a [u8],
}

impl<'a> Outgoing<'a> {
    /// Wraps one line that ends in `\n`.
    pub fn new(line: &'a [u8]) -> Outgoing<'a> {
        debug_assert!(line.ends_with(b"\n"), "one whole line");
        Outgoing { line }
    }

    /// The line with its `\n`.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }
}

/// A connection's framing state.
#[derive(Debug)]
pub enum Codec {
    /// `\n`-terminated lines both ways.
    Lines(LineBuf),
}

impl Default for Codec {
    fn default() -> Codec {
        Codec::Lines(LineBuf::new())
    }
}

impl Codec {
    /// The next protocol line (or overlong-line report) from `data`, which
    /// is advanced past what was used; `None` when `data` is used up.
    pub fn next<'s, 'd, 'f>(&'s mut self, data: &mut &'d [u8], max: usize) -> Option<Frame<'f>>
    where
        's: 'f,
        'd: 'f,
    {
        match self {
            Codec::Lines(lines) => lines.next(data, max),
        }
    }

    /// At the peer's EOF: a final unterminated line, if any.
    pub fn finish(&mut self, max: usize) -> Option<Frame<'_>> {
        match self {
            Codec::Lines(lines) => lines.finish_next(max),
        }
    }

    /// Queues `line` framed for this codec; returns the bytes added.
    #[inline]
    pub fn queue(&self, out: &mut OutBuf, line: Outgoing<'_>) -> usize {
        match self {
            Codec::Lines(_) => {
                out.push(&[line.line]);
                line.line.len()
            }
        }
    }
}
