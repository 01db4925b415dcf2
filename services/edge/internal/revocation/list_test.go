package revocation

import (
	"strconv"
	"testing"
	"time"
)

// TestAddPrunesAtIntervals: Add drops the revocations older than the TTL
// at most once per prune interval, not on every call (which made reading n
// revocations cost O(n²)); the first Add from the interval's end on drops
// them.
func TestAddPrunesAtIntervals(t *testing.T) {
	l := New(time.Hour)
	t0 := time.Now()
	cur := t0
	l.now = func() time.Time { return cur }
	has := func(user string) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, ok := l.users[user]
		return ok
	}

	l.Add("a", nil, t0) // prunes (the first Add); the next prune at t0+1m
	cur = t0.Add(time.Hour + 10*time.Second)
	l.Add("b", nil, cur) // past the next prune: a, past the TTL, goes
	if has("a") || !has("b") {
		t.Fatalf("after the interval: a kept %v, b kept %v; want a dropped, b kept", has("a"), has("b"))
	}
	next := cur.Add(maxPruneInterval)
	l.Add("d", nil, cur.Add(-time.Hour+time.Second)) // past the TTL 1 s from now
	cur = cur.Add(2 * time.Second)
	l.Add("e", nil, cur) // within the interval: no prune, d stays
	if !has("d") {
		t.Fatal("an Add within the prune interval pruned")
	}
	cur = next
	l.Add("f", nil, cur)
	if has("d") || !has("e") || !has("f") {
		t.Fatalf("at the interval's end: d kept %v, e %v, f %v; want d dropped, e and f kept", has("d"), has("e"), has("f"))
	}
}

// BenchmarkAddToLargeList: one Add to a list already holding 20,000
// revocations (what a node reads at its start after a mass revocation).
func BenchmarkAddToLargeList(b *testing.B) {
	l := New(24 * time.Hour)
	now := time.Now()
	for i := range 20_000 {
		l.Add("u"+strconv.Itoa(i), nil, now)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Add("x"+strconv.Itoa(i), nil, now)
		i++
	}
}
