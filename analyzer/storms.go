package analyzer

import (
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

// maxStorms bounds the storm log; the oldest ended storms go first.
const maxStorms = 1000

type stormLog struct {
	list_ []Storm
	base  int // storms dropped from the front, so indexes held by keys stay valid
}

func (l *stormLog) add(s Storm) int {
	if len(l.list_) >= maxStorms {
		l.list_ = l.list_[1:]
		l.base++
	}
	l.list_ = append(l.list_, s)
	return l.base + len(l.list_) - 1
}

func (l *stormLog) at(i int) *Storm {
	if i < l.base || i-l.base >= len(l.list_) {
		return nil
	}
	return &l.list_[i-l.base]
}

func (l *stormLog) list() []Storm { return slices.Clone(l.list_) }

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
	sec := a.sec(now)
	var notices []Notice
	threshold := uint64(a.cfg.StormQPS * float64(a.window))
	a.stormMu.Lock()
	for i := range a.keys.shards {
		sh := &a.keys.shards[i]
		sh.mu.Lock()
		for _, k := range sh.m {
			if n := a.evalKey(k, sec, threshold); n != nil {
				notices = append(notices, *n)
			}
		}
		sh.mu.Unlock()
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
	if a.cfg.OnNotice == nil {
		return
	}
	for _, n := range notices {
		a.cfg.OnNotice(n)
	}
	if len(notices) > 0 || sec%5 == 0 {
		for _, f := range a.findings(a.Snapshot()) {
			id := f.ID
			a.stormMu.Lock()
			seen := a.found[id]
			a.found[id] = true
			a.stormMu.Unlock()
			if !seen {
				f := f
				a.cfg.OnNotice(Notice{Kind: "finding", Message: f.Summary, Finding: &f})
			}
		}
	}
}

// evalKey starts or ends a key's storm. A storm starts when the last window averaged at least
// the storm rate, and ends once a whole window has stayed below it.
func (a *Analyzer) evalKey(k *keyStats, sec int64, threshold uint64) *Notice {
	recent := k.ring.sum(sec, a.window)
	spin := func() (bool, float64) {
		med := k.gaps.quantile(0.5)
		return med >= 0 && med < float64(a.cfg.SpinInterval.Microseconds())/1000, med
	}
	w := &a.cfg.Watches[k.watch]
	if !k.storming {
		if recent < threshold || recent == 0 {
			return nil
		}
		k.storming, k.stormStart, k.stormPolls, k.belowSince = true, max(0, sec-int64(a.window)), k.polls-int64(recent), 0
		k.spinning, _ = spin()
		_, med := spin()
		st := Storm{Kind: "key", Table: w.Table, Column: w.Column, Key: k.key, Active: true,
			StartedAt: a.epoch.Add(time.Duration(k.stormStart) * time.Second),
			Polls:     int64(recent), PeakQPS: float64(k.peak), Spin: k.spinning, MedianIntervalMs: med}
		k.stormRecord = a.storms.add(st)
		return &Notice{Kind: "storm-start", Storm: &st, Message: fmt.Sprintf("storm started: %s.%s = %s polled %.0f/s (median gap %.1f ms)%s",
			w.Table, w.Column, k.key, float64(recent)/float64(a.window), med, spinWord(k.spinning))}
	}
	rec := a.storms.at(k.stormRecord)
	if recent >= threshold {
		k.belowSince = 0
		sp, med := spin()
		k.spinning = k.spinning || sp
		if rec != nil {
			rec.Polls, rec.PeakQPS, rec.Spin, rec.MedianIntervalMs = k.polls-k.stormPolls, float64(k.peak), k.spinning, med
		}
		return nil
	}
	if k.belowSince == 0 {
		k.belowSince = sec
	}
	if sec-k.belowSince < int64(a.window) {
		return nil
	}
	k.storming = false
	if rec == nil {
		return nil
	}
	rec.Active = false
	rec.EndedAt = a.epoch.Add(time.Duration(sec) * time.Second)
	rec.Polls = k.polls - k.stormPolls
	st := *rec
	return &Notice{Kind: "storm-end", Storm: &st, Message: fmt.Sprintf("storm ended: %s.%s = %s after %s and %d polls",
		w.Table, w.Column, k.key, st.EndedAt.Sub(st.StartedAt).Round(time.Second), st.Polls)}
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
	if !r.storming {
		if recent < threshold || recent == 0 {
			return nil
		}
		r.storming, r.belowFrom, r.stormReads = true, 0, r.reads-int64(recent)
		st := Storm{Kind: "repeat", Query: r.fp.text, Active: true,
			StartedAt: a.epoch.Add(time.Duration(max(0, sec-int64(a.window))) * time.Second),
			Polls:     int64(recent), PeakQPS: float64(r.peak)}
		r.stormRec = a.storms.add(st)
		return &Notice{Kind: "storm-start", Storm: &st, Message: fmt.Sprintf("repeated read storm: the same values %.0f/s on %s",
			float64(recent)/float64(a.window), shorten(r.fp.text, 120))}
	}
	rec := a.storms.at(r.stormRec)
	if recent >= threshold {
		r.belowFrom = 0
		if rec != nil {
			rec.Polls = r.reads - r.stormReads
			rec.PeakQPS = float64(r.peak)
		}
		return nil
	}
	if r.belowFrom == 0 {
		r.belowFrom = sec
	}
	if sec-r.belowFrom < int64(a.window) {
		return nil
	}
	r.storming = false
	if rec == nil {
		return nil
	}
	rec.Active = false
	rec.EndedAt = a.epoch.Add(time.Duration(sec) * time.Second)
	rec.Polls = r.reads - r.stormReads
	st := *rec
	return &Notice{Kind: "storm-end", Storm: &st, Message: "repeated read storm ended: " + shorten(r.fp.text, 120)}
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
