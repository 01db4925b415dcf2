package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/worker/internal/jobrun"
	"github.com/eventedge/eventedge/services/worker/internal/report"
)

// storeTimeout bounds one status transition or task check. Transitions
// use a context of their own: a stopping worker still records what
// happened.
const storeTimeout = 10 * time.Second

// What begin found.
type start int

const (
	startRun  start = iota // run the job
	startSkip              // nothing to do: ack
	startDone              // already succeeded: re-send progress 1, ack
)

// handle runs one delivery of a job to its end: ack, nak or term.
func (w *Worker) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		w.log.Error().Err(err).Str("subject", msg.Subject()).Msg("job without JetStream metadata; terminating it")
		_ = msg.Term()
		return
	}
	attempt := md.NumDelivered
	job, err := jobs.Decode(msg.Data())
	if err != nil {
		w.log.Error().Err(err).Uint64("seq", md.Sequence.Stream).Msg("undecodable job; terminating it")
		w.m.jobs.WithLabelValues("unknown", resultRefused).Inc()
		_ = msg.TermWithReason("invalid job")
		return
	}
	log := w.log.With().Str("execution", job.ExecutionID).Str("project", job.ProjectID).Str("task", job.TaskID).
		Str("job", job.Job).Uint64("attempt", attempt).Logger()
	e := report.Execution{ProjectID: job.ProjectID, TaskID: job.TaskID, ExecutionID: job.ExecutionID}

	cmd, allowed := w.opts.AllowList[job.Command]
	if job.Job == jobs.TypeExec && !allowed {
		w.refuse(log, msg, job, e, fmt.Sprintf("command %q is not in this worker's allow-list (%v): refused", job.Command, w.opts.AllowList.Names()))
		return
	}

	st, err := w.begin(job)
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("recording the start failed; retrying later")
		w.m.jobs.WithLabelValues(job.Job, resultRetried).Inc()
		_ = msg.NakWithDelay(w.opts.backoff(attempt))
		return
	case st == startSkip:
		log.Info().Msg("nothing to run (the task was deleted, cancelled or run again)")
		w.m.jobs.WithLabelValues(job.Job, resultSkipped).Inc()
		w.ack(log, msg)
		return
	case st == startDone:
		log.Info().Msg("already succeeded (redelivered after the worker that ran it died)")
		w.final(log, e)
		w.m.jobs.WithLabelValues(job.Job, resultSkipped).Inc()
		w.ack(log, msg)
		return
	}

	// Run, with the process stopped by cancellation, the task's state or
	// shutdown (jobCtx's cause says which).
	jobCtx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	w.register(job.ExecutionID, stop)
	defer w.unregister(job.ExecutionID)
	rep := report.Start(w.opts.JS, e, w.opts.Report, log)
	if attempt > 1 {
		rep.Log(pb.LogStream_LOG_STREAM_SYSTEM, fmt.Sprintf("attempt %d of %d on %s (the previous one did not finish)", attempt, w.opts.MaxDeliver, w.opts.Name))
	}
	hbStop := make(chan struct{})
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(log, msg, job, stop, hbStop) })

	began := time.Now()
	runErr := w.run(jobCtx, job, cmd, rep)
	cause := context.Cause(jobCtx)
	close(hbStop)
	hb.Wait()
	w.m.duration.WithLabelValues(job.Job).Observe(time.Since(began).Seconds())
	if cause != nil {
		runErr = cause
	}

	switch {
	case runErr == nil:
		rep.Close()
		applied, err := w.finish(job, pb.TaskStatus_TASK_STATUS_SUCCEEDED)
		if err != nil {
			log.Warn().Err(err).Msg("recording success failed; the job will run again")
			w.m.jobs.WithLabelValues(job.Job, resultRetried).Inc()
			_ = msg.NakWithDelay(w.opts.backoff(attempt))
			return
		}
		w.final(log, e)
		if applied {
			w.succeeded.Add(1)
			w.m.jobs.WithLabelValues(job.Job, resultSucceeded).Inc()
			log.Info().Dur("took", time.Since(began)).Msg("job succeeded")
		} else {
			w.m.jobs.WithLabelValues(job.Job, resultSkipped).Inc()
			log.Info().Msg("job finished, but the task had moved on (cancelled, or run again)")
		}
		w.ack(log, msg)

	case errors.Is(runErr, errShutdown):
		rep.Log(pb.LogStream_LOG_STREAM_SYSTEM, "worker "+w.opts.Name+" stopping: the job will run again")
		rep.Close()
		w.m.jobs.WithLabelValues(job.Job, resultRequeued).Inc()
		log.Info().Msg("job stopped by shutdown; requeued")
		_ = msg.Nak()

	case errors.Is(runErr, errCancelled), errors.Is(runErr, errTaskGone), errors.Is(runErr, errSuperseded):
		rep.Log(pb.LogStream_LOG_STREAM_SYSTEM, "stopped: "+runErr.Error())
		rep.Close()
		if errors.Is(runErr, errCancelled) {
			if _, err := w.finish(job, pb.TaskStatus_TASK_STATUS_CANCELLED); err != nil {
				log.Warn().Err(err).Msg("recording the cancellation failed")
			}
		}
		w.m.jobs.WithLabelValues(job.Job, resultCancelled).Inc()
		log.Info().Str("cause", runErr.Error()).Msg("job stopped")
		w.ack(log, msg)

	case attempt >= uint64(w.opts.MaxDeliver):
		rep.Log(pb.LogStream_LOG_STREAM_SYSTEM, fmt.Sprintf("attempt %d of %d failed: %v; giving up", attempt, w.opts.MaxDeliver, runErr))
		rep.Close()
		if _, err := w.finish(job, pb.TaskStatus_TASK_STATUS_FAILED); err != nil {
			log.Warn().Err(err).Msg("recording the failure failed; the max-deliveries advisory will")
			return // unacknowledged: the advisory follows AckWait
		}
		w.failed.Add(1)
		w.m.jobs.WithLabelValues(job.Job, resultFailed).Inc()
		log.Info().Err(runErr).Msg("job failed")
		_ = msg.TermWithReason("failed after the last delivery")

	default:
		delay := w.opts.backoff(attempt)
		rep.Log(pb.LogStream_LOG_STREAM_SYSTEM, fmt.Sprintf("attempt %d of %d failed: %v; retrying in %s", attempt, w.opts.MaxDeliver, runErr, delay))
		rep.Close()
		w.m.jobs.WithLabelValues(job.Job, resultRetried).Inc()
		log.Info().Err(runErr).Dur("retry_in", delay).Msg("job attempt failed")
		_ = msg.NakWithDelay(delay)
	}
}

