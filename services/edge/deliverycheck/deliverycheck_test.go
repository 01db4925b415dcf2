package deliverycheck_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
)

type arrival struct {
	room string
	seq  uint64
}

type reset struct {
	room string
	at   uint64
}

// standardLog has two interleaved rooms, as in a shared stream:
// a: 1 3 5 7 9, b: 2 4 6 8 10.
func standardLog() *deliverycheck.Log {
	l := deliverycheck.NewLog()
	for seq := uint64(1); seq <= 10; seq++ {
		room := "a"
		if seq%2 == 0 {
			room = "b"
		}
		l.Add(room, seq)
	}
	return l
}

func inOrder(room string, seqs ...uint64) []arrival {
	var out []arrival
	for _, s := range seqs {
		out = append(out, arrival{room, s})
	}
	return out
}

func TestCheck(t *testing.T) {
	all := func(room string) deliverycheck.Expectation { return deliverycheck.Expectation{Room: room} }
	tests := []struct {
		name     string
		arrivals []arrival
		resets   []reset
		exp      []deliverycheck.Expectation
		want     deliverycheck.Report // Client is filled in
	}{
		{
			name: "nothing received, nothing expected",
			want: deliverycheck.Report{},
		},
		{
			name:     "perfect delivery of both rooms",
			arrivals: append(inOrder("a", 1, 3, 5, 7, 9), inOrder("b", 2, 4, 6, 8, 10)...),
			exp:      []deliverycheck.Expectation{all("a"), all("b")},
			want:     deliverycheck.Report{Expected: 10, Delivered: 10},
		},
		{
			name:     "rooms interleaved in arrival is not out of order",
			arrivals: []arrival{{"b", 10}, {"a", 1}, {"b", 2}}, // only b's own order counts
			want:     deliverycheck.Report{OutOfOrder: []uint64{2}},
		},
		{
			name:     "lost",
			arrivals: inOrder("a", 1, 5, 9),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 3, Lost: []uint64{3, 7}},
		},
		{
			name: "expected room never received is all lost",
			exp:  []deliverycheck.Expectation{all("b")},
			want: deliverycheck.Report{Expected: 5, Lost: []uint64{2, 4, 6, 8, 10}},
		},
		{
			name:     "duplicates listed once per extra copy",
			arrivals: inOrder("a", 1, 3, 3, 3, 5, 7, 9, 9),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 5, Duplicates: []uint64{3, 3, 9}},
		},
		{
			name:     "late duplicate is a duplicate, not out of order",
			arrivals: inOrder("a", 1, 3, 5, 7, 9, 3),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 5, Duplicates: []uint64{3}},
		},
		{
			name:     "delayed seq is out of order, the ones it was delayed past are not",
			arrivals: inOrder("a", 1, 5, 7, 3, 9),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 5, OutOfOrder: []uint64{3}},
		},
		{
			name:     "early seq makes every seq after it out of order",
			arrivals: inOrder("a", 9, 1, 3, 5, 7),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 5, OutOfOrder: []uint64{1, 3, 5, 7}},
		},
		{
			name:     "out of order then duplicated",
			arrivals: inOrder("a", 1, 5, 3, 3),
			want:     deliverycheck.Report{Duplicates: []uint64{3}, OutOfOrder: []uint64{3}},
		},
		{
			name:     "seq of another room is unexpected and does not disturb order",
			arrivals: []arrival{{"a", 1}, {"a", 10}, {"a", 3}, {"a", 5}, {"a", 7}, {"a", 9}},
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 5, Unexpected: []uint64{10}},
		},
		{
			name:     "never published seqs are unexpected once per arrival",
			arrivals: []arrival{{"a", 0}, {"a", 1}, {"a", 11}, {"a", 11}, {"c", 2}},
			want:     deliverycheck.Report{Unexpected: []uint64{0, 2, 11, 11}},
		},
		{
			name:     "reset covers seqs at or below it, later ones are still expected",
			arrivals: inOrder("a", 7),
			resets:   []reset{{"a", 5}},
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 2, Delivered: 1, Lost: []uint64{9}},
		},
		{
			name:     "reset between published seqs",
			arrivals: inOrder("a", 1),
			resets:   []reset{{"a", 6}},
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 2, Lost: []uint64{7, 9}},
		},
		{
			name:     "highest of several resets counts",
			resets:   []reset{{"a", 7}, {"a", 3}},
			arrivals: inOrder("a", 9),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Expected: 1, Delivered: 1},
		},
		{
			name:     "reset of one room does not cover another",
			resets:   []reset{{"b", 10}},
			arrivals: inOrder("a", 1, 3, 5, 9),
			exp:      []deliverycheck.Expectation{all("a"), all("b")},
			want:     deliverycheck.Report{Expected: 5, Delivered: 4, Lost: []uint64{7}},
		},
		{
			name:     "reset does not excuse duplicates or disorder",
			resets:   []reset{{"a", 9}},
			arrivals: inOrder("a", 3, 1, 1),
			exp:      []deliverycheck.Expectation{all("a")},
			want:     deliverycheck.Report{Duplicates: []uint64{1}, OutOfOrder: []uint64{1}},
		},
		{
			name:     "From is exclusive; earlier arrivals are fine",
			arrivals: inOrder("a", 1, 7, 9),
			exp:      []deliverycheck.Expectation{{Room: "a", From: 5}},
			want:     deliverycheck.Report{Expected: 2, Delivered: 2},
		},
		{
			name:     "From between published seqs",
			arrivals: inOrder("a", 7),
			exp:      []deliverycheck.Expectation{{Room: "a", From: 4}},
			want:     deliverycheck.Report{Expected: 3, Delivered: 1, Lost: []uint64{5, 9}},
		},
		{
			name:     "Until is inclusive",
			arrivals: inOrder("a", 3, 5),
			exp:      []deliverycheck.Expectation{{Room: "a", From: 1, Until: 7}},
			want:     deliverycheck.Report{Expected: 3, Delivered: 2, Lost: []uint64{7}},
		},
		{
			name: "Until at or below From expects nothing",
			exp:  []deliverycheck.Expectation{{Room: "a", From: 5, Until: 5}, {Room: "a", From: 7, Until: 3}},
			want: deliverycheck.Report{},
		},
		{
			name:     "coalesced seqs may be missing and do not count as expected",
			arrivals: inOrder("a", 1, 3, 9),
			exp: []deliverycheck.Expectation{{Room: "a", Coalesced: func(seq uint64) bool {
				return seq == 5 || seq == 7 || seq == 9
			}}},
			want: deliverycheck.Report{Expected: 2, Delivered: 2},
		},
		{
			name:     "overlapping expectations count each seq once",
			arrivals: inOrder("a", 1, 3),
			exp: []deliverycheck.Expectation{
				{Room: "a", Until: 5},
				{Room: "a", From: 1, Until: 7},
			},
			want: deliverycheck.Report{Expected: 4, Delivered: 2, Lost: []uint64{5, 7}},
		},
		{
			name:     "a seq coalesced by one expectation but asked for by another is expected",
			arrivals: inOrder("a", 1),
			exp: []deliverycheck.Expectation{
				{Room: "a", Until: 3, Coalesced: func(uint64) bool { return true }},
				{Room: "a", From: 1, Until: 3},
			},
			want: deliverycheck.Report{Expected: 1, Lost: []uint64{3}},
		},
		{
			name: "unknown room expects nothing",
			exp:  []deliverycheck.Expectation{all("nope")},
			want: deliverycheck.Report{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deliverycheck.NewReceived("c1")
			for _, a := range tt.arrivals {
				got.Add(a.room, a.seq)
			}
			for _, r := range tt.resets {
				got.Reset(r.room, r.at)
			}
			rep := deliverycheck.Check(standardLog(), got, tt.exp...)
			tt.want.Client = "c1"
			if diff := diffReports(rep, tt.want); diff != "" {
				t.Errorf("Check: %s\ngot  %v", diff, rep)
			}
			wantOK := len(tt.want.Lost)+len(tt.want.Duplicates)+len(tt.want.OutOfOrder)+len(tt.want.Unexpected) == 0
			if rep.OK() != wantOK {
				t.Errorf("OK() = %v, want %v", rep.OK(), wantOK)
			}
		})
	}
}

