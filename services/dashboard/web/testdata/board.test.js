// Unit tests of js/board.js, the board's state store (see its doc comments
// and services/dashboard/README.md). Run by web/js_test.go.

import { test, ok, equal, notEqual, deepEqual } from "./harness.js";
import { Board, LOG_LINES, BUFFER_LIMIT, TOMBSTONE_LIMIT, FETCH_RETRIES, normalizeTask, parseRevision } from "../js/board.js";

const task = (id, rev, extra = {}) => ({ id, projectId: "p", title: "T" + id, status: "TASK_STATUS_TODO", revision: String(rev), createdAt: "2025-01-01T00:00:00Z", ...extra });
const created = (t) => ({ type: "task_created", timestamp: "2025-01-01T00:00:01Z", userId: "u1", metadata: { revision: t.revision }, data: { task: t, createdBy: "u1" } });
const updated = (id, rev, changes, fields, userId = "u1") => ({ type: "task_updated", timestamp: "2025-01-01T00:00:02Z", userId, metadata: { revision: String(rev) }, data: { taskId: id, changes, changedFields: fields ?? Object.keys(changes), updatedBy: userId } });
const deleted = (id, rev) => ({ type: "task_deleted", timestamp: "2025-01-01T00:00:03Z", userId: "u1", metadata: { revision: String(rev) }, data: { taskId: id, deletedBy: "u1" } });
const progress = (id, exec, p, logs = [], stage) => ({ type: "task_progress", timestamp: "x", metadata: {}, data: { taskId: id, executionId: exec, ...(p ? { progress: p } : {}), ...(stage ? { stage } : {}), ...(logs.length ? { logs: logs.map((l) => ({ timestamp: "x", stream: "LOG_STREAM_STDOUT", line: l })) } : {}) } });
const QUEUE = ["status", "executionId", "progress"]; // what POST …/run changes
const loaded = (tasks) => {
  const b = new Board();
  b.finishLoad(b.beginLoad(), tasks);
  return b;
};

// ---- ported from the node:test draft ----

test("buffer while loading, apply by revision after", () => {
  const b = new Board();
  const g = b.beginLoad();
  equal(b.receive(updated("a", 5, { title: "new" }), 10).changed.size, 0); // buffered
  b.receive(updated("a", 3, { title: "old" }), 11); // older than the one before
  b.receive(created(task("c", 7)), 12);
  const r = b.finishLoad(g, [task("a", 4), task("b", 2)]);
  ok(r.loaded);
  equal(b.task("a").title, "new");
  equal(b.task("a").revision, 5);
  equal(b.task("c").title, "Tc");
  deepEqual(r.activity.map((a) => a.seq), [10, 11, 12]);
  equal(b.loading, false);
});

test("superseded load is ignored", () => {
  const b = new Board();
  const g1 = b.beginLoad();
  const g2 = b.beginLoad();
  ok(!b.isCurrent(g1) && b.isCurrent(g2));
  equal(b.finishLoad(g1, [task("x", 1)]), null);
  equal(b.loading, true);
  b.finishLoad(g2, [task("y", 1)]);
  ok(!b.task("x") && b.task("y"));
});

test("tombstone prevents resurrection", () => {
  const b = loaded([task("a", 4)]);
  const r = b.receive(deleted("a", 6), 1);
  ok(r.removed.has("a"));
  b.receive(created(task("a", 3)), 2);
  equal(b.task("a"), undefined);
  const u = b.receive(updated("a", 5, { title: "zombie" }), 3);
  equal(u.fetch.size, 0);
  equal(b.task("a"), undefined);
  // a load that read the task before the delete does not bring it back
  b.finishLoad(b.beginLoad(), [task("a", 5)]);
  equal(b.task("a"), undefined);
  // a newer create (id reused) does
  b.receive(created(task("a", 9)), 4);
  equal(b.task("a").revision, 9);
});

test("update of unknown task asks for a fetch; fetched applies by revision", () => {
  const b = loaded([]);
  const r = b.receive(updated("z", 3, { title: "z" }), 1);
  ok(r.fetch.has("z"));
  b.applyFetched(task("z", 3, { title: "fetched" }));
  equal(b.task("z").title, "fetched");
  b.applyFetched(task("z", 2, { title: "older" }));
  equal(b.task("z").title, "fetched");
});

test("changedFields without changes = zero value", () => {
  const b = loaded([task("a", 1, { assignee: "u7", progress: 0.5 })]);
  b.receive(updated("a", 2, { status: "TASK_STATUS_FAILED" }, ["status", "assignee", "progress"]), 1);
  const t = b.task("a");
  equal(t.assignee, "");
  equal(t.progress, 0);
  equal(t.status, "TASK_STATUS_FAILED");
});

