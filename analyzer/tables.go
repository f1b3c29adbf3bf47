package analyzer

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
	"github.com/pgpollwatch/pgpollwatch/event"
	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

const shards = 16

// evictSample is how many entries are compared to pick the lightest to evict when a table is
// full: enough that heavy hitters are practically never chosen, cheap enough to do inline.
const evictSample = 8

// evictLightest removes, from a sample of evictSample entries of a full table, the one with
// the smallest weight among those that may go (weight's second result), and reports whether
// it removed one. This is Space-Saving with sampled eviction: heavy hitters stay exact.
func evictLightest[K comparable, V any](m map[K]V, weight func(V) (int64, bool)) (V, bool) {
	var victim K
	var gone V
	best := int64(-1)
	n := 0
	for k, v := range m {
		if w, ok := weight(v); ok && (best < 0 || w < best) {
			victim, gone, best = k, v, w
		}
		if n++; n == evictSample {
			break
		}
	}
	if best >= 0 {
		delete(m, victim)
	}
	return gone, best >= 0
}

// --- fingerprints ---

// fpLookup is what a fingerprint does to a watched table (the same for every statement with
// this fingerprint: it is a property of the statement's shape).
type fpLookup struct {
	watch    int
	write    bool
	param    int
	anyArray bool
	keyConst int // which constant of the normalized statement is the key; -1: ask the matcher
	queue    int // the job queue it polls or enqueues to (Config.Queues); -1: none
	queueOp  queueOp
}

// lookup is what the fingerprint does to a watched table, as of the latest watches.
func (f *fpStats) lookup() *fpLookup { return f.lk.Load() }

// fpStats aggregates every statement with one fingerprint.
type fpStats struct {
	timed       int64 // calls whose duration the source knew (Event.Untimed: a log without durations)
	fingerprint uint64
	text        string // normalized, as first seen
	example     string // the text as first sent, literals included (Config.ReportLiterals only)
	command     sqlscan.Command
	lk          atomic.Pointer[fpLookup] // what it does to a watched table; replaced whole when the watches change
	lkGen       atomic.Uint64            // the watchSet generation lk was found for
	evicted     atomic.Bool

	mu        sync.Mutex
	calls     int64
	failed    int64
	cached    int64
	rows      int64
	totalNs   int64
	hist      latencyHist
	ring      wideRing
	firstSec  int64
	lastSec   int64
	statusIdx int // column of the watch's status in the rows; -1 unknown, -2 absent
}

func (f *fpStats) record(ev *event.Event, sec int64) {
	f.mu.Lock()
	if f.calls == 0 {
		f.firstSec = sec
	}
	f.calls++
	f.lastSec = sec
	if ev.Failed {
		f.failed++
	}
	if ev.Cached {
		f.cached++
	}
	f.rows += ev.Rows
	if !ev.Untimed {
		f.timed++
		f.totalNs += int64(ev.Duration)
		f.hist.add(ev.Duration.Microseconds())
	}
	f.ring.add(sec, 1)
	f.mu.Unlock()
}

// status reads the watch's status column from the first returned row: "no row" when none came
// back (a pending Celery task has no row yet).
func (f *fpStats) status(ev *event.Event, w *Watch) ([]byte, bool) {
	if w.StatusColumn == "" {
		return nil, false
	}
	if ev.Rows == 0 {
		return noRow, true
	}
	f.mu.Lock()
	idx := f.statusIdx
	if idx == -1 && len(ev.Columns) > 0 {
		idx = columnIndex(ev.Columns, w.StatusColumn, w.Table)
		f.statusIdx = idx
	}
	f.mu.Unlock()
	if idx < 0 {
		return nil, false
	}
	return columnValue(ev.FirstRow, idx)
}

var noRow = []byte("no row")

// columnIndex finds a column by name in a RowDescription body, also under SQLAlchemy's label
// for it (celery_taskmeta.status AS celery_taskmeta_status); -2 when absent.
func columnIndex(rowDesc []byte, name, table string) int {
	idx := -2
	pgwire.RowDescriptionColumns(rowDesc, func(i int, c []byte) bool {
		col := string(c) // no copy: compared only
		if col == name || len(col) == len(table)+1+len(name) && col[:len(table)] == table && col[len(table)] == '_' && col[len(table)+1:] == name {
			idx = i
			return false
		}
		return true
	})
	return idx
}

// columnValue returns column idx of a DataRow body prefix, if the prefix holds all of it.
func columnValue(row []byte, idx int) ([]byte, bool) { return pgwire.DataRowValue(row, idx) }

