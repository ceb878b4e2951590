// The tekcos page: chat over the server's WebSocket, one view per room,
// uploads over HTTP, the last neighbour scan for operators.  Everything
// users send is shown with textContent, never parsed as HTML.
"use strict";

const CONTROL = "\u0000";
const MAX_LINES = 2000;            // per room view
const FOLD_AFTER = 5000;           // ms a finished upload stays in the list
const $ = (id) => document.getElementById(id);
let ws = null;
let state = { joined: [], rooms: [], members: [], more: 0 };
let scansSeen;
let sendTo = null;                 // the member whose "Send to…" was clicked
// Reconnecting by itself (a server restart, a Wi-Fi blip): who we were, in
// which rooms, and how long to wait before the next try (doubling to 30 s).
let lastNick = null;
let lastJoined = [];
let lastRoom = null;
let retryDelay = 1000;
let stayAway = false;              // disconnected by an operator: not again by itself
const waitingTickets = [];         // uploads asked for, in order: the server answers in order

// -- room views ----------------------------------------------------------------------
// A room's lines carry its tag ("#dev"); the server tags every room line
// for the page.  Lines without a tag (replies, private messages) go to the
// view in front.
const views = new Map();           // tag -> {name, el, unread, mentions}
let active = null;                 // the tag of the view in front
let historyView = null;            // where the lines of a replayed history go

const tagOf = (name) => (name.startsWith("#") ? name : `#${name}`);

function view(tag, name) {
  let v = views.get(tag);
  if (!v) {
    const el = document.createElement("div");
    el.className = "view";
    el.hidden = true;
    $("log").appendChild(el);
    v = { name: name || tag.slice(1), el, unread: 0, mentions: 0 };
    views.set(tag, v);
  }
  if (name) v.name = name;
  return v;
}

function activate(tag) {
  const v = view(tag);
  if (active === tag) return;
  if (active && views.has(active)) views.get(active).el.hidden = true;
  active = tag;
  v.el.hidden = false;
  v.unread = 0;
  v.mentions = 0;
  const log = $("log");
  log.scrollTop = log.scrollHeight;
  drawRooms();
  document.body.classList.remove("menu-open");
}

function show(tag) {
  // A click on one of your rooms: it comes to the front, and your lines go there.
  activate(tag);
  const v = views.get(tag);
  if (state.room && tagOf(state.room) !== tag) send(`/switch ${v.name}`);
}

// -- the connection -----------------------------------------------------------------
function setStatus(text, bad) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("bad", Boolean(bad));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${scheme}//${location.host}/ws`);
  ws.onopen = () => {
    setStatus("connected");
    if (lastNick) rejoin();
  };
  ws.onclose = () => {
    $("line-form").hidden = true;
    $("nick-form").hidden = true;
    if (!lastNick || stayAway) {
      setStatus("disconnected: reload the page to join again", true);
      return;
    }
    setStatus(`disconnected: connecting again in ${retryDelay / 1000} s…`, true);
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  };
  ws.onmessage = (event) => {
    const data = event.data;
    if (data.startsWith(CONTROL)) control(JSON.parse(data.slice(1)));
    else output(data);
  };
}

function rejoin() {
  // Back in as who we were, in the rooms we were in, talking where we talked.
  send(lastNick);
  for (const name of lastJoined) if (name !== "lobby") send(`/join ${name}`);
  if (lastJoined.length && !lastJoined.includes("lobby")) send("/part lobby");
  if (lastRoom && lastRoom !== lastJoined[lastJoined.length - 1]) send(`/switch ${lastRoom}`);
}

function send(text) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(text);
}

function sendControl(message) {
  send(CONTROL + JSON.stringify(message));
}

