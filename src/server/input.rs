//! Reading, and handing a connection's lines to the chat. One read per
//! connection per turn, into one buffer shared by all connections: an idle
//! connection owns no read buffer, and a flooding client gets at most this
//! much of a turn before others are served. Whatever a read leaves the loop
//! unable to act on (a full turn) is held by the connection and acted on
//! first when it resumes; a connection that may have more without a new
//! readiness event goes on the pending-read list.

use log::debug;

use super::Server;
use crate::bus::ClientId;
use crate::conn::transport::Read;
use crate::conn::{Phase, Reason};

/// The shared read buffer's size: one read per connection per turn.
pub(super) const READ_BUF_BYTES: usize = 64 * 1024;

impl Server {
    /// Reads once from `key` and acts on what arrived (or, for a closing
    /// connection, discards it).
    pub(super) fn read_ready(&mut self, key: usize) {
        let Some(conn) = self.table.get(key) else {
            return;
        };
        match conn.phase() {
            Phase::Closing => return,
            Phase::Draining | Phase::Lingering => return self.discard_input(key),
            Phase::Open => {}
        }
        if self.table.is_turn_full() {
            // This turn queued all the output it may: read next turn.
            return self.table.list_read(key);
        }
        if let Some(held) = self.table.take_held(key) {
            self.consume(key, &held);
            if self.table.has_held(key) {
                return;
            }
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let Some(conn) = self.table.get_mut(key) else {
            self.read_buf = buf;
            return;
        };
        match conn.read(&mut buf) {
            Ok(Read::WouldBlock) => {}
            Ok(Read::Data { n, more }) => {
                if more {
                    self.table.list_read(key);
                }
                self.consume(key, &buf[..n]);
            }
            Ok(Read::Eof) => self.consume_eof(key),
            Err(e) => {
                debug!("conn #{}: read error: {e}", conn.id());
                self.table.mark_closing(key, Reason::of(&e));
            }
        }
        self.read_buf = buf;
    }

    /// Hands `data` to `key`'s codec and each line to the chat, until the
    /// data is used up or the connection must stop: it closed, or the turn
    /// is full. What is left is held for the next turn.
    fn consume(&mut self, key: usize, mut data: &[u8]) {
        let Some(conn) = self.table.get_mut(key) else {
            return;
        };
        let c = ClientId { key, id: conn.id() };
        let mut codec = conn.take_codec();
        let max_line = self.config.max_line;
        while let Some(frame) = codec.next(&mut data, max_line) {
            self.chat.frame(c, frame, &mut self.table);
            let open = self.table.get(key).is_some_and(|c| c.is_open());
            if !open || self.table.is_turn_full() || self.chat.is_waiting(key) {
                break;
            }
        }
        let registered = self.chat.is_registered(key);
        let Some(conn) = self.table.get_mut(key) else {
            return;
        };
        conn.put_codec(codec);
        if registered {
            conn.note_named();
        }
        if conn.is_open() && !data.is_empty() {
            self.table.hold(key, data);
            if !self.chat.is_waiting(key) {
                self.table.list_read(key);
            }
        }
    }

    /// The peer closed its side: a final unterminated line still counts,
    /// then the client leaves and gets what is queued for it before we close
    /// (it may only have closed its sending side).
    fn consume_eof(&mut self, key: usize) {
        let Some(conn) = self.table.get_mut(key) else {
            return;
        };
        let c = ClientId { key, id: conn.id() };
        let mut codec = conn.take_codec();
        if let Some(frame) = codec.finish(self.config.max_line) {
            self.chat.frame(c, frame, &mut self.table);
        }
        let left = self.chat.disconnected(key, None, &mut self.table);
        if let Some(conn) = self.table.get_mut(key) {
            conn.put_codec(codec);
            if left {
                conn.note_named();
            }
        }
        self.table.drain(key, Reason::Closed);
    }

    /// A closing connection's input is read and thrown away, so its peer is
    /// never blocked writing to us and closing never resets it; its EOF ends
    /// a linger.
    fn discard_input(&mut self, key: usize) {
        let mut buf = std::mem::take(&mut self.read_buf);
        if let Some(conn) = self.table.get_mut(key) {
            match conn.read(&mut buf) {
                Ok(Read::WouldBlock) => {}
                Ok(Read::Data { more, .. }) => {
                    if more {
                        self.table.list_read(key);
                    }
                }
                Ok(Read::Eof) => {
                    if conn.phase() == Phase::Lingering {
                        let reason = conn.reason();
                        self.table.mark_closing(key, reason);
                    }
                }
                Err(e) => {
                    debug!("conn #{}: read error while closing: {e}", conn.id());
                    self.table.mark_closing(key, Reason::of(&e));
                }
            }
        }
        self.read_buf = buf;
    }
}
