package positions_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/positions"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// Store is closed and every NATS server and connection stopped by
// t.Cleanup.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

const flushInterval = 100 * time.Millisecond

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open returns a Store flushing every flushInterval, its metrics, and
// closes it when the test ends.
func open(t *testing.T, js jetstream.JetStream) (*positions.Store, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	s := positions.Open(js, positions.Options{FlushInterval: flushInterval}, zerolog.New(zerolog.NewTestWriter(t)), m)
	t.Cleanup(s.Close)
	return s, m
}

func okWrites(m *metrics.Metrics) float64 {
	return testutil.ToFloat64(m.PositionWrites.WithLabelValues("ok"))
}

// settledOKWrites waits until at least one write has been counted and
// returns the count: a write lands in the bucket (waitStored sees it)
// just before the writer counts it.
func settledOKWrites(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	edgetest.Eventually(t, 10*time.Second, func() bool { return okWrites(m) >= 1 }, "a write counted")
	return okWrites(m)
}

func errWrites(m *metrics.Metrics) float64 {
	return testutil.ToFloat64(m.PositionWrites.WithLabelValues("error"))
}

// stored reads key straight from the bucket: "" when the bucket or the key
// does not exist (yet).
func stored(t *testing.T, js jetstream.JetStream, key string) string {
	t.Helper()
	kv, err := js.KeyValue(ctxT(t), positions.Bucket)
	if err != nil {
		return ""
	}
	e, err := kv.Get(ctxT(t), key)
	if err != nil {
		return ""
	}
	return string(e.Value())
}

func waitStored(t *testing.T, js jetstream.JetStream, key string, seq uint64) {
	t.Helper()
	want := strconv.FormatUint(seq, 10)
	edgetest.Eventually(t, 10*time.Second, func() bool { return stored(t, js, key) == want }, key+" = "+want+" in the bucket")
}

func get(t *testing.T, s *positions.Store, user, device string, r room.Room) (uint64, bool) {
	t.Helper()
	seq, ok, err := s.Get(ctxT(t), user, device, r)
	if err != nil {
		t.Fatalf("Get(%s, %s, %s): %v", user, device, r, err)
	}
	return seq, ok
}

var p1 = room.Project("p1")

func TestAckThenGet(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	s, m := open(t, js)

	if seq, ok := get(t, s, "u1", "d1", p1); ok {
		t.Fatalf("unknown key: got %d, ok; want ok=false", seq)
	}
	s.Ack("u1", "d1", p1, 42)
	// Before the flush the acknowledged position is served from memory.
	if seq, ok := get(t, s, "u1", "d1", p1); !ok || seq != 42 {
		t.Fatalf("before the flush: %d, %v; want 42, true", seq, ok)
	}
	waitStored(t, js, positions.Key("u1", "d1", p1), 42)
	// After it, from the bucket: the dirty entry was taken by the flush.
	if seq, ok := get(t, s, "u1", "d1", p1); !ok || seq != 42 {
		t.Fatalf("after the flush: %d, %v; want 42, true", seq, ok)
	}
	if seq, ok := get(t, s, "u1", "d2", p1); ok {
		t.Fatalf("another device: got %d, ok; want ok=false", seq)
	}
	if seq, ok := get(t, s, "u1", "d1", room.Project("p2")); ok {
		t.Fatalf("another room: got %d, ok; want ok=false", seq)
	}
	if got := settledOKWrites(t, m); got != 1 {
		t.Fatalf("ok writes %v, want 1", got)
	}
}

// TestAcksAreCumulativeWithinInterval: a lower ack before the flush does
// not replace a higher one.
func TestAcksAreCumulativeWithinInterval(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	s, _ := open(t, js)
	key := positions.Key("u1", "d1", p1)

	s.Ack("u1", "d1", p1, 10)
	s.Ack("u1", "d1", p1, 5)
	if seq, _ := get(t, s, "u1", "d1", p1); seq != 10 {
		t.Fatalf("after acks 10, 5: Get = %d, want 10", seq)
	}
	waitStored(t, js, key, 10)
}

// TestAcksAreCumulativeAcrossFlush: a lower ack arriving after the higher
// one was written must be ignored too (Ack: "a lower seq than the one
// pending or stored is ignored"). Ack compares only with the pending,
// unflushed ack, so after a flush the lower seq becomes pending and Get
// serves it until the next flush; the flush itself must not write it over
// the stored higher position either.
func TestAcksAreCumulativeAcrossFlush(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	s, m := open(t, js)
	key := positions.Key("u1", "d1", p1)

	s.Ack("u1", "d1", p1, 10)
	waitStored(t, js, key, 10)
	s.Ack("u1", "d1", p1, 5)
	if seq, _ := get(t, s, "u1", "d1", p1); seq != 10 {
		t.Errorf("ack 10 written, then ack 5: Get = %d, want 10 (a lower ack must be ignored)", seq)
	}
	// Close writes whatever the lower ack left dirty; then the bucket says
	// where the device stands.
	s.Close()
	if got := stored(t, js, key); got != "10" {
		t.Errorf("bucket holds %q after ack 10 (written) then ack 5, want \"10\" (%v ok writes)", got, okWrites(m))
	}
}

// TestCoalescing: 200 acks of one key within one interval are one write,
// or two if a flush falls between them.
func TestCoalescing(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	s, m := open(t, js)
	for i := range 200 {
		s.Ack("u1", "d1", p1, uint64(i+1))
	}
	waitStored(t, js, positions.Key("u1", "d1", p1), 200)
	// Once 200 is stored nothing is dirty any more: the count is final.
	if got := settledOKWrites(t, m); got < 1 || got > 2 {
		t.Fatalf("200 acks of one key: %v writes, want 1 or 2", got)
	}
	if got := errWrites(m); got != 0 {
		t.Fatalf("%v failed writes", got)
	}
}