test("progress per execution, never down, new execution resets, logs capped", () => {
  const b = loaded([task("a", 1)]);
  b.receive(progress("a", "x1", 0.4, ["l1", "l2"], "build"), 1);
  b.receive(progress("a", "x1", 0.2, ["l3"]), 2);
  equal(b.percent("a"), 40);
  equal(b.progressOf("a").lines.length, 3);
  equal(b.progressOf("a").stage, "build");
  const many = Array.from({ length: 600 }, (_, i) => "m" + i);
  b.receive(progress("a", "x1", 0.5, many), 3);
  equal(b.progressOf("a").lines.length, LOG_LINES);
  equal(b.progressOf("a").lines.at(-1).line, "m599");
  const epoch = b.progressOf("a").epoch;
  b.receive(progress("a", "x2", 0, [], "start"), 4);
  equal(b.percent("a"), 0);
  equal(b.progressOf("a").lines.length, 0);
  notEqual(b.progressOf("a").epoch, epoch);
  // task_updated with a new executionId resets too
  b.receive(progress("a", "x2", 0.3, ["y"]), 5);
  b.receive(updated("a", 2, { status: "TASK_STATUS_QUEUED", executionId: "x3" }, QUEUE), 6);
  equal(b.progressOf("a").executionId, "x3");
  equal(b.percent("a"), 0);
  // success: task progress 1 of the same execution
  b.receive(progress("a", "x3", 0.9), 7);
  b.receive(updated("a", 3, { status: "TASK_STATUS_SUCCEEDED", progress: 1 }), 8);
  equal(b.percent("a"), 100);
});

test("events without revision apply", () => {
  const b = loaded([task("a", 4)]);
  const e = updated("a", 0, { title: "norev" });
  delete e.metadata.revision;
  b.receive(e, 1);
  equal(b.task("a").title, "norev");
  equal(b.task("a").revision, 4);
});

// ---- loads: events before, during and after ----

test("events before a load apply at once; the snapshot then replaces them", () => {
  const b = new Board();
  equal(b.loaded, false);
  const r = b.receive(created(task("early", 1)), 1);
  ok(r.changed.has("early"));
  equal(b.task("early").title, "Tearly");
  const g = b.beginLoad();
  const done = b.finishLoad(g, [task("a", 2)]);
  ok(done.removed.has("early"), "a task the snapshot lacks leaves the board");
  equal(b.task("early"), undefined);
  deepEqual([...b.tasks.keys()], ["a"]);
  equal(b.loaded, true);
});

test("events during a load wait for the snapshot and change nothing before it", () => {
  const b = loaded([task("a", 1, { title: "one" })]);
  const g = b.beginLoad();
  equal(b.loading, true);
  for (const [seq, ev] of [[1, updated("a", 2, { title: "two" })], [2, created(task("n", 3))], [3, deleted("a", 4)], [4, progress("n", "x", 0.5)]]) {
    const r = b.receive(ev, seq);
    deepEqual([r.changed, r.removed, r.fetch, r.activity, r.loaded], [new Set(), new Set(), new Set(), [], false], `event ${seq} while loading`);
  }
  equal(b.task("a").title, "one");
  equal(b.task("n"), undefined);
  equal(b.progressOf("n"), undefined);
  const r = b.finishLoad(g, [task("a", 1, { title: "one" })]);
  // applied in arrival order on top of the snapshot
  equal(b.task("a"), undefined);
  ok(r.removed.has("a"));
  equal(b.task("n").revision, 3);
  equal(b.percent("n"), 50);
  deepEqual(r.activity.map((a) => [a.seq, a.kind]), [[1, "updated"], [2, "created"], [3, "deleted"]]);
});

test("buffered events older than the snapshot are ignored, newer ones applied", () => {
  const b = new Board();
  const g = b.beginLoad();
  b.receive(updated("a", 5, { title: "five" }), 1); // the snapshot has it already
  b.receive(updated("a", 6, { title: "six" }), 2);
  b.receive(updated("a", 8, { title: "eight" }), 3);
  b.receive(updated("a", 7, { title: "seven" }), 4); // overtaken
  const r = b.finishLoad(g, [task("a", 6, { title: "snapshot six" })]);
  equal(b.task("a").title, "eight");
  equal(b.task("a").revision, 8);
  ok(r.loaded && r.changed.has("a"));
});

test("events after a load apply at once", () => {
  const b = loaded([task("a", 1)]);
  const r = b.receive(updated("a", 2, { title: "now" }), 1);
  ok(r.changed.has("a"));
  equal(r.loaded, false);
  equal(b.task("a").title, "now");
  equal(b.task("a").updatedAt, "2025-01-01T00:00:02Z");
});

