//! A connection's unsent output as a list of chunks (Redis' reply list), so
//! the memory it holds follows what is unsent: at most the unsent bytes plus
//! three chunks (a partly written first, a partly filled last and one spare),
//! never a doubled `Vec` behind a written prefix. The chunk being filled
//! lives inline, so a client that gets a line now and then costs one small
//! allocation; the list in front of it exists only while output piles up.
//! Pure bookkeeping over any `Write`; knows nothing of sockets or codecs.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Lines are packed into chunks of up to this many bytes (a line may
/// straddle two).
pub const CHUNK_BYTES: usize = 16 * 1024;
/// A drained filling chunk up to this size is kept for the next lines.
const KEEP_BYTES: usize = 1024;
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
    /// Nothing can go out until the peer speaks (a TLS handshake in
    /// progress): the next read that completes it lists the connection
    /// for writing again.
    Waiting,
}

/// Full chunks waiting in front of the one being filled, only while output
/// piles up.
#[derive(Debug, Default)]
struct Rest {
    /// Full chunks, oldest first; all of them go out before `fill`.
    full: VecDeque<Vec<u8>>,
    /// One full-size chunk kept after it was written, so a busy client does
    /// not allocate a chunk every turn.
    spare: Option<Vec<u8>>,
}

/// Unsent output.
#[derive(Debug, Default)]
pub struct OutBuf {
    /// The chunk new bytes go into (the newest).
    fill: Vec<u8>,
    rest: Option<Box<Rest>>,
    /// Bytes of the front chunk (the oldest full one, else `fill`) already
    /// written.
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
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of memory held for output (capacity, not content).
    pub fn capacity(&self) -> usize {
        let rest = self.rest.as_ref().map_or(0, |r| {
            r.full.iter().map(Vec::capacity).sum::<usize>()
                + r.spare.as_ref().map_or(0, Vec::capacity)
        });
        self.fill.capacity() + rest
    }

