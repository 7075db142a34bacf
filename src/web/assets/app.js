// chatroom's web client: one WebSocket to /ws, one protocol line per text
// message each way (docs/PROTOCOL.md). Plain JS, no dependencies. Every piece
// of text from the server goes into the page with textContent, never as HTML,
// and nothing here needs an inline script or style (the page's CSP forbids them).
"use strict";

(function () {
  // ---- Constants -------------------------------------------------------

  /** Names and rooms: 1-32 of A-Z a-z 0-9 _ - (PROTOCOL.md, Registration). */
  const NAME = "[A-Za-z0-9_-]{1,32}";
  /** Lines kept in the message list; older ones are dropped from the top. */
  const MAX_LOG_LINES = 3000;
  /** Sent lines remembered for Up/Down. */
  const MAX_INPUT_HISTORY = 200;
  /** Reconnect delays grow from the first to the last, with jitter. */
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 8000;
  /** How close to the bottom (px) still counts as "at the bottom". */
  const STICK_PX = 48;
  /** The WebSocket close code for a message over the server's limit. */
  const CLOSE_TOO_BIG = 1009;
  /** Reconnects that find our name taken before the page asks for another. */
  const MAX_TAKEN_RETRIES = 5;
  /** Big rooms: the member list is refreshed at most this often. */
  const WHO_REFRESH_MS = 10000;
  /** How often the room list is refreshed while the page is visible. */
  const ROOMS_REFRESH_MS = 60000;
  /** Colour classes for names (style.css defines nick-0 .. nick-7). */
  const NICK_COLOURS = 8;

  const RE = {
    joined: new RegExp("^(" + NAME + ") joined (" + NAME + ")$"),
    left: new RegExp("^(" + NAME + ") left(?: for (" + NAME + ")| \\((.*)\\))?$"),
    renamed: new RegExp("^(" + NAME + ") is now known as (" + NAME + ")$"),
    who: new RegExp("^(" + NAME + ") has (\\d+) members?: (.*)$"),
    rooms: /^(\d+) rooms?: (.*)$/,
    topic: new RegExp("^topic for (" + NAME + "): (.*)$"),
    noTopic: new RegExp("^no topic for (" + NAME + ")$"),
    topicSet: new RegExp("^(" + NAME + ") set the topic for (" + NAME + "): (.*)$"),
    topicCleared: new RegExp("^(" + NAME + ") cleared the topic for (" + NAME + ")$"),
    summary: new RegExp("^(" + NAME + "): (\\d+) (joined|left)(?:, (\\d+) left)?$"),
    away: /^you are away: (.*)$/,
    back: /^you are back$/,
    chat: new RegExp("^(" + NAME + "): (.*)$"),
    action: new RegExp("^\\+ (" + NAME + ") (.*)$"),
    pm: new RegExp("^\\[pm (" + NAME + ") -> (" + NAME + ")\\] (.*)$"),
    history: /^# (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (.*)$/,
    url: /\bhttps?:\/\/[^\s<>"']+/g,
    quit: /^\/quit(?:\s|$)/i,
    asking: /^\/(rooms|who)\s*$/i,
    busy: /^(server full|too many connections|connecting too fast)/,
  };

  // ---- Elements --------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const el = {
    app: $("app"),
    roomName: $("room-name"),
    topic: $("topic"),
    connState: $("conn-state"),
    connText: $("conn-text"),
    connCountdown: $("conn-countdown"),
    reconnect: $("reconnect"),
    sidebar: $("sidebar"),
    sidebarToggle: $("sidebar-toggle"),
    rooms: $("rooms"),
    roomsRefresh: $("rooms-refresh"),
    joinForm: $("join-form"),
    joinRoom: $("join-room"),
    members: $("members"),
    memberCount: $("member-count"),
    log: $("log"),
    jump: $("jump"),
    composer: $("composer"),
    message: $("message"),
    send: $("send"),
    login: $("login"),
    loginForm: $("login-form"),
    name: $("name"),
    loginError: $("login-error"),
    loginSubmit: $("login-submit"),
    loginState: $("login-state"),
  };

  // ---- State -----------------------------------------------------------

  const state = {
    /** The open (or opening) WebSocket, or null. */
    ws: null,
    /** The server's `NAME` prompt came on this socket: a name may be sent. */
    prompted: false,
    /** A name was sent after the last prompt and not yet answered. */
    nameSent: false,
    /** The name to register with (typed, or kept from before a reconnect). */
    wantName: null,
    /** Our name as the server spells it, once registered on this socket. */
    me: null,
    /** Registered at least once: reconnects re-register by themselves. */
    wasRegistered: false,
    /** The user sent /quit: the close that follows is not a failure. */
    quitting: false,
    /** The room we are in, and the room to go back to after a reconnect. */
    room: null,
    /** Members of our room, by lower-cased name: { name, away }. */
    members: new Map(),
    /** Member count as the server last said (may exceed what is listed). */
    memberTotal: 0,
    /** Known rooms, by lower-cased name: { name, count }. */
    rooms: new Map(),
    /**
     * One entry per `/rooms` or `/who` awaiting its one-line answer, oldest
     * first: { command, quiet }. Quiet ones the page sent itself; their
     * answers only update the lists. The server answers in order.
     */
    asked: [],
    /** A quiet `/who` is due (big rooms announce joins only in summaries). */
    whoTimer: null,
    lastWhoAt: 0,
    /** Inside a join burst: history lines follow until the member list. */
    inBurst: false,
    /** Reconnect bookkeeping. */
    attempt: 0,
    takenRetries: 0,
    retryTimer: null,
    retryAt: 0,
    countdownTimer: null,
    /** The last line the user sent on this connection. */
    lastSent: null,
    /** Lines sent, newest last, and where Up/Down currently is. */
    sent: [],
    sentIndex: 0,
    draft: "",
    /** Lines that arrived while the tab was hidden. */
    unread: 0,
    /** Day of the last line shown, for date dividers. */
    lastDay: "",
  };

  // ---- Small helpers ---------------------------------------------------

  const lower = (s) => s.toLowerCase();
  const sameName = (a, b) => a !== null && b !== null && lower(a) === lower(b);

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function nickClass(name) {
    let h = 0;
    for (const ch of lower(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return "nick nick-" + (h % NICK_COLOURS);
  }

  function nick(name) {
    return make("span", nickClass(name), name);
  }

  /** Appends `text` to `parent`, with http(s) URLs as links (text only). */
  function appendText(parent, text) {
    let at = 0;
    RE.url.lastIndex = 0;
    for (let m = RE.url.exec(text); m !== null; m = RE.url.exec(text)) {
      let url = m[0].replace(/[.,;:!?)\]}]+$/, "");
      let href = null;
      try {
        const u = new URL(url);
        if (u.protocol === "http:" || u.protocol === "https:") href = u.href;
      } catch (_) {
        href = null;
      }
      if (href === null) continue;
      if (m.index > at) parent.append(text.slice(at, m.index));
      const a = make("a", "", url);
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      parent.append(a);
      at = m.index + url.length;
      RE.url.lastIndex = at;
    }
    if (at < text.length) parent.append(text.slice(at));
  }

  function timeLabel(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function dayLabel(date) {
    return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
  }

  function mentionsMe(text) {
    if (state.me === null) return false;
    const esc = state.me.replace(/[-]/g, "\\-");
    return new RegExp("(^|[^A-Za-z0-9_-])" + esc + "($|[^A-Za-z0-9_-])", "i").test(text);
  }

  // ---- The message list ------------------------------------------------

  function isAtBottom() {
    return el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight <= STICK_PX;
  }

  function scrollToBottom() {
    el.log.scrollTop = el.log.scrollHeight;
    el.jump.hidden = true;
  }

  /** Adds `li` to the list, keeping the view at the bottom if it was. */
  function addItem(li, date) {
    const stick = isAtBottom();
    const day = dayLabel(date);
    if (day !== state.lastDay) {
      if (state.lastDay !== "") el.log.append(make("li", "divider day", day));
      state.lastDay = day;
    }
    el.log.append(li);
    while (el.log.childElementCount > MAX_LOG_LINES) el.log.firstElementChild.remove();
    if (stick) scrollToBottom();
    else el.jump.hidden = false;
  }

  /** A list item for one line: its time, then whatever `fill` puts in. */
  function lineItem(kind, line, date, fill) {
    const li = make("li", "msg " + kind);
    if (line !== null) li.dataset.line = line;
    const t = make("time", "time", timeLabel(date));
    t.dateTime = date.toISOString();
    t.title = date.toLocaleString();
    li.append(t);
    const body = make("span", "body");
    fill(body, li);
    li.append(body);
    return li;
  }

  /** A note from the page itself (not a server line): connection changes. */
  function localNote(text, kind) {
    const date = new Date();
    addItem(lineItem("local " + (kind || ""), null, date, (body) => body.append(text)), date);
  }

  /**
   * Fills `body` for a chat line, action or private message; returns the
   * kind, or null if `line` is none of those.
   */
  function fillMessage(line, body, li) {
    let m = RE.pm.exec(line);
    if (m) {
      body.append(make("span", "badge", "private"), nick(m[1]), make("span", "arrow", " \u2192 "), nick(m[2]));
      const text = make("span", "text");
      appendText(text, m[3]);
      body.append(text);
      li.classList.add(sameName(m[1], state.me) ? "mine" : "theirs");
      return "pm";
    }
    m = RE.action.exec(line);
    if (m) {
      body.append(make("span", "action-mark", "\u2217 "), nick(m[1]), " ");
      const text = make("span", "text");
      appendText(text, m[2]);
      body.append(text);
      if (sameName(m[1], state.me)) li.classList.add("mine");
      else if (mentionsMe(m[2])) li.classList.add("mention");
      return "action";
    }
    m = RE.chat.exec(line);
    if (m) {
      body.append(nick(m[1]), make("span", "colon", ": "));
      const text = make("span", "text");
      appendText(text, m[2]);
      body.append(text);
      if (sameName(m[1], state.me)) li.classList.add("mine");
      else if (mentionsMe(m[2])) li.classList.add("mention");
      return "chat";
    }
    return null;
  }

  /** Shows one server line in the list; returns the kind it was shown as. */
  function showLine(line) {
    let date = new Date();
    let kind = "plain";
    let li;
    const h = RE.history.exec(line);
    if (h) {
      const when = new Date(h[1]);
      if (!Number.isNaN(when.getTime())) date = when;
      if (!el.log.lastElementChild || !el.log.lastElementChild.classList.contains("history")) {
        const room = state.room === null ? "" : " in " + state.room;
        addItem(make("li", "divider history-divider", "earlier" + room), date);
      }
      li = lineItem("history", line, date, (body, item) => {
        body.append(make("span", "visually-hidden", "earlier: "));
        const inner = fillMessage(h[2], body, item);
        if (inner === null) appendText(body, h[2]);
      });
      li.title = "sent before you joined";
      addItem(li, date);
      return "history";
    }
    if (line.startsWith("* ")) {
      kind = "notice";
      const text = line.slice(2);
      li = lineItem(kind, line, date, (body) => appendText(body, text));
      // `/help` continues its notice on lines indented by a space.
      if (text.startsWith(" ")) li.classList.add("continued");
      const joined = RE.joined.exec(text);
      if (joined && sameName(joined[1], state.me)) li.classList.add("room-start");
    } else if (line.startsWith("! ")) {
      kind = "error";
      li = lineItem(kind, line, date, (body) => {
        body.append(make("span", "visually-hidden", "error: "));
        appendText(body, line.slice(2));
      });
    } else {
      li = lineItem("", line, date, (body, item) => {
        kind = fillMessage(line, body, item) || "plain";
        if (kind === "plain") appendText(body, line);
      });
      li.classList.add(kind);
    }
    addItem(li, date);
    return kind;
  }

  // ---- Room, members, rooms --------------------------------------------

  function renderRoom() {
    el.roomName.textContent = state.room === null ? "chatroom" : "#" + state.room;
    el.message.placeholder = state.room === null ? "Write a message" : "Message #" + state.room;
    renderTitle();
  }

  function setTopic(text) {
    el.topic.textContent = text;
    el.topic.hidden = text === "";
    el.topic.title = text;
  }

  function renderTitle() {
    const base = (state.room === null ? "" : "#" + state.room + " \u00b7 ") + "chatroom";
    document.title = state.unread > 0 ? "(" + state.unread + ") " + base : base;
  }

  function renderMembers() {
    const names = [...state.members.values()].sort(
      (a, b) => lower(a.name).localeCompare(lower(b.name)) || a.name.localeCompare(b.name)
    );
    const items = names.map((m) => {
      const li = make("li");
      const b = make("button", "member");
      b.type = "button";
      b.dataset.name = m.name;
      b.append(make("span", nickClass(m.name) + " member-name", m.name));
      if (sameName(m.name, state.me)) b.append(make("span", "tag", "you"));
      if (m.away) b.append(make("span", "tag away", "away"));
      b.setAttribute("aria-label", (sameName(m.name, state.me) ? "" : "Private message to ") + m.name + (m.away ? " (away)" : ""));
      li.append(b);
      return li;
    });
    const total = Math.max(state.memberTotal, names.length);
    if (total > names.length) items.push(make("li", "more", "and " + (total - names.length) + " more"));
    el.members.replaceChildren(...items);
    el.memberCount.textContent = total > 0 ? "(" + total + ")" : "";
  }

  function renderRooms() {
    if (state.room !== null && !state.rooms.has(lower(state.room))) {
      state.rooms.set(lower(state.room), { name: state.room, count: state.memberTotal || 1 });
    }
    const rooms = [...state.rooms.values()].sort((a, b) => lower(a.name).localeCompare(lower(b.name)));
    el.rooms.replaceChildren(
      ...rooms.map((r) => {
        const li = make("li");
        const b = make("button", "room");
        b.type = "button";
        b.dataset.room = r.name;
        b.append(make("span", "room-name", "#" + r.name));
        if (r.count !== null) b.append(make("span", "count", String(r.count)));
        if (sameName(r.name, state.room)) b.setAttribute("aria-current", "true");
        b.setAttribute("aria-label", "#" + r.name + (r.count === null ? "" : ", " + r.count + (r.count === 1 ? " member" : " members")));
        li.append(b);
        return li;
      })
    );
  }

  function parseListing(text) {
    let more = 0;
    const m = /^(.*) \.\.\. and (\d+) more$/.exec(text);
    if (m) {
      text = m[1];
      more = Number(m[2]);
    }
    return { items: text === "" ? [] : text.split(", "), more };
  }

  function addMember(name, away) {
    if (!state.members.has(lower(name))) state.memberTotal += 1;
    state.members.set(lower(name), { name, away: !!away });
  }

  function removeMember(name) {
    if (state.members.delete(lower(name))) state.memberTotal = Math.max(0, state.memberTotal - 1);
  }

  function countRoom(name, delta) {
    const r = state.rooms.get(lower(name));
    if (r && r.count !== null) r.count = Math.max(0, r.count + delta);
  }

  /** Sends `/rooms` or `/who` for the lists only: its answer is not shown. */
  function askQuietly(command) {
    if (isRegistered() && sendRaw("/" + command)) state.asked.push({ command, quiet: true });
  }

  function requestRooms() {
    askQuietly("rooms");
  }

  /** Refreshes the member list soon, at most once per WHO_REFRESH_MS. */
  function requestWhoSoon() {
    if (state.whoTimer !== null) return;
    const delay = Math.max(0, state.lastWhoAt + WHO_REFRESH_MS - Date.now());
    state.whoTimer = setTimeout(() => {
      state.whoTimer = null;
      state.lastWhoAt = Date.now();
      askQuietly("who");
    }, delay);
  }

  /**
   * Whether `text` (a notice) answers a `/rooms` or `/who` the page sent
   * quietly; takes the answered request off the queue either way. The
   * member list that ends a join burst answers nothing.
   */
  function isQuietAnswer(text) {
    let command = null;
    if (RE.rooms.test(text)) command = "rooms";
    else if (RE.who.test(text) && !state.inBurst) command = "who";
    if (command === null || state.asked.length === 0 || state.asked[0].command !== command) return false;
    return state.asked.shift().quiet;
  }

  /** Updates what the page shows from a notice (the text after `* `). */
  function noteNotice(text) {
    let m = RE.joined.exec(text);
    if (m) {
      const [, who, room] = m;
      if (sameName(who, state.me)) {
        if (state.room !== null) countRoom(state.room, -1);
        state.room = room;
        state.members = new Map();
        state.memberTotal = 0;
        addMember(who, false);
        state.inBurst = true;
        setTopic("");
        if (!state.rooms.has(lower(room))) state.rooms.set(lower(room), { name: room, count: 0 });
        countRoom(room, +1);
        renderRoom();
      } else if (sameName(room, state.room)) {
        addMember(who, false);
        countRoom(room, +1);
      }
      renderMembers();
      renderRooms();
      return;
    }
    m = RE.left.exec(text);
    if (m) {
      const [, who, toRoom] = m;
      if (!sameName(who, state.me)) {
        removeMember(who);
        if (state.room !== null) countRoom(state.room, -1);
        if (toRoom !== undefined) {
          if (state.rooms.has(lower(toRoom))) countRoom(toRoom, +1);
          else state.rooms.set(lower(toRoom), { name: toRoom, count: 1 });
        }
        renderMembers();
        renderRooms();
      }
      return;
    }
    m = RE.renamed.exec(text);
    if (m) {
      const [, from, to] = m;
      const old = state.members.get(lower(from));
      state.members.delete(lower(from));
      state.members.set(lower(to), { name: to, away: old ? old.away : false });
      if (sameName(from, state.me)) {
        state.me = to;
        state.wantName = to;
        remember(to);
        setConn("online", "connected as " + to);
      }
      renderMembers();
      return;
    }
    m = RE.who.exec(text);
    if (m) {
      const [, room, count, list] = m;
      if (sameName(room, state.room)) {
        const { items } = parseListing(list);
        state.members = new Map();
        for (const item of items) {
          const away = item.endsWith(" (away)");
          const name = away ? item.slice(0, -7) : item;
          state.members.set(lower(name), { name, away });
        }
        state.memberTotal = Number(count);
        const r = state.rooms.get(lower(room));
        if (r) r.count = state.memberTotal;
        renderMembers();
        renderRooms();
        if (state.inBurst) {
          state.inBurst = false;
          requestRooms();
        }
      }
      return;
    }
    m = RE.rooms.exec(text);
    if (m) {
      const { items } = parseListing(m[2]);
      state.rooms = new Map();
      for (const item of items) {
        const r = /^(.+) \((\d+)\)$/.exec(item);
        if (r) state.rooms.set(lower(r[1]), { name: r[1], count: Number(r[2]) });
      }
      renderRooms();
      return;
    }
    m = RE.topic.exec(text) || RE.topicSet.exec(text);
    if (m) {
      const room = m.length === 3 ? m[1] : m[2];
      const topic = m.length === 3 ? m[2] : m[3];
      if (sameName(room, state.room)) setTopic(topic);
      return;
    }
    m = RE.noTopic.exec(text);
    if (m) {
      if (sameName(m[1], state.room)) setTopic("");
      return;
    }
    m = RE.topicCleared.exec(text);
    if (m) {
      if (sameName(m[2], state.room)) setTopic("");
      return;
    }
    m = RE.summary.exec(text);
    if (m) {
      // A big room counts joins and leaves instead of naming them.
      const [, room, first, verb, also] = m;
      if (sameName(room, state.room)) {
        const joined = verb === "joined" ? Number(first) : 0;
        const left = verb === "left" ? Number(first) : Number(also || 0);
        state.memberTotal = Math.max(state.members.size, state.memberTotal + joined - left);
        const r = state.rooms.get(lower(room));
        if (r) r.count = state.memberTotal;
        renderMembers();
        renderRooms();
        requestWhoSoon();
      }
      return;
    }
    if (RE.away.test(text) || RE.back.test(text)) {
      const me = state.me === null ? undefined : state.members.get(lower(state.me));
      if (me) me.away = RE.away.test(text);
      renderMembers();
    }
  }

  // ---- Connection ------------------------------------------------------

  function isRegistered() {
    return state.ws !== null && state.ws.readyState === WebSocket.OPEN && state.me !== null;
  }

  function setConn(kind, text) {
    el.connState.dataset.state = kind;
    el.connText.textContent = text;
    el.connCountdown.textContent = "";
    el.reconnect.hidden = !(kind === "waiting" || kind === "closed");
    el.reconnect.textContent = kind === "closed" ? "Connect again" : "Reconnect now";
    const online = kind === "online";
    el.send.setAttribute("aria-disabled", String(!online));
    el.app.classList.toggle("is-offline", !online);
  }

  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function connect() {
    clearRetry();
    if (state.ws !== null) return;
    state.prompted = false;
    state.nameSent = false;
    state.me = null;
    state.quitting = false;
    setConn("connecting", state.attempt > 0 ? "reconnecting\u2026" : "connecting\u2026");
    el.loginState.textContent = state.wasRegistered ? "" : "Connecting\u2026";
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      scheduleRetry();
      return;
    }
    state.ws = ws;
    ws.addEventListener("message", (ev) => {
      if (state.ws !== ws || typeof ev.data !== "string") return;
      onLine(ev.data);
    });
    ws.addEventListener("close", (ev) => {
      if (state.ws !== ws) return;
      onClose(ev.code);
    });
  }

  function onClose(code) {
    const wasIn = state.me !== null;
    if (code === CLOSE_TOO_BIG && state.lastSent !== null) {
      // The server takes at most --max-line bytes in one message and closes
      // the connection over a longer one: give the text back to shorten.
      localNote("Your last message was too long for the server and was not sent; it is back in the message box.", "bad");
      if (el.message.value === "") el.message.value = state.lastSent;
    }
    state.lastSent = null;
    state.ws = null;
    state.me = null;
    state.prompted = false;
    state.nameSent = false;
    state.asked = [];
    if (state.whoTimer !== null) clearTimeout(state.whoTimer);
    state.whoTimer = null;
    state.inBurst = false;
    if (state.quitting) {
      setConn("closed", "you left the chat");
      localNote("You left the chat.", "bad");
      return;
    }
    if (wasIn) localNote("Connection lost. Reconnecting\u2026", "bad");
    if (state.wantName === null) {
      // Nobody is waiting to get in (say, a login timeout at the name prompt).
      setConn("offline", "not connected");
      el.loginState.textContent = "";
      el.loginSubmit.disabled = false;
      return;
    }
    scheduleRetry();
  }

  function clearRetry() {
    if (state.retryTimer !== null) clearTimeout(state.retryTimer);
    if (state.countdownTimer !== null) clearInterval(state.countdownTimer);
    state.retryTimer = null;
    state.countdownTimer = null;
  }

  function scheduleRetry() {
    clearRetry();
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    // The status is announced once; the countdown beside it is for the eyes only.
    setConn("waiting", "offline \u2014 retrying");
    if (!state.wasRegistered) el.loginState.textContent = "Cannot reach the server; retrying\u2026";
    const tick = () => {
      const s = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
      el.connCountdown.textContent = " in " + s + " s";
    };
    tick();
    state.countdownTimer = setInterval(tick, 1000);
    state.retryTimer = setTimeout(connect, delay);
  }

  function sendRaw(line) {
    if (state.ws === null || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(line);
    return true;
  }

  function sendName() {
    if (state.wantName !== null && state.prompted && sendRaw(state.wantName)) {
      state.prompted = false;
      state.nameSent = true;
      el.loginSubmit.disabled = true;
      el.loginState.textContent = state.wasRegistered ? "" : "Joining\u2026";
    }
  }

  function remember(name) {
    try {
      localStorage.setItem("chatroom.name", name);
    } catch (_) {
      // Storage may be off; the name is only a convenience.
    }
  }

  function onRegistered(name) {
    const again = state.wasRegistered;
    const backTo = state.room;
    state.me = name;
    state.wantName = name;
    state.wasRegistered = true;
    state.attempt = 0;
    state.takenRetries = 0;
    state.room = null;
    remember(name);
    setConn("online", "connected as " + name);
    el.loginError.textContent = "";
    delete el.loginError.dataset.line;
    el.loginState.textContent = "";
    el.loginSubmit.disabled = false;
    showLogin(false);
    if (again) localNote("Reconnected as " + name + ".", "good");
    else el.message.focus();
    if (again && backTo !== null && lower(backTo) !== "lobby") sendRaw("/join " + backTo);
  }

  /** Handles one line from the server. */
  function onLine(line) {
    if (state.me === null) {
      onLoginLine(line);
      return;
    }
    if (line.startsWith("* ") && isQuietAnswer(line.slice(2))) {
      noteNotice(line.slice(2));
      return;
    }
    const kind = showLine(line);
    if (kind === "notice") noteNotice(line.slice(2));
    if (document.hidden && (kind === "chat" || kind === "action" || kind === "pm")) {
      const last = el.log.lastElementChild;
      if (!last || !last.classList.contains("mine")) {
        state.unread += 1;
        renderTitle();
      }
    }
  }

  /** A line before registration: the prompt, errors, or our join notice. */
  function onLoginLine(line) {
    if (line === "NAME" || line.startsWith("NAME ")) {
      if (state.prompted === false && state.nameSent) {
        // Asked again without an error: what we sent was not taken as a
        // name. Never send it again by ourselves.
        state.wantName = null;
        showLogin(true);
      }
      state.prompted = true;
      state.nameSent = false;
      if (state.wantName !== null) sendName();
      else {
        el.loginSubmit.disabled = false;
        el.loginState.textContent = "";
      }
      return;
    }
    if (line.startsWith("* ")) {
      const m = RE.joined.exec(line.slice(2));
      if (m && sameName(m[1], state.wantName)) {
        onRegistered(m[1]);
        showLine(line);
        noteNotice(line.slice(2));
        return;
      }
    }
    if (line.startsWith("! ")) {
      const text = line.slice(2);
      if (text === "login timeout") return; // the close that follows says it
      el.loginError.textContent = text;
      el.loginError.dataset.line = line;
      if (state.wasRegistered && text.startsWith("name taken") && state.takenRetries < MAX_TAKEN_RETRIES) {
        // Most likely our own connection from before, not yet noticed gone
        // by the server: try again (with backoff) before asking the user.
        state.takenRetries += 1;
        localNote("The name " + state.wantName + " is still taken, perhaps by your old connection; trying again\u2026", "bad");
        state.ws.close();
        return;
      }
      if (RE.busy.test(text)) {
        // The server turned the connection away; it closes and we retry.
        if (state.wasRegistered) localNote("The server says: " + text, "bad");
      } else {
        // The name was refused: wait for the user, never retry it by itself.
        if (state.wantName !== null) el.name.value = state.wantName;
        state.wantName = null;
        setConn("offline", "choose a name");
        showLogin(true);
        el.name.setAttribute("aria-invalid", "true");
        el.name.focus();
        el.name.select();
      }
      el.loginSubmit.disabled = false;
      el.loginState.textContent = "";
      return;
    }
    // Anything else before registering (a /help answer): show it on the card.
    el.loginState.textContent = line.replace(/^\* /, "");
  }

  // ---- The name card -----------------------------------------------------

  function showLogin(show) {
    el.login.hidden = !show;
    el.app.inert = show;
    if (show) el.app.setAttribute("aria-hidden", "true");
    else el.app.removeAttribute("aria-hidden");
  }

  el.loginForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = el.name.value.trim();
    if (name === "" || name.startsWith("/")) {
      // Before registering the server takes /help and /quit as commands.
      el.loginError.textContent = name === "" ? "Please choose a name." : "A name cannot start with /.";
      delete el.loginError.dataset.line;
      el.name.setAttribute("aria-invalid", "true");
      el.name.focus();
      return;
    }
    el.loginError.textContent = "";
    delete el.loginError.dataset.line;
    el.name.removeAttribute("aria-invalid");
    state.wantName = name;
    state.attempt = 0;
    if (state.ws === null) connect();
    else sendName();
  });

  // ---- The composer ------------------------------------------------------

  el.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const line = el.message.value;
    if (line.trim() === "") return;
    if (!isRegistered()) {
      el.connState.classList.remove("nudge");
      void el.connState.offsetWidth; // restart the animation
      el.connState.classList.add("nudge");
      return;
    }
    if (RE.quit.test(line)) state.quitting = true;
    sendRaw(line);
    state.lastSent = line;
    const asking = RE.asking.exec(line);
    if (asking) state.asked.push({ command: lower(asking[1]), quiet: false });
    if (state.sent[state.sent.length - 1] !== line) {
      state.sent.push(line);
      if (state.sent.length > MAX_INPUT_HISTORY) state.sent.shift();
    }
    state.sentIndex = state.sent.length;
    state.draft = "";
    el.message.value = "";
    scrollToBottom();
  });

  el.message.addEventListener("keydown", (ev) => {
    if (ev.isComposing || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowUp") {
      if (state.sentIndex === 0) return;
      if (state.sentIndex === state.sent.length) state.draft = el.message.value;
      state.sentIndex -= 1;
    } else if (ev.key === "ArrowDown") {
      if (state.sentIndex >= state.sent.length) return;
      state.sentIndex += 1;
    } else {
      return;
    }
    ev.preventDefault();
    el.message.value = state.sentIndex === state.sent.length ? state.draft : state.sent[state.sentIndex];
    const end = el.message.value.length;
    el.message.setSelectionRange(end, end);
  });

  el.message.addEventListener("input", () => {
    state.sentIndex = state.sent.length;
  });

  // ---- The sidebar -------------------------------------------------------

  function toggleSidebar(open) {
    el.sidebar.classList.toggle("open", open);
    el.sidebarToggle.setAttribute("aria-expanded", String(open));
  }

  el.sidebarToggle.addEventListener("click", () => {
    const open = !el.sidebar.classList.contains("open");
    toggleSidebar(open);
    if (open) {
      requestRooms();
      const first = el.sidebar.querySelector("button, input");
      if (first) first.focus();
    }
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && el.sidebar.classList.contains("open")) {
      toggleSidebar(false);
      el.sidebarToggle.focus();
    }
  });

  // On a phone the sidebar is a drawer over the chat: a tap beside it closes it.
  document.querySelector("main").addEventListener("click", () => {
    if (el.sidebar.classList.contains("open")) toggleSidebar(false);
  });

  el.rooms.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-room]");
    if (!b) return;
    toggleSidebar(false);
    if (!sameName(b.dataset.room, state.room) && isRegistered()) sendRaw("/join " + b.dataset.room);
    el.message.focus();
  });

  el.roomsRefresh.addEventListener("click", () => requestRooms());

  el.joinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const room = el.joinRoom.value.trim().replace(/^#/, "");
    if (room === "" || !isRegistered()) return;
    sendRaw("/join " + room);
    el.joinRoom.value = "";
    toggleSidebar(false);
    el.message.focus();
  });

  el.members.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-name]");
    if (!b) return;
    toggleSidebar(false);
    if (!sameName(b.dataset.name, state.me)) {
      el.message.value = "/msg " + b.dataset.name + " ";
      state.sentIndex = state.sent.length;
    }
    el.message.focus();
  });

  // ---- Scrolling, visibility, network ------------------------------------

  el.log.addEventListener("scroll", () => {
    if (isAtBottom()) el.jump.hidden = true;
  });

  el.jump.addEventListener("click", () => {
    scrollToBottom();
    el.message.focus();
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      state.unread = 0;
      renderTitle();
      if (state.retryTimer !== null) connect();
    }
  });

  window.addEventListener("online", () => {
    if (state.retryTimer !== null) connect();
  });

  el.reconnect.addEventListener("click", () => {
    if (state.ws !== null) return;
    state.attempt = 0;
    if (state.wantName === null) {
      showLogin(true);
      el.name.focus();
      return;
    }
    connect();
  });

  // Room counts change while nobody asks: refresh them now and then.
  setInterval(() => {
    if (!document.hidden) requestRooms();
  }, ROOMS_REFRESH_MS);

  // ---- Start -------------------------------------------------------------

  try {
    const saved = localStorage.getItem("chatroom.name");
    if (saved) el.name.value = saved;
  } catch (_) {
    // No storage: start with an empty name.
  }
  setConn("offline", "not connected");
  renderRoom();
  showLogin(true);
  el.name.focus();
})();
