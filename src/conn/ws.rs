//! WebSocket framing (RFC 6455) for one connection, server side: client
//! frames in (masked, text only unless opted in, fragments reassembled
//! within the line limit, UTF-8 checked as it arrives, control frames
//! answered), server frames out (unmasked, one text frame per protocol
//! line). Pure byte work: tungstenite parses frame headers; this file keeps
//! the state between reads and decides what is a protocol error. Knows
//! nothing of sockets, lines' meaning or the chat; the handshake lives in
//! `crate::web`. `examples/ws_echo.rs` runs it against Autobahn|Testsuite.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Close codes we send (RFC 6455 section 7.4.1).
pub mod code {
    /// Normal closure (`/quit`, or echoing a peer's close).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A binary message: we take text only.
    pub const UNSUPPORTED: u16 = 1003;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A policy closed it (login timeout, refusal, timeout).
    pub const POLICY: u16 = 1008;
    /// A message over the line limit.
    pub const TOO_BIG: u16 = 1009;
}

/// Longest header a client frame can have: 2 + 8 length + 4 mask.
const MAX_HEAD: usize = 14;
/// A reassembly buffer bigger than this is freed once its message is done.
const KEEP_MSG_BYTES: usize = 8 * 1024;

/// What the decoder found in the client's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// One whole text message: one protocol line.
    Text(&'a [u8]),
    /// A ping: answer with a pong carrying this payload.
    Ping(&'a [u8]),
    /// The peer's close frame, with its code if it gave one. Nothing more
    /// is decoded.
    Close(Option<u16>),
    /// The peer broke the protocol: close with this code. Nothing more is
    /// decoded.
    Fail(u16, &'static str),
}

/// What a decoder made by [`WsDecoder::echo`] finds: binary messages as
/// well as everything [`WsEvent`] has.
#[derive(Debug, PartialEq, Eq)]
pub enum EchoEvent<'a> {
    /// One whole binary message.
    Binary(&'a [u8]),
    /// Any other event.
    Ws(WsEvent<'a>),
}

/// Like [`WsEvent`] without borrowing the decoder, so the decode loop can
/// return and then lend the buffer.
#[derive(Debug, Clone, Copy)]
enum Found {
    Text,
    Binary,
    Ping,
    Close(Option<u16>),
    Fail(u16, &'static str),
}

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct Current {
    control: Option<Control>,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: usize,
    /// Payload bytes seen so far (the mask's phase).
    seen: usize,
}

/// A connection's decoding state between reads.
#[derive(Debug, Default)]
pub struct WsDecoder {
    /// Bytes of a frame header split across reads.
    head: [u8; MAX_HEAD],
    head_len: usize,
    frame: Option<Current>,
    /// The message being reassembled (or just yielded).
    msg: Vec<u8>,
    /// A fragmented message is open: continuations are expected.
    in_message: bool,
    /// The open (or just yielded) message is binary: no UTF-8 check.
    binary: bool,
    /// How much of a text `msg` is known to be whole UTF-8 characters:
    /// each byte is checked once, as it arrives, so invalid text fails at
    /// the first bad byte and a long fragmented message costs linear time.
    utf8_checked: usize,
    /// Binary messages are taken (the echo server), not refused with
    /// [`code::UNSUPPORTED`].
    accept_binary: bool,
    /// The control frame payload being read (at most 125 bytes).
    ctrl: Vec<u8>,
    /// A close or failure was found: the rest is discarded.
    done: bool,
}

impl WsDecoder {
    /// A decoder expecting the first frame, taking text messages only.
    pub fn new() -> WsDecoder {
        WsDecoder::default()
    }

    /// A decoder that takes binary messages too, read with
    /// [`next_echo`](WsDecoder::next_echo): for the conformance echo
    /// server, not the chat.
    pub fn echo() -> WsDecoder {
        WsDecoder {
            accept_binary: true,
            ..WsDecoder::default()
        }
    }

    /// The next event from `data`, which is advanced past what was used;
    /// `None` when `data` is used up. Messages over `max` bytes fail with
    /// [`code::TOO_BIG`]; a binary message (only an echo decoder takes one
    /// this far) fails with [`code::UNSUPPORTED`].
    pub fn next(&mut self, data: &mut &[u8], max: usize) -> Option<WsEvent<'_>> {
        let found = self.advance(data, max)?;
        if let Found::Binary = found {
            self.done = true;
            *data = &[];
        }
        Some(match found {
            Found::Text => WsEvent::Text(&self.msg),
            Found::Binary => WsEvent::Fail(code::UNSUPPORTED, "binary messages are not accepted"),
            Found::Ping => WsEvent::Ping(&self.ctrl),
            Found::Close(c) => WsEvent::Close(c),
            Found::Fail(c, why) => WsEvent::Fail(c, why),
        })
    }

    /// Like [`next`](WsDecoder::next), with binary messages as
    /// [`EchoEvent::Binary`] (a decoder made by [`WsDecoder::new`] still
    /// refuses them).
    pub fn next_echo(&mut self, data: &mut &[u8], max: usize) -> Option<EchoEvent<'_>> {
        let found = self.advance(data, max)?;
        Some(match found {
            Found::Binary => EchoEvent::Binary(&self.msg),
            Found::Text => EchoEvent::Ws(WsEvent::Text(&self.msg)),
            Found::Ping => EchoEvent::Ws(WsEvent::Ping(&self.ctrl)),
            Found::Close(c) => EchoEvent::Ws(WsEvent::Close(c)),
            Found::Fail(c, why) => EchoEvent::Ws(WsEvent::Fail(c, why)),
        })
    }

    fn fail(&mut self, data: &mut &[u8], code: u16, why: &'static str) -> Option<Found> {
        self.done = true;
        *data = &[];
        Some(Found::Fail(code, why))
    }

    fn advance(&mut self, data: &mut &[u8], max: usize) -> Option<Found> {
        if !self.in_message && self.msg.capacity() > KEEP_MSG_BYTES {
            self.msg = Vec::new();
        }
        loop {
            if self.done {
                *data = &[];
                return None;
            }
            let frame = match self.frame {
                Some(frame) => frame,
                None => match self.header(data) {
                    Ok(Some((header, len))) => match self.start(header, len, max) {
                        Ok(frame) => frame,
                        Err((code, why)) => return self.fail(data, code, why),
                    },
                    Ok(None) => return None,
                    Err(why) => return self.fail(data, code::PROTOCOL, why),
                },
            };
            let take = frame.remaining.min(data.len());
            let dest = if frame.control.is_some() {
                &mut self.ctrl
            } else {
                &mut self.msg
            };
            let start = dest.len();
            dest.extend_from_slice(&data[..take]);
            for (i, b) in dest[start..].iter_mut().enumerate() {
                *b ^= frame.mask[(frame.seen + i) % 4];
            }
            *data = &data[take..];
            let frame = Current {
                remaining: frame.remaining - take,
                seen: frame.seen + take,
                ..frame
            };
            // Fail fast: at the first byte that can never become UTF-8,
            // not at the end of the frame or message.
            if frame.control.is_none() && !self.binary && !self.check_utf8() {
                return self.fail(data, code::INVALID_DATA, "text message is not UTF-8");
            }
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return None;
            }
            self.frame = None;
            match frame.control {
                Some(Control::Ping) => return Some(Found::Ping),
                // An answer to our keepalive: reading it was the point.
                Some(Control::Pong) => continue,
                Some(_) => return self.close(data),
                None => {}
            }
            if frame.fin {
                self.in_message = false;
                if self.binary {
                    return Some(Found::Binary);
                }
                if self.utf8_checked != self.msg.len() {
                    return self.fail(data, code::INVALID_DATA, "text message ends mid-character");
                }
                return Some(Found::Text);
            }
        }
    }

    /// Checks the text bytes that arrived since the last check; false at a
    /// byte that no continuation can make valid. A character cut short at
    /// the end is left for the next bytes.
    fn check_utf8(&mut self) -> bool {
        match std::str::from_utf8(&self.msg[self.utf8_checked..]) {
            Ok(_) => {
                self.utf8_checked = self.msg.len();
                true
            }
            Err(e) => {
                self.utf8_checked += e.valid_up_to();
                e.error_len().is_none()
            }
        }
    }

    /// Parses a frame header from the bytes held and `data`; `Ok(None)`
    /// when more bytes are needed (all of `data` is then held).
    fn header(&mut self, data: &mut &[u8]) -> Result<Option<(FrameHeader, u64)>, &'static str> {
        let held = self.head_len;
        let copy = (MAX_HEAD - held).min(data.len());
        self.head[held..held + copy].copy_from_slice(&data[..copy]);
        let mut cursor = Cursor::new(&self.head[..held + copy]);
        match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => {
                let used = cursor.position() as usize - held;
                *data = &data[used..];
                self.head_len = 0;
                Ok(Some(parsed))
            }
            Ok(None) => {
                self.head_len = held + copy;
                *data = &data[copy..];
                Ok(None)
            }
            Err(_) => Err("malformed frame header"),
        }
    }

    /// Checks a new frame's header against the protocol and our limits.
    fn start(
        &mut self,
        h: FrameHeader,
        len: u64,
        max: usize,
    ) -> Result<Current, (u16, &'static str)> {
        let protocol = |why| Err((code::PROTOCOL, why));
        if h.rsv1 || h.rsv2 || h.rsv3 {
            return protocol("reserved bits set (no extension was agreed)");
        }
        let Some(mask) = h.mask else {
            return protocol("client frame not masked");
        };
        let control = match h.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return protocol("reserved opcode")
            }
            OpCode::Control(c) => {
                if !h.is_final {
                    return protocol("fragmented control frame");
                }
                if len > 125 {
                    return protocol("control frame longer than 125 bytes");
                }
                self.ctrl.clear();
                Some(c)
            }
            OpCode::Data(Data::Text | Data::Binary) if self.in_message => {
                return protocol("new message inside a fragmented one")
            }
            OpCode::Data(Data::Continue) if !self.in_message => {
                return protocol("continuation frame without a message")
            }
            OpCode::Data(Data::Binary) if !self.accept_binary => {
                return Err((code::UNSUPPORTED, "binary messages are not accepted"))
            }
            OpCode::Data(data) => {
                if data != Data::Continue {
                    self.msg.clear();
                    self.utf8_checked = 0;
                    self.binary = data == Data::Binary;
                    self.in_message = true;
                }
                if self.msg.len() as u64 + len > max as u64 {
                    return Err((code::TOO_BIG, "message over the line limit"));
                }
                None
            }
        };
        Ok(Current {
            control,
            fin: h.is_final,
            mask,
            remaining: len as usize,
            seen: 0,
        })
    }

    /// The peer's close frame has been read: check it, then stop.
    fn close(&mut self, data: &mut &[u8]) -> Option<Found> {
        let payload = std::mem::take(&mut self.ctrl);
        match payload.len() {
            0 => {
                self.done = true;
                *data = &[];
                Some(Found::Close(None))
            }
            1 => self.fail(data, code::PROTOCOL, "close frame with a 1-byte payload"),
            _ => {
                let c = u16::from_be_bytes([payload[0], payload[1]]);
                if !valid_close_code(c) {
                    return self.fail(data, code::PROTOCOL, "invalid close code");
                }
                if std::str::from_utf8(&payload[2..]).is_err() {
                    return self.fail(data, code::INVALID_DATA, "close reason is not UTF-8");
                }
                self.done = true;
                *data = &[];
                Some(Found::Close(Some(c)))
            }
        }
    }
}