test("a superseded load keeps buffering; the newest applies everything buffered", () => {
  const b = new Board();
  const g1 = b.beginLoad();
  b.receive(created(task("a", 1)), 1);
  const g2 = b.beginLoad();
  b.receive(updated("a", 2, { title: "two" }), 2);
  equal(b.finishLoad(g1, []), null);
  equal(b.task("a"), undefined);
  const r = b.finishLoad(g2, []);
  equal(b.task("a").title, "two");
  deepEqual(r.activity.map((a) => a.seq), [1, 2]);
});

test("the buffer keeps the newest BUFFER_LIMIT events", () => {
  const b = new Board();
  const g = b.beginLoad();
  b.receive(created(task("dropped", 1)), 0);
  for (let i = 1; i <= BUFFER_LIMIT; i++) b.receive(progress("a", "x", i / (BUFFER_LIMIT + 1)), i);
  b.finishLoad(g, [task("a", 1)]);
  equal(b.task("dropped"), undefined, "the oldest event is dropped");
  equal(b.percent("a"), 99);
});

// ---- revisions ----

test("an event whose revision is not above the task's is ignored", () => {
  const b = loaded([task("a", 5, { title: "five" })]);
  for (const [seq, rev] of [[1, 5], [2, 4]]) {
    const r = b.receive(updated("a", rev, { title: "stale" }), seq);
    equal(r.changed.size, 0, `revision ${rev}`);
    equal(r.fetch.size, 0, `revision ${rev}`);
    equal(r.activity.length, 1, "the event still happened: it is activity");
    equal(b.task("a").title, "five");
  }
  equal(b.receive(created(task("a", 5, { title: "recreated" })), 3).changed.size, 0);
  equal(b.receive(deleted("a", 5), 4).removed.size, 0, "a delete older than what is shown");
  equal(b.task("a").title, "five");
  const r = b.receive(updated("a", 6, { title: "six" }), 5);
  ok(r.changed.has("a"));
  equal(b.task("a").revision, 6);
  b.receive(created(task("a", 7, { title: "seven" })), 6);
  equal(b.task("a").title, "seven");
});

test("revisions are read from metadata, else from data.task", () => {
  equal(parseRevision("42"), 42);
  equal(parseRevision(7), 7);
  for (const v of [undefined, null, "", "-1", "1.5", "x", "99999999999999999999"]) equal(parseRevision(v), null, String(v));
  const b = loaded([]);
  const e = created(task("a", 3));
  delete e.metadata.revision;
  b.receive(e, 1);
  equal(b.task("a").revision, 3);
  b.receive({ ...created(task("b", 3)), metadata: { revision: "9" } }, 2);
  equal(b.task("b").revision, 9);
});

test("normalizeTask fills the zero values protojson omits", () => {
  deepEqual(normalizeTask({ id: "a" }), {
    id: "a", projectId: "", createdAt: "", updatedAt: "", createdBy: "", revision: null,
    title: "", description: "", status: "TASK_STATUS_UNSPECIFIED", assignee: "", labels: [], progress: 0, executionId: "",
  });
  equal(normalizeTask({ title: "no id" }), null);
  equal(normalizeTask(null), null);
  deepEqual(normalizeTask({ id: "a", labels: ["x", 3, "y"], progress: 7 }).labels, ["x", "y"]);
  equal(normalizeTask({ id: "a", progress: 7 }).progress, 1);
  const b = loaded([task("a", 1), { title: "no id" }, null]);
  deepEqual([...b.tasks.keys()], ["a"]);
});

// ---- task_updated ----

test("task_updated: a field in changedFields but not in changes is cleared", () => {
  const b = loaded([task("a", 1, { title: "t", description: "d", assignee: "u7", labels: ["x"], progress: 0.5, executionId: "e1", status: "TASK_STATUS_FAILED" })]);
  b.receive(updated("a", 2, {}, ["description", "assignee", "labels", "progress", "executionId", "status"]), 1);
  const t = b.task("a");
  deepEqual([t.title, t.description, t.assignee, t.labels, t.progress, t.executionId, t.status], ["t", "", "", [], 0, "", "TASK_STATUS_UNSPECIFIED"]);
  equal(t.revision, 2);
});

test("task_updated: only the named fields change; snake_case names and unknown fields", () => {
  const b = loaded([task("a", 1, { title: "t", description: "d" })]);
  b.receive(updated("a", 2, { title: "new", description: "not named", executionId: "e9" }, ["title", "execution_id", "updated_at"]), 1);
  const t = b.task("a");
  deepEqual([t.title, t.description, t.executionId], ["new", "d", "e9"]);
  // without changedFields the keys of changes are the fields
  b.receive({ ...updated("a", 3, { assignee: "u2" }), data: { taskId: "a", changes: { assignee: "u2" } } }, 2);
  equal(b.task("a").assignee, "u2");
  equal(b.task("a").title, "new");
});

