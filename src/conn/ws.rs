//! WebSocket framing (RFC 6455) for one connection, server side: client
//! frames in (masked, text only, fragments reassembled within the line
//! limit, control frames answered), server frames out (unmasked, one text
//! frame per protocol line). Pure byte work: tungstenite parses and formats
//! frame headers; this file keeps the state between reads and decides what
//! is a protocol error. Knows nothing of sockets, lines' meaning or the
//! chat; the handshake lives in `crate::web`.

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

/// Like [`WsEvent`] without borrowing the decoder, so the decode loop can
/// return and then lend the buffer.
#[derive(Debug, Clone, Copy)]
enum Found {
    Text,
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
    /// The text message being reassembled (or just yielded).
    msg: Vec<u8>,
    /// A fragmented message is open: continuations are expected.
    in_message: bool,
    /// The control frame payload being read (at most 125 bytes).
    ctrl: Vec<u8>,
    /// A close or failure was found: the rest is discarded.
    done: bool,
}

impl WsDecoder {
    /// A decoder expecting the first frame.
    pub fn new() -> WsDecoder {
        WsDecoder::default()
    }

    /// The next event from `data`, which is advanced past what was used;
    /// `None` when `data` is used up. Messages over `max` bytes fail with
    /// [`code::TOO_BIG`].
    pub fn next(&mut self, data: &mut &[u8], max: usize) -> Option<WsEvent<'_>> {
        let found = self.advance(data, max)?;
        Some(match found {
            Found::Text => WsEvent::Text(&self.msg),
            Found::Ping => WsEvent::Ping(&self.ctrl),
            Found::Close(c) => WsEvent::Close(c),
            Found::Fail(c, why) => WsEvent::Fail(c, why),
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
                if std::str::from_utf8(&self.msg).is_err() {
                    return self.fail(data, code::INVALID_DATA, "text message is not UTF-8");
                }
                return Some(Found::Text);
            }
            // Fail fast on bytes that can never become UTF-8, without
            // waiting for the last fragment.
            if let Err(e) = std::str::from_utf8(&self.msg) {
                if e.error_len().is_some() {
                    return self.fail(data, code::INVALID_DATA, "text message is not UTF-8");
                }
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
            OpCode::Data(Data::Binary) if !self.in_message => {
                return Err((code::UNSUPPORTED, "binary messages are not accepted"))
            }
            OpCode::Data(Data::Text | Data::Binary) if self.in_message => {
                return protocol("new message inside a fragmented one")
            }
            OpCode::Data(Data::Continue) if !self.in_message => {
                return protocol("continuation frame without a message")
            }
            OpCode::Data(data) => {
                if data == Data::Text {
                    self.msg.clear();
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

/// The header of an unmasked, final text frame for a `len`-byte payload:
/// built once per broadcast line and shared by every WebSocket recipient.
#[derive(Debug, Clone, Copy)]
pub struct TextHead {
    bytes: [u8; 10],
    len: u8,
}

impl TextHead {
    /// The header for a text frame of `len` bytes.
    pub fn new(len: usize) -> TextHead {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x81;
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
        TextHead { bytes, len: n }
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

    #[test]
    fn server_frames() {
        assert_eq!(TextHead::new(5).as_bytes(), [0x81, 5]);
        assert_eq!(TextHead::new(300).as_bytes(), [0x81, 126, 1, 44]);
        assert_eq!(TextHead::new(70_000).as_bytes()[..2], [0x81, 127]);
        assert_eq!(close(1000, "bye"), [0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(pong(b"x"), [0x8A, 1, b'x']);
    }
}