type fpShard struct {
	mu sync.RWMutex
	m  map[uint64]*fpStats
}

type fpTable struct {
	shards   [shards]fpShard
	perShard int
	evicted  atomic.Int64
}

func (t *fpTable) init(max int) {
	t.perShard = max/shards + 1
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*fpStats)
	}
}

// get returns the entry for fp, making it with mk when new.
func (t *fpTable) get(fp uint64, mk func() *fpStats) *fpStats {
	s := &t.shards[fp%shards]
	s.mu.RLock()
	f := s.m[fp]
	s.mu.RUnlock()
	if f != nil {
		return f
	}
	nf := mk()
	s.mu.Lock()
	defer s.mu.Unlock()
	if f = s.m[fp]; f != nil {
		return f
	}
	if len(s.m) >= t.perShard {
		victim, ok := evictLightest(s.m, func(f *fpStats) (int64, bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.calls, true
		})
		if ok {
			victim.evicted.Store(true) // connections' text caches drop it
			t.evicted.Add(1)
		}
	}
	s.m[fp] = nf
	return nf
}

func (t *fpTable) each(fn func(*fpStats)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, f := range s.m {
			fn(f)
		}
		s.mu.RUnlock()
	}
}

// --- watched keys ---

// keyStats is everything known about one watched key.
type keyStats struct {
	watch int
	key   string
	hash  uint64 // of watch and key: picks the shard, and orders equal keys in snapshots

	polls              int64
	unchanged          int64 // polls whose rows equal the previous poll's: wasted work
	rows               int64
	cached             int64
	writes             int64
	firstNs, lastNs    int64
	lastWriteNs        int64
	firstWriteNs       int64
	terminalNs         int64 // first poll that returned a terminal status; 0: none yet
	resultWriteNs      int64 // first write that stored a terminal status; 0: none yet
	pollsAfterTerminal int64
	digest             uint64
	hasDigest          bool
	status             string
	clients            clientSet
	gaps               intervals
	lastConn           uint64       // the connection of the latest poll (pauseClock.id)
	lastPoller         *pollerClock // the client identity of the latest poll
	connMark           waitMark     // lastConn's counts after the latest poll
	pollerMark         waitMark     // lastPoller's
	ring               keyRing
	peak               uint32

	whatIf whatIfKey
	tags   tagTop // the attribution tags it was polled with most

	stormState // written by the ticker
	spinning   bool
	sweepSpin  bool // its poller spins over many keys and asked this one again without a wait
}

type keyShard struct {
	mu     sync.Mutex
	m      map[string]*keyStats
	whatIf whatIfCounts
}

type keyTable struct {
	shards   [shards]keyShard
	perShard int
	evicted  atomic.Int64
}

func (t *keyTable) init(max int) {
	t.perShard = max/shards + 1
	for i := range t.shards {
		t.shards[i].m = make(map[string]*keyStats)
	}
}

// locate builds the table key (watch index + key) in buf and returns its shard and hash.
func (t *keyTable) locate(buf *[]byte, watch int, key []byte) (*keyShard, []byte, uint64) {
	b := append((*buf)[:0], byte(watch))
	b = append(b, key...)
	*buf = b
	// A hash without a random seed: the same input makes the same table (shards, eviction,
	// order of equal keys), so one log analysed twice gives the same report. The shard maps
	// are Go maps, seeded by the runtime: no flooding to fear from chosen keys.
	h := xxhash.Sum64(b)
	return &t.shards[h%shards], b, h
}

// entry returns the key's stats, creating (and evicting the lightest when full). The shard
// must be locked.
func (t *keyTable) entry(s *keyShard, tk []byte, h uint64, watch int, key []byte) *keyStats {
	if k := s.m[string(tk)]; k != nil {
		return k
	}
	if len(s.m) >= t.perShard {
		if _, ok := evictLightest(s.m, func(k *keyStats) (int64, bool) { return k.polls, !k.storming }); ok {
			t.evicted.Add(1)
		}
	}
	k := &keyStats{watch: watch, key: string(key), hash: h, stormState: stormState{record: -1}}
	s.m[string(tk)] = k
	return k
}

