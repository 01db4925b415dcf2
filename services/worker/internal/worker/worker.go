package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/taskapi/jobs"
)

// Worker runs jobs from the JOBS stream.
type Worker struct {
	// static after New
	opts Options
	log  zerolog.Logger
	m    *metrics

	// consumer is the shared durable consumer, replaced when it had to be
	// created again.
	consumer atomic.Pointer[jetstream.Consumer]

	// running maps execution ids to the cancel functions of the jobs this
	// worker runs. Guarded by mu.
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc

	succeeded atomic.Int64
	failed    atomic.Int64
}

// New validates o and returns a Worker ready to Run.
func New(o Options) (*Worker, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Worker{
		opts:    o,
		log:     o.Log.With().Str("worker", o.Name).Logger(),
		m:       newMetrics(o.Registerer),
		running: map[string]context.CancelCauseFunc{},
	}, nil
}

// ConsumerConfig is the configuration of the durable consumer all workers
// share.
func (w *Worker) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       jobs.ConsumerName,
		Description:   "eventedge job workers",
		FilterSubject: jobs.RunPrefix + ".>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.opts.AckWait,
		MaxDeliver:    w.opts.MaxDeliver,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000,
	}
}

func (w *Worker) ensureConsumer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := w.opts.JS.CreateOrUpdateConsumer(ctx, jobs.StreamName, w.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", jobs.ConsumerName, jobs.StreamName, err)
	}
	w.consumer.Store(&c)
	return nil
}

// advisorySubject is where JetStream says a job used all its deliveries.
const advisorySubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + jobs.StreamName + "." + jobs.ConsumerName

// Run fetches and runs jobs until ctx ends, then stops fetching, lets
// running jobs finish for ShutdownGrace (then stops and requeues them),
// and returns once every goroutine it started has ended. It fails only
// when it cannot start (the consumer or a subscription cannot be made).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.ensureConsumer(ctx); err != nil {
		return err
	}
	cancelSub, err := w.opts.NC.Subscribe(jobs.CancelWildcard, w.onCancel)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", jobs.CancelWildcard, err)
	}
	defer func() { _ = cancelSub.Unsubscribe() }()
	advisories := make(chan *nats.Msg, 64)
	advSub, err := w.opts.NC.ChanQueueSubscribe(advisorySubject, jobs.ConsumerName, advisories)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", advisorySubject, err)
	}
	defer func() { _ = advSub.Unsubscribe() }()

	var side sync.WaitGroup // stats and advisories: stop with ctx
	side.Go(func() { w.statsLoop(ctx) })
	side.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-advisories:
				w.onMaxDeliveries(m)
			}
		}
	})

	var slots sync.WaitGroup
	for i := range w.opts.Concurrency {
		slots.Go(func() { w.slot(ctx, i) })
	}
	w.log.Info().Int("concurrency", w.opts.Concurrency).Strs("exec", w.opts.AllowList.Names()).Msg("worker started")

	<-ctx.Done()
	done := make(chan struct{})
	go func() { slots.Wait(); close(done) }() // ends when the slots do, awaited below
	select {
	case <-done:
	case <-time.After(w.opts.ShutdownGrace):
		w.log.Warn().Dur("grace", w.opts.ShutdownGrace).Msg("jobs still running after the shutdown grace: stopping and requeueing them")
		w.stopAll(errShutdown)
		<-done
	}
	side.Wait()
	w.publishStats() // a last one, with nothing running
	w.log.Info().Msg("worker stopped")
	return nil
}

// slot fetches and runs one job at a time until ctx ends.
func (w *Worker) slot(ctx context.Context, n int) {
	log := w.log.With().Int("slot", n).Logger()
	for ctx.Err() == nil {
		cons := *w.consumer.Load()
		fctx, cancel := context.WithTimeout(ctx, w.opts.FetchWait)
		batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
		var msgs []jetstream.Msg
		if err == nil {
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			err = batch.Error()
		}
		cancel()
		if ctx.Err() != nil {
			for _, m := range msgs { // fetched as we were stopping: give it back
				_ = m.Nak()
			}
			return
		}
		for _, m := range msgs {
			w.handle(m)
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			log.Warn().Err(err).Msg("fetching jobs failed; retrying in 1s")
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				if err := w.ensureConsumer(ctx); err != nil {
					log.Warn().Err(err).Msg("re-creating the consumer failed")
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// onCancel stops the execution a job.cancel.<executionId> names, if it
// runs here.
func (w *Worker) onCancel(m *nats.Msg) {
	id := jobs.ExecutionIDFromCancel(m.Subject)
	w.mu.Lock()
	cancel := w.running[id]
	w.mu.Unlock()
	if cancel != nil {
		w.log.Info().Str("execution", id).Msg("cancellation received")
		cancel(errCancelled)
	}
}

func (w *Worker) register(id string, cancel context.CancelCauseFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[id] = cancel
	w.m.running.Set(float64(len(w.running)))
}

func (w *Worker) unregister(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running, id)
	w.m.running.Set(float64(len(w.running)))
}

func (w *Worker) stopAll(cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cancel := range w.running {
		cancel(cause)
	}
}

// Stats is the ctl.worker.stats message.
type Stats struct {
	Worker    string    `json:"worker"`
	Running   int64     `json:"running"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	At        time.Time `json:"at"`
}

// Stats returns the worker's numbers now.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	running := len(w.running)
	w.mu.Unlock()
	return Stats{Worker: w.opts.Name, Running: int64(running), Succeeded: w.succeeded.Load(), Failed: w.failed.Load(), At: time.Now().UTC()}
}

func (w *Worker) statsLoop(ctx context.Context) {
	t := time.NewTicker(w.opts.StatsInterval)
	defer t.Stop()
	for {
		w.publishStats()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishStats publishes Stats on core NATS; a lost one is replaced by the
// next.
func (w *Worker) publishStats() {
	b, _ := json.Marshal(w.Stats())
	if err := w.opts.NC.Publish(StatsSubject, b); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		w.log.Debug().Err(err).Msg("stats not published")
	}
}
