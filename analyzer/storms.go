package analyzer

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Notice is something worth a log line: a storm starting or ending, a new finding.
type Notice struct {
	Kind    string // "storm-start", "storm-end", "finding"
	Message string
	Storm   *Storm   // for storm notices
	Finding *Finding // for finding notices
}

// maxStorms bounds the storm log. When it is full an ended storm goes first, the oldest; when
// every storm in it is still going on, the oldest key or repeated-read storm: a poller's storm
// over a thousand keys must not be pushed out by its own keys' storms.
const maxStorms = 1000

// stormLog keeps storms in the order they started. Entries are known by a number that stays
// theirs when others are dropped.
type stormLog struct {
	list_ []Storm
	ids   []int // ascending: list_[i] is storm number ids[i]
	next  int
}

func (l *stormLog) add(s Storm) int {
	if len(l.list_) >= maxStorms {
		l.drop()
	}
	id := l.next
	l.next++
	l.list_ = append(l.list_, s)
	l.ids = append(l.ids, id)
	return id
}

// drop removes the entry that matters least (see maxStorms).
func (l *stormLog) drop() {
	victim := 0
	if i := slices.IndexFunc(l.list_, func(s Storm) bool { return !s.Active }); i >= 0 {
		victim = i
	} else if i := slices.IndexFunc(l.list_, func(s Storm) bool { return s.Kind != "poller" }); i >= 0 {
		victim = i
	}
	l.list_ = slices.Delete(l.list_, victim, victim+1)
	l.ids = slices.Delete(l.ids, victim, victim+1)
}

func (l *stormLog) at(id int) *Storm {
	if i, ok := slices.BinarySearch(l.ids, id); ok {
		return &l.list_[i]
	}
	return nil
}

// list is the storms in the order they started. Storms that start in the same tick are found
// in the order of a map's iteration: they are ordered by what they are about, so that the same
// traffic always lists the same storms the same way.
func (l *stormLog) list() []Storm {
	out := slices.Clone(l.list_)
	slices.SortStableFunc(out, func(x, y Storm) int {
		return cmp.Or(x.StartedAt.Compare(y.StartedAt), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Table, y.Table),
			cmp.Compare(x.Key, y.Key), cmp.Compare(x.Query, y.Query), cmp.Compare(x.Address, y.Address),
			cmp.Compare(x.ApplicationName, y.ApplicationName), cmp.Compare(x.User, y.User), cmp.Compare(x.Database, y.Database))
	})
	return out
}

// Thresholds are the storm rules a configuration reload may change while traffic flows.
type Thresholds struct {
	StormQPS    float64       `json:"storm_qps"`    // Config.StormQPS
	SweepQPS    float64       `json:"sweep_qps"`    // Config.SweepQPS
	StormWindow time.Duration `json:"storm_window"` // Config.StormWindow, whole seconds, at most a minute
}

// SetThresholds changes the storm rules from the next Tick on. Storms under way are judged by
// the new rules from then; nothing counted so far is lost. Values out of range are refused.
func (a *Analyzer) SetThresholds(th Thresholds) error {
	if !(th.StormQPS > 0) || !(th.SweepQPS > 0) || th.StormWindow < time.Second || th.StormWindow > time.Minute {
		return fmt.Errorf("analyzer: thresholds %+v: the rates must be positive and the window 1s to 1m", th)
	}
	a.pending.Store(&th)
	return nil
}

// CurrentThresholds are the storm rules the last Tick used (or the pending ones).
func (a *Analyzer) CurrentThresholds() Thresholds {
	if th := a.pending.Load(); th != nil {
		return *th
	}
	a.stormMu.Lock()
	defer a.stormMu.Unlock()
	return Thresholds{StormQPS: a.cfg.StormQPS, SweepQPS: a.cfg.SweepQPS, StormWindow: a.cfg.StormWindow}
}

// Run evaluates storms once a second until ctx ends.
func (a *Analyzer) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.Tick(now)
		}
	}
}

