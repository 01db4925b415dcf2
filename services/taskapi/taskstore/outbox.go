package taskstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
)

// flushAfterWrite publishes what a write just stored, on a context of its
// own: the write is done, so its events must not depend on the caller
// staying (an HTTP client may hang up). A failure is logged; Sweep retries.
func (s *Store) flushAfterWrite(ctx context.Context, e *entry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.PublishTimeout)
	defer cancel()
	if err := s.flush(ctx, e); err != nil {
		s.opts.Log.Warn().Err(err).Str("key", e.key).Int("pending", len(e.rec.Pending)).
			Msg("change stored, its events are pending: the outbox sweep will publish them")
	}
}

// flush publishes e's pending messages in order and then clears them from
// the entry (or removes the key of a deleted task). It stops at the first
// publish that fails, so that no later message overtakes it.
func (s *Store) flush(ctx context.Context, e *entry) error {
	var done []string // ids published (or dropped)
	var failed error
	for i := range e.rec.Pending {
		it := &e.rec.Pending[i]
		err := s.publish(ctx, e, it)
		if err != nil && !isPermanent(err) {
			s.m.publishErrors.Inc()
			failed = fmt.Errorf("publish %s of %s: %w", it.ID, e.key, err)
			break
		}
		if err != nil {
			s.m.dropped.Inc()
			s.opts.Log.Error().Err(err).Str("key", e.key).Str("id", it.ID).Msg("dropping an outbox message that can never be published")
		} else {
			s.m.published.Inc()
		}
		done = append(done, it.ID)
	}
	if failed == nil && e.rec.Deleted {
		return s.remove(ctx, e)
	}
	if len(done) > 0 {
		if err := s.clear(ctx, e, done); err != nil {
			return errors.Join(failed, err)
		}
	}
	return failed
}

func isPermanent(err error) bool { return errors.Is(err, errPermanent) }

func (s *Store) publish(ctx context.Context, e *entry, it *pendingItem) error {
	switch {
	case it.Event != nil:
		ev, err := e.event(it)
		if err != nil {
			return errors.Join(errPermanent, err)
		}
		if _, err := events.Publish(ctx, s.js, ev); err != nil {
			if events.IsInvalid(err) {
				return errors.Join(errPermanent, err)
			}
			return err
		}
		return nil
	case it.Msg != nil:
		m := &nats.Msg{Subject: it.Msg.Subject, Header: nats.Header(it.Msg.Header), Data: it.Msg.Data}
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(nats.MsgIdHdr, it.ID)
		_, err := s.js.PublishMsg(ctx, m)
		return err
	}
	return fmt.Errorf("%w: empty outbox item %s", errPermanent, it.ID)
}

// clear removes the items with ids done from the entry, keeping the task's
// revision. After a concurrent write it re-reads the entry and removes them
// from what is there now.
func (s *Store) clear(ctx context.Context, e *entry, done []string) error {
	for attempt := 0; attempt < s.opts.MaxRetries; attempt++ {
		rest := make([]pendingItem, 0, len(e.rec.Pending))
		for _, it := range e.rec.Pending {
			if slices.Contains(done, it.ID) {
				continue
			}
			if it.Rev == 0 {
				it.Rev = e.contentRev()
			}
			rest = append(rest, it)
		}
		if len(rest) == len(e.rec.Pending) {
			return nil // someone else cleared them
		}
		if e.rec.Deleted && len(rest) == 0 {
			return s.remove(ctx, e)
		}
		rec := e.rec
		rec.Pending, rec.Rev = rest, e.contentRev()
		_, err := s.write(ctx, e.key, &rec, e.kvRev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("clear outbox of %s: %w", e.key, err)
		}
		s.m.casRetries.Inc()
		key := e.key
		if e, err = s.load(ctx, key); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return fmt.Errorf("clear outbox of %s: %w", key, err)
		}
	}
	return fmt.Errorf("clear outbox: %w after %d attempts", ErrConflict, s.opts.MaxRetries)
}

// remove deletes the key of a deleted task whose events are all published.
// After a concurrent write (another publisher clearing the same outbox) it
// re-reads the entry and deletes it if nothing is left to publish.
func (s *Store) remove(ctx context.Context, e *entry) error {
	key := e.key
	for attempt := 0; attempt < s.opts.MaxRetries; attempt++ {
		err := s.kv.Delete(ctx, key, jetstream.LastRevision(e.kvRev))
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("remove %s: %w", key, err)
		}
		s.m.casRetries.Inc()
		if e, err = s.load(ctx, key); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return fmt.Errorf("remove %s: %w", key, err)
		}
		if !e.rec.Deleted || len(e.rec.Pending) > 0 {
			return nil // its publisher removes it when done
		}
	}
	return fmt.Errorf("remove %s: %w after %d attempts", key, ErrConflict, s.opts.MaxRetries)
}

// SweepResult reports what one Sweep did.
type SweepResult struct {
	// Scanned is the number of entries read.
	Scanned int
	// Pending is the number of entries holding messages old enough to
	// sweep (or a deleted task left to remove).
	Pending int
	// Repaired is the number of those whose messages were all published.
	Repaired int
}

// Sweep publishes the pending messages of every entry whose oldest one is
// older than Options.SweepMinAge, and removes deleted tasks whose events
// are published. It returns the first error met, after trying every entry.
// Run it at start and periodically (the task API: every 5 s); concurrent
// sweeps, in one process or many, are safe.
func (s *Store) Sweep(ctx context.Context) (SweepResult, error) {
	start := s.opts.Now()
	s.m.sweeps.Inc()
	defer func() { s.m.sweepDuration.Observe(time.Since(start).Seconds()) }()
	var (
		res  SweepResult
		todo []*entry
	)
	cutoff := start.Add(-s.opts.SweepMinAge)
	err := s.each(ctx, ">", func(e *entry) {
		res.Scanned++
		switch {
		case len(e.rec.Pending) > 0 && !e.rec.Pending[0].At.After(cutoff):
		case len(e.rec.Pending) == 0 && e.rec.Deleted:
		default:
			return
		}
		todo = append(todo, e)
	})
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	res.Pending = len(todo)
	s.m.pendingEntries.Set(float64(len(todo)))
	var first error
	for _, e := range todo {
		if err := s.flush(ctx, e); err != nil {
			first = cmpErr(first, err)
			continue
		}
		res.Repaired++
	}
	if first != nil {
		return res, fmt.Errorf("sweep: %d of %d tasks still pending: %w", res.Pending-res.Repaired, res.Pending, first)
	}
	return res, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
