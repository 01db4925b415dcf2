// Package hist is a log-bucketed latency histogram in the manner of
// HdrHistogram: every power of two is split into 128 linear sub-buckets, so
// a recorded value is kept with a relative error below 1/128 (0.8 %) over
// the whole uint64 range, in a fixed array of 7,424 counters.
//
// Record is safe for concurrent use and allocation-free (atomic adds on the
// fixed array); the readers (Count, Quantile, Max, Min, Mean, Merge) may run
// concurrently with Record and see a consistent-enough snapshot for a
// progress line, and an exact one once recording has stopped.
package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits    = 7
	subBuckets = 1 << subBits // linear buckets per power of two
	// numBuckets covers values up to 2^64-1: 128 exact values, then 57
	// powers of two (shift 0..56) of 128 sub-buckets each.
	numBuckets = (64 - subBits + 1) * subBuckets
)

// Histogram counts non-negative int64 values (nanoseconds, for latency).
// The zero value is ready to use. It is about 60 KiB: share one per
// measured quantity rather than one per client.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // saturates rather than wraps (see Record)
	min    atomic.Uint64 // stored as value+1 so that 0 means "none yet"
	max    atomic.Uint64
	// clamped counts negative values recorded as 0 (a clock that went back).
	clamped atomic.Uint64
}

func index(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits // >= 0
	m := v >> uint(shift)                // in [128, 256)
	return (shift+1)*subBuckets + int(m-subBuckets)
}

// bounds returns the lowest and highest value that fall in bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < subBuckets {
		return uint64(i), uint64(i)
	}
	shift := uint(i/subBuckets - 1)
	m := uint64(i%subBuckets + subBuckets)
	lo = m << shift
	hi = lo + (uint64(1) << shift) - 1
	return lo, hi
}

// Record adds one value. A negative value is counted as 0 and in Clamped.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		h.clamped.Add(1)
		v = 0
	}
	u := uint64(v)
	h.counts[index(u)].Add(1)
	h.total.Add(1)
	if s := h.sum.Add(u); s < u { // wrapped: pin at the maximum
		h.sum.Store(math.MaxUint64)
	}
	for {
		old := h.max.Load()
		if u <= old || h.max.CompareAndSwap(old, u) {
			break
		}
	}
	for {
		old := h.min.Load()
		if (old != 0 && u+1 >= old) || h.min.CompareAndSwap(old, u+1) {
			break
		}
	}
}

// RecordDuration records d in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Clamped is the number of negative values recorded as 0.
func (h *Histogram) Clamped() uint64 { return h.clamped.Load() }

// Max is the largest value recorded (exact), 0 when empty.
func (h *Histogram) Max() int64 { return int64(h.max.Load()) }

// Min is the smallest value recorded (exact), 0 when empty.
func (h *Histogram) Min() int64 {
	if m := h.min.Load(); m > 0 {
		return int64(m - 1)
	}
	return 0
}

// Mean is the exact mean of the values recorded, 0 when empty.
func (h *Histogram) Mean() float64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at quantile q (0 < q <= 1): the highest value
// of the bucket holding the ceil(q·count)-th smallest value, never above
// Max. It is within 1/128 of the true value (and never below it). 0 when
// empty.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bounds(i)
			return min(int64(hi), h.Max())
		}
	}
	return h.Max() // counts raced ahead of total: the largest value
}

// Merge adds every value of o to h. o must not be recorded to meanwhile.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.clamped.Add(o.clamped.Load())
	if s, a := h.sum.Add(o.sum.Load()), o.sum.Load(); s < a {
		h.sum.Store(math.MaxUint64)
	}
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m != 0 && (h.min.Load() == 0 || m < h.min.Load()) {
		h.min.Store(m)
	}
}