// Tick evaluates storms as of now. Run calls it every second; tests call it directly.
func (a *Analyzer) Tick(now time.Time) {
	if th := a.pending.Swap(nil); th != nil {
		a.stormMu.Lock() // CurrentThresholds reads them
		a.cfg.StormQPS, a.cfg.SweepQPS, a.cfg.StormWindow = th.StormQPS, th.SweepQPS, th.StormWindow
		a.window = max(1, int(th.StormWindow/time.Second))
		a.stormMu.Unlock()
	}
	sec := a.sec(now)
	var notices []Notice
	threshold := uint64(a.cfg.StormQPS * float64(a.window))
	var pollers []*clientStats
	a.clients.each(func(c *clientStats) {
		if p := c.pollerState.Load(); p != nil {
			p.tickKeys, p.tickStorming = 0, 0
			pollers = append(pollers, c)
		}
	})
	a.stormMu.Lock()
	for i := range a.keys.shards {
		sh := &a.keys.shards[i]
		sh.mu.Lock()
		for _, k := range sh.m {
			if n := a.evalKey(k, sec, threshold); n != nil {
				notices = append(notices, *n)
			}
			if p := k.lastPoller; p != nil && k.lastNs >= (sec-int64(a.window))*int64(time.Second) {
				p.tickKeys++
				if k.storming {
					p.tickStorming++
				}
				// A key of a poller that spins over many keys spins too, though too seldom
				// polled to storm on its own: it is asked again without a wait. It stays so,
				// as a storming key's flag does (a worker's last look at it changes nothing).
				k.sweepSpin = k.sweepSpin || p.storming && p.spinning && spin(&k.gaps)
			}
		}
		sh.mu.Unlock()
	}
	if len(pollers) > 0 {
		queries := a.timeline.sum(sec, a.window)
		sweep := uint64(a.cfg.SweepQPS * float64(a.window))
		for _, c := range pollers {
			if n := a.evalPoller(c, sec, sweep, queries); n != nil {
				notices = append(notices, *n)
			}
		}
	}
	for i := range a.repeats.shards {
		sh := &a.repeats.shards[i]
		sh.mu.Lock()
		for _, r := range sh.m {
			if n := a.evalRepeat(r, sec, threshold); n != nil {
				notices = append(notices, *n)
			}
		}
		sh.mu.Unlock()
	}
	a.stormMu.Unlock()
	if a.cfg.OnNotice == nil && !a.cfg.KeepFindings {
		return
	}
	for _, n := range notices {
		if a.cfg.OnNotice != nil {
			a.cfg.OnNotice(n)
		}
	}
	if len(notices) > 0 || sec%5 == 0 {
		for _, f := range a.findings(a.Snapshot()) {
			id := f.ID
			a.stormMu.Lock()
			seen := a.found[id]
			a.found[id] = true
			if a.cfg.KeepFindings { // its latest evidence, should it stop holding
				f.Until = a.epoch.Add(time.Duration(sec) * time.Second)
				a.past[id] = f
			}
			a.stormMu.Unlock()
			if !seen && a.cfg.OnNotice != nil {
				f := f
				a.cfg.OnNotice(Notice{Kind: "finding", Message: f.Summary, Finding: &f})
			}
		}
	}
}

// stormState is the start/end machine keys and repeated reads share. A storm starts when the
// last window averaged at least the storm rate, and ends once a whole window has stayed below.
type stormState struct {
	storming   bool
	startCount int64 // the entry's polls (or reads) when the storm started
	belowSince int64 // the first second below the rate; 0 while at or above it
	record     int   // index in the storm log while storming; -1 none
}

// Storm transitions reported by step.
const (
	stormGoesOn = iota
	stormStarts
	stormEnds
)

// step advances the machine by one tick, given the events of the last window and the entry's
// count so far.
func (s *stormState) step(recent, threshold uint64, sec int64, window int, count int64) int {
	if !s.storming {
		if recent == 0 || recent < threshold {
			return stormGoesOn
		}
		s.storming, s.belowSince, s.startCount = true, 0, count-int64(recent)
		return stormStarts
	}
	if recent >= threshold {
		s.belowSince = 0
		return stormGoesOn
	}
	if s.belowSince == 0 {
		s.belowSince = sec
	}
	if sec-s.belowSince < int64(window) {
		return stormGoesOn
	}
	s.storming = false
	return stormEnds
}

