// Room views: each room's lines in its own view, the sidebar of rooms with
// unread and mention badges, the members.  Everything users send is shown
// with textContent, never parsed as HTML.
"use strict";

import { $, lineIds, page, send } from "./link.js";
import { askFiles, offer, pickFileFor } from "./files.js";

const MAX_LINES = 2000;            // per room view

// -- room views ----------------------------------------------------------------------
// A room's lines carry its tag ("#dev"); the server tags every room line
// for the page.  Lines without a tag (replies, private messages) go to the
// view in front.
export const views = new Map();           // tag -> {name, el, unread, mentions}
let active = null;                 // the tag of the view in front
let historyView = null;            // where the lines of a replayed history go

export const tagOf = (name) => (name.startsWith("#") ? name : `#${name}`);

export function view(tag, name) {
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

export function activate(tag) {
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

export function show(tag) {
  // A click on one of your rooms: it comes to the front, and your lines go there.
  activate(tag);
  const v = views.get(tag);
  if (page.state.room && tagOf(page.state.room) !== tag) send(`/switch ${v.name}`);
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

export function output(data) {
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  for (const raw of data.split("\r\n")) {
    if (raw.startsWith("\u001f")) noteId(raw.slice(1));
    else if (raw !== "") place(parse(raw));
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
  drawRooms();
}

// "#dev 123": the newest kept line of #dev that this page has.
function noteId(text) {
  const at = text.lastIndexOf(" ");
  const id = Number(text.slice(at + 1));
  if (at < 1 || !Number.isSafeInteger(id)) return;
  if (lineIds.epoch !== lineIds.connected) {
    lineIds.ids = {};                // another numbering: the old ids mean nothing
    lineIds.epoch = lineIds.connected;
  }
  lineIds.ids[text.slice(0, at)] = id;
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
  const mine = page.state.nick && (line.text.startsWith(`<${page.state.nick}> `) ||
                              line.text.startsWith(`* ${page.state.nick} `));
  if (tag !== active && !line.history && line.kind !== "server" && !mine) {
    v.unread += 1;
    if (mentions(line)) v.mentions += 1;
  }
  if (document.hidden && !mine && !line.history && (mentions(line) || line.kind === "private")) {
    hiddenMentions += 1;
    document.title = `(${hiddenMentions}) tekcos`;
    notify(v.name, line.text);
  }
}

let hiddenMentions = 0;

export function seen() {
  hiddenMentions = 0;
  document.title = "tekcos";
}

// Notifications only once the user asked for them (a click on "Notify me").
function notify(room, text) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const note = new Notification(`tekcos: ${room}`, { body: text.slice(0, 200), tag: "tekcos" });
  note.onclick = () => { window.focus(); note.close(); };
}

function mentions(line) {
  if (!page.state.nick || (line.kind !== "said" && line.kind !== "action")) return false;
  const nick = page.state.nick.replace(/[[\]\\^$.|?*+(){}-]/g, "\\$&");
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
    askFiles();                      // and in the Files list, for later
  }
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
export function drawRooms() {
  const joined = (page.state.joined || []).map(([name, count]) => {
    const v = view(tagOf(name), name);
    return [name, count, v.unread, v.mentions];
  });
  const signature = JSON.stringify([active, joined, page.state.rooms]);
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
  for (const [name, count] of page.state.rooms || []) {
    if (mine.has(name)) continue;
    const item = roomItem(name, count);
    item.title = `join ${name}`;
    item.dataset.room = name;
    others.appendChild(item);
  }
  $("others-title").hidden = others.childElementCount === 0;
}

export function drawMembers() {
  const members = $("members");
  members.replaceChildren();
  for (const nick of page.state.members) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = nick;
    item.appendChild(name);
    if (nick !== page.state.nick && page.state.uploads) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "send-to";
      button.textContent = "Send to…";
      button.title = `send a file to ${nick}, who is asked first`;
      button.addEventListener("click", () => pickFileFor(nick));
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
  if (page.state.more) {
    const item = document.createElement("li");
    item.textContent = `and ${page.state.more} more`;
    members.appendChild(item);
  }
  $("members-title").textContent =
    `Members of ${page.state.room || "…"} (${page.state.members.length + page.state.more})`;
}

