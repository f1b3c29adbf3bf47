// Package analyzer turns the proxy's stream of statements into what an operator needs to see:
// fingerprints of every statement, polls per watched key (a Celery task_id and the like), rates,
// whether the polls ever return anything new, repeated reads nobody configured, storms and the
// findings that explain them. It implements event.Observer (the proxy's Observer) and is read through Snapshots.
//
// Ingest runs on the sessions' goroutines, after the bytes were forwarded, with short critical
// sections on sharded state and no allocation per event in steady state. All state is bounded:
// keys, fingerprints, clients and repeated reads each keep the heaviest entries exactly and
// evict the lightest when full (Space-Saving with sampled eviction).
package analyzer

import (
	"bytes"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
	"github.com/pgpollwatch/pgpollwatch/event"
)

// Config shapes an Analyzer; zero values get the documented defaults.
type Config struct {
	Watches         []Watch       // default: Presets
	MaxKeys         int           // watched keys tracked; default 100,000
	MaxFingerprints int           // default 10,000
	MaxClients      int           // default 10,000
	MaxRepeats      int           // (fingerprint, parameters) pairs tracked; default 20,000
	StormQPS        float64       // polls/s at or above which a key storms; default 10
	StormWindow     time.Duration // how long the rate must hold (and stay below to end); default 5s
	SpinInterval    time.Duration // a storming key whose poller seldom waits this long between polls spins (pause.go); default 20ms
	// SweepQPS is the rate of watched polls, over two keys or more, at or above which a client
	// identity storms as a poller: a loop over a large group polls each key under StormQPS.
	// Default 100.
	SweepQPS float64
	// ReportLiterals keeps one example of each fingerprint's statement text as sent, literals
	// included (--report-literals). Off, snapshots hold no literal but watched keys.
	ReportLiterals bool
	// OnNotice hears storms starting and ending and new findings, from the analyzer's ticker.
	OnNotice func(Notice)

	// Now is the current time: time.Now for live traffic (the default). Traffic replayed from
	// a log runs on the log's time: Now gives the time of its latest event, Epoch its first,
	// and the replay calls Tick as its time passes each second (Run is for the wall clock).
	// Windows, rates, storms and findings are then the same for the same traffic, however fast
	// it is replayed.
	Now   func() time.Time
	Epoch time.Time // second 0 of every per-second series; default Now() at New

	// NoAnswers says the source sees statements but not their answers: a server log. Whether
	// a poll returned what the previous one did, its rows and the key's last status are then
	// unknown, and snapshots say so (Snapshot.NoAnswers, -1 counts) rather than show zeros.
	// A key's result is then known from the write that stored it (a terminal state among the
	// write's values), when the log has that write.
	NoAnswers bool
	// DigestKey keys the digests that stand for a repeated read's values in snapshots
	// (RepeatStat.Values), so that a report cannot be searched for a guessed value. Zero: a
	// random key per analyzer. A replayed log gives one made from its own content, so that the
	// same log gives the same report, and still nobody without the log can check a guess.
	DigestKey uint64
	// Queues are the job queues whose polls are counted; nil means QueuePresets (an empty
	// slice: none).
	Queues []Queue
	// KeepFindings keeps in snapshots the findings that held earlier and no longer do (with
	// Finding.Until): a log's analysis reports the storm of an hour ago, not only the end.
	KeepFindings bool
}

func (c *Config) defaults() {
	for c.DigestKey == 0 {
		c.DigestKey = rand.Uint64()
	}
	if c.Watches == nil {
		c.Watches = Presets
	}
	if c.Queues == nil {
		c.Queues = QueuePresets
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 100_000
	}
	if c.MaxFingerprints <= 0 {
		c.MaxFingerprints = 10_000
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 10_000
	}
	if c.MaxRepeats <= 0 {
		c.MaxRepeats = 20_000
	}
	if c.StormQPS <= 0 {
		c.StormQPS = 10
	}
	if c.StormWindow <= 0 {
		c.StormWindow = 5 * time.Second
	}
	if c.SweepQPS <= 0 {
		c.SweepQPS = 100
	}
	if c.SpinInterval <= 0 {
		c.SpinInterval = 20 * time.Millisecond
	}
}

