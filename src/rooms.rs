//! Rooms: which client key is in which room, each room's topic and recent
//! history, and the per-room counters of joins and leaves not yet
//! announced. Pure: no I/O and no client names; the bus decides what is
//! said and to whom. A room and all it holds goes when its last member
//! leaves.
//!
//! Every operation a message or a join/leave needs is O(1) (hash or index
//! lookups, `swap_remove`); only listing rooms walks them, in name order.

use std::collections::BTreeMap;

use slab::Slab;

use crate::history::History;

/// Index of a room while it exists (reused after the room is gone).
pub type RoomId = usize;

/// One room.
#[derive(Debug)]
pub struct Room {
    /// The name as its creator spelled it; lookups are case-insensitive.
    name: Box<str>,
    /// Member keys in no particular order: `swap_remove` keeps leaving O(1).
    members: Vec<usize>,
    /// Joins counted for the next summary notice (big rooms only).
    pending_joins: u32,
    /// Leaves counted for the next summary notice (big rooms only).
    pending_leaves: u32,
    /// True while the room is listed in `Rooms::dirty`, so it is listed once.
    dirty: bool,
    /// Set by `/topic`.
    pub topic: Option<Box<str>>,
    /// The room's recent chat and action lines.
    pub history: History,
}

impl Room {
    /// The room's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member keys, in no particular order.
    pub fn members(&self) -> &[usize] {
        &self.members
    }
}

/// Where a member sits: its room and its index in that room's `members`.
#[derive(Debug, Clone, Copy)]
struct Seat {
    room: u32,
    index: u32,
}

/// All rooms and memberships.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: Slab<Room>,
    /// Lower-cased room name to room; ordered so `/rooms` lists by name
    /// without sorting every time.
    by_name: BTreeMap<Box<str>, RoomId>,
    /// Indexed by client key (keys are dense slab keys), so finding a
    /// member's room and leaving it needs no search.
    seats: Vec<Option<Seat>>,
    /// Rooms with counted joins or leaves waiting for a summary notice.
    dirty: Vec<RoomId>,
}

/// What leaving a room did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    /// The room left; gone if `remaining` is 0.
    pub room: RoomId,
    /// Members before the leave.
    pub before: usize,
    /// Members after the leave.
    pub remaining: usize,
}

impl Rooms {
    /// No rooms.
    pub fn new() -> Rooms {
        Rooms::default()
    }

    /// The room named `name` (case-insensitively), if it exists.
    pub fn find(&self, name: &str) -> Option<RoomId> {
        self.by_name
            .get(name.to_ascii_lowercase().as_str())
            .copied()
    }

    /// The room `id`. Panics on an id that is not a live room (a logic error).
    pub fn room(&self, id: RoomId) -> &Room {
        &self.rooms[id]
    }

    /// The room `id`, to set its topic or add to its history. Panics on an
    /// id that is not a live room (a logic error).
    pub fn room_mut(&mut self, id: RoomId) -> &mut Room {
        &mut self.rooms[id]
    }

    /// The room `key` is in, if any.
    pub fn room_of(&self, key: usize) -> Option<RoomId> {
        self.seats
            .get(key)
            .copied()
            .flatten()
            .map(|s| s.room as usize)
    }

    /// Puts `key` (in no room) into the room `name`, creating it if needed.
    /// Returns the room and its member count after the join.
    pub fn join(&mut self, key: usize, name: &str) -> (RoomId, usize) {
        debug_assert!(self.room_of(key).is_none(), "join while in a room");
        let folded = name.to_ascii_lowercase().into_boxed_str();
        let id = match self.by_name.get(&folded) {
            Some(&id) => id,
            None => {
                let id = self.rooms.insert(Room {
                    name: name.into(),
                    members: Vec::new(),
                    pending_joins: 0,
                    pending_leaves: 0,
                    dirty: false,
                    topic: None,
                    history: History::new(),
                });
                self.by_name.insert(folded, id);
                id
            }
        };
        let room = &mut self.rooms[id];
        let seat = Seat {
            room: id as u32,
            index: room.members.len() as u32,
        };
        room.members.push(key);
        if self.seats.len() <= key {
            self.seats.resize(key + 1, None);
        }
        self.seats[key] = Some(seat);
        (id, room.members.len())
    }

