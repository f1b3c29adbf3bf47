package analyzer

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Snapshot is an immutable, self-consistent view of the analyzer: what the TUI shows, reports
// export and metrics serve. Every slice is a copy owned by the snapshot.
type Snapshot struct {
	StartedAt time.Time     `json:"started_at"`
	TakenAt   time.Time     `json:"taken_at"`
	Uptime    time.Duration `json:"uptime_ns"`
	Watches   []WatchStat   `json:"watches"`

	Totals   Totals   `json:"totals"`
	Rates    Rates    `json:"rates"`
	Headline string   `json:"headline"`
	Timeline []Second `json:"timeline"` // whole-proxy counts per second, oldest first

	Keys         []KeyStat         `json:"keys"`
	Fingerprints []FingerprintStat `json:"fingerprints"`
	Clients      []ClientStat      `json:"clients"`
	Pollers      []PollerStat      `json:"pollers"`
	Repeats      []RepeatStat      `json:"repeats"`
	Storms       []Storm           `json:"storms"`
	Findings     []Finding         `json:"findings"`
	// Queues are the job queues polled (Config.Queues), busiest first.
	Queues []QueueStat `json:"queues"`
	// Tags are the attribution tags of statements' comments (sqlcommenter, marginalia), busiest
	// first: which code sent the statements.
	Tags []TagStat `json:"tags"`

	// Coalesce is the coalescing cache's state; nil when coalescing is not available (the
	// proxy runs without --coalesce). See SetCoalesceStats.
	Coalesce *CoalesceStats `json:"coalesce,omitempty"`
	// Reuse is server connection reuse's state; nil when reuse is off (the proxy runs without
	// --reuse-server-connections). See SetReuseStats.
	Reuse *ReuseStats `json:"reuse,omitempty"`
	// Thresholds are the storm rules in force (a reload may change them: SetThresholds).
	Thresholds Thresholds `json:"thresholds"`
	// Config is the proxy's configuration reloads (SetConfigStats); nil when nobody reports them.
	Config *ConfigStats `json:"config,omitempty"`
	// WhatIf estimates, for each of WhatIfTTLs, the upstream queries a cache would have saved
	// on the watched polls seen since start.
	WhatIf []WhatIf `json:"what_if"`

	// NoAnswers says the source saw statements but not their answers (Config.NoAnswers, a
	// server log): keys' and statements' Rows and UnchangedPolls are -1, LastStatus is "".
	NoAnswers bool `json:"no_answers,omitempty"`
}

// WatchStat counts the statements on one watched table.column since start.
type WatchStat struct {
	Table   string `json:"table"`
	Column  string `json:"column"`
	Origin  string `json:"origin"`
	Lookups int64  `json:"lookups"`
	Writes  int64  `json:"writes"`
}

// Totals are counts since start.
type Totals struct {
	Queries          int64 `json:"queries"`
	WatchedLookups   int64 `json:"watched_lookups"`
	WatchedWrites    int64 `json:"watched_writes"`
	Failed           int64 `json:"failed"`
	CachedAnswers    int64 `json:"cached_answers"`
	Connections      int64 `json:"connections"`
	OpenConnections  int64 `json:"open_connections"`
	AuthFailures     int64 `json:"auth_failures"`
	KeysTracked      int   `json:"keys_tracked"`
	KeysEvicted      int64 `json:"keys_evicted"`
	FingerprintsSeen int   `json:"fingerprints_tracked"`
	StormsActive     int   `json:"storms_active"`
}

// Rates are per-second averages over the last complete seconds.
type Rates struct {
	QPS           float64 `json:"qps"`     // last second
	QPS10         float64 `json:"qps_10s"` // last 10 seconds
	WatchedQPS10  float64 `json:"watched_qps_10s"`
	ConnsPerSec10 float64 `json:"connections_per_sec_10s"`
	KeysPolled10  int     `json:"keys_polled_10s"` // distinct keys polled in the last 10 s
}

