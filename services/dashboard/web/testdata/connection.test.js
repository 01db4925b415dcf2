// Unit tests of js/connection.js: the connection indicator (#conn) shows a
// live countdown, while a screen reader hears each state once ("Reconnecting",
// not "Reconnecting in s…"). Run by web/js_test.go.

import { test, ok, equal } from "./harness.js";
import { createConnectionIndicator } from "../js/connection.js";

/** spoken is the text outside aria-hidden parts: what the live region announces. */
function spoken(node) {
  let text = "";
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) text += child.textContent;
    else if (child.nodeType === Node.ELEMENT_NODE && child.getAttribute("aria-hidden") !== "true") text += spoken(child);
  }
  return text;
}

/** textNodes lists the text nodes a screen reader reads, to see whether they were replaced. */
function textNodes(node) {
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => (n.parentElement.closest('[aria-hidden="true"]') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  return nodes;
}

function indicator() {
  const conn = document.createElement("div");
  const relogin = document.createElement("button");
  return { conn, relogin, ind: createConnectionIndicator(conn, relogin) };
}

const state = (s) => ({ state: "connecting", node: null, latencyMs: null, retryInMs: null, error: null, ...s });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("reconnecting: the countdown is visible, a screen reader hears Reconnecting", () => {
  const { conn, ind } = indicator();
  ind.set(state({ state: "reconnecting", retryInMs: 4200, error: "1006 connection lost" }));
  equal(conn.getAttribute("data-state"), "reconnecting");
  equal(conn.textContent, "Reconnecting in 5 s…");
  equal(spoken(conn), "Reconnecting");
  equal(conn.getAttribute("title"), "Last disconnect: 1006 connection lost");
  ind.set(state({ state: "connected", node: "n1" })); // stops the timer
});

test("reconnecting: the ticking and the attempts announce nothing new", async () => {
  const { conn, ind } = indicator();
  ind.set(state({ state: "connected", node: "n1", latencyMs: 12 }));
  equal(conn.textContent, "Connected · n1 · 12 ms");
  equal(spoken(conn), "Connected · n1");
  ind.set(state({ state: "reconnecting", retryInMs: 1100 }));
  const heard = textNodes(conn);
  equal(heard.map((n) => n.textContent).join(""), "Reconnecting");
  equal(conn.textContent, "Reconnecting in 2 s…");
  await sleep(400);
  equal(conn.textContent, "Reconnecting in 1 s…", "the countdown ticks");
  ind.set(state({ state: "reconnecting", retryInMs: null })); // trying
  equal(conn.textContent, "Reconnecting…");
  ind.set(state({ state: "reconnecting", retryInMs: 2000 })); // failed again
  equal(conn.textContent, "Reconnecting in 2 s…");
  const now = textNodes(conn);
  ok(now.length === heard.length && now.every((n, i) => n === heard[i]), "the spoken text node is never replaced within the state");
  ind.set(state({ state: "connected", node: "n2", latencyMs: 7 }));
  equal(spoken(conn), "Connected · n2");
});

test("other states are spoken as they read; unauthorized shows the relogin button", () => {
  const { conn, relogin, ind } = indicator();
  for (const [s, text] of [["connecting", "Connecting…"], ["offline", "Offline — waiting for the network"], ["unauthorized", "Signed out"], ["bogus", "Connecting…"]]) {
    ind.set(state({ state: s }));
    equal(conn.textContent, text, s);
    equal(spoken(conn), text, s);
    equal(relogin.hidden, s !== "unauthorized", `relogin hidden in ${s}`);
  }
});
