// Package taskstore keeps tasks in a JetStream key-value bucket and makes
// sure that every change is followed by its event.
//
// # Storage
//
// One bucket (TASKS by default; file storage, history 1) holds one entry per
// task under the key "<projectId>.<taskId>". Both ids match
// ^[A-Za-z0-9_-]{1,64}$, so a key never holds a separator or wildcard of
// its own. Writes are compare-and-set on the entry's revision: Update
// re-reads and retries on a conflict, or fails with ErrConflict when the
// caller made it conditional (Write.IfRevision, the HTTP If-Match).
//
// A task's revision (Task.revision, the API's ETag) is the bucket revision
// of the write that last changed its content. Housekeeping writes that only
// clear the outbox (below) keep it, so an ETag stays valid until the task
// itself changes.
//
// # The outbox: no write without its event
//
// An entry is a JSON record {task, pending, rev, deleted}. A change and the
// events it causes are written together, in the same Create or Update of the
// entry: the events (task_created, task_updated, task_deleted, and any extra
// JetStream message such as a job, Write.Also) are appended to pending.
// Right after its write, the writer publishes every pending message in
// order, each with a fixed id (the event id, or the message's Nats-Msg-Id),
// waits for JetStream's ack, then removes the published ones from pending
// with another compare-and-set write (a deleted task's key is removed
// instead). A writer that fails to publish (NATS unreachable, the EVENTS
// stream missing) still reports success: the change is stored, and its
// events wait in pending.
//
// Sweep repairs what a writer left behind: it reads every entry and
// publishes the pending messages that are older than Options.SweepMinAge,
// then clears them the same way. The task API runs it at start and every 5 s
// (any number of replicas may: every publish is idempotent), so both a
// publish failure and a crash between the write and the publish are
// repaired once NATS is back.
//
// Exactly once: a message is published with the same id however often it is
// retried (by the writer, a concurrent writer carrying it, or a sweeper),
// and JetStream drops a second copy with the same Nats-Msg-Id inside the
// stream's duplicate window (2 minutes for EVENTS and JOBS). A message is
// therefore stored exactly once, unless the ack of its first copy was lost
// and the outbox could not be cleared for longer than the window (NATS
// acknowledged the publish, then became unreachable for over two minutes):
// then a second copy is stored, at least once. A message that can never be
// published (it fails validation) is logged and dropped rather than blocking
// the task's later events. Messages of one task are published in the order
// their writes happened; a failure stops the flush, so no later event
// overtakes an earlier one.
//
// Revisions in events: each event carries metadata "revision" (and a
// task_created its task.revision): the revision of the write that caused
// it. It is fixed when the writer first publishes, and re-derived by later
// publishers from the entry, so every copy of an event is the same.
//
// # Concurrency
//
// A Store is safe for concurrent use by any number of goroutines and
// processes; it starts no goroutines. Sweep runs in its caller's goroutine.
package taskstore
