//! Codecs: how a connection's byte stream is cut into units of input
//! (protocol lines; an HTTP request head) and how lines are framed on the
//! way out. The chat only ever sees lines; a codec never learns what a line
//! means, and never touches a socket.

use crate::framing::{Frame, LineBuf};
use crate::http::{HeadBuf, HeadError, Request};

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

/// One unit of input.
#[derive(Debug)]
pub enum Input<'a> {
    /// A protocol line (or a report that one was too long).
    Frame(Frame<'a>),
    /// An HTTP request head, or why it was refused.
    Request(Result<Request, HeadError>),
}

/// A connection's framing state.
#[derive(Debug)]
pub enum Codec {
    /// `\n`-terminated lines both ways.
    Lines(LineBuf),
    /// One HTTP request head in; responses out are whole, unframed bytes.
    Http(Box<HeadBuf>),
}

impl Default for Codec {
    fn default() -> Codec {
        Codec::Lines(LineBuf::new())
    }
}

impl Codec {
    /// An HTTP codec, waiting for a request head.
    pub fn http() -> Codec {
        Codec::Http(Box::default())
    }

    /// The next unit of input from `data`, which is advanced past what was
    /// used; `None` when `data` is used up.
    pub fn next<'s, 'd, 'f>(&'s mut self, data: &mut &'d [u8], max: usize) -> Option<Input<'f>>
    where
        's: 'f,
        'd: 'f,
    {
        match self {
            Codec::Lines(lines) => lines.next(data, max).map(Input::Frame),
            Codec::Http(head) => head.push(data).map(Input::Request),
        }
    }

    /// At the peer's EOF: a final unterminated line, if any.
    pub fn finish(&mut self, max: usize) -> Option<Input<'_>> {
        match self {
            Codec::Lines(lines) => lines.finish_next(max).map(Input::Frame),
            Codec::Http(_) => None,
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
            // Nothing but whole responses goes to an HTTP client.
            Codec::Http(_) => 0,
        }
    }
}