// run runs the job's type.
func (w *Worker) run(ctx context.Context, job *jobs.Job, cmd jobrun.Command, rep *report.Reporter) error {
	switch job.Job {
	case jobs.TypeDemo:
		return w.opts.Demo.Run(ctx, rep)
	case jobs.TypeExec:
		return w.opts.Exec.Run(ctx, cmd, jobrun.Env{ProjectID: job.ProjectID, TaskID: job.TaskID, ExecutionID: job.ExecutionID}, rep)
	}
	return fmt.Errorf("unknown job type %q", job.Job) // jobs.Decode refuses these
}

// begin moves the task to running, unless the execution is no longer the
// task's, or already finished.
func (w *Worker) begin(job *jobs.Job) (start, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_, err := w.opts.Store.Update(ctx, job.ProjectID, job.TaskID, taskstore.Write{}, func(t *pb.Task) ([]string, error) {
		switch {
		case t.ExecutionId != job.ExecutionID:
			return nil, errStale
		case t.Status == pb.TaskStatus_TASK_STATUS_SUCCEEDED:
			return nil, errSucceeded
		case taskstore.Terminal(t.Status):
			return nil, errFinished
		case t.Status == pb.TaskStatus_TASK_STATUS_RUNNING:
			return nil, nil // a redelivery: run again
		}
		t.Status, t.Progress = pb.TaskStatus_TASK_STATUS_RUNNING, 0
		return []string{"status", "progress"}, nil
	})
	switch {
	case err == nil:
		return startRun, nil
	case errors.Is(err, errSucceeded):
		return startDone, nil
	case errors.Is(err, errStale), errors.Is(err, errFinished), errors.Is(err, taskstore.ErrNotFound):
		return startSkip, nil
	}
	return startRun, err
}

// finish records the execution's end, unless the task moved on (another
// execution, or already finished: the first end wins). It reports whether
// it changed the task.
func (w *Worker) finish(job *jobs.Job, status pb.TaskStatus) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	applied := false
	_, err := w.opts.Store.Update(ctx, job.ProjectID, job.TaskID, taskstore.Write{}, func(t *pb.Task) ([]string, error) {
		applied = false
		if t.ExecutionId != job.ExecutionID || taskstore.Terminal(t.Status) {
			return nil, nil
		}
		applied = true
		t.Status = status
		if status == pb.TaskStatus_TASK_STATUS_SUCCEEDED {
			t.Progress = 1
			return []string{"status", "progress"}, nil
		}
		return []string{"status"}, nil
	})
	if errors.Is(err, taskstore.ErrNotFound) {
		return false, nil
	}
	return applied, err
}