// Second is one second of whole-proxy traffic.
type Second struct {
	Time        time.Time `json:"t"`
	Queries     uint32    `json:"queries"`
	Watched     uint32    `json:"watched"`
	Cached      uint32    `json:"cached"`
	Connections uint32    `json:"connections"`
}

// KeyStat describes one watched key (a task_id, a group id, ...).
type KeyStat struct {
	Table            string  `json:"table"`
	Column           string  `json:"column"`
	Key              string  `json:"key"`
	Polls            int64   `json:"polls"`
	UnchangedPolls   int64   `json:"unchanged_polls"`
	CachedPolls      int64   `json:"cached_polls"`
	Rows             int64   `json:"rows"`
	Writes           int64   `json:"writes"`
	QPS1             float64 `json:"qps_1s"`
	QPS10            float64 `json:"qps_10s"`
	QPS60            float64 `json:"qps_60s"`
	PeakQPS          float64 `json:"peak_qps"`
	MedianIntervalMs float64 `json:"median_interval_ms"` // -1: fewer than two polls
	P10IntervalMs    float64 `json:"p10_interval_ms"`
	// WaitsPct is the share of the latest gaps between polls (up to 32) in which the poller
	// waited SpinInterval or longer at a stretch; -1: fewer than two polls. A storming key whose
	// poller waits in less than half of them spins.
	WaitsPct           float64   `json:"waits_pct"`
	FirstSeen          time.Time `json:"first_seen"`
	LastSeen           time.Time `json:"last_seen"`
	LastStatus         string    `json:"last_status"`
	TimeToResultMs     float64   `json:"time_to_result_ms"` // first poll to first terminal poll; -1: not yet
	PollsAfterTerminal int64     `json:"polls_after_terminal"`
	Clients            int       `json:"clients"`
	Storming           bool      `json:"storming"`
	Spinning           bool      `json:"spinning"`
	History            []uint32  `json:"history"` // polls per second, last 60 s
	// WhatIfSaved500ms is how many of this key's polls a 500 ms cache would have answered.
	WhatIfSaved500ms int64 `json:"what_if_saved_500ms"`
	// Tags are the attribution tags its polls carried most, at most 3 (see TagCount).
	Tags []TagCount `json:"tags,omitempty"`
}