// start logs a new storm, dated from the start of the window that showed it.
func (a *Analyzer) start(s *stormState, st Storm, sec int64) Storm {
	st.Active = true
	st.StartedAt = a.epoch.Add(time.Duration(max(0, sec-int64(a.window))) * time.Second)
	s.record = a.storms.add(st)
	return st
}

// end closes a storm's log entry and returns a copy of it, or false if the log dropped it.
func (a *Analyzer) end(s *stormState, sec, count int64) (Storm, bool) {
	rec := a.storms.at(s.record)
	if rec == nil {
		return Storm{}, false
	}
	rec.Active = false
	rec.EndedAt = a.epoch.Add(time.Duration(sec) * time.Second)
	rec.Polls = count - s.startCount
	return *rec, true
}

// spin reports whether a key's latest gaps make a spin loop: in at least half of them the
// poller never waited SpinInterval (pause.go). A gap shorter than SpinInterval holds no such
// wait, so a key whose median gap is under it spins too.
func spin(gaps *intervals) bool {
	w, n := gaps.waits()
	return n > 0 && 2*(n-w) >= n
}

// evalKey starts, updates or ends a key's storm.
func (a *Analyzer) evalKey(k *keyStats, sec int64, threshold uint64) *Notice {
	recent := k.ring.sum(sec, a.window)
	w := &a.ws.Load().list[k.watch]
	switch k.step(recent, threshold, sec, a.window, k.polls) {
	case stormStarts:
		k.spinning = spin(&k.gaps)
		med, waits := k.gaps.quantile(0.5), k.gaps.waitsPct()
		st := a.start(&k.stormState, Storm{Kind: "key", Table: w.Table, Column: w.Column, Key: k.key,
			Polls: int64(recent), PeakQPS: float64(k.peak), Spin: k.spinning, MedianIntervalMs: med, WaitsPct: waits,
			Tags: k.tags.counts(a.tags)}, sec)
		return &Notice{Kind: "storm-start", Storm: &st, Message: fmt.Sprintf("storm started: %s.%s = %s polled %.0f/s (median gap %.1f ms, a wait in %.0f%% of gaps)%s",
			w.Table, w.Column, k.key, float64(recent)/float64(a.window), med, waits, spinWord(k.spinning))}
	case stormEnds:
		st, ok := a.end(&k.stormState, sec, k.polls)
		if !ok {
			return nil
		}
		return &Notice{Kind: "storm-end", Storm: &st, Message: fmt.Sprintf("storm ended: %s.%s = %s after %s and %d polls",
			w.Table, w.Column, k.key, st.EndedAt.Sub(st.StartedAt).Round(time.Second), st.Polls)}
	}
	if k.storming && recent >= threshold {
		k.spinning = k.spinning || spin(&k.gaps)
		if rec := a.storms.at(k.record); rec != nil {
			rec.Polls, rec.PeakQPS, rec.Spin = k.polls-k.startCount, float64(k.peak), k.spinning
			rec.MedianIntervalMs, rec.WaitsPct = k.gaps.quantile(0.5), k.gaps.waitsPct()
			rec.Tags = k.tags.counts(a.tags)
		}
	}
	return nil
}

