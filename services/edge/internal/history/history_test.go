package history_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/internal/netproxy"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/history"
)

// TestMain fails the package if a test leaves a goroutine behind (the
// embedded NATS server and the connections are stopped by t.Cleanup).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// perSubject is the stream's per-subject limit in these tests: small, so
// the limit is reached with a few publishes.
const perSubject = 5

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// setup starts NATS with an EVENTS stream keeping perSubject events per
// room and returns a Store and a publish function (room → stream seq).
func setup(t *testing.T) (*history.Store, jetstream.JetStream, func(room.Room) uint64) {
	t.Helper()
	n := edgetest.StartNATS(t)
	_, js := n.ConnectWith(t, events.StreamConfig{MaxMsgsPerSubject: perSubject})
	pub := func(r room.Room) uint64 {
		t.Helper()
		return edgetest.Publish(t, js, events.TaskDeleted(r, "u1", "t1")).Sequence
	}
	return history.New(js, history.Options{}), js, pub
}

// storeAt connects to NATS at url and returns the connection (to count
// what it sends) and a Store with opts reading through it.
func storeAt(t *testing.T, url string, opts history.Options) (*nats.Conn, *history.Store) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, history.New(js, opts)
}

var (
	roomA = room.Project("a")
	roomB = room.Project("b")
)

func TestLast(t *testing.T) {
	s, _, pub := setup(t)
	if last, err := s.Last(ctxT(t), roomA.Subject()); err != nil || last != 0 {
		t.Fatalf("Last of an empty subject: %d, %v; want 0, nil", last, err)
	}
	a1 := pub(roomA)
	b1 := pub(roomB)
	if last, err := s.Last(ctxT(t), roomA.Subject()); err != nil || last != a1 {
		t.Fatalf("Last(a): %d, %v; want %d", last, err, a1)
	}
	if last, err := s.Last(ctxT(t), roomB.Subject()); err != nil || last != b1 {
		t.Fatalf("Last(b): %d, %v; want %d", last, err, b1)
	}
	if last, err := s.Last(ctxT(t), room.Project("never").Subject()); err != nil || last != 0 {
		t.Fatalf("Last of a subject never published: %d, %v; want 0, nil", last, err)
	}
}

func TestRange(t *testing.T) {
	s, _, pub := setup(t)
	// Interleaved: a b a b b a → a holds 3, b holds 3.
	var as, bs []uint64
	as = append(as, pub(roomA))
	bs = append(bs, pub(roomB))
	as = append(as, pub(roomA))
	bs = append(bs, pub(roomB), pub(roomB))
	as = append(as, pub(roomA))

	collect := func(t *testing.T, subject string, after, upTo uint64) []uint64 {
		t.Helper()
		var got []uint64
		err := s.Range(ctxT(t), subject, after, upTo, func(m *jetstream.RawStreamMsg) error {
			if m.Subject != subject {
				t.Errorf("seq %d: subject %s, want %s", m.Sequence, m.Subject, subject)
			}
			got = append(got, m.Sequence)
			return nil
		})
		if err != nil {
			t.Fatalf("Range(%s, %d, %d): %v", subject, after, upTo, err)
		}
		return got
	}
	cases := []struct {
		name        string
		subject     string
		after, upTo uint64
		want        []uint64
	}{
		{"everything", roomA.Subject(), 0, as[2] + 100, as},
		{"after is exclusive", roomA.Subject(), as[0], as[2], as[1:]},
		{"upTo is inclusive", roomA.Subject(), 0, as[1], as[:2]},
		{"upTo between two of the subject's events", roomA.Subject(), 0, bs[2], as[:2]},
		{"after between two of the subject's events", roomA.Subject(), bs[0], as[2], as[1:]},
		{"only the other subject's", roomB.Subject(), 0, 1000, bs},
		{"exactly one", roomB.Subject(), bs[0], bs[1], bs[1:2]},
		{"upTo == after", roomA.Subject(), as[1], as[1], nil},
		{"upTo < after", roomA.Subject(), as[2], as[0], nil},
		{"after the last", roomA.Subject(), as[2], as[2] + 100, nil},
		{"empty subject", room.Project("none").Subject(), 0, 1000, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(t, tc.subject, tc.after, tc.upTo); !slices.Equal(got, tc.want) {
				t.Fatalf("Range(after %d, upTo %d) = %v, want %v", tc.after, tc.upTo, got, tc.want)
			}
		})
	}

	t.Run("fn error stops and is returned", func(t *testing.T) {
		stop := errors.New("stop here")
		var calls []uint64
		err := s.Range(ctxT(t), roomA.Subject(), 0, 1000, func(m *jetstream.RawStreamMsg) error {
			calls = append(calls, m.Sequence)
			if len(calls) == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Fatalf("Range returned %v, want the callback's error", err)
		}
		if !slices.Equal(calls, as[:2]) {
			t.Fatalf("callback saw %v, want %v and nothing after the error", calls, as[:2])
		}
	})
}