// FingerprintStat describes one normalized statement.
type FingerprintStat struct {
	Fingerprint string    `json:"fingerprint"` // 16 hex digits
	Query       string    `json:"query"`
	Example     string    `json:"example,omitempty"` // as sent, literals included: --report-literals only
	Command     string    `json:"command"`
	Calls       int64     `json:"calls"`
	Failed      int64     `json:"failed"`
	Cached      int64     `json:"cached"`
	Rows        int64     `json:"rows"`
	QPS1        float64   `json:"qps_1s"`
	QPS10       float64   `json:"qps_10s"`
	TotalMs     float64   `json:"total_ms"` // -1 (and MeanMs, P99Ms): no duration known
	MeanMs      float64   `json:"mean_ms"`
	P99Ms       float64   `json:"p99_ms"`
	Watched     bool      `json:"watched"`
	Write       bool      `json:"write"`
	Table       string    `json:"table,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	History     []uint32  `json:"history"`
}

// ClientStat describes one client (address, application, user, database).
type ClientStat struct {
	Address         string  `json:"address"`
	ApplicationName string  `json:"application_name"`
	User            string  `json:"user"`
	Database        string  `json:"database"`
	Queries         int64   `json:"queries"`
	Polls           int64   `json:"polls"`
	Connections     int64   `json:"connections"`
	OpenConnections int64   `json:"open_connections"`
	QPS10           float64 `json:"qps_10s"`
	ConnsPerSec10   float64 `json:"connections_per_sec_10s"`
	PollShare       float64 `json:"poll_share"` // this client's share of all watched polls
	QueriesPerConn  float64 `json:"queries_per_connection"`
}

// RepeatStat is a read nobody configured that keeps being repeated with the same values.
type RepeatStat struct {
	Fingerprint string  `json:"fingerprint"`
	Query       string  `json:"query"`
	Values      string  `json:"values"` // a digest of the parameter values, never the values
	Reads       int64   `json:"reads"`
	Unchanged   int64   `json:"unchanged"` // -1: answers not seen (Snapshot.NoAnswers)
	QPS10       float64 `json:"qps_10s"`
	PeakQPS     float64 `json:"peak_qps"`
	Storming    bool    `json:"storming"`
}

// Storm is a period during which a key (or a repeated read) was polled at or above the storm
// rate.
type Storm struct {
	Kind             string    `json:"kind"` // "key", "poller" or "repeat"
	Table            string    `json:"table,omitempty"`
	Column           string    `json:"column,omitempty"`
	Key              string    `json:"key,omitempty"`
	Query            string    `json:"query,omitempty"`
	StartedAt        time.Time `json:"started_at"`
	EndedAt          time.Time `json:"ended_at,omitzero"` // zero while active
	Active           bool      `json:"active"`
	Polls            int64     `json:"polls"`
	PeakQPS          float64   `json:"peak_qps"`
	Spin             bool      `json:"spin"`
	MedianIntervalMs float64   `json:"median_interval_ms"`
	WaitsPct         float64   `json:"waits_pct"` // KeyStat.WaitsPct (PollerStat.WaitsPct) when last evaluated
	// Tags are the attribution tags its polls carried most, at most 3 (see TagCount).
	Tags []TagCount `json:"tags,omitempty"`

	// A poller's storm (Kind "poller"): the client identity, how many keys it polled in the
	// storm window, its polls' share of all queries, and how often its polling connections
	// overlapped (several processes share the identity when they do). Table and Column are
	// those of its latest poll; MedianIntervalMs is its median gap between two polls of a key.
	Address         string  `json:"address,omitempty"`
	ApplicationName string  `json:"application_name,omitempty"`
	User            string  `json:"user,omitempty"`
	Database        string  `json:"database,omitempty"`
	Keys            int     `json:"keys,omitempty"`
	QueryShare      float64 `json:"query_share,omitempty"`
	OverlapPct      float64 `json:"overlap_pct,omitempty"`
}

// PollerStat describes one client identity as a poller: its watched polls over all keys, and
// whether it waits between two polls of a key (pause.go).
type PollerStat struct {
	Address         string  `json:"address"`
	ApplicationName string  `json:"application_name"`
	User            string  `json:"user"`
	Database        string  `json:"database"`
	Table           string  `json:"table"`  // the watched table of its latest poll
	Column          string  `json:"column"` // and its column
	Polls           int64   `json:"polls"`
	PollQPS10       float64 `json:"poll_qps_10s"`
	PeakQPS         float64 `json:"peak_qps"`
	QueryShare      float64 `json:"query_share"` // its polls' share of all queries, last 10 s (0..1)
	Keys            int     `json:"keys"`        // keys whose latest poll, in the last 10 s, was its
	KeyGapMs        float64 `json:"key_gap_ms"`  // median time between two of its polls of one key; -1 none
	// WaitsPct is the share of its latest 256 gaps between two polls of one key in which it
	// waited SpinInterval or longer at a stretch; -1: none yet.
	WaitsPct float64 `json:"waits_pct"`
	// OverlapPct is the share of its latest statements that began while another of its
	// polling connections was busy: above 0, more than one process shares the identity.
	OverlapPct float64 `json:"overlap_pct"`
	// Tags are the attribution tags its polls carried most, at most 3 (see TagCount).
	Tags     []TagCount `json:"tags,omitempty"`
	Storming bool       `json:"storming"`
	Spinning bool       `json:"spinning"`
}

// Finding is a problem with its evidence and a concrete fix.
type Finding struct {
	ID       string   `json:"id"`   // stable across snapshots while the problem lasts
	Kind     string   `json:"kind"` // spin-poll, poll-storm, connection-churn, repeated-read, polls-after-result
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
	Fix      string   `json:"fix"`
	// Until is zero while the problem holds; for one that held earlier only (Config.
	// KeepFindings), the last second it was seen, with the evidence of that second.
	Until time.Time `json:"until,omitzero"`
}

// pastFindings appends to current the findings that held earlier and no longer do, in the
// order of their ids.
func (a *Analyzer) pastFindings(current []Finding) []Finding {
	now := map[string]bool{}
	for _, f := range current {
		now[f.ID] = true
	}
	var past []Finding
	a.stormMu.Lock()
	for id, f := range a.past {
		if !now[id] {
			past = append(past, f)
		}
	}
	a.stormMu.Unlock()
	slices.SortFunc(past, func(x, y Finding) int { return cmp.Compare(x.ID, y.ID) })
	return append(current, past...)
}

// Limits on what a snapshot copies, so taking one stays cheap under load.
const (
	snapKeys         = 500
	snapFingerprints = 200
	snapClients      = 200
	snapRepeats      = 100
	historyLen       = 60
)

// Snapshot returns the current view.
func (a *Analyzer) Snapshot() *Snapshot {
	now := a.now()
	sec := a.sec(now)
	s := &Snapshot{StartedAt: a.epoch, TakenAt: now, Uptime: now.Sub(a.epoch), NoAnswers: a.cfg.NoAnswers}
	ws := a.ws.Load()
	for i, w := range ws.list {
		s.Watches = append(s.Watches, WatchStat{Table: w.Table, Column: w.Column, Origin: w.Origin,
			Lookups: ws.counters[i].lookups.Load(), Writes: ws.counters[i].writes.Load()})
	}
	s.Totals = Totals{
		Queries:         a.queries.Load(),
		WatchedLookups:  a.watched.Load(),
		WatchedWrites:   a.writes.Load(),
		Failed:          a.failed.Load(),
		CachedAnswers:   a.cached.Load(),
		Connections:     a.connections.Load(),
		OpenConnections: a.openConns.Load(),
		AuthFailures:    a.authFailed.Load(),
		KeysEvicted:     a.keys.evicted.Load(),
	}
	s.Timeline = a.timeline.snapshot(a.epoch, sec)
	s.Rates = timelineRates(s.Timeline)

	keysOf := a.snapKeys(s, sec)
	a.snapFingerprints(s, sec)
	a.snapClients(s, sec)
	a.snapPollers(s, sec, keysOf)
	a.snapRepeats(s, sec)
	a.snapQueues(s, sec)
	s.Tags = a.tags.snapshot(sec)
	a.snapWhatIf(s)
	a.snapCoalesce(s)
	a.snapReuse(s)
	s.Thresholds = a.CurrentThresholds()
	if fn := a.configStats.Load(); fn != nil {
		st := (*fn)()
		s.Config = &st
	}
	a.stormMu.Lock()
	s.Storms = a.storms.list()
	a.stormMu.Unlock()
	for _, st := range s.Storms {
		if st.Active {
			s.Totals.StormsActive++
		}
	}
	s.Findings = a.findings(s)
	if a.cfg.KeepFindings {
		s.Findings = a.pastFindings(s.Findings)
	}
	s.Headline = headline(s)
	return s
}

func (t *timeline) snapshot(epoch time.Time, now int64) []Second {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := max(0, now-timelineLen+1)
	out := make([]Second, 0, now-first)
	for sec := first; sec < now; sec++ { // complete seconds only
		var sl Second
		if sec <= t.last && sec > t.last-timelineLen {
			sl = t.slots[sec%timelineLen]
		}
		sl.Time = epoch.Add(time.Duration(sec) * time.Second).Truncate(time.Second)
		out = append(out, sl)
	}
	return out
}

func timelineRates(tl []Second) Rates {
	var r Rates
	if n := len(tl); n > 0 {
		r.QPS = float64(tl[n-1].Queries)
	}
	var q, w, c uint64
	from := max(0, len(tl)-10)
	for _, sl := range tl[from:] {
		q += uint64(sl.Queries)
		w += uint64(sl.Watched)
		c += uint64(sl.Connections)
	}
	r.QPS10, r.WatchedQPS10, r.ConnsPerSec10 = float64(q)/10, float64(w)/10, float64(c)/10
	return r
}

func (a *Analyzer) keyStat(k *keyStats, sec int64) KeyStat {
	w := &a.ws.Load().list[k.watch]
	ks := KeyStat{
		Table: w.Table, Column: w.Column, Key: k.key,
		Polls: k.polls, UnchangedPolls: k.unchanged, CachedPolls: k.cached, Rows: k.rows, Writes: k.writes,
		QPS1: k.ring.rate(sec, 1), QPS10: k.ring.rate(sec, 10), QPS60: k.ring.rate(sec, 60),
		PeakQPS:            float64(k.peak),
		MedianIntervalMs:   k.gaps.quantile(0.5),
		P10IntervalMs:      k.gaps.quantile(0.1),
		WaitsPct:           k.gaps.waitsPct(),
		LastStatus:         k.status,
		TimeToResultMs:     -1,
		Clients:            k.clients.count(),
		Storming:           k.storming,
		Spinning:           k.spinning || k.sweepSpin,
		PollsAfterTerminal: k.pollsAfterTerminal,
		History:            k.ring.history(sec, historyLen),
		WhatIfSaved500ms:   k.whatIf.saved,
		Tags:               k.tags.counts(a.tags),
	}
	if k.polls > 0 {
		ks.FirstSeen = a.epoch.Add(time.Duration(k.firstNs))
		ks.LastSeen = a.epoch.Add(time.Duration(k.lastNs))
	}
	switch {
	case k.terminalNs > 0:
		ks.TimeToResultMs = float64(k.terminalNs-k.firstNs) / 1e6
	case k.resultWriteNs > 0 && k.polls > 0:
		// The result was stored before the first poll saw it: no wait at all.
		ks.TimeToResultMs = float64(max(k.resultWriteNs-k.firstNs, 0)) / 1e6
	}
	if a.cfg.NoAnswers {
		ks.UnchangedPolls, ks.Rows = -1, -1
	}
	return ks
}

// keyRank orders keys for display: storming first, then by polls in the last 10 s, then by
// polls, then by a hash of the key so equal keys keep their places between snapshots.
type keyRank struct {
	k        *keyStats
	shard    int
	storming bool
	recent   uint64
	polls    int64
	tie      uint64 // the key's hash: ties are broken without touching the key
}

// before reports whether x ranks above y.
func (x *keyRank) before(y *keyRank) bool {
	if x.storming != y.storming {
		return x.storming
	}
	if x.recent != y.recent {
		return x.recent > y.recent
	}
	if x.polls != y.polls {
		return x.polls > y.polls
	}
	return x.tie < y.tie
}

// worstFirst is a heap of the best keys so far with the worst on top, so a pass over 100,000
// keys keeps only the snapKeys best without sorting them all.
type worstFirst []keyRank

func (h worstFirst) Len() int           { return len(h) }
func (h worstFirst) Less(i, j int) bool { return h[j].before(&h[i]) }
func (h worstFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *worstFirst) Push(x any)        { *h = append(*h, x.(keyRank)) }
func (h *worstFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// snapKeys ranks every key under its shard lock, keeping the top ones in a small heap, then
// copies out only those: a snapshot of 100,000 keys costs one pass over them.
// It returns, per poller, how many keys it was the latest to poll in the last 10 s.
func (a *Analyzer) snapKeys(s *Snapshot, sec int64) map[*pollerClock]int {
	keysOf := map[*pollerClock]int{}
	top := make(worstFirst, 0, snapKeys+1)
	for i := range a.keys.shards {
		sh := &a.keys.shards[i]
		sh.mu.Lock()
		for _, k := range sh.m {
			r := keyRank{k: k, shard: i, storming: k.storming, recent: k.ring.sum(sec, 10), polls: k.polls, tie: k.hash}
			if r.recent > 0 {
				s.Rates.KeysPolled10++
				if k.lastPoller != nil {
					keysOf[k.lastPoller]++
				}
			}
			if len(top) < snapKeys {
				heap.Push(&top, r)
			} else if r.before(&top[0]) {
				top[0] = r
				heap.Fix(&top, 0)
			}
		}
		s.Totals.KeysTracked += len(sh.m)
		sh.mu.Unlock()
	}
	slices.SortFunc(top, func(x, y keyRank) int {
		if x.before(&y) {
			return -1
		}
		return 1
	})
	s.Keys = make([]KeyStat, len(top))
	for i, r := range top {
		sh := &a.keys.shards[r.shard]
		sh.mu.Lock()
		s.Keys[i] = a.keyStat(r.k, sec)
		sh.mu.Unlock()
	}
	return keysOf
}

// snapPollers lists the client identities that polled, busiest first.
func (a *Analyzer) snapPollers(s *Snapshot, sec int64, keysOf map[*pollerClock]int) {
	var all []PollerStat
	a.clients.each(func(c *clientStats) {
		p := c.pollerState.Load()
		if p == nil {
			return
		}
		p.mu.Lock()
		ps := PollerStat{
			Address: c.key.Host, ApplicationName: c.key.App, User: c.key.User, Database: c.key.Database,
			Polls: p.polls, PollQPS10: p.ring.rate(sec, 10), PeakQPS: float64(p.peak), Keys: keysOf[p],
			KeyGapMs: p.medianGapMs(), WaitsPct: p.waitsPct(), OverlapPct: p.overlapPct(),
			Storming: p.storming, Spinning: p.spinning, Tags: p.tags.counts(a.tags),
		}
		if p.watch >= 0 {
			w := &a.ws.Load().list[p.watch]
			ps.Table, ps.Column = w.Table, w.Column
		}
		p.mu.Unlock()
		if s.Rates.QPS10 > 0 {
			ps.QueryShare = min(1, ps.PollQPS10/s.Rates.QPS10)
		}
		all = append(all, ps)
	})
	slices.SortFunc(all, func(x, y PollerStat) int {
		return cmp.Or(cmp.Compare(y.PollQPS10, x.PollQPS10), cmp.Compare(y.Polls, x.Polls), cmp.Compare(x.Address, y.Address),
			cmp.Compare(x.ApplicationName, y.ApplicationName), cmp.Compare(x.User, y.User), cmp.Compare(x.Database, y.Database))
	})
	if len(all) > snapClients {
		all = all[:snapClients]
	}
	s.Pollers = all
}

func (a *Analyzer) snapFingerprints(s *Snapshot, sec int64) {
	var all []FingerprintStat
	a.fps.each(func(f *fpStats) {
		s.Totals.FingerprintsSeen++
		f.mu.Lock()
		lk := f.lookup()
		fs := FingerprintStat{
			Fingerprint: fmt.Sprintf("%016x", f.fingerprint),
			Query:       f.text,
			Example:     f.example,
			Command:     f.command.String(),
			Calls:       f.calls, Failed: f.failed, Cached: f.cached, Rows: f.rows,
			QPS1: f.ring.rate(sec, 1), QPS10: f.ring.rate(sec, 10),
			TotalMs:   float64(f.totalNs) / 1e6,
			P99Ms:     f.hist.quantileMs(0.99),
			Watched:   lk.watch >= 0 && !lk.write,
			Write:     lk.watch >= 0 && lk.write,
			FirstSeen: a.epoch.Add(time.Duration(f.firstSec) * time.Second),
			LastSeen:  a.epoch.Add(time.Duration(f.lastSec) * time.Second),
			History:   f.ring.history(sec, historyLen),
		}
		switch {
		case f.timed > 0:
			fs.MeanMs = fs.TotalMs / float64(f.timed)
		case f.calls > 0: // no duration known (a log without them): not 0 ms
			fs.TotalMs, fs.MeanMs, fs.P99Ms = -1, -1, -1
		}
		if a.cfg.NoAnswers {
			fs.Rows = -1
		}
		if lk.watch >= 0 {
			fs.Table = a.ws.Load().list[lk.watch].Table
		}
		f.mu.Unlock()
		all = append(all, fs)
	})
	slices.SortFunc(all, func(x, y FingerprintStat) int {
		return cmp.Or(cmp.Compare(y.Calls, x.Calls), cmp.Compare(x.Fingerprint, y.Fingerprint))
	})
	if len(all) > snapFingerprints {
		all = all[:snapFingerprints]
	}
	s.Fingerprints = all
}

// ClientRatios are a client's share of all watched polls and its queries per connection, 0
// where the whole is 0: what a snapshot says of each client, and a merged report recomputes.
func ClientRatios(polls, totalPolls, queries, connections int64) (pollShare, queriesPerConn float64) {
	if totalPolls > 0 {
		pollShare = float64(polls) / float64(totalPolls)
	}
	if connections > 0 {
		queriesPerConn = float64(queries) / float64(connections)
	}
	return pollShare, queriesPerConn
}

func (a *Analyzer) snapClients(s *Snapshot, sec int64) {
	var all []ClientStat
	totalPolls := a.watched.Load()
	a.clients.each(func(c *clientStats) {
		c.mu.Lock()
		cs := ClientStat{
			Address: c.key.Host, ApplicationName: c.key.App, User: c.key.User, Database: c.key.Database,
			Queries: c.queries, Polls: c.polls, Connections: c.connsOpened, OpenConnections: c.open,
			QPS10: c.queryRing.rate(sec, 10), ConnsPerSec10: c.connRing.rate(sec, 10),
		}
		c.mu.Unlock()
		cs.PollShare, cs.QueriesPerConn = ClientRatios(cs.Polls, totalPolls, cs.Queries, cs.Connections)
		all = append(all, cs)
	})
	slices.SortFunc(all, func(x, y ClientStat) int {
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Queries, x.Queries), cmp.Compare(x.Address, y.Address),
			cmp.Compare(x.ApplicationName, y.ApplicationName), cmp.Compare(x.User, y.User), cmp.Compare(x.Database, y.Database))
	})
	if len(all) > snapClients {
		all = all[:snapClients]
	}
	s.Clients = all
}

func (a *Analyzer) snapRepeats(s *Snapshot, sec int64) {
	var all []RepeatStat
	a.repeats.each(func(r *repeatStats) {
		if r.reads < 2 {
			return
		}
		all = append(all, RepeatStat{
			Fingerprint: fmt.Sprintf("%016x", r.fp.fingerprint),
			Query:       r.fp.text,
			Values:      "#" + strconv.FormatUint(a.valuesDigest(r.hash), 16),
			Reads:       r.reads, Unchanged: r.unchanged,
			QPS10:    r.ring.rate(sec, 10),
			PeakQPS:  float64(r.peak),
			Storming: r.storming,
		})
		if a.cfg.NoAnswers {
			all[len(all)-1].Unchanged = -1
		}
	})
	slices.SortFunc(all, func(x, y RepeatStat) int {
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Reads, x.Reads), cmp.Compare(x.Values, y.Values))
	})
	if len(all) > snapRepeats {
		all = all[:snapRepeats]
	}
	s.Repeats = all
}

// headline is the seed's sentence, computed: "N of M queries/s are polls of K keys".
func headline(s *Snapshot) string {
	return Headline(s.Rates.WatchedQPS10, s.Rates.QPS10, s.Rates.KeysPolled10, s.Totals.StormsActive)
}

// Headline words the seed's sentence from its numbers; reports merged from several proxies
// use it too, so every view says it the same way.
func Headline(watchedQPS, qps float64, keys, storms int) string {
	if qps == 0 {
		return "no queries in the last 10 s"
	}
	return fmt.Sprintf("%.0f of %.0f queries/s are polls of %d watched keys (last 10 s); %d storming",
		watchedQPS, qps, keys, storms)
}

// valuesDigest is what a report shows for a repeated read's values: their (unkeyed) table hash,
// keyed with Config.DigestKey.
func (a *Analyzer) valuesDigest(h uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], a.cfg.DigestKey)
	binary.LittleEndian.PutUint64(b[8:], h)
	return xxhash.Sum64(b[:])
}