test("task_updated for an unknown task is reported in Result.fetch", () => {
  const b = loaded([task("a", 1)]);
  const r = b.receive(updated("z", 3, { title: "z" }), 1);
  deepEqual(r.fetch, new Set(["z"]));
  equal(r.changed.size, 0);
  equal(b.task("z"), undefined, "nothing is guessed from a partial change");
  // also when the update was buffered during a load
  const g = b.beginLoad();
  b.receive(updated("y", 4, { title: "y" }), 2);
  deepEqual(b.finishLoad(g, [task("a", 1)]).fetch, new Set(["y"]));
  // not for a deleted task
  b.receive(deleted("x", 5), 3);
  equal(b.receive(updated("x", 5, { title: "x" }), 4).fetch.size, 0);
});

test("applyFetched: ignored while loading, when older, or when deleted since", () => {
  const b = loaded([task("a", 4, { title: "four" })]);
  equal(b.applyFetched(task("a", 4, { title: "same" })).changed.size, 0);
  equal(b.applyFetched({ ...task("a", 0, { title: "no revision" }), revision: undefined }).changed.size, 0);
  ok(b.applyFetched(task("a", 5, { title: "five" })).changed.has("a"));
  equal(b.task("a").title, "five");
  const g = b.beginLoad();
  equal(b.applyFetched(task("b", 1)).changed.size, 0, "a running load brings it");
  b.finishLoad(g, [task("a", 5)]);
  equal(b.task("b"), undefined);
  b.receive(deleted("a", 6), 1);
  equal(b.applyFetched(task("a", 6)).changed.size, 0);
  equal(b.task("a"), undefined);
  ok(b.applyFetched(task("a", 7)).changed.has("a"), "a later revision is a new task");
});

// ---- task_deleted and tombstones ----

test("task_deleted removes the task and its progress, keeps a tombstone", () => {
  const b = loaded([task("a", 4, { executionId: "x" })]);
  b.receive(progress("a", "x", 0.5, ["l"]), 1);
  const r = b.receive(deleted("a", 6), 2);
  deepEqual(r.removed, new Set(["a"]));
  deepEqual(b.tombstones.get("a"), { revision: 6, title: "Ta" });
  equal(b.progressOf("a"), undefined);
  equal(b.percent("a"), 0);
  // late events of the deleted task
  for (const [seq, ev] of [[3, created(task("a", 6))], [4, created(task("a", 5))], [5, updated("a", 6, { title: "x" })], [6, progress("a", "x", 0.9)]]) {
    const late = b.receive(ev, seq);
    equal(late.changed.size + late.fetch.size, 0, `late ${ev.type}`);
  }
  equal(b.task("a"), undefined);
  equal(b.progressOf("a"), undefined);
});

test("task_deleted of a task never seen keeps a tombstone too", () => {
  const b = loaded([]);
  const r = b.receive(deleted("ghost", 8), 1);
  equal(r.removed.size, 0);
  equal(r.activity[0].kind, "deleted");
  b.receive(created(task("ghost", 7)), 2);
  equal(b.task("ghost"), undefined);
});

test("a reload is authoritative: tasks as the snapshot has them, unless deleted since", () => {
  const b = loaded([task("a", 2), task("b", 3), task("c", 4)]);
  b.receive(updated("a", 9, { title: "nine" }), 1);
  b.receive(deleted("b", 10), 2);
  const r = b.finishLoad(b.beginLoad(), [task("a", 8, { title: "snapshot" }), task("b", 11, { title: "back" }), task("d", 1)]);
  equal(b.task("a").title, "snapshot");
  equal(b.task("a").revision, 8);
  equal(b.task("b").title, "back", "a revision above the tombstone is a live task");
  deepEqual(r.removed, new Set(["c"]));
  deepEqual(r.changed, new Set(["a", "b", "d"]));
  deepEqual([...b.tasks.keys()].sort(), ["a", "b", "d"]);
});

test("tombstones are bounded; the oldest is forgotten first", () => {
  const b = loaded([]);
  for (let i = 0; i <= TOMBSTONE_LIMIT; i++) b.receive(deleted("t" + i, 5), i);
  equal(b.tombstones.size, TOMBSTONE_LIMIT);
  ok(!b.tombstones.has("t0") && b.tombstones.has("t1"));
});

// ---- reset ----

test("reset: a new snapshot replaces everything", () => {
  const b = loaded([task("a", 1, { executionId: "x1" }), task("b", 1, { executionId: "y1" }), task("c", 1)]);
  b.receive(progress("a", "x1", 0.5, ["a-line"]), 1);
  b.receive(progress("b", "y1", 0.5, ["b-line"]), 2);
  const g = b.beginLoad();
  const r = b.finishLoad(g, [task("a", 5, { executionId: "x1", progress: 0.2 }), task("b", 5, { executionId: "y2" }), task("z", 1)]);
  ok(r.loaded);
  deepEqual([...b.tasks.keys()].sort(), ["a", "b", "z"]);
  deepEqual(r.removed, new Set(["c"]));
  deepEqual(r.changed, new Set(["a", "b", "z"]));
  equal(b.percent("a"), 50, "the same execution keeps its progress");
  deepEqual(b.progressOf("a").lines.map((l) => l.line), ["a-line"]);
  equal(b.progressOf("b").executionId, "y2", "a new execution starts again");
  deepEqual([b.percent("b"), b.progressOf("b").lines.length], [0, 0]);
});

