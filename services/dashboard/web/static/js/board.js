// board.js — the task board's state: a store with no DOM and no I/O. It takes
// a snapshot from the task API and the project room's events, and keeps:
//   - tasks by id, each with the revision it was last changed at; an event
//     whose revision is not above the task's is ignored;
//   - tombstones of deleted tasks (their last revision), so a late create or
//     update cannot bring a deleted task back;
//   - progress per task and execution ({executionId, progress, stage,
//     message} and the last 500 log lines); a new execution starts from zero
//     and never goes down; events of a run other than the task's latest
//     (executionId) are ignored;
//   - a buffer: while a load from the API runs, events wait and are applied
//     after the snapshot, in the order they arrived;
//   - the GETs of single tasks on their way (startFetch, finishFetch): each
//     remembers the load generation it started in (an answer that arrives
//     after a newer load began is dropped), and the board remembers the
//     highest revision of the task_updated events seen for a task it does
//     not have, so an answer older than that is not applied: the task is
//     read again;
//   - the last seq received: an event whose seq is not above it is a
//     duplicate, counted (duplicates) and dropped.
// Every change returns a Result that says what the view has to redraw.

/** Log lines kept per task. */
export const LOG_LINES = 500;
/** Events kept while a load runs; older ones are dropped (the load covers them). */
export const BUFFER_LIMIT = 10000;
/** Tombstones kept; the oldest are forgotten first. */
export const TOMBSTONE_LIMIT = 10000;
/** How often a task is read again when the answer is older than an event seen meanwhile; then the answer is applied as it is. */
export const FETCH_RETRIES = 3;
/** Revisions wanted of tasks not on the board that are remembered; the oldest are forgotten first. */
const WANTED_LIMIT = 10000;

/** Zero values of the fields task_updated may change (protojson omits them). */
const ZERO = Object.freeze({
  title: "",
  description: "",
  status: "TASK_STATUS_UNSPECIFIED",
  assignee: "",
  labels: Object.freeze([]),
  progress: 0,
  executionId: "",
});
const MUTABLE = Object.keys(ZERO);

/**
 * @typedef {object} Task a task as the board keeps it (see normalizeTask)
 * @property {string} id
 * @property {string} projectId
 * @property {string} title
 * @property {string} description
 * @property {string} status TaskStatus name, e.g. "TASK_STATUS_RUNNING"
 * @property {string} assignee
 * @property {string[]} labels
 * @property {number} progress 0..1, of the latest run
 * @property {string} executionId the latest run
 * @property {string} createdAt
 * @property {string} updatedAt
 * @property {string} createdBy
 * @property {number|null} revision
 */

/**
 * @typedef {object} LogLine
 * @property {number} n position in the execution's log, from 1 (never reused)
 * @property {string} timestamp
 * @property {string} stream "LOG_STREAM_STDOUT", "LOG_STREAM_STDERR", …
 * @property {string} line
 */

/**
 * @typedef {object} Progress progress of one task's latest execution
 * @property {number} epoch changes whenever a new record replaces the old
 *   one (a new execution), so a view knows to clear its log
 * @property {string} executionId
 * @property {number} progress 0..1, never lower than before in this execution
 * @property {string} stage
 * @property {string} message
 * @property {LogLine[]} lines the last LOG_LINES lines, oldest first
 * @property {number} total lines received in this execution
 */

/**
 * @typedef {object} Activity one task_created / task_updated / task_deleted
 * event, described for the activity list
 * @property {number} seq the room's seq of the event
 * @property {"created"|"updated"|"deleted"} kind
 * @property {string} timestamp
 * @property {string} actor user id, "" when the system made the change
 * @property {string} taskId
 * @property {string} title the task's title (after the change), "" if unknown
 * @property {string} previousTitle the title before the change
 * @property {string[]} fields changed fields (updated)
 * @property {string} status the new status when it changed, else ""
 */

/**
 * @typedef {object} Result what a change did
 * @property {Set<string>} changed ids of tasks (or their progress) that changed
 * @property {Set<string>} removed ids of tasks that left the board
 * @property {Set<string>} fetch ids of unknown tasks to GET from the API
 * @property {Activity[]} activity in seq order
 * @property {boolean} loaded a load finished: redraw everything
 */

