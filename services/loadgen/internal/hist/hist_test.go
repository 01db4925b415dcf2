package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	// Adjacent buckets tile the range without gaps or overlaps.
	var next uint64
	for i := range numBuckets {
		lo, hi := bounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if index(lo) != i || index(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: index(lo)=%d index(hi)=%d", i, lo, hi, index(lo), index(hi))
		}
		next = hi + 1
	}
	if next != 0 { // wrapped past 2^64-1: the last bucket ends at the top
		t.Fatalf("buckets end at %d, want 2^64-1", next-1)
	}
}

func TestQuantilesAgainstSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform-ms":   func() int64 { return rng.Int64N(100e6) },
		"lognormal":    func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5 + 15)) },
		"small":        func() int64 { return rng.Int64N(300) },
		"bimodal":      func() int64 { return []int64{1e6, 250e6}[rng.IntN(2)] + rng.Int64N(1e5) },
		"single-spike": func() int64 { return 42_000_000 },
	}
	for name, draw := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 20000)
			for i := range vals {
				vals[i] = draw()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(len(vals)) || h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Fatalf("count/min/max = %d/%d/%d, want %d/%d/%d", h.Count(), h.Min(), h.Max(), len(vals), vals[0], vals[len(vals)-1])
			}
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(math.Ceil(q*float64(len(vals)))) - 1
				want := vals[rank]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/subBuckets+1 {
					t.Errorf("q%.3f = %d, want %d (within 1/%d above)", q, got, want, subBuckets)
				}
			}
		})
	}
}

func TestEmptyAndNegative(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-5)
	if h.Count() != 1 || h.Clamped() != 1 || h.Max() != 0 {
		t.Fatalf("negative: count %d clamped %d max %d", h.Count(), h.Clamped(), h.Max())
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range int64(1000) {
		v := i * 7919 % 100000
		all.Record(v)
		if i%2 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.5, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%g = %d, want %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Error("merged count/min/max/mean differ")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(123456) }); n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i) * 1013)
	}
}
