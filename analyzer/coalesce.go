package analyzer

import "time"

// CoalesceStats is the coalescing cache's state, as the cache reports it: the analyzer only
// carries it into snapshots (SetCoalesceStats), so the TUI, reports and /metrics read one
// consistent view.
type CoalesceStats struct {
	Enabled        bool          `json:"enabled"` // serving hits right now
	TTL            time.Duration `json:"ttl_ns"`
	Scope          string        `json:"scope"`  // "read-committed" or "idle"
	Hits           int64         `json:"hits"`   // eligible reads answered from the cache
	Misses         int64         `json:"misses"` // eligible reads that had to go upstream
	Fills          int64         `json:"fills"`  // entries stored from an upstream answer
	Invalidations  int64         `json:"invalidations"`
	DiscardedFills int64         `json:"discarded_fills"` // fills that raced with an invalidation
	// Bypassed counts eligible-looking reads forwarded because the session's state forbade a
	// hit (inside a transaction that wrote, after SET ROLE, ...).
	Bypassed   int64 `json:"bypassed"`
	Entries    int   `json:"entries"`
	Bytes      int64 `json:"bytes"`
	MaxEntries int   `json:"max_entries"`
	MaxBytes   int64 `json:"max_bytes"`
	// Age of the entries served, at the moment they were served.
	AgeP50 time.Duration `json:"age_p50_ns"`
	AgeMax time.Duration `json:"age_max_ns"`
	Saved  int64         `json:"saved"` // upstream queries saved (hits and single-flight waiters)
}

// SetCoalesceStats makes every snapshot carry fn's answer as Snapshot.Coalesce; without it
// Snapshot.Coalesce is nil (coalescing not available). Call it once, before or while the
// analyzer runs; fn is called once per snapshot, from the goroutine taking it, so it must be
// safe for concurrent use and cheap. A nil fn removes it again.
func (a *Analyzer) SetCoalesceStats(fn func() CoalesceStats) {
	if fn == nil {
		a.coalesceStats.Store(nil)
		return
	}
	a.coalesceStats.Store(&fn)
}

func (a *Analyzer) snapCoalesce(s *Snapshot) {
	if fn := a.coalesceStats.Load(); fn != nil {
		st := (*fn)()
		s.Coalesce = &st
	}
}

// --- what-if: the upstream queries a cache would have saved ---

// WhatIfTTLs are the cache TTLs the what-if estimate simulates, shortest first.
var WhatIfTTLs = [whatIfN]time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second}

const (
	whatIfN   = 4
	whatIf500 = 1 // index of 500 ms in WhatIfTTLs: kept per key too
)

// WhatIf is the estimate for one TTL: of the watched polls seen since start, how many a cache
// with this TTL would have answered itself.
type WhatIf struct {
	TTL        time.Duration `json:"ttl_ns"`
	Polls      int64         `json:"polls"` // key polls considered (an IN list of three keys: three)
	Saved      int64         `json:"saved"` // of them, polls a cache with this TTL would have answered
	SavedShare float64       `json:"saved_share"`
}

// whatIfKey is a key's simulated cache: per TTL, when the last poll that would have gone
// upstream (the fill) completed, in analyzer nanoseconds.
type whatIfKey struct {
	fill  [whatIfN]int64
	saved int64 // polls saved at 500 ms
}

// whatIfCounts are the totals of one key shard, kept under its lock so the hot path pays no
// contended atomic; they outlive the keys evicted from the shard.
type whatIfCounts struct {
	polls int64
	saved [whatIfN]int64
}

// whatIfPoll simulates a cache for each TTL on a poll of k completing at `at`: the poll is
// answered by the cache if the last fill is less than the TTL away and no write to the key (or
// a table-wide write at tableNs, math.MinInt64 for none) came at or after that fill; otherwise it becomes the new fill.
// The first poll of a key always fills. The shard must be locked; k.polls is not yet counted.
func whatIfPoll(c *whatIfCounts, k *keyStats, at, tableNs int64) {
	w := &k.whatIf
	inval := tableNs
	if k.writes > 0 {
		inval = max(inval, k.lastWriteNs)
	}
	seen := k.polls > 0
	c.polls++
	for i, ttl := range whatIfTTLNs {
		f := w.fill[i]
		if seen && inval < f && at-f < ttl && f-at < ttl {
			c.saved[i]++
			if i == whatIf500 {
				w.saved++
			}
			continue
		}
		if !seen || at > f {
			w.fill[i] = at
		}
	}
}

var whatIfTTLNs = func() (ns [whatIfN]int64) {
	for i, d := range WhatIfTTLs {
		ns[i] = int64(d)
	}
	return ns
}()

// snapWhatIf sums the shards' counts.
func (a *Analyzer) snapWhatIf(s *Snapshot) {
	var polls int64
	var saved [whatIfN]int64
	for i := range a.keys.shards {
		sh := &a.keys.shards[i]
		sh.mu.Lock()
		polls += sh.whatIf.polls
		for j := range saved {
			saved[j] += sh.whatIf.saved[j]
		}
		sh.mu.Unlock()
	}
	s.WhatIf = make([]WhatIf, whatIfN)
	for i, d := range WhatIfTTLs {
		s.WhatIf[i] = WhatIf{TTL: d, Polls: polls, Saved: saved[i]}
		if polls > 0 {
			s.WhatIf[i].SavedShare = float64(saved[i]) / float64(polls)
		}
	}
}
