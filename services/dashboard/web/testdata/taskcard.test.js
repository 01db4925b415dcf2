// Unit tests of js/taskcard.js and js/view.js: the edit form after a
// conflict (409) keeps what the user typed, and the actions are turned off
// while the board is not up to date. Run by web/js_test.go.

import { test, ok, equal, deepEqual } from "./harness.js";
import { Board } from "../js/board.js";
import { createCard } from "../js/taskcard.js";
import { createBoardView } from "../js/view.js";

const task = (id, rev, extra = {}) => ({ id, projectId: "p", title: "T" + id, description: "", status: "TASK_STATUS_TODO", assignee: "", labels: [], progress: 0, executionId: "", createdAt: "2025-01-01T00:00:00Z", updatedAt: "", createdBy: "u1", revision: rev, ...extra });
const tick = () => new Promise((resolve) => setTimeout(resolve));

/** editable builds a card in the page with its edit form open; saves are answered by outcomes, in turn. */
function editable(t, outcomes) {
  const saves = [];
  const card = createCard(t, {
    canWrite: true,
    canLogs: false,
    onAction() {},
    async onSave(id, patch, revision) {
      saves.push({ id, patch, revision });
      return outcomes.shift() ?? { ok: true };
    },
  });
  card.update(t, undefined, 0);
  document.body.append(card.el);
  card.openEdit();
  const form = /** @type {HTMLFormElement} */ (card.form);
  const field = (name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
  const conflict = /** @type {HTMLElement} */ (form.querySelector(".edit-conflict"));
  return { card, form, field, conflict, saves, done: () => card.el.remove() };
}

test("conflict: the user's changes stay, untouched fields take the current values", async () => {
  const base = task("a", 1, { title: "Old title", description: "old text", assignee: "u1" });
  const theirs = { ...base, revision: 2, title: "Their title", description: "their text" };
  const { form, field, conflict, saves, done } = editable(base, [{ ok: false, current: theirs }]);
  ok(conflict.hidden, "no conflict note before a save");
  field("title").value = "My title";
  field("assignee").value = "u7";
  form.requestSubmit();
  await tick();
  deepEqual(saves, [{ id: "a", patch: { title: "My title", assignee: "u7" }, revision: 1 }]);
  ok(!form.hidden, "the form stays open");
  deepEqual([field("title").value, field("description").value, field("assignee").value], ["My title", "their text", "u7"]);
  ok(!conflict.hidden, "the conflict is explained in the form");
  deepEqual([...conflict.querySelectorAll("li")].map((li) => li.textContent), ["Title now: “Their title”"], "only the field both changed");

  form.requestSubmit(); // save again: based on their revision, with only my changes
  await tick();
  deepEqual(saves[1], { id: "a", patch: { title: "My title", assignee: "u7" }, revision: 2 });
  ok(form.hidden, "saved: the form closes");
  done();
});

test("conflict: no field changed by both, an empty current value, reopening clears the note", async () => {
  const base = task("b", 4, { title: "Same", description: "d" });
  const { card, form, field, conflict, done } = editable(base, [
    { ok: false, current: { ...base, revision: 5, assignee: "u9" } },
    { ok: false, current: { ...base, revision: 6, description: "" } },
  ]);
  field("title").value = "Mine";
  form.requestSubmit();
  await tick();
  equal(field("assignee").value, "u9", "their change to a field I left alone is taken");
  equal(conflict.querySelectorAll("li").length, 0);
  ok(!conflict.hidden && /changed this task meanwhile/.test(conflict.textContent));
  field("description").value = "mine too";
  form.requestSubmit();
  await tick();
  deepEqual([...conflict.querySelectorAll("li")].map((li) => li.textContent), ["Description now: empty"]);
  equal(field("description").value, "mine too");
  card.closeEdit();
  card.openEdit();
  ok(conflict.hidden, "a new edit starts without the note");
  equal(field("title").value, "Same", "and from the task as the card shows it");
  done();
});

test("a failed save without the current values keeps the form as typed", async () => {
  const base = task("c", 1);
  const { form, field, conflict, saves, done } = editable(base, [{ ok: false }]);
  field("title").value = "Typed";
  form.requestSubmit();
  await tick();
  equal(field("title").value, "Typed");
  ok(conflict.hidden);
  form.requestSubmit();
  await tick();
  equal(saves[1].revision, 1, "still based on the revision the edit began with");
  done();
});

test("setDisabled turns the actions and Save off, and on again", async () => {
  const { card, form, field, saves, done } = editable(task("d", 1), []);
  card.setDisabled(true);
  for (const action of ["run", "cancel", "edit", "delete"]) ok(card.el.querySelector(`button[data-action="${action}"]`).disabled, action);
  ok(form.querySelector('button[type="submit"]').disabled, "Save");
  field("title").value = "not now";
  form.requestSubmit();
  await tick();
  equal(saves.length, 0, "no save while disabled");
  card.setDisabled(false);
  ok(!card.el.querySelector('button[data-action="run"]').disabled);
  ok(!form.querySelector('button[type="submit"]').disabled);
  done();
});

test("view.setDisabled reaches every card, also the cards added later", () => {
  const root = document.createElement("div");
  const view = createBoardView(root, { canWrite: true, canLogs: false, onAction() {}, async onSave() { return { ok: true }; } });
  const b = new Board();
  view.apply(b, b.finishLoad(b.beginLoad(), [task("a", 1, { revision: "1" })]));
  view.setDisabled(true);
  view.apply(b, b.receive({ type: "task_created", metadata: { revision: "2" }, data: { task: task("n", 2, { revision: "2" }) } }, 1));
  const buttons = () => [...root.querySelectorAll("button[data-action]")];
  equal(buttons().length, 8);
  ok(buttons().every((btn) => btn.disabled), "all disabled");
  view.setDisabled(false);
  ok(buttons().every((btn) => !btn.disabled), "all enabled");
});
