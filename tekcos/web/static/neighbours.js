// The last LAN scan, for operators: a table sortable by column.
"use strict";

import { $, send } from "./link.js";

let neighbours = [];
let sortKey = "ip";

function ipOrder(ip) {
  return ip.split(".").map((part) => part.padStart(3, "0")).join(".");
}

export function showNeighbours(message) {
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


export function wireNeighbours() {
  $("scan").addEventListener("click", () => send("/scan"));
  for (const th of $("neighbours").tHead.rows[0].cells) {
    if (th.dataset.key) {
      th.addEventListener("click", () => { sortKey = th.dataset.key; drawNeighbours(); });
    }
  }
}
