// Package coalesce answers repeated watched reads from a short-TTL cache so the database gets
// relief from a polling storm while the application is fixed. It implements proxy.Cache: the
// proxy decides when a session may be served from the cache and speaks the protocol; this
// package keeps the entries, runs single-flight, invalidates on writes and says which
// statements are eligible.
//
// The guarantee: a served answer is never older than the last committed write to its key that
// passed through the proxy, and never older than the TTL. Every entry records the generation
// counters of what it depends on (its keys' slots, its table, everything) as they were when its
// read was sent upstream; a write bumps them when it is sent and again when its transaction
// ends, before the client hears of the commit. An entry whose counters moved is never served,
// and a fill whose counters moved while it was in flight is discarded.
package coalesce

import (
	"bytes"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// Config shapes a Cache; zero values get the defaults documented on each field.
type Config struct {
	TTL        time.Duration    // how long an answer may be served; default 500ms
	MaxEntries int              // default 10,000
	MaxBytes   int64            // memory for answers; default 64 MiB
	Scope      proxy.CacheScope // default read-committed
	Watches    []analyzer.Watch // the eligible tables; default analyzer.Presets
	Enabled    bool             // serve from the start (else until SetEnabled(true))
	// MaxWait bounds how long a read waits for the same read's answer in flight (single-flight)
	// before it goes upstream itself; default the TTL, at least 1s.
	MaxWait time.Duration
}

func (c *Config) defaults() {
	if c.TTL <= 0 {
		c.TTL = 500 * time.Millisecond
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 10_000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.Watches == nil {
		c.Watches = analyzer.Presets
	}
	if c.MaxWait <= 0 {
		c.MaxWait = max(c.TTL, time.Second)
	}
}

// genSlots is how many per-key generation counters there are. Keys share a counter by hash:
// a collision only makes an invalidation reach one more key, never fewer.
const genSlots = 1 << 16

// Cache is the coalescing cache. Create it with New; it is safe for concurrent use.
type Cache struct {
	cfg         Config
	seed, seed2 maphash.Seed

	enabled atomic.Bool
	epoch   atomic.Uint64 // bumped by every switch: fills begun before it are discarded

	slotGen  [genSlots]atomic.Uint64
	tableGen []atomic.Uint64 // per watch
	allGen   atomic.Uint64

	lru   atomic.Pointer[expirable.LRU[[2]uint64, *entry]] // swapped whole by SetTTL
	ttl   atomic.Int64                                     // Config.TTL, until SetTTL
	bytes atomic.Int64

	mu       sync.Mutex
	inflight map[[2]uint64]*flight

	ages ageRing

	hits, misses, fills, invalidations, discarded, bypassed atomic.Int64
}

// entry is one cached answer with what it depends on.
type entry struct {
	key    []byte
	ans    *proxy.Answer
	st     stamp
	readAt time.Time // when its read was sent upstream: its age counts from here
	size   int64
}

// stamp is the generations a read depends on, as they were when it was sent.
type stamp struct {
	all, table uint64
	watch      int16
	n          uint8
	slots      [proxy.MaxTouchKeys]uint32
	gens       [proxy.MaxTouchKeys]uint64
}

// New makes a Cache.
func New(cfg Config) *Cache {
	cfg.defaults()
	c := &Cache{cfg: cfg, seed: maphash.MakeSeed(), seed2: maphash.MakeSeed(), inflight: map[[2]uint64]*flight{}}
	c.tableGen = make([]atomic.Uint64, len(cfg.Watches))
	c.ttl.Store(int64(cfg.TTL))
	c.lru.Store(c.newLRU(cfg.TTL))
	c.enabled.Store(cfg.Enabled)
	return c
}

func (c *Cache) newLRU(ttl time.Duration) *expirable.LRU[[2]uint64, *entry] {
	return expirable.NewLRU[[2]uint64, *entry](c.cfg.MaxEntries, func(_ [2]uint64, e *entry) {
		c.bytes.Add(-e.size)
	}, ttl)
}

// SetTTL changes how long an answer may be served (a configuration reload). Entries and fills
// of the old TTL are dropped, as at a switch: nothing is served under a TTL it was not kept for.
func (c *Cache) SetTTL(ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	c.epoch.Add(1)
	c.ttl.Store(int64(ttl))
	old := c.lru.Swap(c.newLRU(ttl))
	c.mu.Unlock()
	old.Purge()
}

var _ proxy.Cache = (*Cache)(nil)

// Enabled implements proxy.Cache.
func (c *Cache) Enabled() bool { return c.enabled.Load() }

// SetEnabled switches serving on or off. Either way every entry is dropped and every fill in
// flight is discarded, so nothing read before the switch is served after it.
func (c *Cache) SetEnabled(on bool) {
	c.mu.Lock()
	c.epoch.Add(1)
	c.enabled.Store(on)
	c.mu.Unlock()
	c.lru.Load().Purge()
}

// Toggle switches serving and returns the new state (the TUI's c key).
func (c *Cache) Toggle() (bool, error) {
	on := !c.Enabled()
	c.SetEnabled(on)
	return on, nil
}

// Scope implements proxy.Cache.
func (c *Cache) Scope() proxy.CacheScope { return c.cfg.Scope }

// TTL is how long an answer may be served.
func (c *Cache) TTL() time.Duration { return time.Duration(c.ttl.Load()) }

// MaxAnswer implements proxy.Cache: one answer may take at most a sixteenth of the memory.
func (c *Cache) MaxAnswer() int { return int(min(c.cfg.MaxBytes/16, 1<<30)) }

// Bypassed implements proxy.Cache.
func (c *Cache) Bypassed() { c.bypassed.Add(1) }

// Invalidate implements proxy.Cache.
func (c *Cache) Invalidate(t proxy.Touch) {
	c.invalidations.Add(1)
	switch {
	case t.All || int(t.Watch) >= len(c.tableGen) || t.Watch < 0:
		c.allGen.Add(1)
	case t.Table:
		c.tableGen[t.Watch].Add(1)
	default:
		for _, s := range t.Slots[:t.N] {
			c.slotGen[s%genSlots].Add(1)
		}
	}
}

func (c *Cache) stamp(t proxy.Touch) stamp {
	st := stamp{all: c.allGen.Load(), watch: t.Watch, n: t.N, slots: t.Slots}
	if int(t.Watch) < len(c.tableGen) && t.Watch >= 0 {
		st.table = c.tableGen[t.Watch].Load()
	}
	for i, s := range t.Slots[:t.N] {
		st.gens[i] = c.slotGen[s%genSlots].Load()
	}
	return st
}

// valid reports whether nothing st depends on was invalidated since it was taken.
func (c *Cache) valid(st *stamp) bool {
	if c.allGen.Load() != st.all {
		return false
	}
	if int(st.watch) < len(c.tableGen) && st.watch >= 0 && c.tableGen[st.watch].Load() != st.table {
		return false
	}
	for i, s := range st.slots[:st.n] {
		if c.slotGen[s%genSlots].Load() != st.gens[i] {
			return false
		}
	}
	return true
}

// hash names a key's cache slot: two independent 64-bit hashes, so keys share a slot (and are
// then told apart by the stored key) only if both collide.
func (c *Cache) hash(key []byte) [2]uint64 {
	return [2]uint64{maphash.Bytes(c.seed, key), maphash.Bytes(c.seed2, key)}
}

// Get implements proxy.Cache.
func (c *Cache) Get(key []byte, t proxy.Touch, now time.Time) (*proxy.Answer, proxy.Fill) {
	if !c.Enabled() {
		return nil, nil
	}
	h := c.hash(key)
	lru := c.lru.Load()
	if e, ok := lru.Get(h); ok && bytes.Equal(e.key, key) {
		if age := now.Sub(e.readAt); age < c.TTL() && c.valid(&e.st) {
			c.hits.Add(1)
			c.ages.add(age)
			return e.ans, nil
		}
		lru.Remove(h) // expired or invalidated
	}
	c.mu.Lock()
	if f := c.inflight[h]; f != nil && bytes.Equal(f.key, key) && f.epoch == c.epoch.Load() {
		c.mu.Unlock()
		return c.wait(f)
	}
	f := &flight{c: c, key: slices.Clone(key), h: h, st: c.stamp(t), epoch: c.epoch.Load(), readAt: now, done: make(chan struct{})}
	c.inflight[h] = f
	c.mu.Unlock()
	c.misses.Add(1)
	return nil, f
}

// wait is single-flight: a read identical to one in flight waits for its answer.
func (c *Cache) wait(f *flight) (*proxy.Answer, proxy.Fill) {
	timer := time.NewTimer(c.cfg.MaxWait)
	defer timer.Stop()
	select {
	case <-f.done:
	case <-timer.C:
		c.misses.Add(1)
		return nil, nil
	}
	if f.ans == nil {
		c.misses.Add(1)
		return nil, nil // the fill failed or was discarded: forward, never a made-up error
	}
	c.hits.Add(1)
	c.ages.add(time.Since(f.readAt))
	return f.ans, nil
}

// flight is a read in flight upstream whose answer fills the cache; identical reads wait for it.
type flight struct {
	c      *Cache
	key    []byte
	h      [2]uint64
	st     stamp
	epoch  uint64
	readAt time.Time
	done   chan struct{}
	ans    *proxy.Answer // set before done closes when the fill was kept
	once   sync.Once
}

// Done implements proxy.Fill.
func (f *flight) Done(a *proxy.Answer) { f.finish(a) }

// Abandon implements proxy.Fill.
func (f *flight) Abandon() { f.finish(nil) }

func (f *flight) finish(a *proxy.Answer) {
	f.once.Do(func() {
		c := f.c
		c.mu.Lock()
		if c.inflight[f.h] == f {
			delete(c.inflight, f.h)
		}
		var size int64
		if a != nil {
			size = int64(len(f.key)+a.Size()) + 128 // the entry and its bookkeeping
		}
		keep := a != nil && c.Enabled() && f.epoch == c.epoch.Load() && c.valid(&f.st) &&
			size <= c.cfg.MaxBytes/16 && time.Since(f.readAt) < c.TTL()
		if keep {
			f.ans = a
			// Add replaces an entry still held under the key without the eviction callback, and
			// the LRU holds an expired entry (reported absent) until its own sweep: removed first,
			// the old entry's bytes are taken off the count that MaxBytes is enforced against.
			lru := c.lru.Load() // stable under c.mu: SetTTL swaps it under c.mu
			lru.Remove(f.h)
			c.bytes.Add(size)
			lru.Add(f.h, &entry{key: f.key, ans: a, st: f.st, readAt: f.readAt, size: size})
			for c.bytes.Load() > c.cfg.MaxBytes {
				if _, _, ok := lru.RemoveOldest(); !ok {
					break
				}
			}
			c.fills.Add(1)
		} else if a != nil {
			c.discarded.Add(1)
		}
		close(f.done)
		c.mu.Unlock()
	})
}

// Stats reports the cache's counters for snapshots, the TUI, reports and metrics.
func (c *Cache) Stats() analyzer.CoalesceStats {
	p50, pmax := c.ages.quantiles()
	scope := "read-committed"
	if c.cfg.Scope == proxy.ScopeIdle {
		scope = "idle"
	}
	return analyzer.CoalesceStats{
		Enabled: c.Enabled(), TTL: c.TTL(), Scope: scope,
		Hits: c.hits.Load(), Misses: c.misses.Load(), Fills: c.fills.Load(),
		Invalidations: c.invalidations.Load(), DiscardedFills: c.discarded.Load(), Bypassed: c.bypassed.Load(),
		Entries: c.lru.Load().Len(), Bytes: c.bytes.Load(), MaxEntries: c.cfg.MaxEntries, MaxBytes: c.cfg.MaxBytes,
		AgeP50: p50, AgeMax: pmax, Saved: c.hits.Load(),
	}
}

// ageRing keeps the ages of the last served answers.
type ageRing struct {
	mu   sync.Mutex
	ages [1024]time.Duration
	n    int
	max  time.Duration
}

func (r *ageRing) add(d time.Duration) {
	r.mu.Lock()
	r.ages[r.n%len(r.ages)] = d
	r.n++
	r.max = max(r.max, d)
	r.mu.Unlock()
}

// quantiles returns the median of the recent ages and the largest age ever served.
func (r *ageRing) quantiles() (p50, pmax time.Duration) {
	r.mu.Lock()
	n := min(r.n, len(r.ages))
	recent := slices.Clone(r.ages[:n])
	pmax = r.max
	r.mu.Unlock()
	if n == 0 {
		return 0, 0
	}
	slices.Sort(recent)
	return recent[n/2], pmax
}
