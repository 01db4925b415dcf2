// connection.js — the connection indicator (#conn) and the "log in again"
// button (#relogin). It mirrors the client's state: data-state, a short
// text, and while waiting to reconnect a live countdown from retryInMs.
// The parts that change by themselves (the countdown with its words, the
// latency) are aria-hidden, so the polite live region announces a state
// once when it begins ("Reconnecting", "Connected · <node>"), not every
// tick, and never a sentence with a hole where the number was.

import { el, setAttr, setText, show } from "./dom.js";

const STATES = new Set(["connecting", "connected", "reconnecting", "offline", "unauthorized"]);

/**
 * @typedef {object} ClientState the client's onState value (docs/client.md)
 * @property {string} state
 * @property {string|null} node
 * @property {number|null} latencyMs
 * @property {number|null} retryInMs
 * @property {string|null} error
 */

/**
 * createConnectionIndicator drives #conn and #relogin.
 * @param {HTMLElement} conn #conn
 * @param {HTMLElement} relogin #relogin
 */
export function createConnectionIndicator(conn, relogin) {
  const dot = el("span", { className: "conn-dot", attrs: { "aria-hidden": "true" } });
  const text = el("span", { className: "conn-text" });
  conn.replaceChildren(dot, text);
  let timer = 0;
  let deadline = 0;
  /** @type {ClientState|null} */
  let current = null;

  function stopTimer() {
    if (timer) clearInterval(timer);
    timer = 0;
  }

  // render builds the text of the current state: plain text parts (what a
  // screen reader hears) and the parts that tick (aria-hidden). While the
  // plain parts stay the same only the ticking spans are updated, so
  // nothing is announced again.
  function render() {
    const s = current;
    if (!s) return;
    /** @type {(string|{tick: string})[]} */
    let parts;
    switch (s.state) {
      case "connected":
        parts = [`Connected · ${s.node ?? "edge"}`];
        if (s.latencyMs !== null && s.latencyMs !== undefined) parts.push({ tick: ` · ${s.latencyMs} ms` });
        break;
      case "reconnecting":
        if (deadline) {
          const left = Math.max(0, deadline - Date.now());
          parts = ["Reconnecting", { tick: left > 0 ? ` in ${Math.ceil(left / 1000)} s…` : "…" }];
        } else {
          parts = ["Reconnecting", { tick: "…" }];
        }
        break;
      case "offline":
        parts = ["Offline — waiting for the network"];
        break;
      case "unauthorized":
        parts = ["Signed out"];
        break;
      default:
        parts = ["Connecting…"];
    }
    const want = parts.map((p) => (typeof p === "string" ? p : p.tick)).join("");
    if (text.textContent === want) return;
    // Same structure: update the ticking spans only.
    const spans = [...text.childNodes];
    const same = spans.length === parts.length && parts.every((p, i) => (typeof p === "string" ? spans[i].nodeType === Node.TEXT_NODE && spans[i].textContent === p : spans[i].nodeType === Node.ELEMENT_NODE));
    if (same) {
      parts.forEach((p, i) => typeof p !== "string" && setText(spans[i], p.tick));
      return;
    }
    text.replaceChildren(...parts.map((p) => (typeof p === "string" ? p : el("span", { text: p.tick, attrs: { "aria-hidden": "true" } }))));
  }

  return {
    /**
     * set shows a client state.
     * @param {ClientState} s
     */
    set(s) {
      const state = STATES.has(s.state) ? s.state : "connecting";
      current = { ...s, state };
      setAttr(conn, "data-state", state);
      setAttr(conn, "title", s.error ? `Last disconnect: ${s.error}` : null);
      show(relogin, state === "unauthorized");
      stopTimer();
      deadline = 0;
      if (state === "reconnecting" && typeof s.retryInMs === "number") {
        deadline = Date.now() + s.retryInMs;
        timer = setInterval(() => {
          render();
          if (Date.now() >= deadline) stopTimer();
        }, 250);
      }
      render();
    },
  };
}
