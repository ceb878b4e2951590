// Files from the page: picked, dropped on the page or on a member; a ticket
// over the WebSocket first, then the upload over HTTP with its progress.
"use strict";

import { $, page, sendControl } from "./link.js";

const FOLD_AFTER = 5000;           // ms a finished upload stays in the list
const waitingTickets = [];         // uploads asked for, in order: the server answers in order
let sendTo = null;                 // the member whose "Send to…" was clicked

export function pickFileFor(nick) {
  sendTo = nick;
  $("send-to").click();
}

// -- files ------------------------------------------------------------------------
export function offer(files, recipient) {
  if (!page.state.nick) return;
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

export function ticket(answer) {
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

// -- files kept for you -----------------------------------------------------------------
export function askFiles() {
  sendControl({ t: "files" });
}

function megabytes(size) {
  return size >= 1e6 ? `${(size / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(size / 1e3))} KB`;
}

// The files the server keeps for you, each a download link (the list the
// server sends replaces the one shown).
export function showFiles(files) {
  const list = $("files");
  list.replaceChildren();
  for (const file of Array.isArray(files) ? files : []) {
    const item = document.createElement("li");
    // A file kept on another node (or on its way here) has no address on
    // this server: its name, and what the server says of it.
    const link = document.createElement(file.url ? "a" : "span");
    if (file.url) {
      link.href = file.url;
      link.setAttribute("download", "");
    }
    link.textContent = file.name;
    if (file.sha256) link.title = `SHA-256 ${file.sha256}`;
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = ` ${megabytes(file.size)} from ${file.sender}` +
      (file.note ? ` (${file.note})` : "");
    item.append(link, note);
    list.appendChild(item);
  }
  const none = list.children.length === 0;
  list.hidden = none;
  $("files-title").hidden = none;
}

export function wireFiles() {
  $("file").addEventListener("change", (event) => {
    offer(event.target.files);
    event.target.value = "";
  });
  $("send-to").addEventListener("change", (event) => {
    if (sendTo) offer(event.target.files, sendTo);
    event.target.value = "";
  });
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    if (page.state.nick && page.state.uploads) $("drop").hidden = false;
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
}
