// What every part of the page shares: the socket, the server's last state.
"use strict";

export const CONTROL = "\u0000";
export const $ = (id) => document.getElementById(id);

// page.state: the server's last word on who and where we are.
export const page = { ws: null, state: { joined: [], rooms: [], members: [], more: 0 } };

// The newest kept line of each room this page has (tag -> id), and the
// numbering those ids belong to (the server's "hello" names it); sent back
// after a server restart so that only what was missed is replayed.
export const lineIds = { epoch: null, ids: {}, connected: null };

export function send(text) {
  if (page.ws && page.ws.readyState === WebSocket.OPEN) page.ws.send(text);
}

export function sendControl(message) {
  send(CONTROL + JSON.stringify(message));
}