// Analyzer is the proxy's Observer. Create it with New; it is safe for concurrent use.
type Analyzer struct {
	cfg    Config
	now    func() time.Time // Config.Now; tests that script time replace it
	epoch  time.Time        // second 0 of every per-second series
	seed   maphash.Seed
	window int // StormWindow in seconds
	// thresholds set by SetThresholds, taken by the next Tick: the only reader of the storm
	// thresholds, which it reads without a lock.
	pending atomic.Pointer[Thresholds]

	// Totals, updated with atomics.
	queries     atomic.Int64
	watched     atomic.Int64
	writes      atomic.Int64
	failed      atomic.Int64
	cached      atomic.Int64
	connections atomic.Int64
	openConns   atomic.Int64
	authFailed  atomic.Int64

	timeline timeline

	ws   atomic.Pointer[watchSet] // the watched lookups in force (SetWatches adds to them)
	wsMu sync.Mutex               // serialises SetWatches

	fps     fpTable
	keys    keyTable
	queues  []*queueStats // by index into cfg.Queues
	tags    *tagTable
	repeats repeatTable
	clients clientTable

	stormMu sync.Mutex
	storms  stormLog
	found   map[string]bool    // findings already announced
	past    map[string]Finding // KeepFindings: each finding as last seen

	nextClient atomic.Uint32

	coalesceStats atomic.Pointer[func() CoalesceStats]
	reuseStats    atomic.Pointer[func() ReuseStats]
	configStats   atomic.Pointer[func() ConfigStats]
}

// New makes an Analyzer. Call Run to evaluate storms every second.
func New(cfg Config) *Analyzer {
	cfg.defaults()
	a := &Analyzer{cfg: cfg, now: cfg.Now, epoch: cfg.Epoch, seed: maphash.MakeSeed(), found: map[string]bool{}, past: map[string]Finding{}}
	if a.now == nil {
		a.now = time.Now
	}
	if a.epoch.IsZero() {
		a.epoch = a.now()
	}
	a.window = max(1, int(cfg.StormWindow/time.Second))
	a.ws.Store(&watchSet{list: cfg.Watches, counters: newWatchCounters(len(cfg.Watches))})
	a.fps.init(cfg.MaxFingerprints)
	a.keys.init(cfg.MaxKeys)
	a.repeats.init(cfg.MaxRepeats)
	a.clients.init(cfg.MaxClients)
	a.queues = newQueueStats(len(cfg.Queues))
	a.tags = newTagTable()
	return a
}

var _ event.Observer = (*Analyzer)(nil)

// sec is the analyzer-relative second of t.
func (a *Analyzer) sec(t time.Time) int64 { return int64(t.Sub(a.epoch) / time.Second) }

// nanos is the analyzer-relative time of t in nanoseconds.
func (a *Analyzer) nanos(t time.Time) int64 { return int64(t.Sub(a.epoch)) }

// connState is the analyzer's per-connection state, used by one goroutine at a time.
type connState struct {
	client *clientStats
	// opening: its poller follows its opening (pause.go), until its login or first statement.
	// The login is reported by the goroutine that reads the server, statements also by the one
	// that reads the client when the cache answers: atomic.
	opening atomic.Bool
	clock   *pauseClock       // its own allocation: keys hold on to it after the connection is gone
	cache   [8]textCacheEntry // text hash -> fingerprint, so repeated texts are not re-lexed
	wsGen   uint64            // the watchSet generation m matches against
	norm    []byte
	consts  []sqlscan.Const
	key     []byte
	tkey    []byte
	m       matcher
	// lastKey is the key of its latest statement on a watched table (lastWatch; -1: none, or
	// several keys at once): the row a write by id in the same session is about (Celery's
	// worker reads or inserts a task's row by task_id, then updates it WHERE id = N).
	lastKey   []byte
	lastWatch int
	// The attribution tag of the statement being ingested, and the latest comment read, so
	// that a connection sending the same comment again skips parsing and the tag table.
	tag              uint16
	tagBody, tagName []byte
	tagBuf           []byte
	tagID            uint16
	tagStat          *tagStats // tagID's counters
}

// watchSet is the watched lookups in force. A reload may add watches (SetWatches), never
// reorder or remove them: a watch's index stays valid for the keys, fingerprints and pollers
// counted under it. gen tells connections and fingerprints that it changed.
type watchSet struct {
	list     []Watch
	counters []*watchCounters
	gen      uint64
}

