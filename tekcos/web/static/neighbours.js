// The last LAN scan, for operators: a table sortable by column.
"use strict";

import { $, send } from "./link.js";

let neighbours = [];
let sortKey = "ip";

function ipOrder(ip) {
  // Devices seen on IPv6 only have no IPv4 address: they sort last.
  return ip ? ip.split(".").map((part) => part.padStart(3, "0")).join(".") : "~";
}

export function showNeighbours(message) {
  const report = message.report;
  neighbours = report ? report.neighbors : [];
  $("scan-info").textContent = !report
    ? (message.access === "nobody" ? "Scanning is turned off on this server." : "No scan yet.")
    : `${report.neighbors.length} hosts on ` +
      // A link without IPv4 was looked at on IPv6 alone.
      (report.network ? `${report.network} via ${report.interface}`
        : `${report.interface} (no IPv4 address there: IPv6 only)`) +
      ` (${report.elapsed_s.toFixed(2)} s)` + ipv6Summary(report);
  drawNeighbours();
}

function ipv6Summary(report) {
  if (!report.ipv6) return "";
  if (report.ipv6.problem) return `; IPv6: ${report.ipv6.problem}`;
  const withV6 = report.neighbors.filter((n) => n.ipv6 && n.ipv6.length).length;
  return `; ${withV6} with IPv6`;
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
    const address = row.insertCell();
    address.textContent = n.ip || "-";
    for (const v6 of n.ipv6 || []) {
      const line = document.createElement("div");
      line.className = "v6";
      line.textContent = v6.address;
      line.title = `${v6.scope}, ${v6.kind}`;
      address.append(line);
    }
    for (const value of [n.mac, n.vendor || "-", rtt, notes.join(", ")]) {
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
