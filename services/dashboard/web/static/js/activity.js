// activity.js — the recent activity list (#activity): one entry per
// task_created / task_updated / task_deleted event received from the edge,
// keyed by the event's seq (never two entries for one seq), newest first,
// the last 100 kept. A record whose seq was shown already is dropped and
// counted in the list's data-duplicates (the edge client delivers every
// event once, so it stays "0").

import { el } from "./dom.js";
import { formatClock, statusInfo } from "./format.js";

/** Entries kept. */
export const ACTIVITY_LIMIT = 100;

const FIELD_NAMES = {
  title: "title",
  description: "description",
  status: "status",
  assignee: "assignee",
  labels: "labels",
  progress: "progress",
  executionId: "run",
};

const quote = (title, id) => (title ? `“${title}”` : `task ${id}`);

/** How a status change reads: [with an actor, without one]. */
const STATUS_PHRASES = {
  TASK_STATUS_TODO: ["moved %t back to To do", "%t is back in To do"],
  TASK_STATUS_QUEUED: ["queued %t", "%t was queued"],
  TASK_STATUS_RUNNING: ["started %t", "%t started running"],
  TASK_STATUS_SUCCEEDED: ["marked %t as succeeded", "%t succeeded"],
  TASK_STATUS_FAILED: ["marked %t as failed", "%t failed"],
  TASK_STATUS_CANCELLED: ["cancelled %t", "%t was cancelled"],
};

/**
 * describe turns an activity record into a sentence, e.g.
 * `u1 created “Build the release”`.
 * @param {import("./board.js").Activity} a
 * @returns {string}
 */
export function describe(a) {
  const who = a.actor;
  const task = quote(a.title, a.taskId);
  switch (a.kind) {
    case "created":
      return `${who || "Someone"} created ${task}`;
    case "deleted":
      return `${who || "Someone"} deleted ${task}`;
    default: {
      if (a.status === "TASK_STATUS_QUEUED" && a.fields.includes("executionId")) return `${who || "Someone"} started a run of ${task}`;
      const parts = [];
      if (a.fields.includes("title") && a.previousTitle && a.previousTitle !== a.title) parts.push(`renamed ${quote(a.previousTitle, a.taskId)} to ${task}`);
      const others = a.fields.filter((f) => f !== "title" && f !== "status" && f !== "progress" && f !== "executionId").map((f) => FIELD_NAMES[f] ?? f);
      if (others.length) parts.push(`changed the ${others.join(", ")} of ${task}`);
      if (a.status) {
        const [withActor, alone] = STATUS_PHRASES[a.status] ?? [`set %t to ${statusInfo(a.status).label}`, `%t is now ${statusInfo(a.status).label}`];
        if (!who && !parts.length) return alone.replace("%t", task);
        parts.push(withActor.replace("%t", task));
      }
      if (!parts.length) parts.push(`updated ${task}`);
      return `${who || "The system"} ${parts.join(" and ")}`;
    }
  }
}

/**
 * createActivityList manages the entries of list (#activity).
 * @param {HTMLElement} list an <ol>
 */
export function createActivityList(list) {
  /** @type {Set<number>} */
  const seen = new Set();
  let duplicates = 0;
  list.setAttribute("data-duplicates", "0");

  return {
    /**
     * add shows activity records; a seq already shown is skipped (and
     * counted in data-duplicates).
     * @param {import("./board.js").Activity[]} records
     */
    add(records) {
      for (const a of records) {
        if (typeof a.seq !== "number") continue;
        if (seen.has(a.seq)) {
          duplicates++;
          list.setAttribute("data-duplicates", String(duplicates));
          continue;
        }
        seen.add(a.seq);
        const item = el("li", { className: `activity-item activity-${a.kind}`, attrs: { "data-seq": String(a.seq) } },
          el("span", { className: "activity-text", text: describe(a) }),
          " ",
          a.timestamp ? el("time", { className: "activity-time", text: formatClock(a.timestamp), attrs: { datetime: a.timestamp } }) : null,
        );
        // Newest (highest seq) first.
        let ref = list.firstElementChild;
        while (ref && Number(ref.getAttribute("data-seq")) > a.seq) ref = ref.nextElementSibling;
        list.insertBefore(item, ref);
      }
      while (list.childElementCount > ACTIVITY_LIMIT) {
        const last = /** @type {Element} */ (list.lastElementChild);
        last.remove(); // its seq stays in `seen`: an old event never comes back
      }
      if (seen.size > ACTIVITY_LIMIT * 50) {
        // Forget seqs far below what is shown (they are never delivered again).
        const min = Number(list.lastElementChild?.getAttribute("data-seq") ?? 0);
        for (const s of seen) if (s < min) seen.delete(s);
      }
    },

    /**
     * continueAfter says that the room's events continue after seq (a reset
     * or a new subscription). Only a recreated stream numbers its events
     * anew from below what is shown: the entries above seq belong to the old
     * stream and are removed, so the new events are not taken for
     * duplicates.
     * @param {number|null|undefined} seq
     */
    continueAfter(seq) {
      if (typeof seq !== "number" || !Number.isFinite(seq)) return;
      for (const s of seen) if (s > seq) seen.delete(s);
      for (const item of [...list.children]) if (Number(item.getAttribute("data-seq")) > seq) item.remove();
    },
  };
}
