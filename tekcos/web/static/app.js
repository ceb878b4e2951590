// The tekcos page: chat over the server's WebSocket (views.js), uploads
// over HTTP (files.js), the last neighbour scan for operators
// (neighbours.js).  This part connects, reconnects and wires the page up.
"use strict";

import { $, CONTROL, lineIds, page, send, sendControl } from "./link.js";
import { activate, drawMembers, drawRooms, output, seen, show, tagOf, view } from "./views.js";
import { askFiles, showFiles, ticket, wireFiles } from "./files.js";
import { showNeighbours, wireNeighbours } from "./neighbours.js";

let scansSeen;
// Reconnecting by itself (a Wi-Fi blip, a server restart): the token that
// continues our session (the server keeps it a while, with what we miss);
// failing that, who we were, in which rooms; and how long to wait before
// the next try (0.5 s, doubling to 10 s).
const FIRST_RETRY = 500;
const LAST_RETRY = 10000;
let resumeToken = null;
let lastNick = null;
let lastJoined = [];
let lastRoom = null;
let retryDelay = FIRST_RETRY;
let filesAskedFor = null;          // the nick whose kept files were asked for
let stayAway = false;              // disconnected by an operator: not again by itself

// -- the connection -----------------------------------------------------------------
function setStatus(text, bad) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("bad", Boolean(bad));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  page.ws = ws;
  ws.onopen = () => {
    if (resumeToken) {
      setStatus("connected: catching up…");
      sendControl({ t: "resume", token: resumeToken });
      return;
    }
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
    retryDelay = Math.min(retryDelay * 2, LAST_RETRY);
  };
  ws.onmessage = (event) => {
    const data = event.data;
    if (data.startsWith(CONTROL)) {
      control(JSON.parse(data.slice(1)));
      return;
    }
    if (data.includes("*** You were disconnected by ")) stayAway = true;
    output(data);
  };
}

function rejoin() {
  // Back in as who we were, in the rooms we were in, talking where we talked,
  // replayed only the lines we missed (when the numbering is the same).
  if (lineIds.epoch === lineIds.connected && Object.keys(lineIds.ids).length) {
    sendControl({ t: "seen", epoch: lineIds.epoch, ids: lineIds.ids });
  }
  send(lastNick);
  for (const name of lastJoined) if (name !== "lobby") send(`/join ${name}`);
  if (lastJoined.length && !lastJoined.includes("lobby")) send("/part lobby");
  if (lastRoom && lastRoom !== lastJoined[lastJoined.length - 1]) send(`/switch ${lastRoom}`);
}

// -- what the server tells the page -------------------------------------------------
function control(message) {
  if (message.t === "hello") lineIds.connected = message.epoch;
  else if (message.t === "token") resumeToken = message.token;
  else if (message.t === "resume") resumed(message);
  else if (message.t === "state") showState(message);
  else if (message.t === "upload") ticket(message);
  else if (message.t === "neighbors") showNeighbours(message);
  else if (message.t === "files") showFiles(message.files);
}

function resumed(answer) {
  if (answer.ok) {
    // The same session: same nick and rooms, and what we missed follows.
    setStatus("connected");
    retryDelay = FIRST_RETRY;
    return;
  }
  resumeToken = null;              // kept no longer (or the server restarted)
  setStatus("connected");
  if (lastNick) rejoin();
}

function showState(next) {
  const movedTo = next.room && next.room !== page.state.room ? next.room : null;
  page.state = next;
  const state = next;
  const joined = Boolean(state.nick);
  if (joined) {
    lastNick = state.nick;
    lastJoined = state.joined.map(([name]) => name);
    lastRoom = state.room;
    retryDelay = FIRST_RETRY;
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
  if (joined && state.nick !== filesAskedFor) {
    filesAskedFor = state.nick;     // files kept for this nick, as it joins
    askFiles();
  }
  $("file").disabled = !state.uploads;
  $("share-open").hidden = !state.share;
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
  if ("Notification" in window && Notification.permission === "default") {
    $("notify").hidden = false;
    $("notify").addEventListener("click", () => {
      Notification.requestPermission().then(() => { $("notify").hidden = true; });
    });
  }
  $("share-open").addEventListener("click", () => {
    // Drawn by the server for its LAN address (a phone cannot use "localhost").
    $("share-code").src = `/share.svg?${Date.now()}`;
    $("share-url").textContent = page.state.share;
    $("share-url").href = page.state.share;
    $("share").showModal();
  });
  $("menu").addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    $("menu").setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.body.classList.remove("menu-open");
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) seen();
  });
  wireFiles();
  wireNeighbours();
  activate("#lobby");
  connect();
}

main();