// -- chat output ----------------------------------------------------------------------
function parse(raw) {
  let text = raw;
  const line = { history: false, time: null, tag: null, kind: "said" };
  if (text.startsWith("(history) ")) { line.history = true; text = text.slice(10); }
  let m = /^\[(\d\d:\d\d)\] /.exec(text);
  if (m) {
    line.time = m[1];
    text = text.slice(8);
    m = /^(#\S+) /.exec(text);
    if (m) { line.tag = m[1]; text = text.slice(m[0].length); }
  }
  if (text.startsWith("-- ")) { line.kind = "notice"; text = text.slice(3); }
  else if (text.startsWith("*** Error: ")) { line.kind = "error"; text = text.slice(4); }
  else if (text.startsWith("***")) { line.kind = "server"; text = text.slice(3).replace(/^ /, ""); }
  else if (/^(-> )?\*[^* ]+\* /.test(text)) line.kind = "private";
  else if (text.startsWith("* ")) line.kind = "action";
  line.text = text;
  return line;
}

function clock() {
  const now = new Date();
  return `${String(now.getHours()).padStart(2, "0")}:${String(now.getMinutes()).padStart(2, "0")}`;
}

// Replies that say where they belong, and what the server's room is now.
function placeReply(line) {
  const text = line.text;
  let m = /^You are in (\S+) \(/.exec(text);
  if (m) { activate(tagOf(m[1])); return tagOf(m[1]); }
  m = /^(?:Topic of|Last \d+ lines of) (\S+?):/.exec(text);
  if (m) return tagOf(m[1]);
  m = /^Now talking in (\S+) \(/.exec(text);
  if (m) { activate(tagOf(m[1])); return tagOf(m[1]); }
  m = /^You left (\S+?)[.;](?: now talking in (\S+)\.)?$/.exec(text);
  if (m && m[2]) { activate(tagOf(m[2])); return tagOf(m[2]); }
  return null;
}

function output(data) {
  if (data.includes("*** You were disconnected by ")) stayAway = true;
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  for (const raw of data.split("\r\n")) {
    if (raw !== "") place(parse(raw));
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
  drawRooms();
}

function place(line) {
  let tag = line.tag;
  if (!tag && line.kind === "server") {
    if (/^Last \d+ lines of /.test(line.text)) tag = historyView = placeReply(line);
    else if (line.text === "End of history.") {
      const v = view(historyView || active || "#lobby");
      v.el.appendChild(divider("now"));
      historyView = null;
      return;
    } else tag = placeReply(line);
  }
  if (line.history && !tag) tag = historyView;
  if (!tag) tag = active || "#lobby";
  const v = view(tag);
  if (line.kind === "server" && /^Last \d+ lines of /.test(line.text)) {
    v.el.appendChild(divider("history"));
    return;
  }
  if (line.kind === "server" && line.text.startsWith("  ")) {
    listItem(v.el, line.text.trim());
    return;
  }
  v.el.appendChild(render(line));
  while (v.el.childElementCount > MAX_LINES) v.el.firstElementChild.remove();
  const mine = state.nick && (line.text.startsWith(`<${state.nick}> `) ||
                              line.text.startsWith(`* ${state.nick} `));
  if (tag !== active && !line.history && line.kind !== "server" && !mine) {
    v.unread += 1;
    if (mentions(line)) v.mentions += 1;
  }
  if (document.hidden && !mine && !line.history && (mentions(line) || line.kind === "private")) {
    hiddenMentions += 1;
    document.title = `(${hiddenMentions}) tekcos`;
  }
}

let hiddenMentions = 0;

function mentions(line) {
  if (!state.nick || (line.kind !== "said" && line.kind !== "action")) return false;
  const nick = state.nick.replace(/[[\]\\^$.|?*+(){}-]/g, "\\$&");
  const body = line.text.replace(/^<[^>]+> |^\* \S+ /, "");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${nick}($|[^\\p{L}\\p{N}_])`, "iu").test(body);
}

function divider(text) {
  const el = document.createElement("div");
  el.className = "divider";
  el.textContent = text;
  return el;
}

function render(line) {
  const row = document.createElement("div");
  row.className = `line ${line.kind}${line.history ? " history" : ""}`;
  if (mentions(line)) row.classList.add("mention");
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = line.time || clock();
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = line.text;
  row.append(time, body);
  const who = /^(\S+ \(\d+\)): (.+)$/.exec(line.kind === "server" ? line.text : "");
  if (who && who[2].includes(", ")) {       // /who: one member per row
    body.textContent = who[1];
    for (const entry of who[2].split(", ")) listItem(null, entry, row);
  }
  if (line.kind === "server") actions(line.text, row);
  return row;
}

// Indented server lines (/help, /rooms, /files...) are a list under the line before.
function listItem(viewEl, text, row) {
  if (/^\/(charset|send) /.test(text)) return;    // terminal-only commands
  let list = row ? row.querySelector(".listing") : viewEl.lastElementChild;
  if (!list || !list.classList.contains("listing")) {
    list = document.createElement("ul");
    list.className = "listing";
    (row || viewEl).appendChild(list);
  }
  const item = document.createElement("li");
  const columns = /^(\S.*?) {2,}(.*)$/.exec(text);     // "/join ROOM    what it does"
  if (columns) {
    const usage = document.createElement("code");
    usage.textContent = columns[1];
    item.append(usage, ` ${columns[2]}`);
  } else {
    item.textContent = text;
  }
  list.appendChild(item);
}

// A file offered to you gets Accept and Decline; one ready for you, Download.
function actions(text, row) {
  const offered = /\/accept (\d+) or \/decline \d+$/.exec(text);
  if (offered) {
    const buttons = ["accept", "decline"].map((verb) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `action ${verb}`;
      button.textContent = verb === "accept" ? "Accept" : "Decline";
      button.addEventListener("click", () => {
        send(`/${verb} ${offered[1]}`);
        for (const b of buttons) b.disabled = true;
      });
      return button;
    });
    row.append(...buttons);
    return;
  }
  const ready = /is ready: tekcos get ([A-Za-z0-9_-]+) --from /.exec(text);
  if (ready) {
    const link = document.createElement("a");
    link.className = "button action download";
    link.href = `/get/${ready[1]}`;
    link.textContent = "Download";
    link.setAttribute("download", "");
    row.appendChild(link);
  }
}

// -- what the server tells the page -------------------------------------------------
function control(message) {
  if (message.t === "state") showState(message);
  else if (message.t === "upload") ticket(message);
  else if (message.t === "neighbors") showNeighbours(message);
}

function showState(next) {
  const movedTo = next.room && next.room !== state.room ? next.room : null;
  state = next;
  const joined = Boolean(state.nick);
  if (joined) {
    lastNick = state.nick;
    lastJoined = state.joined.map(([name]) => name);
    lastRoom = state.room;
    retryDelay = 1000;
  }
  for (const [name] of state.joined) view(tagOf(name), name);
  if (movedTo) activate(tagOf(movedTo));
  $("nick-form").hidden = joined;
  $("line-form").hidden = !joined;
  $("where").textContent = joined ? `${state.nick} in ${state.room}` : "";
  $("topic").textContent = state.topic ? `Topic: ${state.topic}` : "";
  drawRooms();
  drawMembers();
  const scanner = state.operator || state.scan_access === "everyone";
  $("neighbours-panel").hidden = !(joined && scanner && state.scans !== null);
  if (joined && scanner && state.scans !== scansSeen) {
    scansSeen = state.scans;
    sendControl({ t: "neighbors" });
  }
  $("file").disabled = !state.uploads;
}

function badge(count, mention) {
  const el = document.createElement("span");
  el.className = mention ? "badge mention" : "badge";
  el.textContent = mention ? `@${count}` : String(count);
  el.title = mention ? `${count} mention(s) of you` : `${count} unread`;
  return el;
}

function roomItem(name, count) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  const number = document.createElement("span");
  number.className = "count";
  number.textContent = String(count);
  number.title = `${count} here`;
  item.append(label, number);
  item.tabIndex = 0;
  return item;
}

let drawn = "";

// Redrawn only when something shown changed: a list replaced under the
// pointer would swallow the click.
function drawRooms() {
  const joined = (state.joined || []).map(([name, count]) => {
    const v = view(tagOf(name), name);
    return [name, count, v.unread, v.mentions];
  });
  const signature = JSON.stringify([active, joined, state.rooms]);
  if (signature === drawn) return;
  drawn = signature;
  const list = $("joined");
  list.replaceChildren();
  let unreadMentions = 0;
  const mine = new Set();
  for (const [name, count, unread, mentioned] of joined) {
    const tag = tagOf(name);
    mine.add(name);
    const item = roomItem(name, count);
    item.dataset.tag = tag;
    item.classList.toggle("current", tag === active);
    if (mentioned) item.insertBefore(badge(mentioned, true), item.lastChild);
    else if (unread) item.insertBefore(badge(unread, false), item.lastChild);
    unreadMentions += mentioned;
    item.title = `${name}: ${unread} unread`;
    list.appendChild(item);
  }
  const menuBadge = $("menu-badge");
  menuBadge.hidden = unreadMentions === 0;
  menuBadge.textContent = String(unreadMentions);
  const others = $("rooms");
  others.replaceChildren();
  for (const [name, count] of state.rooms || []) {
    if (mine.has(name)) continue;
    const item = roomItem(name, count);
    item.title = `join ${name}`;
    item.dataset.room = name;
    others.appendChild(item);
  }
  $("others-title").hidden = others.childElementCount === 0;
}

function drawMembers() {
  const members = $("members");
  members.replaceChildren();
  for (const nick of state.members) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = nick;
    item.appendChild(name);
    if (nick !== state.nick && state.uploads) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "send-to";
      button.textContent = "Send to…";
      button.title = `send a file to ${nick}, who is asked first`;
      button.addEventListener("click", () => {
        sendTo = nick;
        $("send-to").click();
      });
      item.appendChild(button);
      // Drop a file onto a name: it goes to that person, who is asked first.
      item.title = `drop a file here to send it to ${nick}`;
      item.addEventListener("dragover", (event) => {
        event.preventDefault();
        item.classList.add("target");
      });
      item.addEventListener("dragleave", () => item.classList.remove("target"));
      item.addEventListener("drop", (event) => {
        event.preventDefault();
        event.stopPropagation();
        item.classList.remove("target");
        $("drop").hidden = true;
        if (event.dataTransfer && event.dataTransfer.files.length) {
          offer(event.dataTransfer.files, nick);
        }
      });
    }
    members.appendChild(item);
  }
  if (state.more) {
    const item = document.createElement("li");
    item.textContent = `and ${state.more} more`;
    members.appendChild(item);
  }
  $("members-title").textContent =
    `Members of ${state.room || "…"} (${state.members.length + state.more})`;
}

// -- neighbours (operators) -------------------------------------------------------------
let neighbours = [];
let sortKey = "ip";

function ipOrder(ip) {
  return ip.split(".").map((part) => part.padStart(3, "0")).join(".");
}

function showNeighbours(message) {
  const report = message.report;
  neighbours = report ? report.neighbors : [];
  $("scan-info").textContent = !report
    ? (message.access === "nobody" ? "Scanning is turned off on this server." : "No scan yet.")
    : `${report.neighbors.length} hosts on ${report.network} via ${report.interface} ` +
      `(${report.elapsed_s.toFixed(2)} s)`;
  drawNeighbours();
}

function drawNeighbours() {
  const body = $("neighbours").tBodies[0];
  body.replaceChildren();
  const key = (n) => (sortKey === "ip" ? ipOrder(n.ip) : n[sortKey] === null ? "" : n[sortKey]);
  const rows = [...neighbours].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  for (const n of rows) {
    const row = body.insertRow();
    const notes = [];
    if (n.conflict) notes.push(`conflict: ${n.macs.join(" ")}`);
    if (n.local_admin) notes.push("local-admin");
    if (n.tekcos) notes.push("tekcos");
    const rtt = n.rtt_ms === null ? "-" : `${n.rtt_ms.toFixed(1)} ms`;
    for (const value of [n.ip, n.mac, n.vendor || "-", rtt, notes.join(", ")]) {
      row.insertCell().textContent = value;
    }
  }
  for (const th of $("neighbours").tHead.rows[0].cells) {
    th.classList.toggle("sorted", th.dataset.key === sortKey);
  }
}

// -- files ------------------------------------------------------------------------
function offer(files, recipient) {
  if (!state.nick) return;
  for (const file of files) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = recipient ? `${file.name} → ${recipient}` : file.name;
    const bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = "asking…";
    item.append(label, bar, note);
    $("uploads").appendChild(item);
    askTicket({ file, bar, note, item, recipient });
  }
}

function askTicket(upload) {
  waitingTickets.push(upload);
  const request = { t: "upload", name: upload.file.name, size: upload.file.size };
  if (upload.recipient) request.for = upload.recipient;
  sendControl(request);
}

function finished(upload, text, ok) {
  upload.note.textContent = text;
  upload.item.classList.add(ok ? "done" : "failed");
  if (ok) setTimeout(() => upload.item.remove(), FOLD_AFTER);
  else {
    const close = document.createElement("button");
    close.type = "button";
    close.className = "action";
    close.textContent = "×";
    close.title = "remove from the list";
    close.addEventListener("click", () => upload.item.remove());
    upload.item.appendChild(close);
  }
}

function ticket(answer) {
  const upload = waitingTickets.shift();
  if (!upload) return;
  if (!answer.ok && answer.waiting) {
    // The person has not answered yet: ask again in a second.
    upload.note.textContent = `waiting for ${answer.waiting} to accept…`;
    setTimeout(() => askTicket(upload), 1000);
    return;
  }
  if (!answer.ok) {
    finished(upload, `refused: ${answer.error}`, false);
    return;
  }
  const request = new XMLHttpRequest();
  request.open("POST", answer.url);
  request.setRequestHeader("Content-Type", "application/octet-stream");
  request.upload.onprogress = (event) => {
    upload.bar.value = event.loaded;
    upload.note.textContent = `${Math.round((100 * event.loaded) / (upload.file.size || 1))}%`;
  };
  request.onload = () => {
    let result = {};
    try { result = JSON.parse(request.responseText); } catch (e) { result = {}; }
    if (request.status === 200 && result.ok) {
      upload.bar.value = upload.bar.max;
      finished(upload, result.for
        ? `sent: kept for ${result.for}, who has been told how to fetch it`
        : `sent, stored as ${result.name}`, true);
    } else {
      finished(upload, `failed: ${result.error || request.status}`, false);
    }
  };
  request.onerror = () => finished(upload, "failed: the connection broke", false);
  request.send(upload.file);
}

// -- wiring -----------------------------------------------------------------------
function main() {
  $("nick-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = $("nick").value.trim();
    if (nick) send(nick);
  });
  $("line-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const line = $("line");
    if (line.value) send(line.value);
    line.value = "";
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const room = $("join-room").value.trim();
    if (room) send(`/join ${room}`);
    $("join-room").value = "";
  });
  // One handler per list (the items are redrawn): click or Enter.
  for (const id of ["joined", "rooms"]) {
    const pick = (event) => {
      const item = event.target.closest("li");
      if (!item) return;
      if (item.dataset.tag) show(item.dataset.tag);
      else if (item.dataset.room) send(`/join ${item.dataset.room}`);
    };
    $(id).addEventListener("click", pick);
    $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") pick(event); });
  }
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.body.classList.remove("menu-open");
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { hiddenMentions = 0; document.title = "tekcos"; }
  });
  $("file").addEventListener("change", (event) => {
    offer(event.target.files);
    event.target.value = "";
  });
  $("send-to").addEventListener("change", (event) => {
    if (sendTo) offer(event.target.files, sendTo);
    event.target.value = "";
  });
  $("scan").addEventListener("click", () => send("/scan"));
  for (const th of $("neighbours").tHead.rows[0].cells) {
    if (th.dataset.key) th.addEventListener("click", () => { sortKey = th.dataset.key; drawNeighbours(); });
  }
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    if (state.nick && state.uploads) $("drop").hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth -= 1;
    if (depth <= 0) { depth = 0; $("drop").hidden = true; }
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    $("drop").hidden = true;
    if (event.dataTransfer && event.dataTransfer.files.length) offer(event.dataTransfer.files);
  });
  activate("#lobby");
  connect();
}

main();
