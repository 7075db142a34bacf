//! The framing rules of docs/PROTOCOL.md as a reference model with no
//! streaming at all, shared by the property tests (`tests/properties.rs`) and
//! the framer fuzz target (`fuzz/fuzz_targets/framer.rs`), so both check
//! `chatroom::framing::LineBuf` against the same specification.

use chatroom::framing::Frame;

/// A frame that owns its bytes, so frames from different runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    Line(Vec<u8>),
    TooLong,
}

/// Copies a borrowed frame.
pub fn own(f: Frame<'_>) -> Owned {
    match f {
        Frame::Line(l) => Owned::Line(l.to_vec()),
        Frame::TooLong => Owned::TooLong,
    }
}

/// Split on `\n`, drop one `\r` before it, a line over `max` bytes is one
/// `TooLong`, and a final line without `\n` is still a line.
pub fn model(stream: &[u8], max: usize) -> Vec<Owned> {
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let last = parts.pop().unwrap_or(&[]);
    if !last.is_empty() {
        parts.push(last);
    }
    parts
        .into_iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > max {
                Owned::TooLong
            } else {
                Owned::Line(line.to_vec())
            }
        })
        .collect()
}