// diffReports returns "" if a and b agree, else what differs. nil and empty
// lists agree.
func diffReports(got, want deliverycheck.Report) string {
	var d []string
	if got.Client != want.Client {
		d = append(d, fmt.Sprintf("Client %q, want %q", got.Client, want.Client))
	}
	if got.Expected != want.Expected || got.Delivered != want.Delivered {
		d = append(d, fmt.Sprintf("Expected/Delivered %d/%d, want %d/%d", got.Expected, got.Delivered, want.Expected, want.Delivered))
	}
	for _, l := range []struct {
		name      string
		got, want []uint64
	}{
		{"Lost", got.Lost, want.Lost},
		{"Duplicates", got.Duplicates, want.Duplicates},
		{"OutOfOrder", got.OutOfOrder, want.OutOfOrder},
		{"Unexpected", got.Unexpected, want.Unexpected},
	} {
		if !slices.Equal(l.got, l.want) {
			d = append(d, fmt.Sprintf("%s %v, want %v", l.name, l.got, l.want))
		}
	}
	return strings.Join(d, "; ")
}

func TestLogSortsAndDeduplicates(t *testing.T) {
	l := deliverycheck.NewLog()
	for _, seq := range []uint64{5, 2, 9, 2, 7} {
		l.Add("r", seq)
	}
	l.Add("q", 1)
	if got, want := l.Seqs("r"), []uint64{2, 5, 7, 9}; !slices.Equal(got, want) {
		t.Errorf("Seqs(r) = %v, want %v", got, want)
	}
	if got := l.Seqs("none"); got != nil {
		t.Errorf("Seqs(none) = %v, want nil", got)
	}
	if got, want := l.Rooms(), []string{"q", "r"}; !slices.Equal(got, want) {
		t.Errorf("Rooms() = %v, want %v", got, want)
	}

	// Seqs returns a copy.
	s := l.Seqs("r")
	s[0] = 100
	if got := l.Seqs("r")[0]; got != 2 {
		t.Errorf("Seqs(r)[0] = %d after modifying a copy, want 2", got)
	}

	// A log added to out of order judges arrivals against the sorted seqs.
	got := deliverycheck.NewReceived("c")
	for _, seq := range []uint64{2, 5, 7, 9} {
		got.Add("r", seq)
	}
	if rep := deliverycheck.Check(l, got, deliverycheck.Expectation{Room: "r"}); !rep.OK() || rep.Delivered != 4 {
		t.Errorf("Check = %v, want ok with 4 delivered", rep)
	}
}