// ---- progress ----

test("progress: missing progress is 0 and never lowers what an execution reached", () => {
  const b = loaded([task("a", 1)]);
  b.receive(progress("a", "x", undefined, ["started"]), 1);
  equal(b.progressOf("a").progress, 0);
  b.receive(progress("a", "x", 0.6), 2);
  b.receive(progress("a", "x", undefined, ["a log line"]), 3);
  equal(b.progressOf("a").progress, 0.6);
  b.receive(progress("a", "x", 0.1), 4);
  equal(b.percent("a"), 60);
  b.receive(progress("a", "x", 7), 5);
  equal(b.percent("a"), 100, "clamped to 1");
});

test("progress: stage and message are replaced together, kept when absent", () => {
  const b = loaded([task("a", 1)]);
  const ev = progress("a", "x", 0.1, [], "build");
  ev.data.message = "compiling";
  b.receive(ev, 1);
  b.receive(progress("a", "x", 0.2), 2);
  deepEqual([b.progressOf("a").stage, b.progressOf("a").message], ["build", "compiling"]);
  b.receive(progress("a", "x", 0.3, [], "test"), 3);
  deepEqual([b.progressOf("a").stage, b.progressOf("a").message], ["test", ""]);
});

test("progress: a new executionId resets progress and clears the log", () => {
  const b = loaded([task("a", 1)]);
  b.receive(progress("a", "x1", 0.8, ["one", "two"]), 1);
  const first = b.progressOf("a");
  const r = b.receive(progress("a", "x2", 0.1, ["three"]), 2);
  ok(r.changed.has("a"));
  const second = b.progressOf("a");
  notEqual(second.epoch, first.epoch);
  deepEqual([second.executionId, second.progress, second.total], ["x2", 0.1, 1]);
  deepEqual(second.lines.map((l) => [l.n, l.line]), [[1, "three"]]);
  // a snapshot with a newer execution resets it as well
  b.finishLoad(b.beginLoad(), [task("a", 2, { executionId: "x3", status: "TASK_STATUS_QUEUED" })]);
  deepEqual([b.progressOf("a").executionId, b.progressOf("a").lines.length, b.percent("a")], ["x3", 0, 0]);
});

test("progress: a late event of the previous execution does not replace the new one", () => {
  // Cancel, then run again: the old run's reporter may still flush its last
  // lines after task_updated announced the new execution.
  const b = loaded([task("a", 1, { status: "TASK_STATUS_RUNNING", executionId: "x1" })]);
  b.receive(progress("a", "x1", 0.9, ["old"]), 1);
  b.receive(updated("a", 2, { status: "TASK_STATUS_QUEUED", executionId: "x2" }, QUEUE), 2);
  equal(b.progressOf("a").executionId, "x2");
  b.receive(progress("a", "x1", 0.95, ["late"]), 3);
  deepEqual([b.progressOf("a").executionId, b.progressOf("a").lines.length, b.percent("a")], ["x2", 0, 0]);
  b.receive(progress("a", "x2", 0.2, ["new"]), 4);
  deepEqual([b.progressOf("a").executionId, b.progressOf("a").lines.map((l) => l.line), b.percent("a")], ["x2", ["new"], 20]);
});

test("progress: a load spanning a new run shows the new run, not the old one's end", () => {
  const b = loaded([task("a", 1, { status: "TASK_STATUS_RUNNING", executionId: "x1" })]);
  b.receive(progress("a", "x1", 0.5, ["one"]), 1);
  const g = b.beginLoad(); // a reset
  b.receive(progress("a", "x1", 0.9, ["two"]), 2);
  b.receive(updated("a", 2, { status: "TASK_STATUS_SUCCEEDED", progress: 1 }), 3);
  b.receive(progress("a", "x1", 1, [], "done"), 4);
  b.receive(updated("a", 3, { status: "TASK_STATUS_QUEUED", executionId: "x2" }, QUEUE), 5);
  // the snapshot was read after the new run was queued: the buffered
  // task_updated events are older than it and ignored
  b.finishLoad(g, [task("a", 3, { status: "TASK_STATUS_QUEUED", executionId: "x2" })]);
  equal(b.task("a").status, "TASK_STATUS_QUEUED");
  deepEqual([b.progressOf("a").executionId, b.progressOf("a").lines.length, b.percent("a")], ["x2", 0, 0]);
});

