//! Codecs: how a connection's byte stream is cut into units of input
//! (protocol lines, WebSocket messages, an HTTP request head) and how lines
//! are framed on the way out ([`Framing`]). The chat only ever sees lines;
//! a codec never learns what a line means, and never touches a socket.

use crate::framing::{Frame, LineBuf};
use crate::http::{HeadBuf, HeadError, Request};

use super::outbuf::OutBuf;
use super::ws::{TextHead, WsDecoder, WsEvent};

/// One outgoing line, ready for every codec. Built once per broadcast (the
/// WebSocket frame header included); each codec only picks its framing
/// when queueing it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The line with its `\n`, as the line codec sends it.
    line: &'a [u8],
    /// The header of the WebSocket text frame carrying the line without
    /// its `\n`.
    ws_head: TextHead,
}

impl<'a> Outgoing<'a> {
    /// Wraps one line that ends in `\n`.
    pub fn new(line: &'a [u8]) -> Outgoing<'a> {
        debug_assert!(line.ends_with(b"\n"), "one whole line");
        Outgoing {
            line,
            ws_head: TextHead::new(line.len().saturating_sub(1)),
        }
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
    /// A WebSocket control event (text messages come as `Frame`s).
    Ws(WsEvent<'a>),
}

/// How lines are framed on the way out. Kept on the connection apart from
/// the decoding state, which is lent out while input is handled (lines
/// queued meanwhile must still be framed right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `\n`-terminated lines.
    Lines,
    /// One WebSocket text frame per line.
    Ws,
    /// Nothing but whole responses (HTTP).
    Raw,
}

impl Framing {
    /// Queues `line` framed this way; returns the bytes added.
    #[inline]
    pub fn queue(self, out: &mut OutBuf, line: Outgoing<'_>) -> usize {
        match self {
            Framing::Lines => {
                out.push(&[line.line]);
                line.line.len()
            }
            Framing::Ws => {
                let head = line.ws_head.as_bytes();
                let text = &line.line[..line.line.len() - 1];
                out.push(&[head, text]);
                head.len() + text.len()
            }
            Framing::Raw => 0,
        }
    }
}

/// A connection's framing state.
#[derive(Debug)]
pub enum Codec {
    /// `\n`-terminated lines both ways.
    Lines(LineBuf),
    /// One HTTP request head in; responses out are whole, unframed bytes.
    Http(Box<HeadBuf>),
    /// WebSocket frames (after an upgrade).
    Ws(Box<WsDecoder>),
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
            Codec::Ws(ws) => ws.next(data, max).map(|e| match e {
                WsEvent::Text(text) => Input::Frame(Frame::Line(text)),
                e => Input::Ws(e),
            }),
        }
    }

    /// At the peer's EOF: a final unterminated line, if any.
    pub fn finish(&mut self, max: usize) -> Option<Input<'_>> {
        match self {
            Codec::Lines(lines) => lines.finish_next(max).map(Input::Frame),
            // A WebSocket message is whole or it is nothing.
            Codec::Http(_) | Codec::Ws(_) => None,
        }
    }

    /// The framing its output uses.
    pub fn framing(&self) -> Framing {
        match self {
            Codec::Lines(_) => Framing::Lines,
            Codec::Http(_) => Framing::Raw,
            Codec::Ws(_) => Framing::Ws,
        }
    }
}