func newWatchCounters(n int) []*watchCounters {
	out := make([]*watchCounters, n)
	for i := range out {
		out[i] = &watchCounters{}
		out[i].tableWriteNs.Store(math.MinInt64)
	}
	return out
}

// SetWatches makes the watched lookups want's: those not watched yet are added at once (new
// statements and, at their next use, statements already seen are matched against them).
// Watches no longer wanted are returned by name and stay: removing one needs a restart, as
// the keys and counts under it refer to it.
func (a *Analyzer) SetWatches(want []Watch) (added []Watch, kept []string) {
	a.wsMu.Lock()
	defer a.wsMu.Unlock()
	old := a.ws.Load()
	have := map[string]bool{}
	for _, w := range old.list {
		have[w.Name()] = true
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.Name()] = true
		if !have[w.Name()] {
			have[w.Name()] = true
			added = append(added, w)
		}
	}
	for _, w := range old.list {
		if !wanted[w.Name()] {
			kept = append(kept, w.Name())
		}
	}
	if len(added) > 0 {
		a.ws.Store(&watchSet{
			list:     append(slices.Clone(old.list), added...),
			counters: append(slices.Clone(old.counters), newWatchCounters(len(added))...),
			gen:      old.gen + 1,
		})
	}
	return added, kept
}

type watchCounters struct {
	lookups, writes atomic.Int64
	// tableWriteNs is the latest write to the table whose keys could not be told (TRUNCATE,
	// COPY, DDL, an UPDATE by another column): it invalidates every key of the table in the
	// what-if estimate, as it does in the cache. math.MinInt64: none.
	tableWriteNs atomic.Int64
}

type textCacheEntry struct {
	hash uint64
	fp   *fpStats
}

// ConnOpened implements event.Observer.
func (a *Analyzer) ConnOpened(c *event.ConnInfo) {
	host := c.ClientAddr
	if h, _, err := net.SplitHostPort(c.ClientAddr); err == nil {
		host = h
	}
	cs := a.clients.get(clientKey{Host: host, App: c.ApplicationName, User: c.User, Database: c.Database}, a)
	now := a.sec(a.now())
	cs.mu.Lock()
	cs.connsOpened++
	cs.open++
	cs.connRing.add(now, 1)
	cs.mu.Unlock()
	a.timeline.add(now, 0, 0, 0, 1)
	a.connections.Add(1)
	a.openConns.Add(1)
	opened := c.OpenedAt
	if opened.IsZero() { // a ConnInfo made by hand
		opened = a.now()
	}
	st := &connState{client: cs, clock: newPauseClock(a.nanos(opened)), m: matcher{watches: a.ws.Load().list, queues: a.cfg.Queues}, lastWatch: -1,
		key: make([]byte, 0, maxKeyLen+64), tkey: make([]byte, 0, maxKeyLen+64), norm: make([]byte, 0, 512)}
	c.Local = st
	if p := cs.pollerState.Load(); p != nil {
		// A client that polls opens another connection: it is busy opening it (pause.go).
		p.mu.Lock()
		p.opened(st.clock.id, st.clock.opened)
		p.mu.Unlock()
		st.opening.Store(true)
	}
}

// ConnAuthenticated implements event.Observer.
func (a *Analyzer) ConnAuthenticated(c *event.ConnInfo, ok bool, _ string) {
	if !ok {
		a.authFailed.Add(1)
		if cs, isCS := c.Local.(*connState); isCS {
			a.settle(cs, 0)
		}
		return
	}
	if cs, isCS := c.Local.(*connState); isCS {
		at := a.nanos(a.now())
		cs.clock.authenticated(at)
		a.settle(cs, at)
	}
}

// settle ends the opening of a connection its poller follows (at 0: it never opened).
func (a *Analyzer) settle(cs *connState, at int64) {
	if !cs.opening.Load() || !cs.opening.CompareAndSwap(true, false) {
		return
	}
	p := cs.client.poller()
	p.mu.Lock()
	p.settled(cs.clock, at, int64(a.cfg.SpinInterval))
	p.mu.Unlock()
}

// ConnClosed implements event.Observer.
func (a *Analyzer) ConnClosed(c *event.ConnInfo, st event.ConnStats) {
	a.openConns.Add(-1)
	if cs, ok := c.Local.(*connState); ok {
		a.settle(cs, 0)
		cs.client.mu.Lock()
		cs.client.open--
		cs.client.connSeconds += st.Duration.Seconds()
		cs.client.mu.Unlock()
	}
}