test("progress of a task not on the board is kept for when it arrives", () => {
  const b = loaded([]);
  ok(b.receive(progress("n", "x", 0.3, ["l"]), 1).changed.has("n"));
  b.applyFetched(task("n", 2, { executionId: "x", status: "TASK_STATUS_RUNNING" }));
  equal(b.percent("n"), 30);
  equal(b.progressOf("n").lines.length, 1);
});

test("percent is rounded down: 100 only when done", () => {
  const cases = [[0, 0], [0.29, 29], [0.57, 57], [0.994, 99], [0.995, 99], [0.999999, 99], [1, 100], [-0.5, 0], [2, 100], ["0.5", 50], ["x", 0]];
  for (const [p, want] of cases) equal(loaded([task("a", 1, { progress: p })]).percent("a"), want, `task progress ${p}`);
  for (const [p, want] of cases.filter(([p]) => typeof p === "number" && p > 0 && p <= 1)) {
    const b = loaded([task("a", 1)]);
    b.receive(progress("a", "x", p), 1);
    equal(b.percent("a"), want, `progress event ${p}`);
  }
  equal(new Board().percent("nothing"), 0);
});

test("percent: the task's own progress counts when it is of the same execution", () => {
  const b = loaded([task("a", 1, { executionId: "x", progress: 0.7 })]);
  b.receive(progress("a", "x", 0.4), 1);
  equal(b.percent("a"), 70, "the higher of the two");
  b.receive(progress("a", "x", 0.8), 2);
  equal(b.percent("a"), 80);
  b.receive(updated("a", 2, { status: "TASK_STATUS_SUCCEEDED", progress: 1 }), 3);
  equal(b.percent("a"), 100);
});

// ---- logs ----

test("log ring keeps the newest LOG_LINES lines, numbered from 1", () => {
  equal(LOG_LINES, 500);
  const b = loaded([task("a", 1)]);
  let n = 0;
  for (let seq = 1; seq <= 4; seq++) b.receive(progress("a", "x", 0.1, Array.from({ length: 180 }, () => "l" + ++n)), seq);
  const rec = b.progressOf("a");
  equal(rec.total, 720);
  equal(rec.lines.length, 500);
  deepEqual(rec.lines[0], { n: 221, timestamp: "x", stream: "LOG_STREAM_STDOUT", line: "l221" });
  equal(rec.lines.at(-1).line, "l720");
  ok(rec.lines.every((l, i) => l.n === 221 + i), "consecutive numbers");
});

test("log entries that are not objects are skipped", () => {
  const b = loaded([task("a", 1)]);
  const ev = progress("a", "x", 0.1, ["kept"]);
  ev.data.logs.push(null, "text", { line: 5 });
  b.receive(ev, 1);
  deepEqual(b.progressOf("a").lines, [{ n: 1, timestamp: "x", stream: "LOG_STREAM_STDOUT", line: "kept" }, { n: 2, timestamp: "", stream: "", line: "" }]);
});

// ---- activity records ----

test("activity: one record per task event, in seq order, with actor and titles", () => {
  const b = loaded([task("a", 1, { title: "Build" })]);
  const acts = [
    ...b.receive(created(task("n", 2, { title: "New" })), 1).activity,
    ...b.receive(updated("a", 3, { title: "Build 2", status: "TASK_STATUS_RUNNING" }), 2).activity,
    ...b.receive(updated("a", 4, { assignee: "u9" }, undefined, ""), 3).activity,
    ...b.receive(deleted("a", 5), 4).activity,
    ...b.receive(progress("n", "x", 0.5), 5).activity,
    ...b.receive({ type: "system_status", data: {} }, 6).activity,
  ];
  deepEqual(acts.map((a) => [a.seq, a.kind, a.actor, a.taskId, a.title, a.previousTitle, a.status]), [
    [1, "created", "u1", "n", "New", "New", ""],
    [2, "updated", "u1", "a", "Build 2", "Build", "TASK_STATUS_RUNNING"],
    [3, "updated", "", "a", "Build 2", "Build 2", ""],
    [4, "deleted", "u1", "a", "Build 2", "Build 2", ""],
  ]);
  deepEqual(acts[1].fields, ["title", "status"]);
});

test("events without a type, or of other types, change nothing", () => {
  const b = loaded([task("a", 1)]);
  for (const ev of [null, {}, { type: 5 }, { type: "system_status", data: { status: "HEALTH_STATUS_OK" } }, { type: "task_updated" }, { type: "task_deleted", data: {} }]) {
    const r = b.receive(ev, 1);
    equal(r.changed.size + r.removed.size + r.fetch.size + r.activity.length, 0, JSON.stringify(ev));
  }
  deepEqual([...b.tasks.keys()], ["a"]);
});

// ---- GETs of tasks the board does not have ----

