// newtask.js — the "new task" form (#new-task): a title (required) and,
// under "More fields", a description and an assignee. It only sends the
// request; the task appears on the board when its task_created event comes.

import { byId } from "./dom.js";

/**
 * initNewTaskForm wires #new-task.
 * @param {(fields: {title: string, description?: string, assignee?: string}) => Promise<boolean>} onCreate
 *   creates the task; resolves true on success (the form is then cleared)
 */
export function initNewTaskForm(onCreate) {
  const form = /** @type {HTMLFormElement} */ (byId("new-task"));
  const title = /** @type {HTMLInputElement} */ (byId("new-task-title"));
  const description = /** @type {HTMLTextAreaElement} */ (byId("new-task-description"));
  const assignee = /** @type {HTMLInputElement} */ (byId("new-task-assignee"));
  const submit = /** @type {HTMLButtonElement} */ (byId("new-task-submit"));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return; // sending already
    const fields = { title: title.value.trim() };
    if (!fields.title) {
      title.setCustomValidity("Give the task a title.");
      title.reportValidity();
      return;
    }
    const d = description.value.trim();
    const a = assignee.value.trim();
    if (d) fields.description = d;
    if (a) fields.assignee = a;
    form.setAttribute("aria-busy", "true");
    submit.setAttribute("aria-busy", "true");
    try {
      if (await onCreate(fields)) {
        form.reset();
        title.focus();
      }
    } finally {
      form.removeAttribute("aria-busy");
      submit.removeAttribute("aria-busy");
    }
  });
  title.addEventListener("input", () => title.setCustomValidity(""));
}
