//! The cluster's shared state lives in Redis and changes only through these
//! Lua scripts: each one checks, updates and PUBLISHes in one atomic step,
//! so Redis' single thread is the sequencer and every node hears a room's
//! events in one order. Scripts only move data (names, rooms, lines the
//! nodes rendered); nodes render every line themselves from
//! `protocol::lines`. Nothing a client sends is ever code here: it arrives
//! as ARGV data and leaves as length-prefixed fields (see `event`).
//!
//! Keys (`<n>` a lower-cased name, `<r>` a lower-cased room):
//! - `cr:u:<n>` hash: name, node, key, id, room, away — a name's owner;
//! - `cr:m:<r>` sorted set (all scores 0) of member `<n>`s: lexical order
//!   is the case-insensitive order `/who` lists;
//! - `cr:rooms` hash `<r>` → the room's name as first spelled;
//! - `cr:t:<r>` topic; `cr:h:<r>` list of `unix-secs TAB line` (capped
//!   in lines and in bytes as one process caps it); `cr:hb:<r>` the bytes
//!   of lines it holds;
//! - `cr:nodes` set of node names; `cr:alive:<node>` expires 5 s after the
//!   node's last tick; `cr:nm:<node>` set of the `<n>`s the node owns;
//!   `cr:lost:<node>` marks (for a day) a node that was reclaimed.
//!
//! Channels: `cr:r:<r>` room events; `cr:n:<node>` events for one node.

/// Seconds a node's liveness key lives: a node that stops ticking (killed,
/// cut off) loses its names and memberships this long after its last tick.
pub const ALIVE_SECS: u32 = 5;