func TestCheck(t *testing.T) {
	s, _, pub := setup(t)
	check := func(t *testing.T, subject string, since uint64) history.Position {
		t.Helper()
		pos, err := s.Check(ctxT(t), subject, since)
		if err != nil {
			t.Fatalf("Check(%s, %d): %v", subject, since, err)
		}
		return pos
	}

	// a: one event, then many of b, then another of a (a stays below its
	// limit). c: more than its limit, so its oldest are gone.
	a1 := pub(roomA)
	for range 2 * perSubject {
		pub(roomB)
	}
	a2 := pub(roomA)
	roomC := room.Project("c")
	var cs []uint64
	for range perSubject + 3 {
		cs = append(cs, pub(roomC))
	}
	kept := cs[len(cs)-perSubject:] // what the per-subject limit left
	streamLast := cs[len(cs)-1]

	cases := []struct {
		name     string
		subject  string
		since    uint64
		wantGap  history.Gap
		wantLast uint64
	}{
		{"since 0 is the whole history", roomA.Subject(), 0, history.NoGap, a2},
		{"since 0 on a truncated subject", roomC.Subject(), 0, history.NoGap, streamLast},
		{"since == last", roomA.Subject(), a2, history.NoGap, a2},
		{"next event much later, none of it in between", roomA.Subject(), a1, history.NoGap, a2},
		{"since before the subject's first, below its limit", roomA.Subject(), a1 - 1, history.NoGap, a2},
		{"limit reached, since below the subject's first", roomC.Subject(), cs[0], history.Truncated, streamLast},
		{"limit reached, since just before the subject's first", roomC.Subject(), kept[0] - 1, history.NoGap, streamLast},
		{"limit reached, since at the subject's first", roomC.Subject(), kept[0], history.NoGap, streamLast},
		{"limit reached, since == last", roomC.Subject(), streamLast, history.NoGap, streamLast},
		{"since beyond the stream's last", roomA.Subject(), streamLast + 1, history.Recreated, a2},
		{"empty subject, since beyond the stream's last", room.Project("none").Subject(), streamLast + 10, history.Recreated, 0},
		{"empty subject, since within the stream", room.Project("none").Subject(), a1, history.NoGap, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pos := check(t, tc.subject, tc.since)
			if pos.Gap != tc.wantGap || pos.Last != tc.wantLast {
				t.Fatalf("Check(%s, since %d) = {Last %d, Gap %q}, want {Last %d, Gap %q}",
					tc.subject, tc.since, pos.Last, pos.Gap, tc.wantLast, tc.wantGap)
			}
		})
	}
}