// Statements implements event.Observer.
func (a *Analyzer) Statements(c *event.ConnInfo, batch []event.Event) {
	cs, ok := c.Local.(*connState)
	if !ok {
		return
	}
	for i := range batch {
		a.ingest(cs, &batch[i])
	}
}

// ingest accounts one completed statement.
func (a *Analyzer) ingest(cs *connState, ev *event.Event) {
	start := a.nanos(ev.Start)
	endNs := start + int64(ev.Duration)
	long := int64(a.cfg.SpinInterval)
	a.settle(cs, start)                    // a connection whose login the analyzer did not hear of is open by now
	cs.clock.statement(start, endNs, long) // even an empty statement is the client not waiting
	if ev.Empty || ev.Exchange || ev.Suspended && ev.Rows == 0 {
		a.pollerBusy(cs, start, endNs)
		return
	}
	sec := endNs / int64(time.Second) // a.sec of the end
	text := statementText(ev)
	// The comment of the whole query string tags each of its statements; its text without the
	// comment keys the fingerprint cache (one statement of several: its own text without one).
	body, bare := splitComment(ev.Text)
	if len(text) != len(ev.Text) {
		_, bare = splitComment(text)
	}
	fp := a.fingerprint(cs, ev, text, bare)
	lk := fp.lookup()
	watched := lk.watch >= 0 && !lk.write && !ev.Failed
	var tag *tagStats
	cs.tag, tag = a.tagOf(cs, body)
	var cachedN uint32
	if ev.Cached {
		cachedN = 1
		a.cached.Add(1)
	}

	a.queries.Add(1)
	if ev.Failed {
		a.failed.Add(1)
	}
	fp.record(ev, sec)

	// A watched lookup is one poll statement, however many keys it reads (IN lists count a poll
	// per key in the per-key table): totals, timeline and clients all count statements, so the
	// watched share of queries can never exceed 100%.
	var watchedN uint32
	switch {
	case watched:
		a.pollKeys(cs, ev, text, fp, sec, start, endNs)
		watchedN = 1
	case lk.watch >= 0 && lk.write && !ev.Failed:
		a.writes.Add(1)
		a.ws.Load().counters[lk.watch].writes.Add(1)
		a.writeKeys(cs, ev, text, fp, endNs)
	case fp.command == sqlscan.CommandSelect && !ev.Failed && lk.queue < 0:
		a.repeat(cs, ev, text, fp, sec, endNs)
	}
	polledQueue := false
	if lk.queue >= 0 && !ev.Failed {
		a.queueEvent(cs, ev, lk.queue, lk.queueOp, cs.tag, sec, start, endNs)
		polledQueue = lk.queueOp == queuePoll
	}
	if tag != nil {
		tag.count(sec, watched || polledQueue)
	}
	if !watched {
		a.pollerBusy(cs, start, endNs)
	}
	cl := cs.client
	cl.mu.Lock()
	cl.queries++
	cl.polls += int64(watchedN)
	cl.queryRing.add(sec, 1)
	cl.mu.Unlock()
	a.timeline.add(sec, 1, watchedN, cachedN, 0)
}

// pollerBusy feeds a statement of a connection that has polled to its poller (pause.go).
func (a *Analyzer) pollerBusy(cs *connState, start, end int64) {
	if !cs.clock.polled {
		return
	}
	p := cs.client.poller()
	p.mu.Lock()
	p.busy(cs.clock, start, end, int64(a.cfg.SpinInterval))
	p.mu.Unlock()
}

// statementText picks the statement the event is about: the Index-th of a simple query string.
func statementText(ev *event.Event) []byte {
	if ev.Protocol != event.Simple || ev.Index == 0 && !multi(ev.Text) {
		return ev.Text
	}
	var out []byte
	i := 0
	sqlscan.Split(ev.Text, func(stmt []byte) bool {
		if i == ev.Index {
			out = stmt
			return false
		}
		i++
		return true
	})
	return out
}

// multi is a quick check whether a query string may hold several statements: a ';' with
// anything but white space after it.
func multi(text []byte) bool {
	i := bytes.IndexByte(text, ';')
	return i >= 0 && len(bytes.TrimSpace(text[i+1:])) > 0
}