/// Shared by every script: field encoding, room entry and exit, and
/// reclaiming a dead node's clients.
const PRELUDE: &str = r#"
local function ev(...)
  local t = {}
  for _, v in ipairs({...}) do
    v = tostring(v)
    t[#t + 1] = #v .. ':' .. v .. ','
  end
  return table.concat(t)
end
local function owned(u, node, key, id)
  local o = redis.call('HMGET', u, 'node', 'key', 'id')
  return o[1] == node and o[2] == key and o[3] == id
end
local function shown_room(lroom, room)
  return redis.call('HGET', 'cr:rooms', lroom) or room
end
local function leave_room(lname, name, lroom, node, key, id, kind, detail)
  if not lroom or lroom == '' then return end
  local shown = shown_room(lroom, lroom)
  redis.call('ZREM', 'cr:m:' .. lroom, lname)
  local count = redis.call('ZCARD', 'cr:m:' .. lroom)
  if count == 0 then
    redis.call('HDEL', 'cr:rooms', lroom)
    redis.call('DEL', 'cr:t:' .. lroom, 'cr:h:' .. lroom, 'cr:hb:' .. lroom)
  end
  redis.call('PUBLISH', 'cr:r:' .. lroom,
    ev('L', name, shown, node, key, id, count + 1, kind, detail))
end
local function members(lroom, cap)
  local out = {}
  for _, n in ipairs(redis.call('ZRANGE', 'cr:m:' .. lroom, 0, cap - 1)) do
    local f = redis.call('HMGET', 'cr:u:' .. n, 'name', 'away')
    out[#out + 1] = f[1] or n
    out[#out + 1] = f[2] and '1' or '0'
  end
  return out
end
local function enter_room(lname, name, room, node, key, id, welcome, cap)
  local lroom = string.lower(room)
  redis.call('HSETNX', 'cr:rooms', lroom, room)
  local shown = shown_room(lroom, room)
  redis.call('ZADD', 'cr:m:' .. lroom, 0, lname)
  redis.call('HSET', 'cr:u:' .. lname, 'room', lroom)
  local count = redis.call('ZCARD', 'cr:m:' .. lroom)
  redis.call('PUBLISH', 'cr:r:' .. lroom, ev('J', name, shown, node, key, id, count))
  local burst = {'B', key, id, welcome, shown, redis.call('GET', 'cr:t:' .. lroom) or ''}
  local hist = redis.call('LRANGE', 'cr:h:' .. lroom, 0, -1)
  burst[#burst + 1] = #hist
  for _, h in ipairs(hist) do burst[#burst + 1] = h end
  burst[#burst + 1] = count
  local m = members(lroom, cap)
  burst[#burst + 1] = #m / 2
  for _, v in ipairs(m) do burst[#burst + 1] = v end
  redis.call('PUBLISH', 'cr:n:' .. node, ev(unpack(burst)))
end
local function reclaim(dead, why)
  for _, n in ipairs(redis.call('SMEMBERS', 'cr:nm:' .. dead)) do
    local u = 'cr:u:' .. n
    local f = redis.call('HMGET', u, 'name', 'node', 'key', 'id', 'room')
    if f[2] == dead then
      leave_room(n, f[1], f[5], f[2], f[3], f[4], 'because', why)
      redis.call('DEL', u)
    end
  end
  redis.call('DEL', 'cr:nm:' .. dead)
  redis.call('SREM', 'cr:nodes', dead)
  -- Its rooms were told its clients left: if it comes back, RESTORE
  -- tells them they are back.
  redis.call('SET', 'cr:lost:' .. dead, '1', 'EX', 86400)
end
-- True if `lname` is free (a dead node's claim is reclaimed first).
local function free(lname)
  local owner = redis.call('HGET', 'cr:u:' .. lname, 'node')
  if not owner then return true end
  if redis.call('EXISTS', 'cr:alive:' .. owner) == 1 then return false end
  reclaim(owner, 'node lost')
  return redis.call('EXISTS', 'cr:u:' .. lname) == 0
end
"#;

/// One script: its name (for logs) and body (run after [`PRELUDE`]).
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// What it does, for logs.
    pub name: &'static str,
    body: &'static str,
}

impl Script {
    /// The full source sent to `SCRIPT LOAD`.
    pub fn source(&self) -> String {
        format!("{PRELUDE}\n{}", self.body)
    }
}

/// ARGV: node, name, key, id, lobby, cap. Reply: `ok` or `taken`.
pub const REGISTER: Script = Script {
    name: "register",
    body: r#"
local node, name, key, id, lobby, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local lname = string.lower(name)
if not free(lname) then return 'taken' end
redis.call('HSET', 'cr:u:' .. lname, 'name', name, 'node', node, 'key', key, 'id', id, 'room', '')
redis.call('SADD', 'cr:nm:' .. node, lname)
redis.call('SADD', 'cr:nodes', node)
enter_room(lname, name, lobby, node, key, id, '1', cap)
return 'ok'
"#,
};

/// ARGV: node, lname, key, id, line, now, max history lines, max history
/// bytes. A chat or action line (rendered by the node) to the sender's
/// room, kept in its history as one process keeps it: the last `max`
/// lines, at most `max bytes` of lines (`cr:hb:<r>` counts them); a line
/// longer than that is not kept. Reply: `ok` or `gone` (the name is no
/// longer the sender's).
pub const SAY: Script = Script {
    name: "say",
    body: r#"
local node, lname, key, id, line, now, max, maxbytes = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
local lroom = redis.call('HGET', u, 'room')
if max > 0 and #line <= maxbytes then
  local h, hb = 'cr:h:' .. lroom, 'cr:hb:' .. lroom
  local n = redis.call('RPUSH', h, now .. '\t' .. line)
  local bytes = redis.call('INCRBY', hb, #line)
  while n > max or bytes > maxbytes do
    local old = redis.call('LPOP', h)
    if not old then
      redis.call('DEL', hb)
      break
    end
    local tab = string.find(old, '\t', 1, true) or 0
    bytes = redis.call('DECRBY', hb, #old - tab)
    n = n - 1
  end
end
redis.call('PUBLISH', 'cr:r:' .. lroom, ev('S', line))
return 'ok'
"#,
};

/// ARGV: node, lname, key, id, room, cap. Reply: `ok`, `gone` or
/// `{'already', shown}`.
pub const JOIN: Script = Script {
    name: "join",
    body: r#"
local node, lname, key, id, room, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
local lroom = string.lower(room)
local f = redis.call('HMGET', u, 'name', 'room')
if f[2] == lroom then return {'already', shown_room(lroom, room)} end
leave_room(lname, f[1], f[2], node, key, id, 'for', shown_room(lroom, room))
enter_room(lname, f[1], room, node, key, id, '0', cap)
return 'ok'
"#,
};

/// ARGV: node, lname, key, id, new name. Reply: `ok`, `gone`, `same` or
/// `taken`.
pub const NICK: Script = Script {
    name: "nick",
    body: r#"
local node, lname, key, id, new = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
local old = redis.call('HGET', u, 'name')
if old == new then return 'same' end
local lnew = string.lower(new)
if lnew ~= lname then
  if not free(lnew) then return 'taken' end
  redis.call('RENAME', u, 'cr:u:' .. lnew)
  redis.call('SREM', 'cr:nm:' .. node, lname)
  redis.call('SADD', 'cr:nm:' .. node, lnew)
end
redis.call('HSET', 'cr:u:' .. lnew, 'name', new)
local lroom = redis.call('HGET', 'cr:u:' .. lnew, 'room')
redis.call('ZREM', 'cr:m:' .. lroom, lname)
redis.call('ZADD', 'cr:m:' .. lroom, 0, lnew)
redis.call('PUBLISH', 'cr:r:' .. lroom, ev('N', old, new, node, key, id))
return 'ok'
"#,
};

/// ARGV: node, lname, key, id, to, text. Delivers `[pm ...]` to the
/// recipient's node. Reply: `{'ok', from, to's name, away or ''}`, `gone`
/// or `nosuch`.
pub const MSG: Script = Script {
    name: "msg",
    body: r#"
local node, lname, key, id, to, text = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
local lto = string.lower(to)
if free(lto) then return 'nosuch' end
local from = redis.call('HGET', u, 'name')
local t = redis.call('HMGET', 'cr:u:' .. lto, 'name', 'node', 'key', 'id', 'away')
if lto ~= lname then
  redis.call('PUBLISH', 'cr:n:' .. t[2], ev('P', t[3], t[4], from, t[1], text))
end
return {'ok', from, t[1], t[5] or ''}
"#,
};

/// ARGV: node, lname, key, id, cap. Reply: `{shown room, count, name,
/// away, ...}` (at most `cap` names, in order) or `gone`.
pub const WHO: Script = Script {
    name: "who",
    body: r#"
local node, lname, key, id, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
local lroom = redis.call('HGET', u, 'room')
local out = {shown_room(lroom, lroom), redis.call('ZCARD', 'cr:m:' .. lroom)}
for _, v in ipairs(members(lroom, cap)) do out[#out + 1] = v end
return out
"#,
};

/// ARGV: cap. Reply: `{rooms, name, count, ...}` (at most `cap`, sorted).
pub const ROOMS: Script = Script {
    name: "rooms",
    body: r#"
local cap = tonumber(ARGV[1])
local all = redis.call('HKEYS', 'cr:rooms')
table.sort(all)
local out = {#all}
for i = 1, math.min(#all, cap) do
  out[#out + 1] = redis.call('HGET', 'cr:rooms', all[i])
  out[#out + 1] = redis.call('ZCARD', 'cr:m:' .. all[i])
end
return out
"#,
};

/// ARGV: node, lname, key, id, mode (`show`, `set`, `clear`), text.
/// Reply for show: `{shown room, topic or ''}`; else `ok`; or `gone`.
pub const TOPIC: Script = Script {
    name: "topic",
    body: r#"
local node, lname, key, id, mode, text = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
local f = redis.call('HMGET', u, 'name', 'room')
local shown = shown_room(f[2], f[2])
if mode == 'show' then return {shown, redis.call('GET', 'cr:t:' .. f[2]) or ''} end
if mode == 'set' then
  redis.call('SET', 'cr:t:' .. f[2], text)
else
  redis.call('DEL', 'cr:t:' .. f[2])
  text = ''
end
redis.call('PUBLISH', 'cr:r:' .. f[2], ev('T', f[1], shown, mode, text))
return 'ok'
"#,
};

/// ARGV: node, lname, key, id, message ('' = back). Reply: `ok` or `gone`.
pub const AWAY: Script = Script {
    name: "away",
    body: r#"
local node, lname, key, id, msg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'gone' end
if msg == '' then redis.call('HDEL', u, 'away') else redis.call('HSET', u, 'away', msg) end
return 'ok'
"#,
};

/// ARGV: node, lname, key, id, kind (`closed`, `quit`, `because`),
/// detail. Frees the name; the room hears how it left. Reply: `ok`.
pub const LEAVE: Script = Script {
    name: "leave",
    body: r#"
local node, lname, key, id, kind, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local u = 'cr:u:' .. lname
if not owned(u, node, key, id) then return 'ok' end
local f = redis.call('HMGET', u, 'name', 'room')
leave_room(lname, f[1], f[2], node, key, id, kind, detail)
redis.call('DEL', u)
redis.call('SREM', 'cr:nm:' .. node, lname)
return 'ok'
"#,
};

/// ARGV: node. Keeps the node alive and reclaims nodes that are not.
/// Reply: the number of dead nodes reclaimed.
pub const TICK: Script = Script {
    name: "tick",
    body: r#"
local node = ARGV[1]
redis.call('SET', 'cr:alive:' .. node, '1', 'EX', tonumber(ARGV[2]))
redis.call('SADD', 'cr:nodes', node)
local n = 0
for _, other in ipairs(redis.call('SMEMBERS', 'cr:nodes')) do
  if redis.call('EXISTS', 'cr:alive:' .. other) == 0 then
    reclaim(other, 'node lost')
    n = n + 1
  end
end
return n
"#,
};

/// ARGV: node, name, key, id, room, alias. After a reconnect: puts a
/// client of this node back (Redis may have restarted empty) in `room`,
/// as `name`: what the node believes. Where Redis believes otherwise
/// because a script ran and its answer was lost with the connection, the
/// rooms are told what changes, as for any move or rename:
/// - a `/nick` to `alias` (`''`: none) that Redis ran is undone: its room
///   hears `* <alias> is now known as <name>`;
/// - a `/join` that Redis ran is undone: that room hears `* <name> left
///   for <room>` and `room` hears the join.
///
/// The join is also told when this node had been declared lost
/// (`cr:lost:<node>`, set when it was reclaimed: the room was told the
/// client left). After Redis restarted empty nobody was told anything, and
/// nothing is told. Reply: `ok` or `taken` (someone else holds the name).
pub const RESTORE: Script = Script {
    name: "restore",
    body: r#"
local node, name, key, id, room, alias = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local lname = string.lower(name)
local u = 'cr:u:' .. lname
local lroom = string.lower(room)
local tell = redis.call('EXISTS', 'cr:lost:' .. node) == 1
if alias ~= '' and alias ~= name then
  local lalias = string.lower(alias)
  local ua = 'cr:u:' .. lalias
  local renamed = false
  if lalias ~= lname and owned(ua, node, key, id) and redis.call('EXISTS', u) == 0 then
    redis.call('RENAME', ua, u)
    redis.call('SREM', 'cr:nm:' .. node, lalias)
    redis.call('SADD', 'cr:nm:' .. node, lname)
    renamed = true
  elseif lalias == lname and owned(u, node, key, id) and redis.call('HGET', u, 'name') == alias then
    renamed = true
  end
  if renamed then
    redis.call('HSET', u, 'name', name)
    local r = redis.call('HGET', u, 'room')
    if r and r ~= '' then
      redis.call('ZREM', 'cr:m:' .. r, lalias)
      redis.call('ZADD', 'cr:m:' .. r, 0, lname)
      redis.call('PUBLISH', 'cr:r:' .. r, ev('N', alias, name, node, key, id))
    end
  end
end
if owned(u, node, key, id) then
  local prev = redis.call('HGET', u, 'room')
  if prev and prev ~= '' and prev ~= lroom then
    leave_room(lname, name, prev, node, key, id, 'for', shown_room(lroom, room))
    tell = true
  end
else
  if not free(lname) then return 'taken' end
  redis.call('HSET', u, 'name', name, 'node', node, 'key', key, 'id', id)
end
redis.call('SADD', 'cr:nm:' .. node, lname)
redis.call('SADD', 'cr:nodes', node)
redis.call('HSETNX', 'cr:rooms', lroom, room)
local added = redis.call('ZADD', 'cr:m:' .. lroom, 0, lname)
redis.call('HSET', u, 'room', lroom)
if added == 1 and tell then
  local count = redis.call('ZCARD', 'cr:m:' .. lroom)
  redis.call('PUBLISH', 'cr:r:' .. lroom,
    ev('J', name, shown_room(lroom, room), node, key, id, count))
end
return 'ok'
"#,
};

/// Names each script by its place in [`ALL`] (each variant is the script
/// of the same name above).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptId {
    Register,
    Say,
    Join,
    Nick,
    Msg,
    Who,
    Rooms,
    Topic,
    Away,
    Leave,
    Tick,
    Restore,
}

/// Every script, in the order of [`ScriptId`].
pub const ALL: [Script; 12] = [
    REGISTER, SAY, JOIN, NICK, MSG, WHO, ROOMS, TOPIC, AWAY, LEAVE, TICK, RESTORE,
];
