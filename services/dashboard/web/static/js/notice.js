// notice.js — the dismissible banner (#notice) for API errors and for news
// about the board ("Missed events while away — board reloaded"). One message
// at a time: a new one replaces the old; it stays until dismissed.

import { byId, setAttr, setText, show } from "./dom.js";

/**
 * showNotice shows a message in #notice.
 * @param {string} text
 * @param {"error"|"info"|"reset"} [kind] error: a request failed; info: news;
 *   reset: the board was reloaded after missed events (#notice gets the class
 *   "reset" too). All are announced (role="alert").
 */
export function showNotice(text, kind = "error") {
  const notice = byId("notice");
  setAttr(notice, "data-kind", kind);
  notice.classList.toggle("reset", kind === "reset");
  setText(byId("notice-text"), text);
  show(notice, true);
}

/** hideNotice hides #notice. */
export function hideNotice() {
  show(byId("notice"), false);
}

/**
 * clearNotice hides #notice if it still shows text (a problem that is over),
 * and leaves a newer message alone.
 * @param {string} text
 */
export function clearNotice(text) {
  if (byId("notice-text").textContent === text) hideNotice();
}

/** initNotice wires the dismiss button of #notice. */
export function initNotice() {
  byId("notice-dismiss").addEventListener("click", () => hideNotice());
}