test("fetch: task_updated during the GET raises the revision wanted; an older answer is read again", () => {
  const b = loaded([]);
  ok(b.receive(updated("z", 3, { title: "three" }), 1).fetch.has("z"));
  const first = b.startFetch("z");
  ok(first, "the first GET starts");
  const r = b.receive(updated("z", 4, { title: "four" }), 2);
  ok(r.fetch.has("z"));
  equal(b.startFetch("z"), null, "one GET at a time");
  equal(b.task("z"), undefined);
  const answer = b.finishFetch(first, task("z", 3, { title: "three" }));
  equal(answer.changed.size, 0, "the answer is older than the event seen meanwhile: not applied");
  deepEqual(answer.fetch, new Set(["z"]), "read again");
  equal(b.task("z"), undefined);
  const second = b.startFetch("z");
  ok(second, "the GET again");
  ok(b.finishFetch(second, task("z", 4, { title: "four" })).changed.has("z"));
  deepEqual([b.task("z").title, b.task("z").revision], ["four", 4]);
  // settled: a later GET of the same task applies by revision only
  const third = b.startFetch("z");
  equal(b.finishFetch(third, task("z", 3)).fetch.size, 0);
  equal(b.task("z").revision, 4);
});

test("fetch: an answer as new as the events applies at once; newer applies too", () => {
  const b = loaded([]);
  b.receive(updated("z", 3, { title: "x" }), 1);
  const t = b.startFetch("z");
  b.receive(updated("z", 5, { title: "x" }), 2);
  const r = b.finishFetch(t, task("z", 6, { title: "six" }));
  ok(r.changed.has("z"));
  equal(r.fetch.size, 0);
  equal(b.task("z").revision, 6);
  ok(b.receive(updated("z", 7, { title: "seven" }), 3).changed.has("z"), "later events apply to the task");
  equal(b.task("z").title, "seven");
});

test("fetch: after FETCH_RETRIES older answers the last one is applied", () => {
  const b = loaded([]);
  b.receive(updated("z", 9, { title: "nine" }), 1);
  for (let i = 0; i < FETCH_RETRIES; i++) {
    const r = b.finishFetch(b.startFetch("z"), task("z", 2));
    deepEqual(r.fetch, new Set(["z"]), `answer ${i + 1}`);
    equal(b.task("z"), undefined);
  }
  const r = b.finishFetch(b.startFetch("z"), task("z", 2, { title: "old" }));
  equal(r.fetch.size, 0);
  ok(r.changed.has("z"));
  equal(b.task("z").title, "old");
});

test("fetch: a task_created while the GET runs settles it; the answer is then ignored", () => {
  const b = loaded([]);
  b.receive(updated("z", 3, { title: "x" }), 1);
  const t = b.startFetch("z");
  b.receive(created(task("z", 4, { title: "created" })), 2);
  const r = b.finishFetch(t, task("z", 3));
  deepEqual([r.changed.size, r.fetch.size], [0, 0]);
  equal(b.task("z").title, "created");
});

test("fetch: 404, a deletion meanwhile, a failed GET, events without revision", () => {
  const b = loaded([]);
  b.receive(updated("gone", 3, {}), 1);
  let r = b.finishFetch(b.startFetch("gone"), null);
  deepEqual([r.changed.size, r.fetch.size], [0, 0], "404: nothing to show, nothing to ask again");
  ok(b.startFetch("gone"), "the GET is over");

  b.receive(updated("d", 3, {}), 2);
  const t = b.startFetch("d");
  b.receive(updated("d", 4, {}), 3);
  b.receive(deleted("d", 5), 4);
  r = b.finishFetch(t, task("d", 3));
  deepEqual([r.changed.size, r.fetch.size], [0, 0], "deleted meanwhile");
  equal(b.task("d"), undefined);

  b.receive(updated("f", 3, {}), 5);
  const failed = b.startFetch("f");
  b.cancelFetch(failed);
  ok(b.startFetch("f"), "a failed GET does not block the next one");

  const e = updated("n", 0, { title: "norev" });
  delete e.metadata.revision;
  b.receive(e, 6);
  r = b.finishFetch(b.startFetch("n"), task("n", 2, { title: "fetched" }));
  ok(r.changed.has("n"), "no revision to compare with: applied");
  equal(r.fetch.size, 0);
});

test("fetch: an answer that a reload overtook is dropped; the deleted task stays away", () => {
  const b = loaded([]);
  b.receive(updated("z", 3, { title: "x" }), 1);
  const before = b.startFetch("z"); // started before the reset
  const g = b.beginLoad(); // a reset: z was deleted in the lost history
  equal(b.finishFetch(before, task("z", 3)).changed.size, 0, "answered while the reload runs");
  b.finishLoad(g, []);
  equal(b.task("z"), undefined);

  const late = b.startFetch("z");
  const g2 = b.beginLoad();
  b.finishLoad(g2, [task("a", 1)]);
  const r = b.finishFetch(late, task("z", 3, { title: "zombie" }));
  deepEqual([r.changed.size, r.fetch.size], [0, 0], "answered after the reload finished");
  equal(b.task("z"), undefined);
});

