// Package worker consumes the JOBS work queue and runs each job, keeping
// the task's status and the job's delivery state in step.
//
// # Consuming
//
// Every replica pulls from one durable consumer ("workers", filter
// job.run.>): Concurrency goroutines each fetch one job at a time, so a
// worker never holds more jobs than it runs. A running job is kept alive
// with InProgress every Heartbeat (AckWait is the deadline between two),
// which also re-reads the task: a task deleted, cancelled or run again
// elsewhere stops the job. A worker that dies mid-job stops heartbeating
// and the job is redelivered to another one after AckWait.
//
// # Outcomes
//
//	success      task → succeeded with progress 1, then task_progress 1, then ack
//	failure      nak with backoff (Backoff[attempt-1]); at the last delivery
//	             (MaxDeliver) task → failed and the job is terminated
//	cancelled    job.cancel.<executionId> or the task's status: the process
//	             is killed, task → cancelled (if not already), ack
//	refused      unknown exec command or undecodable job: task → failed,
//	             terminated at once (no retry can help)
//	shutdown     Run's context ends: no more fetches; running jobs get
//	             ShutdownGrace to finish, then are stopped and nak'ed
//	             (redelivered at once) without touching the task
//
// A job whose last delivery is lost (the worker died during it) is failed
// by whichever worker receives the stream's max-deliveries advisory.
//
// # Exactly once, from the task's point of view
//
// Status transitions go through taskstore.Update (so the REST view and
// the task_updated events agree) and are guarded by the execution id: a
// transition applies only while the task's executionId is the job's and
// its status is not terminal. A redelivered job whose task already
// succeeded is acknowledged without running again, and its final
// task_progress (progress 1) is published again with the same event id
// (report.FinalEventID), which JetStream de-duplicates: the status
// "succeeded" and progress 1 each appear once even if a worker dies
// between recording success and acknowledging the job. A redelivered job
// that had not finished runs again from the start, and says so in its
// logs.
//
// # Goroutines
//
// Run owns everything it starts — the fetching slots, the stats publisher,
// the advisory handler — and returns only after all of them ended. Each
// job owns its heartbeat goroutine and its Reporter.
package worker