    /// Appends `parts`, in order. Chunks are filled to `CHUNK_BYTES`, so
    /// every chunk but the first and last is full.
    #[inline]
    pub fn push(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.push_bytes(part);
        }
    }

    /// The hot path: bytes that fit in the filling chunk's spare capacity
    /// (which never exceeds `CHUNK_BYTES`).
    #[inline]
    fn push_bytes(&mut self, bytes: &[u8]) {
        if self.fill.capacity() - self.fill.len() >= bytes.len() {
            self.fill.extend_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.push_slow(bytes);
    }

    fn push_slow(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            if self.fill.len() >= CHUNK_BYTES {
                // Output is piling up: the full chunk waits in line, and
                // the next is full size at once.
                let rest = self.rest.get_or_insert_with(Box::default);
                let next = rest
                    .spare
                    .take()
                    .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES));
                rest.full.push_back(std::mem::replace(&mut self.fill, next));
            }
            // Grow by doubling (a busy client does not reallocate per line),
            // but never past one chunk.
            let take = (CHUNK_BYTES - self.fill.len()).min(bytes.len());
            let need = self.fill.len() + take;
            if self.fill.capacity() < need {
                let target = (self.fill.capacity() * 2).clamp(need, CHUNK_BYTES);
                self.fill.reserve_exact(target - self.fill.len());
            }
            self.fill.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    /// The oldest chunk.
    fn front_chunk(&self) -> &Vec<u8> {
        self.rest
            .as_ref()
            .and_then(|r| r.full.front())
            .unwrap_or(&self.fill)
    }

    /// The oldest unsent bytes (the rest of the oldest chunk).
    pub fn front(&self) -> &[u8] {
        &self.front_chunk()[self.sent..]
    }

    /// Marks `n` bytes as written.
    pub fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        while n > 0 {
            let left = self.front_chunk().len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            self.sent = 0;
            match self.rest.as_mut() {
                Some(rest) if !rest.full.is_empty() => {
                    if let Some(mut done) = rest.full.pop_front() {
                        if rest.spare.is_none() && done.capacity() == CHUNK_BYTES {
                            done.clear();
                            rest.spare = Some(done);
                        }
                    }
                }
                // Keep a full-size filling chunk (and the spare) while the
                // client is busy, so a client that gets output every turn
                // does not allocate every turn; the idle sweep releases
                // them. A mid-size one is a one-off burst (a join's member
                // list): freed now, so the next newcomer in this turn
                // reuses the memory instead of every newcomer pinning its
                // own until the sweep.
                _ if (KEEP_BYTES + 1..CHUNK_BYTES).contains(&self.fill.capacity()) => {
                    self.fill = Vec::new();
                }
                _ => self.fill.clear(),
            }
        }
    }

    /// Frees all memory if nothing is queued (the idle sweep calls this).
    pub fn release_if_idle(&mut self) {
        if self.len == 0 {
            self.fill = Vec::new();
            self.rest = None;
            self.sent = 0;
        }
    }

    /// Writes queued bytes to `w` until all are written, `w` would block,
    /// or `budget` bytes went out. A single chunk goes out with `write`,
    /// several with one `writev`.
    pub fn write_to(&mut self, w: &mut impl Write, budget: usize) -> io::Result<Flushed> {
        let mut written = 0;
        while self.len > 0 {
            if written >= budget {
                return Ok(Flushed::Budget);
            }
            let room = budget - written;
            let result = if self.rest.as_ref().is_none_or(|r| r.full.is_empty()) {
                let front = &self.fill[self.sent..];
                w.write(&front[..front.len().min(room)])
            } else {
                self.write_vectored(w, room)
            };
            match result {
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

    /// One `writev` of up to `room` bytes over the oldest chunks.
    fn write_vectored(&self, w: &mut impl Write, mut room: usize) -> io::Result<usize> {
        let mut slices: [IoSlice<'_>; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
        let full = self.rest.iter().flat_map(|r| r.full.iter());
        let mut count = 0;
        for (i, chunk) in full.chain(std::iter::once(&self.fill)).enumerate() {
            if count == MAX_IOVECS || room == 0 {
                break;
            }
            let part = if i == 0 {
                &chunk[self.sent..]
            } else {
                &chunk[..]
            };
            let take = part.len().min(room);
            if take > 0 {
                slices[count] = IoSlice::new(&part[..take]);
                count += 1;
                room -= take;
            }
        }
        w.write_vectored(&slices[..count])
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
        // is unsent plus three chunks (a Vec with a written prefix would
        // hold up to twice the unsent bytes).
        for round in 0..2000 {
            out.push(&[&l]);
            if round % 2 == 0 {
                w.total = w.got.len() + 150;
                let _ = out.write_to(&mut w, usize::MAX).unwrap();
            }
            assert!(
                out.capacity() <= out.len() + 3 * CHUNK_BYTES,
                "capacity {} for {} unsent",
                out.capacity(),
                out.len()
            );
        }
        w.total = usize::MAX;
        assert_eq!(out.write_to(&mut w, usize::MAX).unwrap(), Flushed::All);
        assert!(out.capacity() <= 2 * CHUNK_BYTES);
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
        assert!(out.capacity() <= out.len() + CHUNK_BYTES);
        assert_eq!(&out.front()[..6], b"short\n");
        assert_eq!(out.front().len(), CHUNK_BYTES);
        out.consume(CHUNK_BYTES + 6);
        assert_eq!(out.front().len(), CHUNK_BYTES - 6);
    }

    #[test]
    fn a_quiet_client_holds_one_small_allocation() {
        let mut out = OutBuf::new();
        out.push(&[b"NAME\n"]);
        out.push(&[b"* alice joined lobby\n"]);
        assert!(out.rest.is_none());
        assert!(out.capacity() <= 32, "{}", out.capacity());
    }
}
