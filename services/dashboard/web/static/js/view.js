// view.js — the board in the page: the status columns inside #board and one
// card per task id (taskcard.js). It redraws only the tasks a change names,
// moves a card only when its column or place changes, and keeps the focus
// and the log's scroll position when it does. While the board is not up to
// date (setDisabled) the cards' actions are turned off.

import { el, setText } from "./dom.js";
import { COLUMNS, columnOf } from "./format.js";
import { createCard } from "./taskcard.js";

/**
 * compareTasks orders the cards of a column: newest first (createdAt, then
 * id, which the API assigns in creation order).
 * @param {import("./board.js").Task} a
 * @param {import("./board.js").Task} b
 * @returns {number}
 */
export function compareTasks(a, b) {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  if (a.id === b.id) return 0;
  return a.id < b.id ? 1 : -1;
}

/**
 * createBoardView draws the board into root (#board).
 * @param {HTMLElement} root
 * @param {import("./taskcard.js").CardOptions} cardOptions
 */
export function createBoardView(root, cardOptions) {
  /** @type {Map<string, {list: HTMLElement, count: HTMLElement}>} */
  const columns = new Map();
  for (const c of COLUMNS) {
    const headingId = `column-${c.key}`;
    const count = el("span", { className: "column-count", text: "0" });
    const list = el("ol", { className: "column-tasks", attrs: { "aria-labelledby": headingId } });
    root.append(
      el("section", { className: "column", attrs: { "data-column": c.key } },
        el("h2", { className: "column-title", attrs: { id: headingId } }, el("span", { text: c.title }), " ", count,
          el("span", { className: "visually-hidden", text: " tasks" })),
        list,
      ),
    );
    columns.set(c.key, { list, count });
  }

  /** @type {Map<string, import("./taskcard.js").TaskCard>} */
  const cards = new Map();
  let disabled = false;

  function updateCounts() {
    for (const { list, count } of columns.values()) setText(count, String(list.childElementCount));
  }

  // place puts a card at its place (column, order), moving it only when needed.
  function place(board, card) {
    const task = card.task;
    const { list } = /** @type {{list: HTMLElement}} */ (columns.get(columnOf(task.status)));
    let ref = null;
    for (let child = list.firstElementChild; child; child = child.nextElementSibling) {
      if (child === card.el) continue;
      const other = board.task(child.getAttribute("data-task-id"));
      if (other && compareTasks(task, other) < 0) {
        ref = child;
        break;
      }
    }
    if (card.el.parentElement === list && card.el.nextElementSibling === ref) return;
    const active = card.el.isConnected && card.el.contains(document.activeElement) ? /** @type {HTMLElement} */ (document.activeElement) : null;
    const scroll = card.saveScroll();
    if (card.el.isConnected && typeof list.moveBefore === "function") {
      try {
        list.moveBefore(card.el, ref); // keeps focus and state where supported
      } catch {
        list.insertBefore(card.el, ref);
      }
    } else {
      list.insertBefore(card.el, ref);
    }
    card.restoreScroll(scroll);
    if (active && document.activeElement !== active) active.focus({ preventScroll: true });
  }

  function upsert(board, id) {
    const task = board.task(id);
    if (!task) return remove(id);
    let card = cards.get(id);
    if (!card) {
      card = createCard(task, cardOptions);
      if (disabled) card.setDisabled(true);
      cards.set(id, card);
    }
    card.update(task, board.progressOf(id), board.percent(id));
    place(board, card);
  }

  function remove(id) {
    const card = cards.get(id);
    if (!card) return;
    cards.delete(id);
    const hadFocus = card.el.contains(document.activeElement);
    card.el.remove();
    if (hadFocus) root.focus({ preventScroll: true }); // do not drop the focus on <body>
  }

  return {
    /**
     * apply redraws what a board Result names (everything after a load).
     * @param {import("./board.js").Board} board
     * @param {import("./board.js").Result} result
     */
    apply(board, result) {
      for (const id of result.removed) remove(id);
      if (result.loaded) {
        for (const id of [...cards.keys()]) if (!board.task(id)) remove(id);
        for (const id of board.tasks.keys()) upsert(board, id);
      } else {
        for (const id of result.changed) upsert(board, id);
      }
      updateCounts();
    },

    /**
     * setDisabled turns the actions of every card off (the board is not up
     * to date) or on again.
     * @param {boolean} value
     */
    setDisabled(value) {
      if (disabled === value) return;
      disabled = value;
      for (const card of cards.values()) card.setDisabled(value);
    },

    /**
     * card returns the card of a task, if it is shown.
     * @param {string} id
     */
    card(id) {
      return cards.get(id);
    },
  };
}
