// taskcard.js — one task on the board: a card element that is created once
// and then updated in place (only what changed is touched, so focus, text
// selection and the log's scroll position survive updates). It holds the
// progress bar, the log panel (new lines appended, at most 500 kept,
// auto-scroll unless the user scrolled up) and the edit form. When a save
// meets a newer revision (409), the form keeps what the user changed, takes
// the current values of the fields they left alone, and shows the current
// value next to each field both changed.

import { el, setAttr, setText, show } from "./dom.js";
import { formatClock, formatDateTime, formatPercent, formatWhen, isActive, statusInfo } from "./format.js";
import { LOG_LINES } from "./board.js";

/** How close to the bottom (px) still counts as "at the bottom". */
const BOTTOM_SLACK = 8;

/**
 * @typedef {object} CardOptions
 * @property {boolean} canWrite show the actions (tasks:write or admin)
 * @property {boolean} canLogs show the log panel (logs:read or admin)
 * @property {(action: "run"|"cancel"|"delete", id: string, button: HTMLButtonElement) => void} onAction
 * @property {(id: string, patch: object, revision: number|null) => Promise<SaveOutcome>} onSave
 */

/**
 * @typedef {object} SaveOutcome what became of an edit
 * @property {boolean} ok saved
 * @property {import("./board.js").Task} [current] on a conflict: the task as it is now
 */

/** The fields of the edit form, with their labels. */
const EDIT_FIELDS = /** @type {const} */ ([["title", "Title"], ["description", "Description"], ["assignee", "Assignee"]]);

/**
 * createCard builds the card of a task; call update() to fill it.
 * @param {import("./board.js").Task} task
 * @param {CardOptions} opts
 * @returns {TaskCard}
 */
export function createCard(task, opts) {
  return new TaskCard(task, opts);
}

/** TaskCard is the element of one task and what it last showed. */
export class TaskCard {
  /** @type {import("./board.js").Task} */
  task;
  #opts;
  #logEpoch = 0;
  #lastLine = 0;
  #follow = true; // the log is scrolled to its bottom: keep it there
  /** @type {import("./board.js").Task|null} */
  #editBase = null;
  #disabled = false;
  /** @type {HTMLButtonElement|null} */
  #saveBtn = null;
  /** @type {HTMLElement|null} */
  #conflictEl = null;