// poll counts a poll of key by poller p, whose lock the caller holds.
func (t *keyTable) poll(a *Analyzer, cs *connState, p *pollerClock, watch int, key []byte, ev *event.Event, sec, start, at int64, status []byte, hasStatus bool) {
	s, tk, h := t.locate(&cs.tkey, watch, key)
	ws := a.ws.Load()
	w := &ws.list[watch]
	s.mu.Lock()
	k := t.entry(s, tk, h, watch, key)
	whatIfPoll(&s.whatIf, k, at, ws.counters[watch].tableWriteNs.Load())
	if k.polls == 0 {
		k.firstNs = at
	} else if gap := at - k.lastNs; gap >= 0 {
		w := waited(k, cs.clock, p, start, int64(a.cfg.SpinInterval))
		if k.lastPoller == p {
			p.gap(sec, gap/1000, w)
		}
		k.gaps.add(gap/1000, w)
	}
	k.lastConn, k.connMark = cs.clock.id, cs.clock.mark()
	k.lastPoller, k.pollerMark = p, p.mark()
	k.polls++
	k.tags.add(cs.tag)
	k.lastNs = max(k.lastNs, at)
	switch {
	case ev.AnswerLost:
		// A capture lost the answer: neither the same nor a new one, and the next answer
		// cannot be compared with it either.
		k.hasDigest = false
	case k.hasDigest && k.digest == ev.Digest:
		k.unchanged++
		fallthrough
	default:
		k.digest, k.hasDigest = ev.Digest, true
	}
	k.rows += ev.Rows
	if ev.Cached {
		k.cached++
	}
	if hasStatus {
		if string(status) != k.status {
			k.status = string(status)
		}
		if k.terminalNs == 0 && isTerminal(w, status) {
			k.terminalNs = at
		} else if k.terminalNs != 0 && at > k.terminalNs {
			k.pollsAfterTerminal++
		}
	} else if k.resultWriteNs != 0 && at > k.resultWriteNs {
		// No answer to read the status from (a server log): the write that stored the result
		// says when the wait was over.
		k.pollsAfterTerminal++
	}
	k.clients.add(cs.client.id)
	if c := k.ring.add(sec, 1); c > k.peak {
		k.peak = c
	}
	s.mu.Unlock()
}

func isTerminal(w *Watch, status []byte) bool {
	for _, t := range w.TerminalStates {
		if string(status) == t {
			return true
		}
	}
	return false
}

// write counts a write to key; result says it stored a terminal state (storesResult).
func (t *keyTable) write(a *Analyzer, watch int, key []byte, at int64, result bool) {
	var buf []byte
	s, tk, h := t.locate(&buf, watch, key)
	s.mu.Lock()
	k := t.entry(s, tk, h, watch, key)
	k.writes++
	if k.firstWriteNs == 0 {
		k.firstWriteNs = at
	}
	k.lastWriteNs = max(k.lastWriteNs, at)
	if result && k.resultWriteNs == 0 {
		k.resultWriteNs = at
	}
	s.mu.Unlock()
}

// --- repeated reads nobody configured ---

// repeatStats counts one (fingerprint, parameter values) pair: the same read, again.
type repeatStats struct {
	fp         *fpStats
	hash       uint64
	reads      int64
	unchanged  int64
	digest     uint64
	lost       bool // the last read's answer was lost (event.Event.AnswerLost): no digest to compare
	firstNs    int64
	lastNs     int64
	ring       keyRing
	peak       uint32
	stormState // written by the ticker
}

type repeatShard struct {
	mu sync.Mutex
	m  map[uint64]*repeatStats
	// seen remembers reads met once (direct-mapped by hash): a pair gets an entry only when it
	// comes back, so one-off reads (a benchmark's random keys) never churn the table.
	seen [1024]uint64
}

type repeatTable struct {
	shards   [shards]repeatShard
	perShard int
	evicted  atomic.Int64
}

func (t *repeatTable) init(max int) {
	t.perShard = max/shards + 1
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*repeatStats)
	}
}

// sep ends each constant hashed for a repeated read, so that ('ab','c') is not ('a','bc').
var sep = [1]byte{0}