// fingerprint finds the statement's fingerprint entry. Texts seen recently on this connection
// (prepared statements, literal-free queries) skip the lexer; bare, the text without its
// attribution comment (splitComment), is what they are known by.
func (a *Analyzer) fingerprint(cs *connState, ev *event.Event, text, bare []byte) *fpStats {
	ws := a.ws.Load()
	if cs.wsGen != ws.gen {
		// The watches changed (a reload): match against them from now on, and let no text
		// cached here skip the fresh look at its fingerprint's lookup below.
		cs.m.watches, cs.wsGen = ws.list, ws.gen
		clear(cs.cache[:])
	}
	h := maphash.Bytes(a.seed, bare)
	slot := &cs.cache[h%uint64(len(cs.cache))]
	if slot.fp != nil && slot.hash == h && !slot.fp.evicted.Load() {
		cs.consts = cs.consts[:0]
		return slot.fp
	}
	res := sqlscan.Normalize(cs.norm[:0], cs.consts[:0], text)
	cs.norm, cs.consts = res.Normalized[:0], res.Consts
	fp := a.fps.get(res.Fingerprint, func() *fpStats {
		f := &fpStats{fingerprint: res.Fingerprint, command: res.Command, statusIdx: -1}
		f.text = truncateText(string(res.Normalized))
		if a.cfg.ReportLiterals {
			f.example = truncateText(string(text))
		}
		f.lk.Store(cs.lookupOf(text, res.Consts))
		f.lkGen.Store(ws.gen)
		return f
	})
	if fp.lkGen.Load() != ws.gen {
		// Found before the watches changed: look again, once, for whoever comes first.
		fp.mu.Lock()
		if fp.lkGen.Load() != ws.gen {
			fp.lk.Store(cs.lookupOf(text, res.Consts))
			fp.statusIdx = -1
			fp.lkGen.Store(ws.gen)
		}
		fp.mu.Unlock()
	}
	// Only texts without constants map to one fingerprint for good; a literal query changes
	// with every key, so caching it would only evict useful entries. A prepared statement's
	// text is the same at every execution, and nothing after this reads its constants (its
	// keys and values are its parameters): it is cached, literals or not.
	if len(res.Consts) == 0 || ev.Protocol == event.Extended {
		*slot = textCacheEntry{hash: h, fp: fp}
	}
	return fp
}

// lookupOf matches a statement against the connection's watches.
func (cs *connState) lookupOf(text []byte, consts []sqlscan.Const) *fpLookup {
	lk := cs.m.match(text)
	f := &fpLookup{watch: lk.watch, write: lk.write, param: lk.param, anyArray: lk.anyArray, keyConst: -1}
	f.queue, f.queueOp = cs.m.matchQueue(text)
	if len(lk.keys) == 1 { // remember which constant is the key: later statements skip the matcher
		for i, c := range consts {
			if int(c.Start) == lk.keys[0].Start {
				f.keyConst = i
			}
		}
	}
	return f
}

// constTokenKind maps a normalizer constant back to the token kind literalKey decodes.
func constTokenKind(k sqlscan.ConstKind) sqlscan.Kind {
	if k == sqlscan.ConstString {
		return sqlscan.String
	}
	return sqlscan.Number
}

const maxTextLen = 2048

func truncateText(s string) string {
	if len(s) > maxTextLen {
		return s[:maxTextLen] + "…"
	}
	return s
}

// pollKeys counts a poll for each key the statement reads.
func (a *Analyzer) pollKeys(cs *connState, ev *event.Event, text []byte, fp *fpStats, sec, start, at int64) {
	a.watched.Add(1)
	lk, ws := fp.lookup(), a.ws.Load()
	ws.counters[lk.watch].lookups.Add(1)
	w := &ws.list[lk.watch]
	// One lock of the poller for the whole statement, taken before the keys' shard locks.
	p := cs.client.poller()
	p.mu.Lock()
	defer p.mu.Unlock()
	from := start
	if !cs.clock.polled {
		// The connection's first poll: from now on its activity is its poller's, and so is
		// the run of activity this poll ends, back to the opening when the client connected
		// just to poll.
		cs.clock.polled = true
		from = cs.clock.runStart
	}
	p.busy(cs.clock, from, at, int64(a.cfg.SpinInterval))
	p.polls++
	p.tags.add(cs.tag)
	cs.clock.polls++
	p.watch = lk.watch
	if c := p.ring.add(sec, 1); c > p.peak {
		p.peak = c
	}
	var status []byte
	hasStatus := false
	if !a.cfg.NoAnswers && !ev.AnswerLost { // a logged statement has no rows: not "no row"
		status, hasStatus = fp.status(ev, w)
	}
	n := 0
	a.eachKey(cs, ev, text, fp, func(key []byte) {
		n++
		a.keys.poll(a, cs, p, lk.watch, key, ev, sec, start, at, status, hasStatus)
		cs.lastKey = append(cs.lastKey[:0], key...)
	})
	cs.lastWatch = oneKey(n, lk.watch)
}