/// Codes a peer may send in a close frame (RFC 6455 7.4; 1004-1006 and
/// 1015 are never sent on the wire).
fn valid_close_code(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// The header of an unmasked, final data frame for a `len`-byte payload:
/// built once per broadcast line and shared by every WebSocket recipient.
#[derive(Debug, Clone, Copy)]
pub struct FrameHead {
    bytes: [u8; 10],
    len: u8,
}

/// The name the line codec knows it by: [`FrameHead::new`] is a text
/// frame's header.
pub type TextHead = FrameHead;

impl FrameHead {
    /// The header for a text frame of `len` bytes.
    pub fn new(len: usize) -> FrameHead {
        FrameHead::with_opcode(Data::Text, len)
    }

    /// The header for a binary frame of `len` bytes.
    pub fn binary(len: usize) -> FrameHead {
        FrameHead::with_opcode(Data::Binary, len)
    }

    /// The header for a final frame of `len` bytes with data `opcode`
    /// (text or binary): a whole message in one frame.
    pub fn with_opcode(opcode: Data, len: usize) -> FrameHead {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | u8::from(OpCode::Data(opcode));
        let n = if len < 126 {
            bytes[1] = len as u8;
            2
        } else if len <= 0xffff {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        FrameHead { bytes, len: n }
    }

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A control frame from the server (payload at most 125 bytes).
fn control(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(125)];
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.push(0x80 | opcode);
    frame.push(payload.len() as u8);
    frame.extend_from_slice(payload);
    frame
}

/// A pong answering a ping with `payload`.
pub fn pong(payload: &[u8]) -> Vec<u8> {
    control(0xA, payload)
}

/// A ping (our keepalive).
pub fn ping() -> Vec<u8> {
    control(0x9, b"")
}

/// A close frame with `code` and a short `reason`.
pub fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    control(0x8, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![first];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn events(bytes: &[u8], max: usize) -> Vec<String> {
        let mut d = WsDecoder::new();
        let mut data = bytes;
        let mut out = Vec::new();
        while let Some(e) = d.next(&mut data, max) {
            out.push(match e {
                WsEvent::Text(t) => format!("text {}", String::from_utf8_lossy(t)),
                WsEvent::Ping(p) => format!("ping {}", String::from_utf8_lossy(p)),
                WsEvent::Close(c) => format!("close {c:?}"),
                WsEvent::Fail(c, _) => format!("fail {c}"),
            });
        }
        out
    }

    #[test]
    fn text_messages_whole_fragmented_and_split_byte_by_byte() {
        let mut bytes = frame(0x81, b"hello");
        bytes.extend(frame(0x01, b"wor"));
        bytes.extend(frame(0x89, b"p"));
        bytes.extend(frame(0x80, b"ld"));
        assert_eq!(events(&bytes, 100), ["text hello", "ping p", "text world"]);
        // The same bytes one at a time.
        let mut d = WsDecoder::new();
        let mut got = Vec::new();
        for b in &bytes {
            let mut data = std::slice::from_ref(b);
            while let Some(e) = d.next(&mut data, 100) {
                got.push(format!("{e:?}"));
            }
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[2].contains("[119, 111, 114, 108, 100]"), "{got:?}");
    }

    #[test]
    fn protocol_errors_get_their_close_codes() {
        let unmasked = [0x81u8, 0x02, b'h', b'i'];
        assert_eq!(events(&unmasked, 100), ["fail 1002"]);
        assert_eq!(events(&frame(0x82, b"bin"), 100), ["fail 1003"]);
        assert_eq!(events(&frame(0x81, &[0xff, 0xfe]), 100), ["fail 1007"]);
        assert_eq!(events(&frame(0x81, &[b'a'; 101]), 100), ["fail 1009"]);
        assert_eq!(events(&frame(0xC1, b"x"), 100), ["fail 1002"], "rsv1");
        assert_eq!(events(&frame(0x83, b"x"), 100), ["fail 1002"], "opcode 3");
        assert_eq!(
            events(&frame(0x09, b"x"), 100),
            ["fail 1002"],
            "fragmented ping"
        );
        assert_eq!(events(&frame(0x89, &[0; 126]), 200), ["fail 1002"]);
        assert_eq!(
            events(&frame(0x80, b"x"), 100),
            ["fail 1002"],
            "lone continuation"
        );
        let mut two = frame(0x01, b"a");
        two.extend(frame(0x81, b"b"));
        assert_eq!(events(&two, 100), ["fail 1002"], "text inside a message");
        // Fragments add up past the limit.
        let mut big = frame(0x01, &[b'a'; 60]);
        big.extend(frame(0x80, &[b'a'; 60]));
        assert_eq!(events(&big, 100), ["fail 1009"]);
    }

    #[test]
    fn close_frames_are_checked() {
        assert_eq!(events(&frame(0x88, b""), 100), ["close None"]);
        assert_eq!(
            events(&frame(0x88, &[0x03, 0xe8]), 100),
            ["close Some(1000)"]
        );
        assert_eq!(events(&frame(0x88, &[0x03]), 100), ["fail 1002"]);
        assert_eq!(
            events(&frame(0x88, &[0x03, 0xed]), 100),
            ["fail 1002"],
            "1005"
        );
        assert_eq!(
            events(&frame(0x88, &[0x03, 0xe8, 0xff]), 100),
            ["fail 1007"]
        );
        // Nothing after a close is decoded.
        let mut after = frame(0x88, b"");
        after.extend(frame(0x81, b"late"));
        assert_eq!(events(&after, 100), ["close None"]);
    }

    #[test]
    fn invalid_utf8_fails_before_the_last_fragment() {
        let bytes = frame(0x01, &[b'a', 0xff]);
        assert_eq!(events(&bytes, 100), ["fail 1007"]);
        // A code point split across fragments is fine.
        let mut split = frame(0x01, &[0xc3]);
        split.extend(frame(0x80, &[0xa9]));
        assert_eq!(events(&split, 100), ["text é"]);
    }

    /// Events from an echo decoder fed `bytes` in chunks of `chunk` bytes.
    fn echo_events(bytes: &[u8], chunk: usize, max: usize) -> Vec<String> {
        let mut d = WsDecoder::echo();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            let mut data = piece;
            while let Some(e) = d.next_echo(&mut data, max) {
                out.push(match e {
                    EchoEvent::Binary(b) => format!("binary {b:?}"),
                    EchoEvent::Ws(WsEvent::Text(t)) => {
                        format!("text {}", String::from_utf8_lossy(t))
                    }
                    EchoEvent::Ws(WsEvent::Ping(p)) => {
                        format!("ping {}", String::from_utf8_lossy(p))
                    }
                    EchoEvent::Ws(WsEvent::Close(c)) => format!("close {c:?}"),
                    EchoEvent::Ws(WsEvent::Fail(c, _)) => format!("fail {c}"),
                });
            }
        }
        out
    }

    #[test]
    fn an_echo_decoder_takes_binary_messages() {
        let mut bytes = frame(0x82, &[0xff, 0x00]);
        bytes.extend(frame(0x02, &[1]));
        bytes.extend(frame(0x89, b"p"));
        bytes.extend(frame(0x00, &[2]));
        bytes.extend(frame(0x80, &[3]));
        bytes.extend(frame(0x81, b"text"));
        bytes.extend(frame(0x82, b""));
        let want = [
            "binary [255, 0]",
            "ping p",
            "binary [1, 2, 3]",
            "text text",
            "binary []",
        ];
        for chunk in [1, 2, 5, bytes.len()] {
            assert_eq!(echo_events(&bytes, chunk, 100), want, "chunks of {chunk}");
        }
        // Binary does not open a way around the rules for text.
        let mut mixed = frame(0x01, b"a");
        mixed.extend(frame(0x82, b"b"));
        assert_eq!(echo_events(&mixed, 100, 100), ["fail 1002"]);
        let mut utf8 = frame(0x02, &[0xff]);
        utf8.extend(frame(0x80, &[0xfe]));
        utf8.extend(frame(0x81, &[0xff]));
        assert_eq!(
            echo_events(&utf8, 100, 100),
            ["binary [255, 254]", "fail 1007"]
        );
        assert_eq!(
            echo_events(&frame(0x82, &[0; 101]), 100, 100),
            ["fail 1009"]
        );
        // `next` on an echo decoder still refuses binary, once whole.
        let mut d = WsDecoder::echo();
        let bin = frame(0x82, b"x");
        let mut data = &bin[..];
        assert!(matches!(
            d.next(&mut data, 100),
            Some(WsEvent::Fail(1003, _))
        ));
        assert!(d.next(&mut data, 100).is_none());
    }

    #[test]
    fn invalid_utf8_fails_at_the_first_bad_byte_inside_a_frame() {
        // The frame announces 20 bytes; the third is bad. The failure comes
        // with the bytes that show it, before the rest of the frame.
        let mut payload = b"ab".to_vec();
        payload.push(0xc0);
        payload.extend_from_slice(&[b'c'; 17]);
        let bytes = frame(0x81, &payload);
        let head = bytes.len() - payload.len();
        let mut d = WsDecoder::new();
        let mut data = &bytes[..head + 2];
        assert!(d.next(&mut data, 100).is_none(), "valid so far");
        let mut data = &bytes[head + 2..head + 3];
        assert!(matches!(
            d.next(&mut data, 100),
            Some(WsEvent::Fail(1007, _))
        ));
        // Surrogates and code points past U+10FFFF fail at once too.
        // Only their first two bytes arrive.
        for bad in [&[0xed, 0xa0, 0x80][..], &[0xf4, 0x90, 0x80, 0x80]] {
            let mut bytes = frame(0x01, bad);
            bytes.truncate(bytes.len() - bad.len() + 2);
            assert_eq!(events(&bytes, 100), ["fail 1007"], "{bad:x?}");
        }
        // A character cut short by the end of the message.
        assert_eq!(
            events(&frame(0x81, &[b'a', 0xe2, 0x82]), 100),
            ["fail 1007"]
        );
        // A character split across fragments and reads is fine.
        let mut split = frame(0x01, &[b'x', 0xe2]);
        split.extend(frame(0x80, &[0x82, 0xac]));
        for chunk in [1, 3, split.len()] {
            assert_eq!(
                echo_events(&split, chunk, 100),
                ["text x€"],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn server_frames() {
        assert_eq!(TextHead::new(5).as_bytes(), [0x81, 5]);
        assert_eq!(TextHead::new(300).as_bytes(), [0x81, 126, 1, 44]);
        assert_eq!(TextHead::new(70_000).as_bytes()[..2], [0x81, 127]);
        assert_eq!(FrameHead::binary(5).as_bytes(), [0x82, 5]);
        assert_eq!(
            FrameHead::binary(70_000).as_bytes(),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
        assert_eq!(
            FrameHead::with_opcode(Data::Text, 65_535).as_bytes(),
            [0x81, 126, 0xff, 0xff]
        );
        assert_eq!(close(1000, "bye"), [0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(pong(b"x"), [0x8A, 1, b'x']);
    }
}
