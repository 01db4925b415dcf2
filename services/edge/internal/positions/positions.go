// Package positions remembers, per (user, device, room), the last event
// sequence a device acknowledged, in a JetStream key-value bucket shared by
// every edge node. A device that reconnects to any node and subscribes
// without `since` resumes from there.
//
// Acks are cumulative and arrive often; writes are coalesced: an ack only
// marks the key dirty, and one goroutine (owned by Open/Close) writes the
// dirty keys every FlushInterval, so each key is written at most about once
// per interval. Close writes what is still dirty.
package positions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
)

// Bucket is the key-value bucket's name.
const Bucket = "EDGE_POSITIONS"

// Options configures the store. Zero fields take defaults.
type Options struct {
	// TTL is how long an untouched position is kept. Default 7 days: longer
	// than the stream's retention, so a device that was away longer than
	// that gets a reset rather than a silent live start.
	TTL time.Duration
	// Replicas of the bucket. Default 1.
	Replicas int
	// FlushInterval is how often dirty positions are written. Default 1s.
	FlushInterval time.Duration
}

// Store reads and writes device positions. Safe for concurrent use.
type Store struct {
	// static after Open
	js   jetstream.JetStream
	opts Options
	log  zerolog.Logger
	m    *metrics.Metrics
	quit chan struct{}
	done chan struct{}

	kvMu sync.Mutex
	kv   jetstream.KeyValue // guarded by kvMu; nil until the bucket exists

	mu    sync.Mutex
	dirty map[string]uint64 // guarded by mu
}

// Open returns a running Store. The bucket is created on first use (NATS
// may not be reachable yet).
func Open(js jetstream.JetStream, opts Options, log zerolog.Logger, m *metrics.Metrics) *Store {
	if opts.TTL <= 0 {
		opts.TTL = 7 * 24 * time.Hour
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	s := &Store{
		js: js, opts: opts, log: log.With().Str("component", "positions").Logger(), m: m,
		quit: make(chan struct{}), done: make(chan struct{}), dirty: make(map[string]uint64),
	}
	go s.run()
	return s
}

// Key returns the bucket key of (user, device, room): user and device are
// ids of [A-Za-z0-9_-], the room's ':' becomes '.', so keys are valid
// key-value keys and cannot collide.
func Key(user, device string, r room.Room) string {
	return user + "." + device + "." + strings.Replace(r.String(), ":", ".", 1)
}

func (s *Store) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "eventedge: last acknowledged event sequence per user, device and room",
		History:     1,
		TTL:         s.opts.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", Bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// Get returns the position of (user, device, room): the higher of the
// stored one and one acknowledged here but not yet written (so a device
// that reconnects to the same node at once loses nothing); ok is false
// when there is neither.
func (s *Store) Get(ctx context.Context, user, device string, r room.Room) (uint64, bool, error) {
	key := Key(user, device, r)
	s.mu.Lock()
	pending, dirty := s.dirty[key]
	s.mu.Unlock()
	kv, err := s.bucket(ctx)
	if err == nil {
		var e jetstream.KeyValueEntry
		if e, err = kv.Get(ctx, key); err == nil {
			seq, perr := strconv.ParseUint(string(e.Value()), 10, 64)
			if perr != nil {
				return 0, false, fmt.Errorf("position %s: bad value %q", key, e.Value())
			}
			return max(seq, pending), true, nil
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return pending, dirty, nil
	case dirty:
		// The bucket cannot be read now; what this node holds is at worst
		// older than the stored position: resuming from it repeats events
		// (clients drop them by seq) and loses none.
		return pending, true, nil
	}
	return 0, false, fmt.Errorf("get position %s: %w", key, err)
}

// Ack records that (user, device) has every event of r up to seq. It never
// blocks on NATS; the write happens within FlushInterval. Positions only
// move forward: a lower seq than the one pending or stored is ignored.
func (s *Store) Ack(user, device string, r room.Room, seq uint64) {
	key := Key(user, device, r)
	s.mu.Lock()
	if seq > s.dirty[key] {
		s.dirty[key] = seq
	}
	s.mu.Unlock()
}

func (s *Store) run() {
	defer close(s.done)
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush()
		case <-s.quit:
			s.flush()
			return
		}
	}
}

// flushConcurrency is how many positions a flush writes at once. Each
// write is two round trips to the bucket (a get, then a create or an
// update), so one at a time a flush wrote about 4,300 positions a second
// on a local NATS server (BenchmarkFlush1000): fewer than a node's devices
// may acknowledge.
const flushConcurrency = 16

// flush writes every dirty position, flushConcurrency at a time, on
// goroutines that end before it returns. Failed writes stay dirty (unless
// a newer ack replaced them) and are retried at the next flush; after the
// first failure the rest of the batch is not tried (NATS is likely away)
// and waits for the next flush too.
func (s *Store) flush() {
	s.mu.Lock()
	if len(s.dirty) == 0 {
		s.mu.Unlock()
		return
	}
	batch := s.dirty
	s.dirty = make(map[string]uint64, len(batch))
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys := make([]string, 0, len(batch))
	for key := range batch {
		keys = append(keys, key)
	}
	var (
		next   atomic.Int64
		failed atomic.Pointer[error] // the first failure
		wg     sync.WaitGroup
	)
	kv, err := s.bucket(ctx)
	if err != nil {
		failed.Store(&err)
	}
	for range min(flushConcurrency, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(keys); i = int(next.Add(1)) - 1 {
				key, seq := keys[i], batch[keys[i]]
				var err error
				if f := failed.Load(); f != nil {
					err = *f
				} else if err = s.put(ctx, kv, key, seq); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				if err != nil {
					s.m.PositionWrites.WithLabelValues("error").Inc()
					s.mu.Lock()
					if seq > s.dirty[key] {
						s.dirty[key] = seq
					}
					s.mu.Unlock()
					continue
				}
				s.m.PositionWrites.WithLabelValues("ok").Inc()
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		s.log.Warn().Err(*f).Msg("writing device positions failed; will retry")
	}
}

// put stores seq under key unless a higher position is stored already
// (another connection of the same device acknowledged more): positions
// only move forward. Two nodes writing the same key at once are ordered by
// the bucket's revision; the loser re-reads and tries again.
func (s *Store) put(ctx context.Context, kv jetstream.KeyValue, key string, seq uint64) error {
	val := []byte(strconv.FormatUint(seq, 10))
	for range 3 {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err = kv.Create(ctx, key, val); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		case err != nil:
			return err
		}
		if cur, perr := strconv.ParseUint(string(e.Value()), 10, 64); perr == nil && cur >= seq {
			return nil
		}
		if _, err = kv.Update(ctx, key, val, e.Revision()); err != nil && isConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("position %s: concurrent writers kept conflicting", key)
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Close writes what is dirty and stops the writer.
func (s *Store) Close() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}