// TestCloseFlushes: acks not yet written are written by Close, and a fresh
// Store reads them from the bucket.
func TestCloseFlushes(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	m := metrics.New(prometheus.NewRegistry())
	// An interval that never elapses during the test: only Close writes.
	s := positions.Open(js, positions.Options{FlushInterval: time.Hour}, zerolog.Nop(), m)
	s.Ack("u1", "d1", p1, 7)
	s.Ack("u1", "d2", room.User("u1"), 8)
	s.Ack("u1", "d1", room.Global, 9)
	s.Close()
	s.Close() // idempotent
	if got := okWrites(m); got != 3 {
		t.Fatalf("Close wrote %v positions, want 3", got)
	}

	fresh, _ := open(t, js)
	for _, tc := range []struct {
		device string
		r      room.Room
		want   uint64
	}{{"d1", p1, 7}, {"d2", room.User("u1"), 8}, {"d1", room.Global, 9}} {
		if seq, ok := get(t, fresh, "u1", tc.device, tc.r); !ok || seq != tc.want {
			t.Fatalf("fresh store, %s %s: %d, %v; want %d", tc.device, tc.r, seq, ok, tc.want)
		}
	}
}

// validKey is the key-value store's key syntax (nats.go jetstream/kv.go).
var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestKey(t *testing.T) {
	rooms := []room.Room{room.User("x"), room.Project("x"), room.Global, room.User("u1"), room.Project("A-b_9")}
	seen := map[string]room.Room{}
	for _, r := range rooms {
		for _, dev := range []string{"d1", "dev_2-x"} {
			k := positions.Key("u1", dev, r)
			if !validKey.MatchString(k) || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
				t.Errorf("Key(u1, %s, %s) = %q: not a valid key-value key", dev, r, k)
			}
			if prev, dup := seen[k]; dup {
				t.Errorf("Key(u1, %s, %s) = %q collides with %s", dev, r, k, prev)
			}
			seen[k] = r
		}
	}
	if positions.Key("u1", "d1", room.User("x")) == positions.Key("u1", "d1", room.Project("x")) {
		t.Fatal("user:x and project:x share a key")
	}

	// The real bucket takes every one of them, and keeps them apart.
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	s, _ := open(t, js)
	for i, r := range rooms {
		s.Ack("u1", "d1", r, uint64(100+i))
	}
	for i, r := range rooms {
		waitStored(t, js, positions.Key("u1", "d1", r), uint64(100+i))
	}
}

// TestFlushWritesManyPositions: a flush of many dirty positions (written
// several at a time) stores each one, with its own sequence, and counts
// each write once. It checks the concurrent flush is correct (under -race);
// the speed it was made for is BenchmarkFlush1000's to show.
func TestFlushWritesManyPositions(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	m := metrics.New(prometheus.NewRegistry())
	s := positions.Open(js, positions.Options{FlushInterval: time.Hour}, zerolog.New(zerolog.NewTestWriter(t)), m)
	const devices = 300
	for d := range devices {
		s.Ack("u1", "d"+strconv.Itoa(d), p1, uint64(1000+d))
	}
	s.Close() // the one flush
	if got := okWrites(m); got != devices {
		t.Fatalf("%v writes counted, want %d", got, devices)
	}
	for d := range devices {
		key := positions.Key("u1", "d"+strconv.Itoa(d), p1)
		if got, want := stored(t, js, key), strconv.Itoa(1000+d); got != want {
			t.Fatalf("%s = %q in the bucket, want %s", key, got, want)
		}
	}
}

// TestWritesRetriedAfterNATSOutage: acks made while NATS is down fail to
// be written, stay dirty, and are written once NATS is back.
func TestWritesRetriedAfterNATSOutage(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, setupJS := n.Connect(t)
	// The store's own connection does not buffer while disconnected, so a
	// write during the outage fails at once instead of waiting for NATS.
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, m := open(t, js)
	key := positions.Key("u1", "d1", p1)
	s.Ack("u1", "d1", p1, 1)
	waitStored(t, setupJS, key, 1) // the bucket exists

	n.Stop()
	s.Ack("u1", "d1", p1, 2)
	edgetest.Eventually(t, 10*time.Second, func() bool { return errWrites(m) >= 1 }, "a failed write while NATS is down")
	if seq, ok := get(t, s, "u1", "d1", p1); !ok || seq != 2 {
		t.Fatalf("during the outage Get = %d, %v; want the unwritten 2", seq, ok)
	}
	s.Ack("u1", "d1", p1, 3) // a newer ack during the outage wins
	n.Start()
	waitStored(t, setupJS, key, 3)
	if seq, ok := get(t, s, "u1", "d1", p1); !ok || seq != 3 {
		t.Fatalf("after the outage Get = %d, %v; want 3", seq, ok)
	}
}

// BenchmarkFlush1000: one flush of 1,000 devices' positions (Close writes
// what is dirty) to the bucket on a local NATS server: each position is a
// get, then a create or an update. Each iteration's new Store also looks
// the bucket up once (CreateOrUpdateKeyValue) in the timed part.
func BenchmarkFlush1000(b *testing.B) {
	n := edgetest.StartNATS(b)
	_, js := n.Connect(b)
	m := metrics.New(prometheus.NewRegistry())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := positions.Open(js, positions.Options{FlushInterval: time.Hour}, zerolog.Nop(), m)
		for d := range 1000 {
			s.Ack("u"+strconv.Itoa(d), "d", p1, uint64(i+1))
		}
		b.StartTimer()
		s.Close()
	}
	b.StopTimer()
	if got, want := okWrites(m), float64(1000*b.N); got != want {
		b.Fatalf("%v positions written, want %v", got, want)
	}
}
