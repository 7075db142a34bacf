//! The seam where the chat's output meets connections: the chat and the bus
//! say "queue this line for that client" and "close it once its output is
//! written"; the server implements it over its connection table, tests over
//! vectors. It must not grow socket or codec details.

/// Where chat output goes.
pub trait Outbox {
    /// Queues one complete line (ending in `\n`) for client `key`.
    fn send(&mut self, key: usize, line: &[u8]);

    /// Queues the same line for every client in `keys`. Implementations
    /// frame it once per codec, not once per recipient.
    fn send_all(&mut self, keys: &[usize], line: &[u8]) {
        for &key in keys {
            self.send(key, line);
        }
    }

    /// Closes `key` once what is queued for it has been written.
    fn close(&mut self, key: usize);
}
