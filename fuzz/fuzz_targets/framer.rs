//! Fuzzes the line framer (`chatroom::framing::LineBuf`) against a reference
//! model: for any byte stream, any line limit and any way of splitting the
//! stream into reads, the framer yields exactly the model's frames, reports an
//! overlong line as soon as the limit is crossed, and never buffers more than
//! `max + 1` bytes.
#![no_main]

use chatroom::framing::LineBuf;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/framing_model/mod.rs"]
mod framing_model;

use framing_model::{model, own, Owned};

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
        // Over max + 1 bytes, or max + 1 whose last is not the `\r` of `\r\n`.
        let crossed = tail > max + 1 || (tail == max + 1 && stream[..pos].last() != Some(&b'\r'));
        let due = complete + usize::from(crossed);
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
