// Unit tests of js/activity.js: the sentences of the activity list and the
// list itself (#activity: one entry per seq, newest first, the last 100).
// Run by web/js_test.go.

import { test, ok, equal, deepEqual } from "./harness.js";
import { Board } from "../js/board.js";
import { describe, createActivityList, ACTIVITY_LIMIT } from "../js/activity.js";

const task = (id, rev, extra = {}) => ({ id, projectId: "p", title: "T" + id, status: "TASK_STATUS_TODO", revision: String(rev), ...extra });
const created = (t) => ({ type: "task_created", timestamp: "2025-01-01T00:00:01Z", userId: "u1", metadata: { revision: t.revision }, data: { task: t, createdBy: "u1" } });
const updated = (id, rev, changes, fields, userId = "u1") => ({ type: "task_updated", timestamp: "2025-01-01T00:00:02Z", userId, metadata: { revision: String(rev) }, data: { taskId: id, changes, changedFields: fields ?? Object.keys(changes), updatedBy: userId } });
const deleted = (id, rev, userId = "u1") => ({ type: "task_deleted", timestamp: "2025-01-01T00:00:03Z", userId, metadata: { revision: String(rev) }, data: { taskId: id, deletedBy: userId } });
const record = (seq, extra = {}) => ({ seq, kind: "updated", timestamp: "", actor: "u1", taskId: "t", title: "T", previousTitle: "T", fields: [], status: "", ...extra });

// Ported from the node:test draft.
test("activity sentences", () => {
  const b = new Board();
  b.finishLoad(b.beginLoad(), [task("a", 1, { title: "Build" })]);
  const acts = [
    ...b.receive(created(task("n", 2, { title: "New" })), 1).activity,
    ...b.receive(updated("a", 3, { title: "Build 2" }), 2).activity,
    ...b.receive(updated("a", 4, { status: "TASK_STATUS_RUNNING" }, undefined, ""), 3).activity,
    ...b.receive(updated("a", 5, { status: "TASK_STATUS_QUEUED", executionId: "e" }, ["status", "executionId", "progress"]), 4).activity,
    ...b.receive(updated("a", 6, { assignee: "u9" }), 5).activity,
    ...b.receive(deleted("a", 7), 6).activity,
  ];
  deepEqual(acts.map(describe), [
    "u1 created “New”",
    "u1 renamed “Build” to “Build 2”",
    "“Build 2” started running",
    "u1 started a run of “Build 2”",
    "u1 changed the assignee of “Build 2”",
    "u1 deleted “Build 2”",
  ]);
});

test("sentences without an actor or a title", () => {
  deepEqual(
    [
      record(1, { kind: "created", actor: "", title: "" }),
      record(2, { kind: "deleted", actor: "", title: "" }),
      record(3, { actor: "", fields: ["description"] }),
      record(4, { actor: "", fields: ["status"], status: "TASK_STATUS_FAILED" }),
      record(5, { actor: "", fields: ["status", "executionId"], status: "TASK_STATUS_QUEUED" }),
      record(6, { fields: ["progress"] }),
    ].map(describe),
    ["Someone created task t", "Someone deleted task t", "The system changed the description of “T”", "“T” failed", "Someone started a run of “T”", "u1 updated “T”"],
  );
});

test("sentences of several changes at once", () => {
  deepEqual(
    [
      record(1, { fields: ["title", "status"], previousTitle: "Old", title: "New", status: "TASK_STATUS_CANCELLED" }),
      record(2, { actor: "", fields: ["title", "labels", "executionId"], previousTitle: "Old", title: "New" }),
      record(3, { fields: ["status"], status: "TASK_STATUS_UNSPECIFIED" }),
      record(4, { actor: "", fields: ["status"], status: "TASK_STATUS_PAUSED" }),
      record(5, { fields: ["title"], previousTitle: "", title: "Named" }),
    ].map(describe),
    [
      "u1 renamed “Old” to “New” and cancelled “New”",
      "The system renamed “Old” to “New” and changed the labels of “New”",
      "u1 set “T” to No status",
      "“T” is now paused",
      "u1 updated “Named”",
    ],
  );
});

test("the list has one entry per seq, newest first", () => {
  const list = document.createElement("ol");
  const activity = createActivityList(list);
  activity.add([record(2), record(5)]);
  activity.add([record(3), record(5, { title: "again" }), record(2)]); // replayed seqs
  activity.add([record(1, { kind: "created" }), record(4, { kind: "deleted" })]);
  activity.add([record(undefined), record("6")]); // not a seq: skipped
  deepEqual([...list.children].map((li) => li.getAttribute("data-seq")), ["5", "4", "3", "2", "1"]);
  equal(list.querySelector('[data-seq="5"] .activity-text').textContent, "u1 updated “T”", "the first entry of a seq stays");
  equal(list.getAttribute("data-duplicates"), "2", "the replayed seqs are counted; records without a seq are not");
  ok(list.querySelector('[data-seq="4"]').classList.contains("activity-deleted"));
});

test("the list keeps the newest ACTIVITY_LIMIT entries; a dropped seq never comes back", () => {
  const list = document.createElement("ol");
  const activity = createActivityList(list);
  activity.add(Array.from({ length: ACTIVITY_LIMIT + 20 }, (_, i) => record(i + 1)));
  equal(list.childElementCount, ACTIVITY_LIMIT);
  equal(list.firstElementChild.getAttribute("data-seq"), String(ACTIVITY_LIMIT + 20));
  equal(list.lastElementChild.getAttribute("data-seq"), "21");
  activity.add([record(5), record(21)]);
  equal(list.childElementCount, ACTIVITY_LIMIT);
  equal(list.querySelectorAll('[data-seq="21"]').length, 1);
  equal(list.querySelector('[data-seq="5"]'), null);
});

test("an entry shows its time when the event has one", () => {
  const list = document.createElement("ol");
  createActivityList(list).add([record(1, { timestamp: "2025-01-01T00:00:02Z" }), record(2)]);
  equal(list.querySelector('[data-seq="1"] time').getAttribute("datetime"), "2025-01-01T00:00:02Z");
  equal(list.querySelector('[data-seq="2"] time'), null);
});

test("data-duplicates is 0 once the list exists and counts every record of a seq shown before", () => {
  const list = document.createElement("ol");
  const activity = createActivityList(list);
  equal(list.getAttribute("data-duplicates"), "0");
  activity.add([record(1), record(2)]);
  equal(list.getAttribute("data-duplicates"), "0");
  activity.add([record(2), record(2), record(1)]);
  equal(list.getAttribute("data-duplicates"), "3");
  equal(list.childElementCount, 2);
});

test("continueAfter: a recreated stream's seqs are not taken for duplicates", () => {
  const list = document.createElement("ol");
  const activity = createActivityList(list);
  activity.add([record(1), record(2), record(3)]);
  activity.continueAfter(5); // a reset further on: nothing shown is above it
  deepEqual([...list.children].map((li) => li.getAttribute("data-seq")), ["3", "2", "1"]);
  activity.continueAfter(1); // the stream was recreated: its events 2, 3, … are new
  deepEqual([...list.children].map((li) => li.getAttribute("data-seq")), ["1"]);
  activity.add([record(2, { title: "new stream" })]);
  equal(list.getAttribute("data-duplicates"), "0");
  equal(list.querySelector('[data-seq="2"] .activity-text').textContent, "u1 updated “new stream”");
  activity.continueAfter(null);
  equal(list.childElementCount, 2, "no position: nothing to forget");
});