// oneKey is what connState.lastWatch becomes after a statement on watch that had n keys.
func oneKey(n, watch int) int {
	if n == 1 {
		return watch
	}
	return -1
}

// writeKeys marks the keys a write touches (for time-to-result and the what-if estimate's
// invalidations); a write whose keys cannot be told marks the whole table.
func (a *Analyzer) writeKeys(cs *connState, ev *event.Event, text []byte, fp *fpStats, at int64) {
	n := 0
	lk, ws := fp.lookup(), a.ws.Load()
	result := storesResult(&ws.list[lk.watch], cs, ev, text)
	a.eachKey(cs, ev, text, fp, func(key []byte) {
		n++
		a.keys.write(a, lk.watch, key, at, result)
		cs.lastKey = append(cs.lastKey[:0], key...)
	})
	if n == 0 && result && cs.lastWatch == lk.watch {
		// Stored by id: the row is the one this session just read or inserted by key. The
		// table stays marked as written too (below): the id is not proof.
		a.keys.write(a, lk.watch, cs.lastKey, at, true)
	} else {
		cs.lastWatch = oneKey(n, lk.watch)
	}
	if n == 0 {
		tw := &ws.counters[lk.watch].tableWriteNs
		for old := tw.Load(); at > old && !tw.CompareAndSwap(old, at); old = tw.Load() {
		}
	}
}

// storesResult reports whether a write to w's table carries one of its terminal states among
// its values (a literal of the text, or a bound parameter): Celery's INSERT or UPDATE of a
// task's row with status 'SUCCESS' stores its result. The state may sit in another column than
// the status one; a write is rare next to polls, and a false match only dates a result early.
func storesResult(w *Watch, cs *connState, ev *event.Event, text []byte) bool {
	if len(w.TerminalStates) == 0 {
		return false
	}
	found := false
	if ev.Protocol == event.Extended {
		ev.Bind.Params(func(_ int, format int16, v []byte) bool {
			found = format == 0 && isTerminal(w, v)
			return !found
		})
		return found
	}
	var buf []byte
	for _, c := range cs.consts {
		if c.Kind != sqlscan.ConstString {
			continue
		}
		if v, ok := sqlscan.Unquote(buf[:0], text[c.Start:c.End]); ok && isTerminal(w, v) {
			return true
		}
	}
	return false
}

// eachKey calls fn for each key of a watched statement: from the literal(s) in the text for
// the simple protocol, from the bound parameter for the extended one.
func (a *Analyzer) eachKey(cs *connState, ev *event.Event, text []byte, fp *fpStats, fn func([]byte)) {
	lk := fp.lookup()
	if ev.Protocol == event.Extended && lk.param > 0 {
		ev.Bind.Params(func(i int, format int16, v []byte) bool {
			if i != lk.param-1 {
				return true
			}
			paramKeys(cs.key[:0], format, v, lk.anyArray, func(k []byte) {
				if len(k) <= maxKeyLen {
					fn(k)
				}
			})
			return false
		})
		return
	}
	if lk.keyConst >= 0 && lk.keyConst < len(cs.consts) && ev.Protocol == event.Simple {
		c := cs.consts[lk.keyConst]
		k, ok := literalKey(cs.key[:0], text, sqlscan.Token{Kind: constTokenKind(c.Kind), Start: int(c.Start), End: int(c.End)})
		if ok && len(k) <= maxKeyLen {
			cs.key = k
			fn(k)
		}
		return
	}
	m := cs.m.match(text)
	for _, t := range m.keys {
		k, ok := literalKey(cs.key[:0], text, t)
		if ok && len(k) <= maxKeyLen {
			cs.key = k
			fn(k)
		}
	}
}
