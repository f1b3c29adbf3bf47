package analyzer

import (
	"math"
	"math/bits"
	"slices"
)

// ringLen is how many seconds of per-second counts every key, fingerprint and client keeps:
// enough for the 1 s / 10 s / 60 s rates and a minute of history in the detail views.
const ringLen = 64

// secRing counts events per second over the last ringLen seconds. Seconds are counted from
// the analyzer's start. It is not safe for concurrent use: its owner's lock guards it.
type secRing[T uint16 | uint32] struct {
	last int64 // the newest second written
	n    [ringLen]T
}

// keyRing is the per-key series: counts saturate at 65,535 a second, which no single key
// reaches, and 16 bits keep 100,000 keys' minute of history in 13 MB.
type keyRing = secRing[uint16]

// wideRing is for fingerprints and clients, which can see more than 65,535 queries a second.
type wideRing = secRing[uint32]

// add counts k events in second sec and returns that second's count.
func (r *secRing[T]) add(sec int64, k uint32) uint32 {
	r.advance(sec)
	if sec <= r.last-ringLen {
		return 0 // older than the ring: too late to count
	}
	i := sec % ringLen
	var maxT T = ^T(0)
	r.n[i] = T(min(uint64(r.n[i])+uint64(k), uint64(maxT)))
	return uint32(r.n[i])
}

// advance clears the slots of the seconds between the last write and sec.
func (r *secRing[T]) advance(sec int64) {
	if sec <= r.last {
		return
	}
	gap := sec - r.last
	if gap >= ringLen {
		r.n = [ringLen]T{}
	} else {
		for s := r.last + 1; s <= sec; s++ {
			r.n[s%ringLen] = 0
		}
	}
	r.last = sec
}

// sum adds the counts of the window seconds ending just before now (complete seconds only).
func (r *secRing[T]) sum(now int64, window int) uint64 {
	var t uint64
	for s := now - int64(window); s < now; s++ {
		if s < 0 || s > r.last || s <= r.last-ringLen {
			continue
		}
		t += uint64(r.n[s%ringLen])
	}
	return t
}

// rate is events per second over the window seconds before now.
func (r *secRing[T]) rate(now int64, window int) float64 {
	return float64(r.sum(now, window)) / float64(window)
}

// history returns the last n complete seconds before now, oldest first.
func (r *secRing[T]) history(now int64, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		s := now - int64(n) + int64(i)
		if s >= 0 && s <= r.last && s > r.last-ringLen {
			out[i] = uint32(r.n[s%ringLen])
		}
	}
	return out
}

// intervals keeps the most recent gaps between polls of one key, in microseconds, and whether
// the poller waited in each (see pause.go).
type intervals struct {
	n      uint32 // gaps recorded so far (the ring holds the last len(v))
	v      [32]uint32
	waited uint32 // bit i: the gap in v[i] held a wait
}

func (iv *intervals) add(micros int64, waited bool) {
	i := iv.n % uint32(len(iv.v))
	iv.v[i] = uint32(min(micros, math.MaxUint32))
	iv.waited &^= 1 << i
	if waited {
		iv.waited |= 1 << i
	}
	iv.n++
}

// waits returns how many of the recorded gaps held a wait, and how many gaps there are.
func (iv *intervals) waits() (waited, gaps int) {
	return bits.OnesCount32(iv.waited), int(min(iv.n, uint32(len(iv.v))))
}

// waitsPct is the share of the recorded gaps that held a wait, in percent, or -1 if none.
func (iv *intervals) waitsPct() float64 {
	w, n := iv.waits()
	if n == 0 {
		return -1
	}
	return 100 * float64(w) / float64(n)
}

// quantile returns the q-quantile (0..1) of the recorded gaps in milliseconds, or -1 if none.
func (iv *intervals) quantile(q float64) float64 {
	k := int(min(iv.n, uint32(len(iv.v))))
	if k == 0 {
		return -1
	}
	var buf [32]uint32 // on the stack: reading quantiles allocates nothing
	s := buf[:k]
	copy(s, iv.v[:k])
	slices.Sort(s)
	i := int(q * float64(k-1))
	return float64(s[i]) / 1000
}

// latencyHist is a log-scale histogram of durations: bucket i holds durations whose
// microsecond count has bit length i, with 4 sub-buckets per power of two.
type latencyHist struct {
	b     [4 * 40]uint32
	count uint64
}

func (h *latencyHist) add(micros int64) {
	h.b[latencyBucket(micros)]++
	h.count++
}

func latencyBucket(us int64) int {
	if us < 4 {
		return int(max(us, 0))
	}
	n := bits.Len64(uint64(us)) // 3..64
	sub := int(uint64(us)>>(n-3)) & 3
	return min(4*(n-2)+sub, 4*40-1)
}

// bucketUpper is the largest duration (µs) bucket i holds.
func bucketUpper(i int) float64 {
	if i < 4 {
		return float64(i)
	}
	n := i/4 + 2
	sub := i % 4
	return float64((uint64(4+sub+1) << (n - 3)) - 1)
}

// quantileMs returns the q-quantile in milliseconds (upper bound of its bucket).
func (h *latencyHist) quantileMs(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	target := uint64(math.Ceil(q * float64(h.count)))
	var seen uint64
	for i, c := range h.b {
		seen += uint64(c)
		if seen >= target {
			return bucketUpper(i) / 1000
		}
	}
	return bucketUpper(len(h.b)-1) / 1000
}

// clientSet remembers up to len(ids) distinct client IDs exactly, then counts the rest.
type clientSet struct {
	ids  [8]uint32
	n    uint8
	more uint32 // clients beyond the first eight (approximate: counted when first seen by a full set)
	last uint32
}

func (c *clientSet) add(id uint32) {
	if id == c.last && c.n > 0 {
		return
	}
	c.last = id
	for i := uint8(0); i < c.n; i++ {
		if c.ids[i] == id {
			return
		}
	}
	if int(c.n) < len(c.ids) {
		c.ids[c.n] = id
		c.n++
		return
	}
	c.more++
}

func (c *clientSet) count() int { return int(c.n) + int(c.more) }