// TestConcurrentUse runs writers of a Log and of a Received alongside Check
// for the race detector, then checks the settled result.
func TestConcurrentUse(t *testing.T) {
	const (
		writers = 8
		perRoom = 500
	)
	l := deliverycheck.NewLog()
	got := deliverycheck.NewReceived("c")
	var wg sync.WaitGroup
	for w := range writers {
		room := fmt.Sprintf("project:p%d", w)
		wg.Go(func() {
			for i := range perRoom {
				seq := uint64(i*writers + w + 1)
				l.Add(room, seq)
				got.Add(room, seq)
			}
			got.Reset(room, 0)
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = deliverycheck.Check(l, got, deliverycheck.Expectation{Room: "project:p0"})
			_ = l.Rooms()
			_ = l.Seqs("project:p1")
		}
	})
	wg.Wait()

	var exp []deliverycheck.Expectation
	for _, room := range l.Rooms() {
		exp = append(exp, deliverycheck.Expectation{Room: room})
	}
	rep := deliverycheck.Check(l, got, exp...)
	if !rep.OK() || rep.Expected != writers*perRoom || rep.Delivered != writers*perRoom {
		t.Errorf("Check = %v, want ok with %d delivered", rep, writers*perRoom)
	}
}

// TestCheckFindsInjectedFaults builds random publish logs across several
// rooms and clients whose delivery loses, duplicates, delays and leaks
// chosen seqs, then checks that each Report names exactly those.
func TestCheckFindsInjectedFaults(t *testing.T) {
	rng := rand.New(rand.NewPCG(20250601, 1))
	var lost, dups, ooo, unexpected int // injected, to show the test is not vacuous
	for trial := range 300 {
		l, rooms := randomLog(rng)
		for c := range 1 + rng.IntN(3) {
			sc := simulateClient(rng, fmt.Sprintf("t%d-c%d", trial, c), l, rooms)
			rep := deliverycheck.Check(l, sc.got, sc.exp...)
			if diff := diffReports(rep, sc.want); diff != "" {
				t.Fatalf("trial %d client %d: %s\nreport %v", trial, c, diff, rep)
			}
			if rep.Expected != rep.Delivered+len(rep.Lost) {
				t.Fatalf("trial %d client %d: Expected %d != Delivered %d + Lost %d", trial, c, rep.Expected, rep.Delivered, len(rep.Lost))
			}
			lost += len(sc.want.Lost)
			dups += len(sc.want.Duplicates)
			ooo += len(sc.want.OutOfOrder)
			unexpected += len(sc.want.Unexpected)
		}
	}
	t.Logf("injected: lost %d, duplicates %d, out-of-order %d, unexpected %d", lost, dups, ooo, unexpected)
	if min(lost, dups, ooo, unexpected) < 100 {
		t.Error("too few faults injected for the test to mean much")
	}
}

