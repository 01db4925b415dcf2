// Package jobs is the job-queue contract between the task API, which
// enqueues runs of a task, and the workers, which execute them.
//
// A job is one JSON message (Job) on the JetStream work-queue stream JOBS,
// subject job.run.<type> (job.run.demo, job.run.exec), published with
// Nats-Msg-Id = the execution id so that a retried enqueue is dropped by the
// stream's duplicate window. Every worker replica pulls from one shared
// durable consumer ("workers"), so each job goes to one worker at a time and
// is removed from the stream once acknowledged.
//
// Cancellation is a core NATS message (not stored) on
// job.cancel.<executionId>; every worker receives it and the one running the
// execution stops it. A cancellation that reaches no worker is covered by
// the task's status: the task API marks the task cancelled first, and a
// worker checks the task before (and while) running the job.
//
// EnsureStream is idempotent: the task API and every worker call it at start.
package jobs