  /**
   * @param {import("./board.js").Task} task
   * @param {CardOptions} opts
   */
  constructor(task, opts) {
    this.task = task;
    this.#opts = opts;
    const id = task.id;
    const titleId = `task-${id}-title`;
    this.titleEl = el("h3", { className: "task-title", attrs: { id: titleId } });
    this.statusIcon = el("span", { className: "task-status-icon", attrs: { "aria-hidden": "true" } });
    this.statusLabel = el("span", { className: "task-status-label" });
    this.statusEl = el("p", { className: "task-status" }, this.statusIcon, this.statusLabel);
    this.metaEl = el("p", { className: "task-meta" });
    this.descEl = el("p", { className: "task-desc", attrs: { hidden: true } });
    this.fill = el("div", { className: "progress-fill" });
    this.bar = el(
      "div",
      {
        className: "progress",
        attrs: { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "aria-label": "Progress", "aria-describedby": titleId },
      },
      this.fill,
    );
    this.percentEl = el("span", { className: "task-percent", attrs: { "aria-hidden": "true" } });
    this.stageEl = el("p", { className: "task-stage" });

    const body = el("div", { className: "task-body" },
      el("div", { className: "task-head" }, this.titleEl, this.statusEl),
      this.metaEl,
      this.descEl,
      el("div", { className: "task-progress" }, this.bar, this.percentEl),
      this.stageEl,
    );

    /** @type {HTMLElement|null} */
    this.logsEl = null;
    /** @type {HTMLButtonElement|null} */
    this.followBtn = null;
    let logs;
    if (opts.canLogs) {
      this.logsEl = el("div", {
        className: "task-logs",
        attrs: { role: "log", "aria-live": "off", "aria-label": "Log", "aria-describedby": titleId, tabindex: "0" },
      });
      this.followBtn = /** @type {HTMLButtonElement} */ (el("button", { className: "logs-follow", text: "↓ new lines", attrs: { type: "button", hidden: true } }));
      this.logsEl.addEventListener("scroll", () => {
        this.#follow = atBottom(this.logsEl);
        if (this.#follow) show(this.followBtn, false);
      }, { passive: true });
      this.followBtn.addEventListener("click", () => this.scrollLogToEnd());
      logs = el("div", { className: "task-logs-wrap" }, this.logsEl, this.followBtn);
    } else {
      logs = el("p", { className: "task-logs-denied", text: "Logs need the logs:read permission" });
    }

    /** @type {Record<string, HTMLButtonElement>} */
    this.buttons = {};
    let actions = null;
    if (opts.canWrite) {
      const mk = (action, text) => {
        const b = /** @type {HTMLButtonElement} */ (el("button", { className: `btn btn-small action-${action}`, text, attrs: { type: "button", "data-action": action, "aria-describedby": titleId } }));
        this.buttons[action] = b;
        return b;
      };
      actions = el("div", { className: "task-actions" }, mk("run", "Run"), mk("cancel", "Cancel"), mk("edit", "Edit"), mk("delete", "Delete"));
      this.buttons.edit.setAttribute("aria-expanded", "false");
      actions.addEventListener("click", (e) => {
        const b = /** @type {HTMLElement} */ (e.target).closest?.("button[data-action]");
        if (!b) return;
        const action = b.getAttribute("data-action");
        if (action === "edit") this.toggleEdit();
        else opts.onAction(/** @type {any} */ (action), this.task.id, /** @type {HTMLButtonElement} */ (b));
      });
    }

    /** @type {HTMLFormElement|null} */
    this.form = null;
    this.el = el("li", { className: "task", attrs: { "data-task-id": id } }, body, logs, actions);
  }

  /**
   * update shows task (and its progress) on the card, touching only what
   * changed.
   * @param {import("./board.js").Task} task
   * @param {import("./board.js").Progress|undefined} progress
   * @param {number} percent 0–100
   */
  update(task, progress, percent) {
    this.task = task;
    setAttr(this.el, "data-status", task.status);
    setAttr(this.el, "data-revision", task.revision === null ? "" : String(task.revision));
    setText(this.titleEl, task.title);
    const info = statusInfo(task.status);
    setText(this.statusIcon, info.icon);
    setText(this.statusLabel, info.label);
    setAttr(this.statusEl, "data-tone", info.tone);

    const meta = [task.assignee ? `Assigned to ${task.assignee}` : "Unassigned"];
    if (task.labels.length) meta.push(`Labels: ${task.labels.join(", ")}`);
    const updated = task.updatedAt || task.createdAt;
    const when = formatWhen(updated);
    if (when) meta.push(`Updated ${when}`);
    setText(this.metaEl, meta.join(" · "));
    setAttr(this.metaEl, "title", updated ? `Created ${formatDateTime(task.createdAt)}${task.createdBy ? ` by ${task.createdBy}` : ""} · updated ${formatDateTime(updated)}` : null);
    setText(this.descEl, task.description);
    show(this.descEl, task.description !== "");

    const pct = String(percent);
    setAttr(this.bar, "aria-valuenow", pct);
    if (this.fill.style.getPropertyValue("--progress") !== String(percent / 100)) this.fill.style.setProperty("--progress", String(percent / 100));
    setText(this.percentEl, formatPercent(percent));
    setText(this.stageEl, progress ? [progress.stage, progress.message].filter(Boolean).join(" — ") : "");

    this.#renderLogs(progress);

    if (this.buttons.cancel) {
      this.buttons.cancel.classList.toggle("is-quiet", !isActive(task.status));
      this.buttons.run.classList.toggle("is-quiet", isActive(task.status));
    }
  }

  /**
   * saveScroll returns the log's scroll position, for restoreScroll after
   * the card moved to another column (moving an element resets it).
   * @returns {number|null}
   */
  saveScroll() {
    return this.logsEl ? this.logsEl.scrollTop : null;
  }

  /**
   * restoreScroll puts the log back where saveScroll found it (or at the
   * bottom when it was following).
   * @param {number|null} top
   */
  restoreScroll(top) {
    if (!this.logsEl) return;
    if (this.#follow) this.logsEl.scrollTop = this.logsEl.scrollHeight;
    else if (top !== null && this.logsEl.scrollTop !== top) this.logsEl.scrollTop = top;
  }

  /** scrollLogToEnd scrolls the log to its last line and follows new lines again. */
  scrollLogToEnd() {
    if (!this.logsEl) return;
    this.#follow = true;
    this.logsEl.scrollTop = this.logsEl.scrollHeight;
    if (this.followBtn) show(this.followBtn, false);
  }

  // #renderLogs appends the lines the card does not show yet, drops the
  // oldest beyond LOG_LINES, and keeps the view at the bottom (following) or
  // where the user left it (then offering the "new lines" button).
  #renderLogs(progress) {
    const box = this.logsEl;
    if (!box) return;
    const epoch = progress?.epoch ?? 0;
    if (epoch !== this.#logEpoch) {
      // A new execution: its log starts empty.
      this.#logEpoch = epoch;
      this.#lastLine = 0;
      box.replaceChildren();
      this.#follow = true;
      show(this.followBtn, false);
    }
    if (!progress || !progress.lines.length) return;
    const lines = progress.lines;
    let i = lines.length;
    while (i > 0 && lines[i - 1].n > this.#lastLine) i--;
    if (i === lines.length) return;
    const frag = document.createDocumentFragment();
    for (let j = i; j < lines.length; j++) frag.append(logLine(lines[j]));
    this.#lastLine = lines[lines.length - 1].n;

    const follow = this.#follow;
    const excess = box.childElementCount + (lines.length - i) - LOG_LINES;
    if (excess > 0) {
      const before = box.scrollHeight;
      for (let k = 0; k < excess && box.firstElementChild; k++) box.firstElementChild.remove();
      // Keep the lines the user is reading where they were.
      if (!follow) box.scrollTop -= before - box.scrollHeight;
    }
    box.append(frag);
    if (follow) box.scrollTop = box.scrollHeight;
    else show(this.followBtn, true);
  }

  /**
   * setDisabled turns the actions (and the edit form's Save) off while the
   * board is not up to date, and on again.
   * @param {boolean} disabled
   */
  setDisabled(disabled) {
    this.#disabled = disabled;
    for (const b of Object.values(this.buttons)) b.disabled = disabled;
    if (this.#saveBtn) this.#saveBtn.disabled = disabled;
  }

  /** toggleEdit opens the edit form (filled with the task) or closes it. */
  toggleEdit() {
    if (this.form && !this.form.hidden) this.closeEdit();
    else this.openEdit();
  }

  /** openEdit shows the edit form with the task's current values. */
  openEdit() {
    if (!this.form) this.form = this.#buildForm();
    this.#fillForm(this.task);
    show(this.form, true);
    this.buttons.edit?.setAttribute("aria-expanded", "true");
    /** @type {HTMLInputElement} */ (this.form.elements.namedItem("title")).focus();
  }

  /**
   * closeEdit hides the edit form.
   * @param {boolean} [focusEdit] move the focus back to the Edit button
   */
  closeEdit(focusEdit = true) {
    if (!this.form || this.form.hidden) return;
    const hadFocus = this.form.contains(document.activeElement);
    show(this.form, false);
    this.buttons.edit?.setAttribute("aria-expanded", "false");
    if (focusEdit && hadFocus) this.buttons.edit?.focus();
  }

  #fillForm(task) {
    this.#editBase = task;
    for (const [name] of EDIT_FIELDS) this.#control(name).value = task[name];
    this.#showConflict([]);
  }

  /** @returns {HTMLInputElement|HTMLTextAreaElement} */
  #control(name) {
    return /** @type {any} */ (/** @type {HTMLFormElement} */ (this.form).elements.namedItem(name));
  }

  // #values reads the form as a save compares it: title and assignee trimmed.
  #values() {
    const v = {};
    for (const [name] of EDIT_FIELDS) v[name] = name === "description" ? this.#control(name).value : this.#control(name).value.trim();
    return v;
  }

