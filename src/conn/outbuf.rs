//! A connection's unsent output as a queue of chunks (Redis' reply list), so
//! the memory it holds follows what is unsent: at most the unsent bytes plus
//! one partly filled chunk, never a doubled `Vec` behind a written prefix.
//! Pure bookkeeping over any `Write`; knows nothing of sockets or codecs.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Lines are packed into chunks of up to this many bytes; a longer line gets
/// a chunk of its own.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Most chunks handed to one `writev`: 64 × 16 KiB covers any write budget.
const MAX_IOVECS: usize = 64;

/// The outcome of writing queued output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was written.
    All,
    /// The writer is full (`WouldBlock`); the rest waits for a writable event.
    Blocked,
    /// The byte budget for this turn ran out before the writer filled.
    Budget,
}

/// Unsent output.
#[derive(Debug, Default)]
pub struct OutBuf {
    /// Chunks in order; `chunks[0][sent..]` is the oldest unsent byte.
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    sent: usize,
    /// Unsent bytes in all chunks.
    len: usize,
}

impl OutBuf {
    /// An empty buffer; allocates nothing until something is queued.
    pub fn new() -> OutBuf {
        OutBuf::default()
    }

    /// Unsent bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory held for output (capacity, not content).
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// Appends `parts`, in order. Chunks are filled to `CHUNK_BYTES` (a line
    /// may straddle two), so every chunk but the first and last is full.
    pub fn push(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.push_bytes(part);
        }
    }

    fn push_bytes(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            if self.chunks.back().is_none_or(|c| c.len() >= CHUNK_BYTES) {
                self.chunks.push_back(Vec::new());
            }
            let Some(last) = self.chunks.back_mut() else {
                return;
            };
            let take = (CHUNK_BYTES - last.len()).min(bytes.len());
            let need = last.len() + take;
            if last.capacity() < need {
                // Grow by doubling (a busy client does not reallocate per
                // line), but never past one chunk.
                let target = (last.capacity() * 2).clamp(need, CHUNK_BYTES);
                last.reserve_exact(target - last.len());
            }
            last.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    /// The oldest unsent bytes (the rest of the front chunk).
    pub fn front(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| &c[self.sent..])
    }

    /// Marks `n` bytes as written.
    pub fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            self.sent = 0;
            if self.chunks.len() == 1 && front.capacity() <= CHUNK_BYTES {
                // Keep the last chunk while the client is busy, so a client
                // that gets a line every turn does not reallocate every turn;
                // the idle sweep releases it.
                if let Some(c) = self.chunks.front_mut() {
                    c.clear();
                }
            } else {
                self.chunks.pop_front();
            }
        }
    }

    /// Frees all memory if nothing is queued (the idle sweep calls this).
    pub fn release_if_idle(&mut self) {
        if self.len == 0 && (!self.chunks.is_empty() || self.chunks.capacity() > 0) {
            self.chunks = VecDeque::new();
            self.sent = 0;
        }
    }

    /// Writes queued bytes to `w` until all are written, `w` would block,
    /// or `budget` bytes went out. One `writev` covers many chunks.
    pub fn write_to(&mut self, w: &mut impl Write, budget: usize) -> io::Result<Flushed> {
        let mut written = 0;
        while self.len > 0 {
            if written >= budget {
                return Ok(Flushed::Budget);
            }
            let mut room = budget - written;
            let mut slices: [IoSlice<'_>; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (i, chunk) in self.chunks.iter().enumerate() {
                if count == MAX_IOVECS || room == 0 {
                    break;
                }
                let start = if i == 0 { self.sent } else { 0 };
                let part = &chunk[start..];
                let take = part.len().min(room);
                if take == 0 {
                    continue;
                }
                slices[count] = IoSlice::new(&part[..take]);
                count += 1;
                room -= take;
            }
            match w.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.consume(n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Flushed::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `cap` bytes per call, then blocks after
    /// `total` bytes.
    struct Trickle {
        got: Vec<u8>,
        cap: usize,
        total: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() >= self.total {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.cap).min(self.total - self.got.len());
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(i: usize) -> Vec<u8> {
        format!("{i:06} {}\n", "x".repeat(i % 5000)).into_bytes()
    }

    #[test]
    fn bytes_come_out_in_order_across_chunks_and_partial_writes() {
        let mut out = OutBuf::new();
        let mut want = Vec::new();
        for i in 0..300 {
            let l = line(i);
            out.push(&[&l[..3], &l[3..]]);
            want.extend_from_slice(&l);
        }
        assert_eq!(out.len(), want.len());
        let mut w = Trickle {
            got: Vec::new(),
            cap: 7777,
            total: want.len() / 2,
        };
        assert_eq!(out.write_to(&mut w, usize::MAX).unwrap(), Flushed::Blocked);
        assert_eq!(out.len(), want.len() - want.len() / 2);
        w.total = usize::MAX;
        assert_eq!(out.write_to(&mut w, 10_000).unwrap(), Flushed::Budget);
        assert_eq!(out.write_to(&mut w, usize::MAX).unwrap(), Flushed::All);
        assert_eq!(w.got, want);
        assert!(out.is_empty());
    }

    #[test]
    fn memory_follows_unsent_bytes() {
        let mut out = OutBuf::new();
        let l = vec![b'y'; 100];
        let mut w = Trickle {
            got: Vec::new(),
            cap: usize::MAX,
            total: usize::MAX,
        };
        // A client that keeps reading a little: memory never exceeds what
        // is unsent plus one chunk (a Vec with a written prefix would hold
        // up to twice the unsent bytes).
        for round in 0..2000 {
            out.push(&[&l]);
            if round % 2 == 0 {
                w.total = w.got.len() + 150;
                let _ = out.write_to(&mut w, usize::MAX).unwrap();
            }
            assert!(
                out.capacity() <= out.len() + 2 * CHUNK_BYTES,
                "capacity {} for {} unsent",
                out.capacity(),
                out.len()
            );
        }
        w.total = usize::MAX;
        assert_eq!(out.write_to(&mut w, usize::MAX).unwrap(), Flushed::All);
        assert!(out.capacity() <= CHUNK_BYTES);
        out.release_if_idle();
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn long_lines_fill_chunks_without_slack() {
        let mut out = OutBuf::new();
        out.push(&[b"short\n"]);
        let long = vec![b'z'; CHUNK_BYTES * 3];
        out.push(&[&long]);
        out.push(&[b"after\n"]);
        assert_eq!(out.len(), 6 + long.len() + 6);
        assert_eq!(out.chunks.len(), 4);
        assert!(out.capacity() <= out.len() + CHUNK_BYTES);
        assert_eq!(&out.front()[..6], b"short\n");
        assert_eq!(out.front().len(), CHUNK_BYTES);
        out.consume(CHUNK_BYTES + 6);
        assert_eq!(out.front().len(), CHUNK_BYTES - 6);
    }
}