// randomLog publishes up to a few hundred events to up to 6 rooms, with
// gaps in the stream sequence as if other subjects shared it.
func randomLog(rng *rand.Rand) (*deliverycheck.Log, []string) {
	rooms := make([]string, 1+rng.IntN(6))
	for i := range rooms {
		rooms[i] = fmt.Sprintf("project:p%d", i)
	}
	l := deliverycheck.NewLog()
	seq := uint64(rng.IntN(1000))
	for range rng.IntN(400) {
		seq += 1 + uint64(rng.IntN(3))
		l.Add(rooms[rng.IntN(len(rooms))], seq)
	}
	return l, rooms
}

type simulated struct {
	got  *deliverycheck.Received
	exp  []deliverycheck.Expectation
	want deliverycheck.Report
}

// simulateClient delivers each room of l to a new client, injecting faults.
// Each published seq suffers at most one fault, so the truth is known by
// construction:
//   - dropped: never arrives; lost if the expectation asks for it;
//   - duplicated: arrives, then 1–3 extra copies arrive later;
//   - delayed: arrives after at least one later seq of its room, so out of
//     order, unless no later seq arrived at all;
//   - leaked seqs (of other rooms, or never published) arrive anywhere.
func simulateClient(rng *rand.Rand, name string, l *deliverycheck.Log, rooms []string) simulated {
	sim := simulated{got: deliverycheck.NewReceived(name), want: deliverycheck.Report{Client: name}}
	var all []uint64
	for _, room := range rooms {
		all = append(all, l.Seqs(room)...)
	}

	for _, room := range rooms {
		pub := l.Seqs(room)
		if len(pub) == 0 {
			continue
		}

		// What the client must have, and what it may miss.
		var e deliverycheck.Expectation
		expecting := rng.IntN(4) != 0
		if expecting {
			e.Room = room
			if rng.IntN(2) == 0 {
				e.From = pub[rng.IntN(len(pub))] - uint64(rng.IntN(2))
			}
			if rng.IntN(3) == 0 {
				e.Until = pub[rng.IntN(len(pub))] + uint64(rng.IntN(2))
			}
			if rng.IntN(3) == 0 {
				mod := uint64(2 + rng.IntN(4))
				e.Coalesced = func(seq uint64) bool { return seq%mod == 0 }
			}
			sim.exp = append(sim.exp, e)
		}
		var resetAt uint64
		if rng.IntN(4) == 0 {
			resetAt = pub[rng.IntN(len(pub))] + uint64(rng.IntN(2))
			sim.got.Reset(room, resetAt)
		}
		isExpected := func(seq uint64) bool {
			return expecting && seq > max(e.From, resetAt) &&
				(e.Until == 0 || seq <= e.Until) &&
				(e.Coalesced == nil || !e.Coalesced(seq))
		}

		pDrop, pDup, pDelay := rng.Float64()*0.2, rng.Float64()*0.1, rng.Float64()*0.1
		if rng.IntN(8) == 0 {
			pDrop = 1 // never subscribed
		}
		type held struct {
			seq       uint64
			wait      int  // in-order arrivals still to come before it
			passed    bool // an in-order arrival of a larger seq came before it
			duplicate bool
		}
		var (
			arrivals []uint64
			pending  []held
		)
		release := func(all bool) {
			kept := pending[:0]
			for _, h := range pending {
				if h.wait > 0 && !all {
					kept = append(kept, h)
					continue
				}
				arrivals = append(arrivals, h.seq)
				switch {
				case h.duplicate:
					sim.want.Duplicates = append(sim.want.Duplicates, h.seq)
				case h.passed:
					sim.want.OutOfOrder = append(sim.want.OutOfOrder, h.seq)
				}
			}
			pending = kept
		}
		for _, seq := range pub {
			if isExpected(seq) {
				sim.want.Expected++
			}
			switch p := rng.Float64(); {
			case p < pDrop:
				if isExpected(seq) {
					sim.want.Lost = append(sim.want.Lost, seq)
				}
				continue
			case p < pDrop+pDelay:
				pending = append(pending, held{seq: seq, wait: 1 + rng.IntN(4)})
				if isExpected(seq) {
					sim.want.Delivered++
				}
				continue
			case p < pDrop+pDelay+pDup:
				for range 1 + rng.IntN(3) {
					pending = append(pending, held{seq: seq, wait: rng.IntN(4), duplicate: true})
				}
			}
			// In order.
			if isExpected(seq) {
				sim.want.Delivered++
			}
			arrivals = append(arrivals, seq)
			for i := range pending {
				pending[i].passed = pending[i].passed || seq > pending[i].seq
				pending[i].wait--
			}
			release(false)
		}
		release(true)

		// Leaks: seqs of other rooms, and seqs never published.
		for range rng.IntN(3) {
			var seq uint64
			if rng.IntN(2) == 0 {
				seq = all[rng.IntN(len(all))]
				if _, ok := slices.BinarySearch(pub, seq); ok {
					continue
				}
			} else {
				seq = slices.Max(all) + 1 + uint64(rng.IntN(100))
			}
			at := rng.IntN(len(arrivals) + 1)
			arrivals = slices.Insert(arrivals, at, seq)
			sim.want.Unexpected = append(sim.want.Unexpected, seq)
		}

		for _, seq := range arrivals {
			sim.got.Add(room, seq)
		}
	}
	slices.Sort(sim.want.Lost)
	slices.Sort(sim.want.Duplicates)
	slices.Sort(sim.want.OutOfOrder)
	slices.Sort(sim.want.Unexpected)
	return sim
}