// final publishes progress 1 if the task succeeded with this execution.
// Its fixed event id makes a second publish (after a redelivery) a
// duplicate that JetStream drops.
func (w *Worker) final(log zerolog.Logger, e report.Execution) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	t, err := w.opts.Store.Get(ctx, e.ProjectID, e.TaskID)
	if err != nil || t.ExecutionId != e.ExecutionID || t.Status != pb.TaskStatus_TASK_STATUS_SUCCEEDED {
		return
	}
	if err := report.Final(ctx, w.opts.JS, e); err != nil {
		log.Warn().Err(err).Msg("final progress not published")
	}
}

// refuse fails the task of a job no worker may run, and terminates it.
func (w *Worker) refuse(log zerolog.Logger, msg jetstream.Msg, job *jobs.Job, e report.Execution, why string) {
	log.Warn().Msg(why)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := report.Lines(ctx, w.opts.JS, e, w.opts.Report, pb.LogStream_LOG_STREAM_SYSTEM, why); err != nil {
		log.Warn().Err(err).Msg("explanation not published")
	}
	applied, err := w.finish(job, pb.TaskStatus_TASK_STATUS_FAILED)
	if err != nil {
		log.Warn().Err(err).Msg("recording the refusal failed; retrying later")
		_ = msg.NakWithDelay(w.opts.backoff(1))
		return
	}
	if applied {
		w.failed.Add(1)
	}
	w.m.jobs.WithLabelValues(job.Job, resultRefused).Inc()
	_ = msg.TermWithReason("refused: " + why)
}

// heartbeat keeps a running job's delivery alive and stops the job when
// its task says so, until stop is closed.
func (w *Worker) heartbeat(log zerolog.Logger, msg jetstream.Msg, job *jobs.Job, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	t := time.NewTicker(w.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := msg.InProgress(); err != nil {
			log.Warn().Err(err).Msg("heartbeat failed")
		}
		ctx, done := context.WithTimeout(context.Background(), storeTimeout)
		task, err := w.opts.Store.Get(ctx, job.ProjectID, job.TaskID)
		done()
		switch {
		case errors.Is(err, taskstore.ErrNotFound):
			cancel(errTaskGone)
		case err != nil:
			// NATS trouble: keep running; the heartbeat tries again.
		case task.ExecutionId != job.ExecutionID:
			cancel(errSuperseded)
		case task.Status == pb.TaskStatus_TASK_STATUS_CANCELLED:
			cancel(errCancelled)
		}
	}
}

func (w *Worker) ack(log zerolog.Logger, msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn().Err(err).Msg("ack failed: the job may be delivered again (and will be skipped)")
	}
}

// maxDeliveries is the part of JetStream's max-deliveries advisory used.
type maxDeliveries struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// onMaxDeliveries fails the task of a job whose deliveries ran out without
// an outcome (its worker died during the last one), and removes the job.
func (w *Worker) onMaxDeliveries(m *nats.Msg) {
	var adv maxDeliveries
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		w.log.Warn().Err(err).Msg("unreadable max-deliveries advisory")
		return
	}
	log := w.log.With().Uint64("seq", adv.StreamSeq).Logger()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	stream, err := w.opts.JS.Stream(ctx, jobs.StreamName)
	if err != nil {
		log.Warn().Err(err).Msg("max-deliveries advisory: stream unavailable")
		return
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return // already removed
	}
	if job, err := jobs.Decode(raw.Data); err == nil {
		e := report.Execution{ProjectID: job.ProjectID, TaskID: job.TaskID, ExecutionID: job.ExecutionID}
		why := fmt.Sprintf("giving up after %d deliveries without an outcome (workers stopped during the job)", adv.Deliveries)
		if err := report.Lines(ctx, w.opts.JS, e, w.opts.Report, pb.LogStream_LOG_STREAM_SYSTEM, why); err != nil {
			log.Warn().Err(err).Msg("explanation not published")
		}
		applied, err := w.finish(job, pb.TaskStatus_TASK_STATUS_FAILED)
		if err != nil {
			log.Warn().Err(err).Msg("failing the task after its last delivery failed")
			return // keep the job: a later advisory cannot come, but an operator can see it
		}
		if applied {
			w.failed.Add(1)
			w.m.jobs.WithLabelValues(job.Job, resultFailed).Inc()
		}
		log.Warn().Str("execution", job.ExecutionID).Msg("job gave up after its last delivery")
	}
	if err := stream.DeleteMsg(ctx, adv.StreamSeq); err != nil {
		log.Debug().Err(err).Msg("removing the exhausted job failed")
	}
}
