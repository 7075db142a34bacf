//! WebSocket client framing for the load tester (RFC 6455): the upgrade
//! request (`GET /ws`), the check of the server's `101` answer, masked
//! client frames out, and a [`Decoder`] for the server's unmasked frames
//! (one text frame per protocol line). Pure: no sockets, no clock;
//! tungstenite formats and parses frame headers and computes the accept key.

use std::io::Cursor;

use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The server's answer head may not be longer than this.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A server message (one line) may not be longer than this.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The upgrade request for `GET /ws` on `host` (as sent in `Host:`).
pub fn upgrade_request(host: &str, key: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A `Sec-WebSocket-Key`: 16 random bytes, base64 (tungstenite's).
pub use tungstenite::handshake::client::generate_key as key;

/// Checks the server's answer to the upgrade request made with `key`:
/// `Ok(None)` while its head is incomplete, `Ok(Some(n))` once the `101`
/// with the right accept key is complete in its first `n` bytes (frames
/// may follow), `Err` with the reason otherwise.
pub fn check_answer(head: &[u8], key: &str) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(head) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if head.len() > MAX_HEAD_BYTES => {
            return Err("WebSocket upgrade: the answer's head is too long".into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("WebSocket upgrade: bad answer: {e}")),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        let reason = resp.reason.unwrap_or("");
        return Err(format!("WebSocket upgrade refused: {code} {reason}"));
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let want = derive_accept_key(key.as_bytes());
    match header("Sec-WebSocket-Accept") {
        Some(got) if got == want => Ok(Some(n)),
        Some(got) => Err(format!(
            "WebSocket upgrade: wrong Sec-WebSocket-Accept {got:?} (want {want:?})"
        )),
        None => Err("WebSocket upgrade: no Sec-WebSocket-Accept".into()),
    }
}

/// Appends one client frame: `payload` masked with `mask`.
pub fn frame(opcode: OpCode, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    header(opcode, payload.len(), mask, out);
    let at = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[at..], mask, 0);
}

/// Appends the header of a final, masked client frame of `len` bytes.
pub fn header(opcode: OpCode, len: usize, mask: [u8; 4], out: &mut Vec<u8>) {
    let h = FrameHeader {
        is_final: true,
        opcode,
        mask: Some(mask),
        ..FrameHeader::default()
    };
    h.format(len as u64, out)
        .expect("formatting into a Vec cannot fail");
}

/// A text frame's opcode.
pub const TEXT: OpCode = OpCode::Data(Data::Text);

/// XORs `buf` with `mask`, `buf[0]` being byte `offset` of the payload.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[(offset + i) % 4];
    }
}

/// What the server sent, frame by frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// One whole text message: one protocol line.
    Text(&'a [u8]),
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// The server's close frame, with its code if it gave one.
    Close(Option<u16>),
}

/// Turns the server's bytes into messages; keeps an unfinished frame and
/// an unfinished fragmented message between reads.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of a frame not complete yet.
    tail: Vec<u8>,
    /// The fragments so far of a text message split over several frames.
    message: Vec<u8>,
    /// A fragmented text message is open: continuation frames belong to it.
    in_message: bool,
    /// A close frame was seen: nothing after it is decoded.
    closed: bool,
}