    /// Takes `key` out of its room; the room is removed when it empties.
    pub fn leave(&mut self, key: usize) -> Option<Left> {
        let seat = self.seats.get_mut(key)?.take()?;
        let id = seat.room as usize;
        let room = &mut self.rooms[id];
        let before = room.members.len();
        room.members.swap_remove(seat.index as usize);
        if let Some(&moved) = room.members.get(seat.index as usize) {
            if let Some(s) = self.seats[moved].as_mut() {
                s.index = seat.index;
            }
        }
        let remaining = room.members.len();
        if remaining == 0 {
            let room = self.rooms.remove(id);
            self.by_name.remove(room.name.to_ascii_lowercase().as_str());
        }
        Some(Left {
            room: id,
            before,
            remaining,
        })
    }

    /// Counts a join (or a leave) in room `id` for its next summary notice.
    pub fn count(&mut self, id: RoomId, joined: bool) {
        let room = &mut self.rooms[id];
        if joined {
            room.pending_joins += 1;
        } else {
            room.pending_leaves += 1;
        }
        if !room.dirty {
            room.dirty = true;
            self.dirty.push(id);
        }
    }

    /// True when some room has counted joins or leaves to announce.
    pub fn has_counts(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Takes every room's counts: `(room, joins, leaves)` for rooms that
    /// still exist and have something to say.
    pub fn take_counts(&mut self) -> Vec<(RoomId, u32, u32)> {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.dirty) {
            // A room emptied (and maybe recreated) since it was counted has
            // nobody left to tell about its old counts.
            let Some(room) = self.rooms.get_mut(id) else {
                continue;
            };
            if !room.dirty {
                continue;
            }
            room.dirty = false;
            let joins = std::mem::take(&mut room.pending_joins);
            let leaves = std::mem::take(&mut room.pending_leaves);
            if joins + leaves > 0 {
                out.push((id, joins, leaves));
            }
        }
        out
    }

    /// Rooms in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Room> + '_ {
        self.by_name.values().map(|&id| &self.rooms[id])
    }

    /// How many rooms exist.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// True when no room exists.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(rooms: &Rooms, id: RoomId) -> Vec<usize> {
        let mut m = rooms.room(id).members().to_vec();
        m.sort();
        m
    }

    #[test]
    fn join_and_leave_keep_seats_consistent() {
        let mut rooms = Rooms::new();
        let (lobby, n) = rooms.join(0, "Lobby");
        assert_eq!(n, 1);
        assert_eq!(rooms.join(1, "lobby"), (lobby, 2));
        assert_eq!(rooms.join(2, "LOBBY"), (lobby, 3));
        assert_eq!(rooms.room(lobby).name(), "Lobby");
        // Removing the first member moves the last one into its seat.
        assert_eq!(
            rooms.leave(0),
            Some(Left {
                room: lobby,
                before: 3,
                remaining: 2
            })
        );
        assert_eq!(members(&rooms, lobby), vec![1, 2]);
        assert_eq!(rooms.leave(2).map(|l| l.remaining), Some(1));
        assert_eq!(members(&rooms, lobby), vec![1]);
        assert_eq!(rooms.leave(2), None);
        assert_eq!(rooms.room_of(1), Some(lobby));
        assert_eq!(rooms.leave(1).map(|l| l.remaining), Some(0));
        assert!(rooms.is_empty());
        assert_eq!(rooms.find("lobby"), None);
    }

    #[test]
    fn rooms_list_in_name_order() {
        let mut rooms = Rooms::new();
        rooms.join(0, "zeta");
        rooms.join(1, "Alpha");
        rooms.join(2, "mid");
        let names: Vec<&str> = rooms.iter().map(|r| r.name()).collect();
        assert_eq!(names, ["Alpha", "mid", "zeta"]);
        assert_eq!(rooms.len(), 3);
    }

    #[test]
    fn counts_are_taken_once_and_dropped_with_the_room() {
        let mut rooms = Rooms::new();
        let (a, _) = rooms.join(0, "a");
        let (b, _) = rooms.join(1, "b");
        rooms.count(a, true);
        rooms.count(a, true);
        rooms.count(a, false);
        rooms.count(b, false);
        assert!(rooms.has_counts());
        rooms.leave(1); // b is gone: nobody to tell
        assert_eq!(rooms.take_counts(), vec![(a, 2, 1)]);
        assert!(!rooms.has_counts());
        assert_eq!(rooms.take_counts(), vec![]);
    }
}