// repeat counts a read of a SELECT nobody asked to watch, keyed by its fingerprint and the
// values it was run with, so that a loop re-reading the same row is found anyway.
func (a *Analyzer) repeat(cs *connState, ev *event.Event, text []byte, fp *fpStats, sec, at int64) {
	var h xxhash.Digest // no random seed: the same reads get the same digests in every run
	h.Reset()
	var fb [8]byte
	binary.LittleEndian.PutUint64(fb[:], fp.fingerprint)
	h.Write(fb[:])
	if ev.Protocol == event.Extended {
		h.Write(ev.Bind) // names, formats and values: the same bytes mean the same read
	} else {
		// The constants of this statement, as fingerprint found them a moment ago.
		for _, c := range cs.consts {
			h.Write(text[c.Start:c.End])
			h.Write(sep[:])
		}
	}
	key := h.Sum64()
	t := &a.repeats
	s := &t.shards[key%shards]
	s.mu.Lock()
	r := s.m[key]
	if r == nil {
		slot := &s.seen[(key/shards)%uint64(len(s.seen))]
		if *slot != key {
			*slot = key // first sighting: remember it, count it when it repeats
			s.mu.Unlock()
			return
		}
		if len(s.m) >= t.perShard {
			if _, ok := evictLightest(s.m, func(r *repeatStats) (int64, bool) { return r.reads, !r.storming }); ok {
				t.evicted.Add(1)
			}
		}
		r = &repeatStats{fp: fp, hash: key, firstNs: at, stormState: stormState{record: -1}, reads: 1}
		s.m[key] = r
	}
	if r.reads > 0 && r.digest == ev.Digest && !ev.AnswerLost && !r.lost {
		r.unchanged++
	}
	r.reads++
	r.digest, r.lost = ev.Digest, ev.AnswerLost
	r.lastNs = max(r.lastNs, at)
	if c := r.ring.add(sec, 1); c > r.peak {
		r.peak = c
	}
	s.mu.Unlock()
}

func (t *repeatTable) each(fn func(*repeatStats)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, r := range s.m {
			fn(r)
		}
		s.mu.Unlock()
	}
}

// --- clients ---

// clientKey identifies a client: where it connects from and as what. The port is left out:
// a client that reconnects for every poll is one client with many connections.
type clientKey struct {
	Host, App, User, Database string
}

type clientStats struct {
	key clientKey
	id  uint32

	mu          sync.Mutex
	connsOpened int64
	open        int64
	connSeconds float64
	queries     int64
	polls       int64
	queryRing   wideRing
	connRing    wideRing

	// pollerState is the identity as a poller (pause.go), made at its first poll: most
	// clients never poll.
	pollerState atomic.Pointer[pollerClock]
}

// poller returns the client's poller state, making it on first use.
func (c *clientStats) poller() *pollerClock {
	if p := c.pollerState.Load(); p != nil {
		return p
	}
	c.pollerState.CompareAndSwap(nil, &pollerClock{watch: -1, stormState: stormState{record: -1}})
	return c.pollerState.Load()
}

type clientTable struct {
	mu      sync.Mutex
	m       map[clientKey]*clientStats
	max     int
	evicted atomic.Int64
}

func (t *clientTable) init(max int) {
	t.m = make(map[clientKey]*clientStats)
	t.max = max
}

func (t *clientTable) get(k clientKey, a *Analyzer) *clientStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.m[k]; c != nil {
		return c
	}
	if len(t.m) >= t.max {
		if _, ok := evictLightest(t.m, func(c *clientStats) (int64, bool) {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.queries, c.open == 0
		}); ok {
			t.evicted.Add(1)
		}
	}
	c := &clientStats{key: k, id: a.nextClient.Add(1)}
	t.m[k] = c
	return c
}

func (t *clientTable) each(fn func(*clientStats)) {
	t.mu.Lock()
	list := make([]*clientStats, 0, len(t.m))
	for _, c := range t.m {
		list = append(list, c)
	}
	t.mu.Unlock()
	for _, c := range list {
		fn(c)
	}
}

// sum counts the queries of the window seconds before now (complete seconds only).
func (t *timeline) sum(now int64, window int) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n uint64
	for sec := now - int64(window); sec < now; sec++ {
		if sec >= 0 && sec <= t.last && sec > t.last-timelineLen {
			n += uint64(t.slots[sec%timelineLen].Queries)
		}
	}
	return n
}

// --- the whole proxy's timeline ---

// timelineLen is how many seconds of whole-proxy history snapshots carry.
const timelineLen = 600

// timeline counts, per second, all queries, watched polls, cached answers and connections.
type timeline struct {
	mu    sync.Mutex
	last  int64
	slots [timelineLen]Second
}

func (t *timeline) add(sec int64, queries, polls, cached, conns uint32) {
	t.mu.Lock()
	if sec > t.last {
		for s := max(t.last+1, sec-timelineLen+1); s <= sec; s++ {
			t.slots[s%timelineLen] = Second{}
		}
		t.last = sec
	}
	if sec > t.last-timelineLen && sec >= 0 {
		sl := &t.slots[sec%timelineLen]
		sl.Queries += queries
		sl.Watched += polls
		sl.Cached += cached
		sl.Connections += conns
	}
	t.mu.Unlock()
}