impl Decoder {
    /// Decodes `bytes` (what follows what was fed before), calling `on`
    /// for each message; `Err` if the server broke the protocol.
    pub fn feed(&mut self, bytes: &[u8], mut on: impl FnMut(Incoming<'_>)) -> Result<(), String> {
        if self.tail.is_empty() {
            let used = self.frames(bytes, &mut on)?;
            self.tail.extend_from_slice(&bytes[used..]);
        } else {
            let mut data = std::mem::take(&mut self.tail);
            data.extend_from_slice(bytes);
            let used = self.frames(&data, &mut on)?;
            data.drain(..used);
            self.tail = data;
        }
        Ok(())
    }

    /// Decodes every complete frame at the start of `data`; returns the
    /// bytes used.
    fn frames(&mut self, data: &[u8], on: &mut impl FnMut(Incoming<'_>)) -> Result<usize, String> {
        let mut at = 0;
        while !self.closed {
            let mut cur = Cursor::new(&data[at..]);
            let (h, len) = match FrameHeader::parse(&mut cur) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => return Err(format!("WebSocket: {e}")),
            };
            if h.mask.is_some() {
                return Err("WebSocket: the server masked a frame".into());
            }
            if h.rsv1 || h.rsv2 || h.rsv3 {
                return Err("WebSocket: reserved bits set".into());
            }
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_MESSAGE_BYTES)
                .ok_or_else(|| format!("WebSocket: a {len}-byte frame"))?;
            let start = at + cur.position() as usize;
            if data.len() - start < len {
                break;
            }
            let payload = &data[start..start + len];
            at = start + len;
            match h.opcode {
                OpCode::Data(Data::Text) if self.in_message => {
                    return Err("WebSocket: a new message inside a fragmented one".into())
                }
                OpCode::Data(Data::Text) if h.is_final => on(Incoming::Text(payload)),
                OpCode::Data(Data::Text) => {
                    self.in_message = true;
                    self.message.clear();
                    self.message.extend_from_slice(payload);
                }
                OpCode::Data(Data::Continue) if self.in_message => {
                    if self.message.len() + payload.len() > MAX_MESSAGE_BYTES {
                        return Err("WebSocket: message too long".into());
                    }
                    self.message.extend_from_slice(payload);
                    if h.is_final {
                        self.in_message = false;
                        on(Incoming::Text(&self.message));
                    }
                }
                OpCode::Data(Data::Continue) => {
                    return Err("WebSocket: a continuation frame outside a message".into())
                }
                OpCode::Data(_) => return Err("WebSocket: a binary or unknown data frame".into()),
                OpCode::Control(Control::Ping) => on(Incoming::Ping(payload)),
                OpCode::Control(Control::Pong) => {}
                OpCode::Control(Control::Close) => {
                    self.closed = true;
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    on(Incoming::Close(code));
                }
                OpCode::Control(_) => return Err("WebSocket: an unknown control frame".into()),
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let cases: &[(&str, Result<Option<usize>, &str>)] = &[
            (ok, Ok(Some(ok.len()))),
            (&ok[..40], Ok(None)),
            (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                Err("WebSocket upgrade refused: 503 Service Unavailable"),
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n",
                Err("WebSocket upgrade: wrong Sec-WebSocket-Accept \"x\" \
                     (want \"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\")"),
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                Err("WebSocket upgrade: no Sec-WebSocket-Accept"),
            ),
        ];
        for (answer, want) in cases {
            let got = check_answer(answer.as_bytes(), key);
            assert_eq!(got, want.map_err(String::from), "{answer:?}");
        }
    }

    #[test]
    fn client_frames_are_masked() {
        let mask = [1, 2, 3, 4];
        let mut out = Vec::new();
        frame(TEXT, b"hi!", mask, &mut out);
        assert_eq!(out, [0x81, 0x83, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2, b'!' ^ 3]);
        let mut long = Vec::new();
        frame(TEXT, &[0; 200], mask, &mut long);
        assert_eq!(&long[..4], [0x81, 0x80 | 126, 0, 200]);
        assert_eq!(long.len(), 4 + 4 + 200);
    }

    /// Server frames, as bytes: FIN+opcode, then an unmasked length.
    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    }

    fn decode(chunks: &[Vec<u8>]) -> (Vec<String>, Result<(), String>) {
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for c in chunks {
            let r = d.feed(c, |m| {
                got.push(match m {
                    Incoming::Text(t) => format!("text {}", String::from_utf8_lossy(t)),
                    Incoming::Ping(p) => format!("ping {}", String::from_utf8_lossy(p)),
                    Incoming::Close(c) => format!("close {c:?}"),
                })
            });
            if r.is_err() {
                return (got, r);
            }
        }
        (got, Ok(()))
    }

    #[test]
    fn decodes_server_frames() {
        let a = server_frame(0x81, b"* lt1 joined lobby");
        let b = server_frame(0x81, b"lt1: ~x");
        let both: Vec<u8> = [a.clone(), b.clone()].concat();
        let split: Vec<Vec<u8>> = both.iter().map(|&x| vec![x]).collect();
        type Case = (Vec<Vec<u8>>, Vec<&'static str>, Result<(), &'static str>);
        let cases: Vec<Case> = vec![
            // two frames in one read, or byte by byte: the same lines
            (
                vec![both.clone()],
                vec!["text * lt1 joined lobby", "text lt1: ~x"],
                Ok(()),
            ),
            (
                split,
                vec!["text * lt1 joined lobby", "text lt1: ~x"],
                Ok(()),
            ),
            // a fragmented message, with a ping between its fragments
            (
                vec![
                    server_frame(0x01, b"lt1: "),
                    server_frame(0x89, b"p"),
                    server_frame(0x80, b"~y"),
                ],
                vec!["ping p", "text lt1: ~y"],
                Ok(()),
            ),
            // a close ends decoding
            (
                vec![[server_frame(0x88, &[3, 233]), a.clone()].concat()],
                vec!["close Some(1001)"],
                Ok(()),
            ),
            (
                vec![vec![0x81, 0x83, 1, 2, 3, 4, 5, 6, 7]],
                vec![],
                Err("WebSocket: the server masked a frame"),
            ),
            (
                vec![server_frame(0x82, b"bin")],
                vec![],
                Err("WebSocket: a binary or unknown data frame"),
            ),
            (
                vec![server_frame(0x80, b"x")],
                vec![],
                Err("WebSocket: a continuation frame outside a message"),
            ),
        ];
        for (chunks, want, want_r) in cases {
            let (got, r) = decode(&chunks);
            assert_eq!(got, want, "{chunks:?}");
            assert_eq!(r, want_r.map_err(String::from), "{chunks:?}");
        }
    }
}