test("fetch: after a reload a new GET starts even while an older one is on its way", () => {
  const b = loaded([]);
  b.receive(updated("z", 3, {}), 1);
  const old = b.startFetch("z");
  const g = b.beginLoad();
  b.receive(updated("z", 4, {}), 2); // buffered
  const r = b.finishLoad(g, []);
  ok(r.fetch.has("z"));
  const now = b.startFetch("z");
  ok(now, "not blocked by the GET of the previous generation");
  equal(b.finishFetch(old, task("z", 3)).changed.size, 0);
  equal(b.startFetch("z"), null, "the old answer did not end the new GET");
  ok(b.finishFetch(now, task("z", 4, { title: "four" })).changed.has("z"));
  equal(b.task("z").title, "four");
});

test("applyFetched: an answer of an older generation is dropped", () => {
  const b = loaded([task("a", 1)]);
  const gen = b.generation;
  b.finishLoad(b.beginLoad(), []); // a reload: a is gone
  equal(b.applyFetched(task("a", 2), gen).changed.size, 0);
  equal(b.task("a"), undefined);
  ok(b.applyFetched(task("a", 2), b.generation).changed.has("a"), "the current generation applies");
});

// ---- giving a load up ----

test("abandonLoad stops buffering and applies the buffered events to the board as it is", () => {
  const b = loaded([task("a", 1, { title: "one" })]);
  const g = b.beginLoad();
  b.receive(updated("a", 2, { title: "two" }), 1);
  b.receive(created(task("n", 3)), 2);
  const r = b.abandonLoad(g);
  equal(b.loading, false);
  equal(r.loaded, false, "not a snapshot: only what the events name is redrawn");
  deepEqual(r.changed, new Set(["a", "n"]));
  deepEqual(r.activity.map((x) => x.seq), [1, 2]);
  equal(b.task("a").title, "two");
  ok(b.receive(updated("a", 3, { title: "three" }), 3).changed.has("a"), "live again");
  equal(b.abandonLoad(g), null, "not loading any more");
  const g1 = b.beginLoad();
  const g2 = b.beginLoad();
  equal(b.abandonLoad(g1), null, "a superseded load");
  equal(b.loading, true);
  ok(b.abandonLoad(g2));
});

test("abandonLoad of the first load leaves the board not loaded", () => {
  const b = new Board();
  const g = b.beginLoad();
  b.receive(created(task("n", 1)), 1);
  b.abandonLoad(g);
  equal(b.loaded, false);
  equal(b.task("n").revision, 1);
  const r = b.finishLoad(b.beginLoad(), [task("m", 1)]);
  ok(r.loaded && b.loaded);
  ok(r.removed.has("n"), "the next load is authoritative");
});

// ---- duplicates ----

test("duplicates: an event whose seq is not above the last one is counted and dropped", () => {
  const b = loaded([task("a", 1)]);
  equal(b.duplicates, 0);
  b.receive(progress("a", "x", 0.1, ["one"]), 5);
  const again = b.receive(progress("a", "x", 0.1, ["one"]), 5);
  deepEqual([again.changed.size, again.activity.length], [0, 0]);
  equal(b.receive(updated("a", 2, { title: "old seq" }), 4).activity.length, 0);
  equal(b.duplicates, 2);
  equal(b.progressOf("a").lines.length, 1, "the log line is not repeated");
  equal(b.task("a").title, "Ta");
  ok(b.receive(updated("a", 2, { title: "next" }), 6).changed.has("a"));
  // events without a seq are not compared
  b.receive(progress("a", "x", 0.2), undefined);
  b.receive(progress("a", "x", 0.3), "7");
  equal(b.duplicates, 2);
  equal(b.percent("a"), 30);
});

test("duplicates: counted while a load buffers, too; continueAfter starts counting anew", () => {
  const b = new Board();
  const g = b.beginLoad();
  b.receive(created(task("a", 1)), 10);
  b.receive(created(task("a", 1)), 10);
  equal(b.duplicates, 1);
  deepEqual(b.finishLoad(g, []).activity.map((x) => x.seq), [10]);
  // a recreated stream numbers its events from 1 again
  b.continueAfter(2);
  ok(b.receive(created(task("b", 2)), 3).changed.has("b"));
  equal(b.duplicates, 1);
  b.receive(created(task("c", 3)), 3);
  equal(b.duplicates, 2);
  b.continueAfter(null);
  ok(b.receive(created(task("d", 4)), 1).changed.has("d"), "no position: nothing to compare with");
});
