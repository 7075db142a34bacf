//! Reading, flood control, and handing a connection's input to the chat (or
//! its request to the metrics endpoint). One read per connection per turn,
//! into one buffer shared by all connections: an idle connection owns no
//! read buffer, and a flooding client gets at most this much of a turn
//! before others are served. Each line is charged to its sender's flood
//! budget by the output it caused; a client over budget, or a turn that
//! queued all the output it may, stops being read, and what the loop could
//! not act on yet is held aside and acted on first when it resumes. A
//! connection that may have more without a new readiness event goes on the
//! pending-read list.

use log::{debug, info};

use super::handle::Counters;
use super::Server;
use crate::bus::ClientId;
use crate::conn::codec::{Codec, Input};
use crate::conn::transport::Read;
use crate::conn::ws::{self, WsEvent};
use crate::conn::{Phase, Reason, Role};

/// The shared read buffer's size: one read per connection per turn (and the
/// most input a paused connection holds).
pub const READ_BUF_BYTES: usize = 64 * 1024;

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
        if self.chat.is_waiting(key) {
            // Its bus operation is in flight: the bus lists it when done.
            return;
        }
        if self.table.is_turn_full() {
            // This turn queued all the output it may: read next turn.
            return self.table.list_read(key);
        }
        if self
            .flood
            .resume_at(conn.flood_tat(), self.table.now_us())
            .is_some()
        {
            // Over its flood budget: its resume timer reads it later.
            return;
        }
        if let Some(held) = self.table.take_held(key) {
            self.consume(key, &held);
            if self.table.has_held(key) {
                return;
            }
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let tick = self.table.tick();
        let Some(conn) = self.table.get_mut(key) else {
            self.read_buf = buf;
            return;
        };
        let read = conn.read(&mut buf);
        let wants_write = conn.wants_write();
        if matches!(read, Ok(Read::Data { .. })) {
            conn.note_heard(tick);
        }
        if wants_write {
            // A TLS handshake step to answer: no chat output accounts for it.
            self.table.list_write(key);
        }
        match read {
            Ok(Read::WouldBlock) => {}
            Ok(Read::Data { n, more }) => {
                if more {
                    self.table.list_read(key);
                }
                self.consume(key, &buf[..n]);
            }
            Ok(Read::Eof) => self.consume_eof(key),
            Err(e) => {
                if let Some(conn) = self.table.get(key) {
                    read_error(conn, &e, &self.shared.counters);
                }
                self.table.mark_closing(key, Reason::of(&e));
            }
        }
        self.read_buf = buf;
    }

    /// Hands `data` to `key`'s codec and each line to the chat, charging
    /// each to the client's flood budget, until the data is used up or the
    /// connection must stop: it closed, it is over budget, it waits for the
    /// bus, or the turn is full. What is left is held for later.
    fn consume(&mut self, key: usize, mut data: &[u8]) {
        let Some(conn) = self.table.get_mut(key) else {
            return;
        };
        let c = ClientId { key, id: conn.id() };
        let mut role = conn.role();
        let mut codec = conn.take_codec();
        let max_line = self.config.max_line;
        let now_us = self.table.now_us();
        let mut paused_until = None;
        while let Some(input) = codec.next(&mut data, max_line) {
            let before = self.table.queued_total();
            match (input, role) {
                (Input::Frame(frame), Role::Chat) => self.chat.frame(c, frame, &mut self.table),
                (Input::Ws(event), Role::Chat) => self.ws_event(c, event),
                (Input::Request(req), Role::Metrics) => self.metrics_request(key, req),
                (Input::Request(req), Role::Web) => {
                    let upgraded = self.web_request(key, req);
                    if upgraded {
                        // The rest of `data` is WebSocket frames.
                        codec = Codec::Ws(Box::default());
                        role = Role::Chat;
                        if let Some(conn) = self.table.get_mut(key) {
                            conn.upgrade(&codec);
                        }
                        self.chat_connected(key, c.id);
                    }
                }
                // A codec only yields what its role expects.
                _ => {}
            }
            let cost = self.flood.cost_us(self.table.queued_total() - before);
            let Some(conn) = self.table.get_mut(key).filter(|c| c.is_open()) else {
                break;
            };
            if let Some(at) = self.flood.charge(conn.flood_tat_mut(), now_us, cost) {
                paused_until = Some(at);
                break;
            }
            if self.table.is_turn_full() || self.chat.is_waiting(key) {
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
        if !conn.is_open() {
            return;
        }
        if let Some(at) = paused_until {
            Counters::bump(&self.shared.counters.flood_delays);
            if conn.first_flood_delay() {
                info!(
                    "conn #{} ({}): over its flood budget; reading paused for {} ms (logged once)",
                    c.id,
                    conn.peer(),
                    at.saturating_sub(now_us) / 1000
                );
            }
            self.resume.push(at, key, c.id);
        }
        if !data.is_empty() {
            self.table.hold(key, data);
            if paused_until.is_none() && !self.chat.is_waiting(key) {
                self.table.list_read(key);
            }
        }
    }

    /// A WebSocket control event: pings are answered; a close frame or a
    /// protocol error ends the client like an EOF, with the close frame
    /// saying why (the code the peer gave is echoed).
    fn ws_event(&mut self, c: ClientId, event: WsEvent<'_>) {
        let key = c.key;
        match event {
            WsEvent::Ping(payload) => {
                self.table.send_raw(key, &ws::pong(payload));
            }
            WsEvent::Text(_) => {}
            WsEvent::Close(code) => {
                if let Some(conn) = self.table.get_mut(key) {
                    conn.set_ws_close(code.unwrap_or(ws::code::NORMAL));
                }
                self.end_client(key, None, Reason::Closed);
            }
            WsEvent::Fail(code, why) => {
                if let Some(conn) = self.table.get_mut(key) {
                    info!(
                        "conn #{} ({}): WebSocket protocol error, closing with {code}: {why}",
                        c.id,
                        conn.peer()
                    );
                    conn.set_ws_close(code);
                }
                self.end_client(key, Some("protocol error"), Reason::Error);
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
        if let (Some(Input::Frame(frame)), Role::Chat) =
            (codec.finish(self.config.max_line), conn.role())
        {
            self.chat.frame(c, frame, &mut self.table);
        }
        if let Some(conn) = self.table.get_mut(key) {
            conn.put_codec(codec);
        }
        self.end_client(key, None, Reason::Closed);
    }

    /// The client ends (its EOF, or a WebSocket close or protocol error):
    /// it leaves the chat (its room told why, `notice`), gets what is
    /// queued for it, then closes. One that left is logged as it left, so
    /// its close is not logged at info again.
    fn end_client(&mut self, key: usize, notice: Option<&str>, reason: Reason) {
        let left = self.chat.disconnected(key, notice, &mut self.table);
        if left {
            if let Some(conn) = self.table.get_mut(key) {
                conn.note_named();
            }
        }
        self.table.drain(key, reason);
    }

    /// A closing connection's input is read and thrown away, so its peer is
    /// never blocked writing to us and closing never resets it; its EOF ends
    /// a linger.
    fn discard_input(&mut self, key: usize) {
        let mut buf = std::mem::take(&mut self.read_buf);
        if let Some(conn) = self.table.get_mut(key) {
            let read = conn.read(&mut buf);
            let wants_write = conn.wants_write();
            match read {
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
            if wants_write {
                self.table.list_write(key);
            }
        }
        self.read_buf = buf;
    }
}

/// Logs why a read failed: a peer that broke the TLS protocol (plain text
/// or HTTP on the TLS port, garbage records, a refused renegotiation) at
/// info, with what it did; socket errors at debug.
fn read_error(conn: &crate::conn::Conn, e: &std::io::Error, counters: &Counters) {
    if e.kind() == std::io::ErrorKind::InvalidData && conn.is_tls() {
        Counters::bump(&counters.tls_errors);
        info!("conn #{} ({}): closed: {e}", conn.id(), conn.peer());
    } else {
        debug!("conn #{}: read error: {e}", conn.id());
    }
}