// TestCheckAfterStreamFirstMoved emulates age-based removal: purging the
// stream's oldest messages moves its FirstSeq; a since below it is
// Truncated even for a subject below its per-subject limit.
func TestCheckAfterStreamFirstMoved(t *testing.T) {
	s, js, pub := setup(t)
	a1 := pub(roomA)
	b1 := pub(roomB)
	a2 := pub(roomA)
	b2 := pub(roomB)
	a3 := pub(roomA)

	st, err := js.Stream(ctxT(t), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	// Keep from a2 on: a1 and b1 are gone, as if they had aged out.
	if err := st.Purge(ctxT(t), jetstream.WithPurgeSequence(a2)); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != a2 {
		t.Fatalf("after the purge the stream starts at %d, want %d", info.State.FirstSeq, a2)
	}

	cases := []struct {
		name    string
		subject string
		since   uint64
		want    history.Gap
	}{
		{"since below the stream's first", roomA.Subject(), a1, history.Truncated},
		{"since below the stream's first, other subject", roomB.Subject(), a1, history.Truncated},
		{"since below the stream's first, empty subject", room.Project("none").Subject(), a1, history.Truncated},
		{"since just before the stream's first", roomA.Subject(), b1, history.NoGap},
		{"since at the stream's first", roomA.Subject(), a2, history.NoGap},
		{"since 0", roomA.Subject(), 0, history.NoGap},
		{"since == last", roomB.Subject(), b2, history.NoGap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pos, err := s.Check(ctxT(t), tc.subject, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if pos.Gap != tc.want {
				t.Fatalf("Check(%s, since %d) gap %q, want %q (stream first %d)", tc.subject, tc.since, pos.Gap, tc.want, a2)
			}
		})
	}
	if pos, err := s.Check(ctxT(t), roomA.Subject(), a1); err != nil || pos.Last != a3 {
		t.Fatalf("Check after purge: last %d, %v; want %d", pos.Last, err, a3)
	}

	// Range reads only what is left.
	var got []uint64
	if err := s.Range(ctxT(t), roomA.Subject(), 0, a3, func(m *jetstream.RawStreamMsg) error {
		got = append(got, m.Sequence)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{a2, a3}; !slices.Equal(got, want) {
		t.Fatalf("Range after purge = %v, want %v", got, want)
	}
}

// TestWithoutStream: reads without the stream fail, and once it is
// created (again) they reach it: a failed fetch of the stream's handle is
// not kept, and a kept handle addresses the stream by name.
func TestWithoutStream(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, early := storeAt(t, n.URL(), history.Options{}) // before the stream exists
	if _, err := early.Last(ctxT(t), roomA.Subject()); err == nil {
		t.Fatal("Last before the stream exists: no error")
	}
	_, created := n.ConnectWith(t, events.StreamConfig{MaxMsgsPerSubject: perSubject})
	first := edgetest.Publish(t, created, events.TaskDeleted(roomA, "u1", "t1")).Sequence
	if last, err := early.Last(ctxT(t), roomA.Subject()); err != nil || last != first {
		t.Fatalf("Last once the stream exists: %d, %v; want %d", last, err, first)
	}

	s, js, pub := setup(t)
	pub(roomA)
	if _, err := s.Last(ctxT(t), roomA.Subject()); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctxT(t), events.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Last(ctxT(t), roomA.Subject()); err == nil {
		t.Fatal("Last without a stream: no error")
	}
	if _, err := s.Check(ctxT(t), roomA.Subject(), 1); err == nil {
		t.Fatal("Check without a stream: no error")
	}
	if err := s.Range(ctxT(t), roomA.Subject(), 0, 1, func(*jetstream.RawStreamMsg) error { return nil }); err == nil {
		t.Fatal("Range without a stream: no error")
	}
	if _, err := events.EnsureStreams(ctxT(t), js, events.StreamConfig{MaxMsgsPerSubject: perSubject}); err != nil {
		t.Fatal(err)
	}
	a1 := pub(roomA)
	if last, err := s.Last(ctxT(t), roomA.Subject()); err != nil || last != a1 {
		t.Fatalf("Last on the recreated stream: %d, %v; want %d", last, err, a1)
	}
	if pos, err := s.Check(ctxT(t), roomA.Subject(), 5); err != nil || pos.Gap != history.Recreated {
		t.Fatalf("Check(since 5) on the recreated stream: %+v, %v; want %s", pos, err, history.Recreated)
	}
}

// TestRequestsPerRead counts the requests the Store sends to NATS: Last
// one, Check two (the filtered stream info and the subject's last), Range
// one per event read — no stream info request besides the first read's.
// Resumes after a drain and the re-check of every room after a reconnect
// make these reads by the thousand.
func TestRequestsPerRead(t *testing.T) {
	s, js, pub := setup(t)
	a0 := pub(roomA)
	pub(roomB)
	a1, a2, a3 := pub(roomA), pub(roomA), pub(roomA)
	if _, err := s.Last(ctxT(t), roomA.Subject()); err != nil { // the first read fetches the stream's handle
		t.Fatal(err)
	}
	count := func(what string, want uint64, read func() error) {
		t.Helper()
		before := js.Conn().Stats().OutMsgs // nothing else sends on this connection meanwhile
		if err := read(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := js.Conn().Stats().OutMsgs - before; got != want {
			t.Errorf("%s: %d requests, want %d", what, got, want)
		}
	}
	count("Last", 1, func() error { _, err := s.Last(ctxT(t), roomA.Subject()); return err })
	count("Check", 2, func() error { _, err := s.Check(ctxT(t), roomA.Subject(), a0); return err })
	var got []uint64
	count("Range over 3 events", 3, func() error {
		return s.Range(ctxT(t), roomA.Subject(), a0, a3, func(m *jetstream.RawStreamMsg) error {
			got = append(got, m.Sequence)
			return nil
		})
	})
	if want := []uint64{a1, a2, a3}; !slices.Equal(got, want) {
		t.Fatalf("Range = %v, want %v", got, want)
	}
}

// TestRequestsInFlightBounded: with MaxInFlight 2, twenty concurrent reads
// put two requests on the wire while the link to NATS is stalled, and the
// other eighteen wait their turn; all twenty complete once it flows again.
// A waiting read gives up when its context ends; a read through the
// Priority view does not wait.
func TestRequestsInFlightBounded(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.ConnectWith(t, events.StreamConfig{MaxMsgsPerSubject: perSubject})
	a1 := edgetest.Publish(t, js, events.TaskDeleted(roomA, "u1", "t1")).Sequence

	link := netproxy.Start(t, strings.TrimPrefix(n.URL(), "nats://"))
	waiting := prometheus.NewGauge(prometheus.GaugeOpts{Name: "waiting"})
	nc, s := storeAt(t, "nats://"+link.Addr(), history.Options{MaxInFlight: 2, Waiting: waiting})
	if _, err := s.Last(ctxT(t), roomA.Subject()); err != nil { // the handle, fetched
		t.Fatal(err)
	}

	link.Pause()
	sent := nc.Stats().OutMsgs
	const reads = 20
	errs := make(chan error, reads)
	for range reads {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			last, err := s.Last(ctx, roomA.Subject())
			if err == nil && last != a1 {
				err = fmt.Errorf("last %d, want %d", last, a1)
			}
			errs <- err
		}()
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return nc.Stats().OutMsgs-sent >= 2 }, "two requests sent")
	// Without the bound the other 18 would be on the wire within
	// microseconds; give them ample time to show.
	time.Sleep(300 * time.Millisecond)
	if got := nc.Stats().OutMsgs - sent; got != 2 {
		t.Fatalf("%d requests sent while the link stalls, want 2 (MaxInFlight)", got)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return testutil.ToFloat64(waiting) == reads-2 }, "18 reads counted as waiting")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Last(ctx, roomA.Subject()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read waiting for a turn past its deadline: %v, want %v", err, context.DeadlineExceeded)
	}

	// The Priority view does not wait for a turn.
	prio := make(chan error, 1)
	go func() {
		last, err := s.Priority().Last(ctxT(t), roomA.Subject())
		if err == nil && last != a1 {
			err = fmt.Errorf("priority last %d, want %d", last, a1)
		}
		prio <- err
	}()
	edgetest.Eventually(t, 10*time.Second, func() bool { return nc.Stats().OutMsgs-sent == 3 }, "the priority read sent past the queue")

	link.Resume()
	if err := <-prio; err != nil {
		t.Fatal(err)
	}
	for range reads {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if w := testutil.ToFloat64(waiting); w != 0 {
		t.Fatalf("%v reads counted as waiting after all completed", w)
	}
	if got := nc.Stats().OutMsgs - sent; got != reads+1 {
		t.Fatalf("%d requests sent in all, want %d", got, reads+1)
	}
}

// rangeSeqs runs s.Range and returns the sequences it called fn with.
func rangeSeqs(t *testing.T, s *history.Store, subject string, after, upTo uint64) []uint64 {
	t.Helper()
	var got []uint64
	if err := s.Range(ctxT(t), subject, after, upTo, func(m *jetstream.RawStreamMsg) error {
		got = append(got, m.Sequence)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRangeReadsEachEventOnce: the Store keeps the events a Range read, so
// that the resumes of one room read each from the stream once — a second
// read of the same events sends nothing; a read from an older position
// reads only the older events, after which the newest events are known
// from every position read so far; a read from a position newer than the
// kept events starts over from it. The Priority view reads every event.
func TestRangeReadsEachEventOnce(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, pubJS := n.ConnectWith(t, events.StreamConfig{MaxMsgsPerSubject: 100})
	pub := func() uint64 { return edgetest.Publish(t, pubJS, events.TaskDeleted(roomA, "u1", "t1")).Sequence }
	var a []uint64
	for range 6 {
		a = append(a, pub())
		edgetest.Publish(t, pubJS, events.TaskDeleted(roomB, "u1", "t1")) // another room between
	}
	nc, s := storeAt(t, n.URL(), history.Options{})
	if _, err := s.Last(ctxT(t), roomA.Subject()); err != nil { // the handle, fetched
		t.Fatal(err)
	}
	read := func(what string, view *history.Store, after, upTo uint64, want []uint64, requests uint64) {
		t.Helper()
		before := nc.Stats().OutMsgs
		if got := rangeSeqs(t, view, roomA.Subject(), after, upTo); !slices.Equal(got, want) {
			t.Fatalf("%s: Range(%d, %d] = %v, want %v", what, after, upTo, got, want)
		}
		if got := nc.Stats().OutMsgs - before; got != requests {
			t.Errorf("%s: %d requests, want %d", what, got, requests)
		}
	}
	read("first", s, a[2], a[5], a[3:6], 3)
	read("the same again", s, a[2], a[5], a[3:6], 0)
	read("from inside", s, a[3], a[5], a[4:6], 0)
	read("from older", s, a[0], a[5], a[1:6], 2)
	read("from older still", s, 0, a[5], a, 1)
	read("all again", s, 0, a[5], a, 0)
	read("up to less", s, 0, a[2], a[:3], 0)
	read("priority", s.Priority(), a[2], a[5], a[3:6], 3)

	a6, a7 := pub(), pub()
	read("on from the end", s, a[5], a7, []uint64{a6, a7}, 2)
	read("all, the new ones kept", s, 0, a7, append(slices.Clone(a), a6, a7), 0)
	a8 := pub()
	// At the end: a8 is read, and the stream asked once more (nothing after it yet).
	read("on from the end, up to past the last", s, a7, a8+5, []uint64{a8}, 2)
	a9, a10 := pub(), pub()
	read("from past the end: a new start", s, a9, a10, []uint64{a10}, 1)
	read("older, read until it joins", s, a[4], a10, []uint64{a[5], a6, a7, a8, a9, a10}, 5)
	read("older, joined", s, a[4], a10, []uint64{a[5], a6, a7, a8, a9, a10}, 0)
}

// TestRangeConcurrentReadersShareReads: fifty Ranges of one room from the
// same position at once read each event from the stream once, and every
// one gets every event in order.
func TestRangeConcurrentReadersShareReads(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, pubJS := n.ConnectWith(t, events.StreamConfig{MaxMsgsPerSubject: 100})
	var a []uint64
	for range 10 {
		a = append(a, edgetest.Publish(t, pubJS, events.TaskDeleted(roomA, "u1", "t1")).Sequence)
	}
	nc, s := storeAt(t, n.URL(), history.Options{})
	if _, err := s.Last(ctxT(t), roomA.Subject()); err != nil {
		t.Fatal(err)
	}
	before := nc.Stats().OutMsgs
	const readers = 50
	errs := make(chan error, readers)
	for range readers {
		go func() {
			var got []uint64
			err := s.Range(ctxT(t), roomA.Subject(), a[0], a[9], func(m *jetstream.RawStreamMsg) error {
				got = append(got, m.Sequence)
				return nil
			})
			if err == nil && !slices.Equal(got, a[1:]) {
				err = fmt.Errorf("Range = %v, want %v", got, a[1:])
			}
			errs <- err
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := nc.Stats().OutMsgs - before; got != 9 {
		t.Errorf("%d requests for %d readers of 9 events, want 9", got, readers)
	}
}

// TestRangeAfterRecreation: once Check has seen the stream recreated, a
// Range serves the new stream's events, not those kept from the old one
// under the same sequences.
func TestRangeAfterRecreation(t *testing.T) {
	s, js, _ := setup(t)
	old := edgetest.Publish(t, js, events.TaskDeleted(roomA, "u1", "old")).Sequence
	edgetest.Publish(t, js, events.TaskDeleted(roomA, "u1", "old"))
	title := func(after uint64) string {
		t.Helper()
		var ids []string
		if err := s.Range(ctxT(t), roomA.Subject(), after, after+1, func(m *jetstream.RawStreamMsg) error {
			ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(ids, ",")
	}
	before := title(old)
	if before == "" {
		t.Fatal("no event read")
	}
	if err := js.DeleteStream(ctxT(t), events.StreamName); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a creation time of another second, whatever the clock's resolution
	if _, err := events.EnsureStreams(ctxT(t), js, events.StreamConfig{MaxMsgsPerSubject: perSubject}); err != nil {
		t.Fatal(err)
	}
	edgetest.Publish(t, js, events.TaskDeleted(roomA, "u1", "new"))
	edgetest.Publish(t, js, events.TaskDeleted(roomA, "u1", "new"))
	if _, err := s.Check(ctxT(t), roomA.Subject(), 0); err != nil {
		t.Fatal(err)
	}
	if after := title(old); after == before || after == "" {
		t.Fatalf("after recreation: event %q, the old stream's was %q", after, before)
	}
}