// evalPoller starts, updates or ends the storm of a poller: a client identity whose polls,
// over several keys, reach SweepQPS. A loop over a large group polls each key seldom, under
// the per-key rate, while it never waits and makes a good share of the server's queries.
func (a *Analyzer) evalPoller(c *clientStats, sec int64, threshold, queries uint64) *Notice {
	p := c.pollerState.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	// Polls of keys it had polled before: a worker that looks each task up once, or the
	// first round over a group, is not polling yet.
	again := p.again.sum(sec, a.window)
	gate := again
	if p.tickKeys < 2 {
		gate = 0 // one key: its own storm says it all
	}
	// A poller that never waits storms whatever its rate, which is only how fast the host lets
	// it go (Celery's completed_count() with a connection per poll: 110 polls/s on an idle
	// machine, 30 on a busy one), once it asked its keys again often enough to be judged and
	// some of them do not storm on their own.
	if gate < threshold && again >= minSpinGaps && p.tickKeys > p.tickStorming && p.spin() {
		gate = threshold
	}
	polls := p.ring.sum(sec, a.window)
	share := 0.0
	if queries > 0 {
		share = min(1, float64(polls)/float64(queries))
	}
	switch p.step(gate, threshold, sec, a.window, p.polls) {
	case stormStarts:
		p.startCount = p.polls - int64(polls)
		p.spinning = p.spin()
		st := a.start(&p.stormState, a.pollerStorm(c, p, int64(polls), share), sec)
		return &Notice{Kind: "storm-start", Storm: &st, Message: fmt.Sprintf("poller storm: %s polls %d keys %.0f times/s in total (%.0f%% of all queries; a wait in %.0f%% of the gaps between two polls of a key)%s",
			clientName(c.key), st.Keys, float64(polls)/float64(a.window), 100*share, st.WaitsPct, spinWord(p.spinning))}
	case stormEnds:
		st, ok := a.end(&p.stormState, sec, p.polls)
		if !ok {
			return nil
		}
		return &Notice{Kind: "storm-end", Storm: &st, Message: fmt.Sprintf("poller storm ended: %s after %s and %d polls",
			clientName(c.key), st.EndedAt.Sub(st.StartedAt).Round(time.Second), st.Polls)}
	}
	if p.storming && gate >= threshold {
		p.spinning = p.spinning || p.spin()
		if rec := a.storms.at(p.record); rec != nil {
			started := rec.StartedAt
			*rec = a.pollerStorm(c, p, p.polls-p.startCount, share)
			rec.StartedAt, rec.Active = started, true
		}
	}
	return nil
}

// minSpinGaps is how many polls of keys asked before a poller needs in the storm window for its
// spin verdict alone to make a storm.
const minSpinGaps = 32

// pollerStorm describes a poller's storm as it stands; p is locked.
func (a *Analyzer) pollerStorm(c *clientStats, p *pollerClock, polls int64, share float64) Storm {
	st := Storm{Kind: "poller", Address: c.key.Host, ApplicationName: c.key.App, User: c.key.User, Database: c.key.Database,
		Keys: p.tickKeys, Polls: polls, PeakQPS: float64(p.peak), Spin: p.spinning, MedianIntervalMs: p.medianGapMs(),
		WaitsPct: p.waitsPct(), QueryShare: share, OverlapPct: p.overlapPct(), Tags: p.tags.counts(a.tags)}
	if p.watch >= 0 {
		w := &a.ws.Load().list[p.watch]
		st.Table, st.Column = w.Table, w.Column
	}
	return st
}

// clientName words a client identity for messages: "app at host as user@db".
func clientName(k clientKey) string {
	return fmt.Sprintf("%s at %s as %s@%s", orDash(k.App), orDash(k.Host), orDash(k.User), orDash(k.Database))
}

func spinWord(spin bool) string {
	if spin {
		return " — a spin loop"
	}
	return ""
}

// evalRepeat does the same for repeated reads nobody configured.
func (a *Analyzer) evalRepeat(r *repeatStats, sec int64, threshold uint64) *Notice {
	recent := r.ring.sum(sec, a.window)
	switch r.step(recent, threshold, sec, a.window, r.reads) {
	case stormStarts:
		st := a.start(&r.stormState, Storm{Kind: "repeat", Query: r.fp.text, Polls: int64(recent), PeakQPS: float64(r.peak)}, sec)
		return &Notice{Kind: "storm-start", Storm: &st, Message: fmt.Sprintf("repeated read storm: the same values %.0f/s on %s",
			float64(recent)/float64(a.window), shorten(r.fp.text, 120))}
	case stormEnds:
		st, ok := a.end(&r.stormState, sec, r.reads)
		if !ok {
			return nil
		}
		return &Notice{Kind: "storm-end", Storm: &st, Message: "repeated read storm ended: " + shorten(r.fp.text, 120)}
	}
	if r.storming && recent >= threshold {
		if rec := a.storms.at(r.record); rec != nil {
			rec.Polls, rec.PeakQPS = r.reads-r.startCount, float64(r.peak)
		}
	}
	return nil
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