  // #merge rebases the form on current after a conflict: a field the user
  // left as it was takes the current value; a field they changed keeps their
  // value, and when someone else changed it too the current value is shown
  // next to the form. The next save is based on current's revision.
  #merge(current) {
    const base = this.#editBase ?? this.task;
    const mine = this.#values();
    /** @type {[string, string][]} */
    const both = [];
    for (const [name, label] of EDIT_FIELDS) {
      if (mine[name] === base[name]) this.#control(name).value = current[name];
      else if (current[name] !== base[name] && current[name] !== mine[name]) both.push([label, current[name]]);
    }
    this.#editBase = current;
    this.#showConflict(both, true);
  }

  /**
   * #showConflict fills (or hides) the note above the form's buttons.
   * @param {[string, string][]} both fields changed here and meanwhile: [label, current value]
   * @param {boolean} [conflict] a save met a newer revision
   */
  #showConflict(both, conflict = false) {
    const box = this.#conflictEl;
    if (!box) return;
    if (!conflict) {
      box.replaceChildren();
      show(box, false);
      return;
    }
    const items = both.map(([label, value]) => el("li", {}, el("span", { className: "edit-conflict-field", text: `${label} now: ` }), value === "" ? el("em", { text: "empty" }) : `“${value}”`));
    box.replaceChildren(
      el("p", { text: both.length ? "Someone else changed this task meanwhile. Your changes are kept in the form; the current values of the fields you both changed:" : "Someone else changed this task meanwhile. Your changes are kept in the form, the other fields show the current values." }),
      items.length ? el("ul", { className: "edit-conflict-list" }, ...items) : null,
      el("p", { text: "Save again to apply your changes." }),
    );
    show(box, true);
  }

  #buildForm() {
    const id = this.task.id;
    const field = (name, label, control) => {
      control.id = `edit-${name}-${id}`;
      control.setAttribute("name", name);
      return el("div", { className: "field" }, el("label", { text: label, attrs: { for: control.id } }), control);
    };
    const title = el("input", { attrs: { type: "text", required: true, maxlength: "200", autocomplete: "off" } });
    const description = el("textarea", { attrs: { rows: "3", maxlength: "10000" } });
    const assignee = el("input", { attrs: { type: "text", maxlength: "64", pattern: "[A-Za-z0-9_\\-]*", autocomplete: "off", "aria-describedby": `edit-assignee-hint-${id}` } });
    const save = /** @type {HTMLButtonElement} */ (el("button", { className: "btn btn-primary btn-small", text: "Save", attrs: { type: "submit" } }));
    const cancel = el("button", { className: "btn btn-small", text: "Cancel", attrs: { type: "button" } });
    const conflict = el("div", { className: "edit-conflict", attrs: { role: "status", hidden: true } });
    const form = /** @type {HTMLFormElement} */ (el("form", { className: "task-edit", attrs: { hidden: true, "aria-label": "Edit task" } },
      field("title", "Title", title),
      field("description", "Description", description),
      field("assignee", "Assignee (user id, empty for none)", assignee),
      el("p", { className: "hint", text: "Letters, digits, _ and -.", attrs: { id: `edit-assignee-hint-${id}` } }),
      conflict,
      el("div", { className: "form-actions" }, save, cancel),
    ));
    this.#saveBtn = save;
    this.#conflictEl = conflict;
    save.disabled = this.#disabled;
    cancel.addEventListener("click", () => this.closeEdit());
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.closeEdit();
      }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const base = this.#editBase ?? this.task;
      const { title: t, description: d, assignee: a } = this.#values();
      const patch = {};
      if (t !== base.title) patch.title = t;
      if (d !== base.description) patch.description = d === "" ? null : d;
      if (a !== base.assignee) patch.assignee = a === "" ? null : a;
      if (!Object.keys(patch).length) return this.closeEdit();
      if (form.getAttribute("aria-busy") === "true" || this.#disabled) return; // saving already, or not now
      form.setAttribute("aria-busy", "true");
      save.setAttribute("aria-busy", "true");
      try {
        const outcome = await this.#opts.onSave(this.task.id, patch, base.revision);
        if (outcome.ok) this.closeEdit();
        else if (outcome.current) this.#merge(outcome.current); // changed meanwhile: keep the user's changes on top of it
      } finally {
        form.removeAttribute("aria-busy");
        save.removeAttribute("aria-busy");
      }
    });
    this.el.append(form);
    return form;
  }
}

function atBottom(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight <= BOTTOM_SLACK;
}

const STREAMS = { LOG_STREAM_STDOUT: "stdout", LOG_STREAM_STDERR: "stderr", LOG_STREAM_SYSTEM: "system" };

function logLine(l) {
  const stream = STREAMS[l.stream] ?? "stdout";
  const when = formatClock(l.timestamp);
  return el("div", {
    className: "log-line",
    text: l.line,
    attrs: { "data-stream": stream, title: when ? `${when} · ${stream}` : stream },
  });
}
