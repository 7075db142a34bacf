//! The message payload: who sent it, its sequence number and when it was
//! (meant to be) sent, as fixed-width ASCII so a sender patches digits into a
//! pre-encoded [`Template`] instead of formatting a message. Pure: no I/O, no
//! clock, no idea which server the bytes go to (the wire module wraps them).

use std::fmt;

use crate::ws::apply_mask;

/// First byte of every payload. The tutorial server relays raw chunks with
/// unframed notices glued in front, so a receiver finds a payload by its last
/// magic byte; names and notices never contain it.
pub const MAGIC: u8 = b'~';
const SENDER_DIGITS: usize = 6;
const SEQ_DIGITS: usize = 10;
const TS_DIGITS: usize = 15;
const SENDER_AT: usize = 1;
const SEQ_AT: usize = SENDER_AT + SENDER_DIGITS + 1;
const TS_AT: usize = SEQ_AT + SEQ_DIGITS + 1;
/// `~SSSSSS.QQQQQQQQQQ.TTTTTTTTTTTTTTT.`: the smallest payload; the rest is filler.
pub const HEADER_BYTES: usize = TS_AT + TS_DIGITS + 1;
/// The sender number of a probe: a message that only shows a receiver is
/// reachable (the tutorial server confirms nothing else) and is never counted.
pub const PROBE_SENDER: u32 = 999_999;
/// The largest send time that fits, in nanoseconds since the run began (11 days).
pub const MAX_SENT_NS: u64 = 999_999_999_999_999;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sender in this run.
    pub sender: u32,
    /// The sender's sequence number, from 0, one per message.
    pub seq: u32,
    /// When it was sent, or for open-loop runs when it was *meant* to be sent
    /// (so a late send is charged to latency: no coordinated omission).
    pub sent_ns: u64,
}

/// Why received bytes are not one of our payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than the header or not the length this run sends.
    Length,
    /// The header is not magic, digits and dots where they belong.
    Header,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadError::Length => "payload has the wrong length",
            PayloadError::Header => "payload header is malformed",
        })
    }
}

/// Writes `v` as exactly `out.len()` decimal digits, zero-padded (the caller
/// guarantees it fits: senders, sequences and times are bounded above).
fn put_digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Reads `N` decimal digits; `None` if any byte is not a digit. Fixed
/// width and branch-free: every delivery is decoded, so this is hot.
fn get_digits<const N: usize>(field: &[u8]) -> Option<u64> {
    let field: &[u8; N] = field.try_into().ok()?;
    let (mut v, mut bad) = (0u64, false);
    for &b in field {
        let d = b.wrapping_sub(b'0');
        bad |= d > 9;
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    (!bad).then_some(v)
}

/// Parses a payload of exactly `len` bytes (`None`: any length is accepted).
pub fn decode(payload: &[u8], len: Option<usize>) -> Result<Stamp, PayloadError> {
    if payload.len() < HEADER_BYTES || len.is_some_and(|l| l != payload.len()) {
        return Err(PayloadError::Length);
    }
    let h = &payload[..HEADER_BYTES];
    if h[0] != MAGIC || h[SEQ_AT - 1] != b'.' || h[TS_AT - 1] != b'.' || h[HEADER_BYTES - 1] != b'.'
    {
        return Err(PayloadError::Header);
    }
    let sender = get_digits::<SENDER_DIGITS>(&h[SENDER_AT..SEQ_AT - 1]);
    let seq = get_digits::<SEQ_DIGITS>(&h[SEQ_AT..TS_AT - 1]).and_then(|q| u32::try_from(q).ok());
    let sent_ns = get_digits::<TS_DIGITS>(&h[TS_AT..HEADER_BYTES - 1]);
    match (sender, seq, sent_ns) {
        (Some(sender), Some(seq), Some(sent_ns)) => Ok(Stamp {
            sender: sender as u32,
            seq,
            sent_ns,
        }),
        _ => Err(PayloadError::Header),
    }
}

/// One sender's message, fully encoded for the wire once; each send patches
/// the sequence number and time in place, so sending costs no formatting and
/// no allocation.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole wire message: the target's framing around the payload.
    bytes: Vec<u8>,
    /// Where the payload starts in `bytes`.
    at: usize,
    /// The WebSocket mask the payload is sent under (all zero: none, since
    /// XOR with zero changes nothing); patched digits are masked too.
    mask: [u8; 4],
}

impl Template {
    /// `prefix`, a payload of `payload_len` bytes (at least [`HEADER_BYTES`])
    /// from `sender`, then `suffix`.
    pub fn new(prefix: &[u8], payload_len: usize, suffix: &[u8], sender: u32) -> Template {
        Template::masked(prefix, payload_len, suffix, sender, [0; 4])
    }

