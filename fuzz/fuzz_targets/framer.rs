//! Fuzzes the line framer (`chatroom::framing::LineBuf`) against a reference
//! model: for any byte stream, any line limit and any way of splitting the
//! stream into reads, the framer yields exactly the model's frames, reports an
//! overlong line as soon as the limit is crossed, and never buffers more than
//! `max + 1` bytes.
#![no_main]

use chatroom::framing::{Frame, LineBuf};
use libfuzzer_sys::fuzz_target;

/// A frame that owns its bytes, so frames from different runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Line(Vec<u8>),
    TooLong,
}

fn own(f: Frame<'_>) -> Owned {
    match f {
        Frame::Line(l) => Owned::Line(l.to_vec()),
        Frame::TooLong => Owned::TooLong,
    }
}

/// The specification, with no streaming: split on `\n`, drop one `\r` before
/// it, and a line longer than `max` is one `TooLong`. A final unterminated line
/// is a line too.
fn model(stream: &[u8], max: usize) -> Vec<Owned> {
    let mut out = Vec::new();
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let last = parts.pop().unwrap_or(&[]);
    for p in parts {
        out.push(classify(p, max));
    }
    if !last.is_empty() {
        out.push(classify(last, max));
    }
    out
}

fn classify(line: &[u8], max: usize) -> Owned {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max {
        Owned::TooLong
    } else {
        Owned::Line(line.to_vec())
    }
}

/// Pushes `stream` cut into chunks of the given lengths (cycled; a zero
/// length is an empty read), checking the invariants after every push.
fn run(stream: &[u8], max: usize, lens: &[usize], want: &[Owned]) -> Vec<Owned> {
    let mut buf = LineBuf::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    let (mut complete, mut tail) = (0, 0);
    // Only empty reads would never finish the stream: then use one read.
    let lens = if lens.iter().all(|&n| n == 0) {
        &[][..]
    } else {
        lens
    };
    while pos < stream.len() {
        let n = if lens.is_empty() {
            stream.len()
        } else {
            lens[i % lens.len()]
        };
        i += 1;
        let end = (pos + n).min(stream.len());
        let chunk = &stream[pos..end];
        let before = out.len();
        buf.push(chunk, max, &mut |f| out.push(own(f)));
        pos = end;
        assert!(
            buf.buffered_len() <= max + 1,
            "buffered {} > max + 1 = {}",
            buf.buffered_len(),
            max + 1
        );
        // Frames due now: one per complete line, plus one `TooLong` if the
        // unfinished tail has already crossed the limit (the framer must not
        // wait for a newline that may never come).
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                complete += chunk.iter().filter(|&&b| b == b'\n').count();
                tail = chunk.len() - i - 1;
            }
            None => tail += chunk.len(),
        }
        let due = complete + usize::from(tail > max + 1);
        assert_eq!(out.len(), due, "frames after {pos} bytes");
        assert_eq!(out[before..], want[before..due], "frames after {pos} bytes");
    }
    buf.finish(max, &mut |f| out.push(own(f)));
    assert!(
        buf.is_idle() && buf.buffered_len() == 0,
        "framer not reset by finish"
    );
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max % 64);
    let Some((&k, rest)) = rest.split_first() else {
        return;
    };
    let k = usize::from(k % 8).min(rest.len());
    let (lens, stream) = rest.split_at(k);
    let lens: Vec<usize> = lens.iter().map(|&b| usize::from(b % 24)).collect();

    let want = model(stream, max);
    assert_eq!(run(stream, max, &[], &want), want, "one read");
    assert_eq!(run(stream, max, &lens, &want), want, "split {lens:?}");
    assert_eq!(run(stream, max, &[1], &want), want, "byte by byte");
});
