// The tekcos page: chat over the server's WebSocket, uploads over HTTP,
// the last neighbour scan.  Everything users send is shown with
// textContent, never parsed as HTML.
"use strict";

const CONTROL = "\u0000";
const MAX_LINES = 2000;
const $ = (id) => document.getElementById(id);
let ws = null;
let state = {};
let scansSeen;
let sendTo = null;           // the member whose "Send to…" was clicked
// Reconnecting by itself (a server restart, a Wi-Fi blip): who we were and
// where, and how long to wait before the next try (doubling up to 30 s).
let lastNick = null;
let lastRoom = null;
let retryDelay = 1000;
let stayAway = false;        // disconnected by an operator: not again by itself
const waitingTickets = [];   // uploads asked for, in order: the server answers in order

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
    if (lastNick) {            // back in as who we were, where we were
      send(lastNick);
      if (lastRoom && lastRoom !== "lobby") send(`/join ${lastRoom}`);
    }
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
    if (data.startsWith(CONTROL)) {
      control(JSON.parse(data.slice(1)));
    } else {
      output(data);
    }
  };
}

function send(text) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(text);
}

function sendControl(message) {
  send(CONTROL + JSON.stringify(message));
}

// -- chat output ----------------------------------------------------------------
function classify(line) {
  if (line.startsWith("*** Error")) return "error";
  if (line.startsWith("***")) return "server";
  if (/^\[\d\d:\d\d\] -- /.test(line)) return "notice";
  return "";
}

function clock() {
  const now = new Date();
  return `[${String(now.getHours()).padStart(2, "0")}:${String(now.getMinutes()).padStart(2, "0")}]`;
}

function output(text) {
  if (text.includes("*** You were disconnected by ")) stayAway = true;
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  for (const line of text.split("\r\n")) {
    if (line === "") continue;
    const row = document.createElement("div");
    row.className = `line ${classify(line)}`;
    if (!/^\[\d\d:\d\d\]/.test(line)) {   // lines without the server's time get ours
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = clock();
      row.appendChild(time);
    }
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = line;
    row.appendChild(body);
    if (line.startsWith("***")) actions(line, row);
    log.appendChild(row);
  }
  while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// A file offered to you gets Accept and Decline; one ready for you, Download.
function actions(line, row) {
  const offered = /\/accept (\d+) or \/decline \d+$/.exec(line);
  if (offered) {
    const buttons = ["accept", "decline"].map((verb) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `action ${verb}`;
      button.textContent = verb === "accept" ? "Accept" : "Decline";
      return button;
    });
    for (const [i, verb] of ["accept", "decline"].entries()) {
      buttons[i].addEventListener("click", () => {
        send(`/${verb} ${offered[1]}`);
        for (const b of buttons) b.disabled = true;
      });
    }
    row.append(...buttons);
    return;
  }
  const ready = /is ready: tekcos get ([A-Za-z0-9_-]+) --from /.exec(line);
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
  state = next;
  const joined = Boolean(state.nick);
  if (joined) {
    lastNick = state.nick;
    lastRoom = state.room;
    retryDelay = 1000;
  }
  $("nick-form").hidden = joined;
  $("line-form").hidden = !joined;
  $("where").textContent = joined ? `${state.nick} in ${state.room}` : "";
  $("topic").textContent = state.topic ? `Topic: ${state.topic}` : "";
  const rooms = $("rooms");
  rooms.replaceChildren();
  for (const [name, count] of state.rooms) {
    const item = document.createElement("li");
    item.classList.toggle("current", name === state.room);
    const label = document.createElement("span");
    label.textContent = name;
    const number = document.createElement("span");
    number.className = "count";
    number.textContent = String(count);
    item.append(label, number);
    item.title = `/join ${name}`;
    item.addEventListener("click", () => send(`/join ${name}`));
    rooms.appendChild(item);
  }
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
  $("members-title").textContent = `Members (${state.members.length + state.more})`;
  if (joined && state.scans !== scansSeen) {
    scansSeen = state.scans;
    sendControl({ t: "neighbors" });
  }
  $("file").disabled = !state.uploads;
}

function showNeighbours(message) {
  const body = $("neighbours").tBodies[0];
  body.replaceChildren();
  const report = message.report;
  if (!report) {
    $("scan-info").textContent = message.access === "nobody"
      ? "Scanning is turned off on this server." : "No scan yet.";
    return;
  }
  $("scan-info").textContent = `${report.neighbors.length} hosts on ${report.network} ` +
    `via ${report.interface} (${report.elapsed_s.toFixed(2)} s)`;
  for (const n of report.neighbors) {
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
    const upload = { file, bar, note, item, recipient };
    askTicket(upload);
  }
}

function askTicket(upload) {
  waitingTickets.push(upload);
  const request = { t: "upload", name: upload.file.name, size: upload.file.size };
  if (upload.recipient) request.for = upload.recipient;
  sendControl(request);
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
    upload.note.textContent = `refused: ${answer.error}`;
    upload.item.classList.add("failed");
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
      upload.note.textContent = result.for
        ? `sent: kept for ${result.for}, who has been told how to fetch it`
        : `sent, stored as ${result.name}`;
      upload.item.classList.add("done");
    } else {
      upload.note.textContent = `failed: ${result.error || request.status}`;
      upload.item.classList.add("failed");
    }
  };
  request.onerror = () => {
    upload.note.textContent = "failed: the connection broke";
    upload.item.classList.add("failed");
  };
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
  $("file").addEventListener("change", (event) => {
    offer(event.target.files);
    event.target.value = "";
  });
  $("send-to").addEventListener("change", (event) => {
    if (sendTo) offer(event.target.files, sendTo);
    event.target.value = "";
  });
  $("scan").addEventListener("click", () => send("/scan"));
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
  connect();
}

main();