func TestReportString(t *testing.T) {
	ok := deliverycheck.Report{Client: "c1", Expected: 3, Delivered: 3}
	if got, want := ok.String(), `client "c1" ok: expected 3, delivered 3`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	bad := deliverycheck.Report{
		Client: "c2", Expected: 10, Delivered: 3,
		Lost:       []uint64{1, 2, 3, 4, 5, 6, 7},
		OutOfOrder: []uint64{9},
	}
	want := `client "c2" FAIL: expected 10, delivered 3; lost 7 [1 2 3 4 5 ...]; out-of-order 1 [9]`
	if got := bad.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	reports := []deliverycheck.Report{
		{Client: "fine", Expected: 5, Delivered: 5},
		{Client: "b", Expected: 5, Delivered: 4, Lost: []uint64{3}},
		{Client: "worst", Expected: 5, Delivered: 3, Lost: []uint64{1, 2}, Duplicates: []uint64{4}, Unexpected: []uint64{99}},
		{Client: "a", Expected: 5, Delivered: 5, OutOfOrder: []uint64{2}},
	}
	s := deliverycheck.Summarize(reports)
	if s.OK() {
		t.Error("OK() = true with failed clients")
	}
	if s.Clients != 4 || s.Expected != 20 || s.Delivered != 17 || s.Lost != 3 ||
		s.Duplicates != 1 || s.OutOfOrder != 1 || s.Unexpected != 1 {
		t.Errorf("totals = %+v", s)
	}
	var failed []string
	for _, r := range s.Failed {
		failed = append(failed, r.Client)
	}
	if want := []string{"worst", "a", "b"}; !slices.Equal(failed, want) {
		t.Errorf("Failed = %v, want %v (worst first, then by client)", failed, want)
	}
	wantString := `4 clients FAIL: expected 20, delivered 17; lost 3, duplicates 1, out-of-order 1, unexpected 1; 3 failed:` +
		"\n  " + reports[2].String() + "\n  " + reports[3].String() + "\n  " + reports[1].String()
	if got := s.String(); got != wantString {
		t.Errorf("String() =\n%s\nwant\n%s", got, wantString)
	}

	clean := deliverycheck.Summarize(reports[:1])
	if !clean.OK() || len(clean.Failed) != 0 {
		t.Errorf("Summarize(ok reports) = %+v, want OK", clean)
	}
	if got, want := clean.String(), "1 clients ok: expected 5, delivered 5; lost 0, duplicates 0, out-of-order 0, unexpected 0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// BenchmarkCheck checks one client that received every event of 100 rooms ×
// 10,000 events, the rooms interleaved in the stream.
func BenchmarkCheck(b *testing.B) {
	const (
		rooms   = 100
		perRoom = 10_000
	)
	l := deliverycheck.NewLog()
	got := deliverycheck.NewReceived("bench")
	exp := make([]deliverycheck.Expectation, rooms)
	names := make([]string, rooms)
	for i := range names {
		names[i] = fmt.Sprintf("project:p%d", i)
		exp[i] = deliverycheck.Expectation{Room: names[i]}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for seq := uint64(1); seq <= rooms*perRoom; seq++ {
		room := names[rng.IntN(rooms)]
		l.Add(room, seq)
		got.Add(room, seq)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rep := deliverycheck.Check(l, got, exp...); !rep.OK() {
			b.Fatal(rep)
		}
	}
}

func ExampleCheck() {
	l := deliverycheck.NewLog()
	for seq := uint64(1); seq <= 6; seq++ {
		l.Add("project:p1", seq*10)
	}
	got := deliverycheck.NewReceived("dashboard-1")
	for _, seq := range []uint64{10, 30, 20, 30, 60} {
		got.Add("project:p1", seq)
	}
	fmt.Println(deliverycheck.Check(l, got, deliverycheck.Expectation{Room: "project:p1"}))
	// Output: client "dashboard-1" FAIL: expected 6, delivered 4; lost 2 [40 50]; duplicates 1 [30]; out-of-order 1 [20]
}

// TestRecordClientMessages: Record takes the Go client's messages as Add
// and Reset would, and ignores other ops.
func TestRecordClientMessages(t *testing.T) {
	log := deliverycheck.NewLog()
	for _, seq := range []uint64{3, 5, 8, 9} {
		log.Add("r", seq)
	}
	got := deliverycheck.NewReceived("c")
	var events int
	for _, m := range []*client.Message{
		{Op: "event", Room: "r", Seq: 3},
		{Op: "reset", Room: "r", Seq: 8}, // nothing at or below 8 is expected any more
		{Op: "unsubscribed", Room: "r", Seq: 99},
		{Op: "event", Room: "r", Seq: 9},
		{Op: "event", Room: "r", Seq: 9},
	} {
		if got.Record(m) {
			events++
		}
	}
	if events != 3 {
		t.Errorf("Record reported %d events, want 3", events)
	}
	rep := deliverycheck.Check(log, got, deliverycheck.Expectation{Room: "r"})
	if rep.Expected != 1 || rep.Delivered != 1 || len(rep.Lost) != 0 || !slices.Equal(rep.Duplicates, []uint64{9}) {
		t.Errorf("report %+v; want 1 expected (9), delivered, duplicated once", rep)
	}
}