/**
 * @typedef {object} FetchTicket a GET of one task on its way (startFetch)
 * @property {string} id the task
 * @property {number} generation the load generation when the GET started
 */

/** @returns {Result} */
function emptyResult() {
  return { changed: new Set(), removed: new Set(), fetch: new Set(), activity: [], loaded: false };
}

/**
 * parseRevision reads a revision: protojson writes uint64 as a decimal
 * string. null when absent or not a non-negative integer.
 * @param {unknown} v
 * @returns {number|null}
 */
export function parseRevision(v) {
  if (v === null || v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

const str = (v) => (typeof v === "string" ? v : "");
const clamp01 = (v) => {
  const n = Number(v);
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
};

function fieldValue(field, v) {
  switch (field) {
    case "labels":
      return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
    case "progress":
      return clamp01(v);
    case "status":
      return str(v) || ZERO.status;
    default:
      return str(v);
  }
}

/**
 * normalizeTask turns a Task of the API or of an event (protojson, zero
 * values omitted) into the board's Task; null without an id.
 * @param {any} raw
 * @returns {Task|null}
 */
export function normalizeTask(raw) {
  if (!raw || typeof raw !== "object" || typeof raw.id !== "string" || raw.id === "") return null;
  const t = {
    id: raw.id,
    projectId: str(raw.projectId),
    createdAt: str(raw.createdAt),
    updatedAt: str(raw.updatedAt),
    createdBy: str(raw.createdBy),
    revision: parseRevision(raw.revision),
  };
  for (const f of MUTABLE) t[f] = fieldValue(f, raw[f]);
  return /** @type {Task} */ (t);
}

const camel = (f) => String(f).replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** Board is the state of one project's board. */
export class Board {
  /** @type {Map<string, Task>} */
  tasks = new Map();
  /** @type {Map<string, {revision: number, title: string}>} */
  tombstones = new Map();
  /** @type {Map<string, Progress>} */
  progress = new Map();
  /** A load from the API runs: events are buffered. */
  loading = false;
  /** A load has completed at least once. */
  loaded = false;
  /** Events received whose seq was not above the last one: dropped. */
  duplicates = 0;

  #generation = 0;
  /** @type {{event: any, seq: number}[]} */
  #buffer = [];
  #epoch = 0;
  /** @type {number|null} the highest seq received since continueAfter */
  #lastSeq = null;
  /** @type {Map<string, FetchTicket>} the GET of each task on its way */
  #fetches = new Map();
  /**
   * The highest revision of the task_updated events of a task not on the
   * board (null: events without revision), and how often it was read again.
   * @type {Map<string, {revision: number|null, refetches: number}>}
   */
  #wanted = new Map();

  /**
   * generation is the latest load's generation: record it when a GET of a
   * task starts and hand it to applyFetched.
   * @returns {number}
   */
  get generation() {
    return this.#generation;
  }

  /**
   * beginLoad starts a load from the API: from now on events are buffered
   * until finishLoad. A newer beginLoad supersedes an older one.
   * @returns {number} the load's generation, for finishLoad
   */
  beginLoad() {
    this.loading = true;
    return ++this.#generation;
  }

  /**
   * isCurrent reports whether generation is the latest load.
   * @param {number} generation
   */
  isCurrent(generation) {
    return generation === this.#generation;
  }

  /**
   * finishLoad replaces the tasks with a snapshot from the API, then applies
   * the buffered events on top of it (by revision). A superseded load
   * changes nothing and returns null.
   * @param {number} generation from beginLoad
   * @param {any[]} rawTasks the API's tasks
   * @returns {Result|null}
   */
  finishLoad(generation, rawTasks) {
    if (generation !== this.#generation) return null;
    this.#wanted.clear(); // the snapshot is newer than every event seen
    const result = emptyResult();
    result.loaded = true;
    /** @type {Map<string, Task>} */
    const next = new Map();
    for (const raw of rawTasks) {
      const t = normalizeTask(raw);
      if (!t) continue;
      const tomb = this.tombstones.get(t.id);
      if (tomb && (t.revision === null || t.revision <= tomb.revision)) continue; // deleted since the page was read
      next.set(t.id, t);
    }
    for (const id of this.tasks.keys()) {
      if (!next.has(id)) {
        result.removed.add(id);
        this.progress.delete(id);
      }
    }
    this.tasks = next;
    for (const t of next.values()) {
      this.#syncExecution(t);
      result.changed.add(t.id);
    }
    this.loading = false;
    this.loaded = true;
    this.#replayBuffer(result);
    return result;
  }

  /**
   * abandonLoad gives a load up (the API could not be read): events are no
   * longer buffered, and those buffered are applied to the board as it is.
   * The board then lacks what the load would have brought: show it as stale
   * and load again. Null when generation is not a load that runs.
   * @param {number} generation from beginLoad
   * @returns {Result|null}
   */
  abandonLoad(generation) {
    if (generation !== this.#generation || !this.loading) return null;
    const result = emptyResult();
    this.loading = false;
    this.#replayBuffer(result);
    return result;
  }

  /**
   * continueAfter says that the room's events continue after seq (a reset,
   * or a new subscription): later events are compared with it, not with the
   * seqs seen before (a recreated stream numbers its events anew).
   * @param {number|null|undefined} seq null or undefined: compare with nothing
   */
  continueAfter(seq) {
    this.#lastSeq = typeof seq === "number" && Number.isFinite(seq) ? seq : null;
  }

  /**
   * receive takes one event of the project room. While a load runs it is
   * buffered (and the result is empty); otherwise it is applied.
   * @param {any} event the event (type, timestamp, userId, metadata, data)
   * @param {number} seq its seq in the room
   * @returns {Result}
   */
  receive(event, seq) {
    const result = emptyResult();
    if (!event || typeof event.type !== "string") return result;
    if (typeof seq === "number" && Number.isFinite(seq)) {
      if (this.#lastSeq !== null && seq <= this.#lastSeq) {
        this.duplicates++; // delivered before: applied (or buffered) already
        return result;
      }
      this.#lastSeq = seq;
    }
    if (this.loading) {
      this.#buffer.push({ event, seq });
      if (this.#buffer.length > BUFFER_LIMIT) this.#buffer.shift();
      return result;
    }
    this.#apply(event, seq, result);
    return result;
  }

  /**
   * startFetch records that the app GETs task id now (Result.fetch named
   * it). Null when a GET of it started in this load generation is still on
   * its way: the events seen meanwhile are remembered, and finishFetch asks
   * for another GET when that answer is older.
   * @param {string} id
   * @returns {FetchTicket|null}
   */
  startFetch(id) {
    const running = this.#fetches.get(id);
    if (running && running.generation === this.#generation) return null;
    const ticket = { id, generation: this.#generation };
    this.#fetches.set(id, ticket);
    return ticket;
  }

  /**
   * finishFetch applies the answer of a GET begun with startFetch (raw: the
   * task, null when the API answered 404). The answer is dropped when a load
   * began since it started (the load brings the task, or knows it is gone).
   * When it is older than a task_updated seen meanwhile, it is not applied
   * and Result.fetch names the task again (at most FETCH_RETRIES times; then
   * the answer is applied as it is).
   * @param {FetchTicket} ticket
   * @param {any} raw
   * @returns {Result}
   */
  finishFetch(ticket, raw) {
    const result = emptyResult();
    const id = ticket.id;
    if (this.#fetches.get(id) === ticket) this.#fetches.delete(id);
    if (ticket.generation !== this.#generation || this.loading) return result;
    if (raw === null) {
      this.#wanted.delete(id); // gone: its task_deleted comes (or came)
      return result;
    }
    const t = normalizeTask(raw);
    if (!t || t.id !== id) return result;
    const want = this.#wanted.get(id);
    if (want && want.revision !== null && t.revision !== null && t.revision < want.revision && want.refetches < FETCH_RETRIES) {
      want.refetches++;
      result.fetch.add(id);
      return result;
    }
    this.#applyTask(t, result);
    return result;
  }

  /**
   * cancelFetch ends a GET that failed: the next task_updated of the task
   * starts another.
   * @param {FetchTicket} ticket
   */
  cancelFetch(ticket) {
    if (this.#fetches.get(ticket.id) === ticket) this.#fetches.delete(ticket.id);
  }

  /**
   * applyFetched applies a task read from the API (GET of one task) unless
   * the board already knows a newer revision or the task was deleted since.
   * @param {any} raw
   * @param {number} [generation] the board's generation when the GET
   *   started: when a load began since, the answer is dropped (it may predate
   *   a deletion that load no longer sees)
   * @returns {Result}
   */
  applyFetched(raw, generation) {
    const result = emptyResult();
    if (generation !== undefined && generation !== this.#generation) return result;
    const t = normalizeTask(raw);
    if (!t || this.loading) return result; // a running load brings it anyway
    this.#applyTask(t, result);
    return result;
  }

  /**
   * task returns a task by id.
   * @param {string} id
   * @returns {Task|undefined}
   */
  task(id) {
    return this.tasks.get(id);
  }

  /**
   * progressOf returns the progress record of a task, if any.
   * @param {string} id
   * @returns {Progress|undefined}
   */
  progressOf(id) {
    return this.progress.get(id);
  }

  /**
   * percent is the progress to show for a task, as an integer 0–100: the
   * execution's progress events, and the task's own progress when it is of
   * the same execution (e.g. 1 once it succeeded). Rounded down, so 100
   * means done, never 99.6 %.
   * @param {string} id
   * @returns {number}
   */
  percent(id) {
    const t = this.tasks.get(id);
    const rec = this.progress.get(id);
    let p = t?.progress ?? 0;
    if (rec) p = t && t.executionId === rec.executionId ? Math.max(rec.progress, t.progress) : rec.progress;
    return Math.floor(clamp01(p) * 100 + 1e-9);
  }

  #apply(event, seq, result) {
    const data = event.data && typeof event.data === "object" ? event.data : {};
    switch (event.type) {
      case "task_created":
        return this.#created(event, data, seq, result);
      case "task_updated":
        return this.#updated(event, data, seq, result);
      case "task_deleted":
        return this.#deleted(event, data, seq, result);
      case "task_progress":
        return this.#progressed(data, result);
      default:
        return undefined; // other types do not concern the board
    }
  }

  #created(event, data, seq, result) {
    const t = normalizeTask(data.task);
    if (!t) return;
    const rev = parseRevision(event.metadata?.revision) ?? t.revision;
    t.revision = rev;
    if (!t.updatedAt) t.updatedAt = str(event.timestamp);
    result.activity.push({
      seq,
      kind: "created",
      timestamp: str(event.timestamp),
      actor: str(event.userId) || str(data.createdBy) || t.createdBy,
      taskId: t.id,
      title: t.title,
      previousTitle: t.title,
      fields: [],
      status: "",
    });
    const tomb = this.tombstones.get(t.id);
    if (tomb && (rev === null || rev <= tomb.revision)) return; // deleted later: stays deleted
    const cur = this.tasks.get(t.id);
    if (cur && cur.revision !== null && rev !== null && rev <= cur.revision) return; // already newer
    this.tombstones.delete(t.id);
    this.#put(t, result);
  }

  #updated(event, data, seq, result) {
    const id = str(data.taskId);
    if (!id) return;
    const rev = parseRevision(event.metadata?.revision);
    const changes = data.changes && typeof data.changes === "object" ? data.changes : {};
    const named = Array.isArray(data.changedFields) && data.changedFields.length ? data.changedFields.map(camel) : Object.keys(changes);
    const fields = named.filter((f) => MUTABLE.includes(f));
    const cur = this.tasks.get(id);
    const tomb = this.tombstones.get(id);
    const before = cur?.title ?? tomb?.title ?? "";
    const activity = {
      seq,
      kind: /** @type {const} */ ("updated"),
      timestamp: str(event.timestamp),
      actor: str(event.userId) || str(data.updatedBy),
      taskId: id,
      title: fields.includes("title") ? str(changes.title) : before,
      previousTitle: before,
      fields,
      status: fields.includes("status") ? fieldValue("status", changes.status) : "",
    };
    result.activity.push(activity);
    if (tomb && (rev === null || rev <= tomb.revision)) return; // deleted: stays deleted
    if (!cur) {
      this.#want(id, rev);
      result.fetch.add(id); // not on the board: read it
      return;
    }
    if (rev !== null && cur.revision !== null && rev <= cur.revision) return; // stale
    const next = { ...cur };
    for (const f of fields) next[f] = fieldValue(f, Object.hasOwn(changes, f) ? changes[f] : ZERO[f]);
    if (rev !== null) next.revision = rev;
    if (event.timestamp) next.updatedAt = str(event.timestamp);
    this.#put(next, result);
  }

  #deleted(event, data, seq, result) {
    const id = str(data.taskId);
    if (!id) return;
    const rev = parseRevision(event.metadata?.revision);
    const cur = this.tasks.get(id);
    const tomb = this.tombstones.get(id);
    const title = cur?.title ?? tomb?.title ?? "";
    result.activity.push({
      seq,
      kind: "deleted",
      timestamp: str(event.timestamp),
      actor: str(event.userId) || str(data.deletedBy),
      taskId: id,
      title,
      previousTitle: title,
      fields: [],
      status: "",
    });
    if (cur && rev !== null && cur.revision !== null && rev <= cur.revision) return; // older than what we show
    const revision = Math.max(rev ?? cur?.revision ?? 0, tomb?.revision ?? 0);
    this.tombstones.delete(id);
    this.tombstones.set(id, { revision, title });
    this.#wanted.delete(id);
    if (this.tombstones.size > TOMBSTONE_LIMIT) this.tombstones.delete(this.tombstones.keys().next().value);
    this.progress.delete(id);
    if (cur) {
      this.tasks.delete(id);
      result.removed.add(id);
    }
  }

  #progressed(data, result) {
    const id = str(data.taskId);
    if (!id) return;
    const task = this.tasks.get(id);
    if (!task && this.tombstones.has(id)) return; // deleted
    const executionId = str(data.executionId);
    // The task's latest run is known and this is another one: a late event of
    // an older run (its reporter flushing after a cancel, or buffered during a
    // load whose snapshot already has the new run). A newer run cannot come
    // first: task_updated with its executionId precedes its job.
    if (task?.executionId && executionId !== task.executionId) return;
    let rec = this.progress.get(id);
    if (!rec || rec.executionId !== executionId) {
      rec = this.#newProgress(executionId);
      this.progress.set(id, rec);
    }
    rec.progress = Math.max(rec.progress, clamp01(data.progress));
    if (data.stage !== undefined || data.message !== undefined) {
      rec.stage = str(data.stage);
      rec.message = str(data.message);
    }
    if (Array.isArray(data.logs) && data.logs.length) {
      for (const l of data.logs) {
        if (!l || typeof l !== "object") continue;
        rec.total++;
        rec.lines.push({ n: rec.total, timestamp: str(l.timestamp), stream: str(l.stream), line: str(l.line) });
      }
      if (rec.lines.length > LOG_LINES) rec.lines.splice(0, rec.lines.length - LOG_LINES);
    }
    result.changed.add(id);
  }

  /** @param {Task} t */
  #put(t, result) {
    this.tasks.set(t.id, t);
    this.#syncExecution(t);
    result.changed.add(t.id);
    const want = this.#wanted.get(t.id);
    if (want && (want.revision === null || (t.revision !== null && t.revision >= want.revision))) this.#wanted.delete(t.id);
  }

  /** @param {Task} t a task read from the API */
  #applyTask(t, result) {
    const tomb = this.tombstones.get(t.id);
    if (tomb && (t.revision === null || t.revision <= tomb.revision)) return;
    const cur = this.tasks.get(t.id);
    if (cur && cur.revision !== null && (t.revision === null || t.revision <= cur.revision)) return;
    this.#put(t, result);
  }

  // #want remembers the highest revision of the task_updated events of a
  // task not on the board (its GET answer must not be older).
  #want(id, rev) {
    const want = this.#wanted.get(id);
    if (!want) {
      this.#wanted.set(id, { revision: rev, refetches: 0 });
      if (this.#wanted.size > WANTED_LIMIT) this.#wanted.delete(this.#wanted.keys().next().value);
    } else if (rev !== null && (want.revision === null || rev > want.revision)) {
      want.revision = rev;
    }
  }

  #replayBuffer(result) {
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const { event, seq } of buffered) this.#apply(event, seq, result);
  }

  // A task whose latest execution is not the one of its progress record has
  // started a new run: its progress and log start again.
  #syncExecution(t) {
    const rec = this.progress.get(t.id);
    if (rec && t.executionId && rec.executionId !== t.executionId) this.progress.set(t.id, this.#newProgress(t.executionId));
  }

  /** @returns {Progress} */
  #newProgress(executionId) {
    return { epoch: ++this.#epoch, executionId, progress: 0, stage: "", message: "", lines: [], total: 0 };
  }
}