    /// As [`new`](Self::new), the payload masked with `mask` as a
    /// WebSocket client's frame payload is (`prefix` is the frame header).
    pub fn masked(
        prefix: &[u8],
        payload_len: usize,
        suffix: &[u8],
        sender: u32,
        mask: [u8; 4],
    ) -> Template {
        assert!(
            payload_len >= HEADER_BYTES,
            "payload shorter than its header"
        );
        assert!(sender <= PROBE_SENDER, "sender number does not fit");
        let mut bytes = Vec::with_capacity(prefix.len() + payload_len + suffix.len());
        bytes.extend_from_slice(prefix);
        let at = bytes.len();
        bytes.resize(at + payload_len, b'x');
        bytes[at] = MAGIC;
        bytes[at + SEQ_AT - 1] = b'.';
        bytes[at + TS_AT - 1] = b'.';
        bytes[at + HEADER_BYTES - 1] = b'.';
        put_digits(
            &mut bytes[at + SENDER_AT..at + SENDER_AT + SENDER_DIGITS],
            sender.into(),
        );
        apply_mask(&mut bytes[at..at + payload_len], mask, 0);
        bytes.extend_from_slice(suffix);
        Template { bytes, at, mask }
    }

    /// The wire bytes for message `seq` sent at `sent_ns`.
    pub fn stamp(&mut self, seq: u32, sent_ns: u64) -> &[u8] {
        let at = self.at;
        let seq_range = at + SEQ_AT..at + SEQ_AT + SEQ_DIGITS;
        put_digits(&mut self.bytes[seq_range.clone()], seq.into());
        let ts_range = at + TS_AT..at + TS_AT + TS_DIGITS;
        put_digits(&mut self.bytes[ts_range.clone()], sent_ns.min(MAX_SENT_NS));
        if self.mask != [0; 4] {
            apply_mask(&mut self.bytes[seq_range], self.mask, SEQ_AT);
            apply_mask(&mut self.bytes[ts_range], self.mask, TS_AT);
        }
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cases: &[(u32, u32, u64, usize)] = &[
            (0, 0, 0, HEADER_BYTES),
            (7, 1, 123_456_789, 63),
            (PROBE_SENDER, u32::MAX, MAX_SENT_NS, 200),
        ];
        for &(sender, seq, sent_ns, len) in cases {
            let mut t = Template::new(b"pre ", len, b"\n", sender);
            let wire = t.stamp(seq, sent_ns).to_vec();
            assert_eq!(wire.len(), 4 + len + 1);
            let got = decode(&wire[4..4 + len], Some(len));
            assert_eq!(
                got,
                Ok(Stamp {
                    sender,
                    seq,
                    sent_ns
                }),
                "{sender} {seq} {sent_ns}"
            );
        }
    }

    #[test]
    fn masked_payloads_unmask_to_the_stamp() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut t = Template::masked(b"hd", 50, b"", 4, mask);
        t.stamp(999_999, 888_888_888);
        let mut wire = t.stamp(12, 345).to_vec();
        for (i, b) in wire[2..].iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        assert_eq!(&wire[..2], b"hd");
        assert_eq!(
            decode(&wire[2..], Some(50)),
            Ok(Stamp {
                sender: 4,
                seq: 12,
                sent_ns: 345
            })
        );
    }

    #[test]
    fn restamping_overwrites_every_digit() {
        let mut t = Template::new(b"", 40, b"", 3);
        t.stamp(999_999, 888_888_888);
        let wire = t.stamp(1, 2).to_vec();
        assert_eq!(
            decode(&wire, None),
            Ok(Stamp {
                sender: 3,
                seq: 1,
                sent_ns: 2
            })
        );
    }

    #[test]
    fn rejects() {
        let good = Template::new(b"", 40, b"", 1).stamp(5, 6).to_vec();
        let mut bad_digit = good.clone();
        bad_digit[SEQ_AT + 2] = b'a';
        let mut bad_magic = good.clone();
        bad_magic[0] = b'x';
        let mut bad_dot = good.clone();
        bad_dot[TS_AT - 1] = b'-';
        let seq_too_big = {
            let mut v = good.clone();
            v[SEQ_AT..SEQ_AT + SEQ_DIGITS].copy_from_slice(b"9999999999");
            v
        };
        let cases: &[(&[u8], Option<usize>, PayloadError)] = &[
            (b"", None, PayloadError::Length),
            (&good[..HEADER_BYTES - 1], None, PayloadError::Length),
            (&good, Some(41), PayloadError::Length),
            (&bad_digit, None, PayloadError::Header),
            (&bad_magic, None, PayloadError::Header),
            (&bad_dot, None, PayloadError::Header),
            (&seq_too_big, None, PayloadError::Header),
        ];
        for (input, len, want) in cases {
            assert_eq!(
                decode(input, *len),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
