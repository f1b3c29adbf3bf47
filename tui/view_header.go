package tui

import (
	"fmt"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// headerView is four lines: where the proxy sits and how long it has run; all queries per
// second with the last minute as a sparkline; the watched polls on the same scale with their
// share; and the storm alert, the seed's "597 of 683 queries/s are polls of 10 keys". A fifth
// line says what the coalescing cache does, or would save (see cacheView).
func (m model) headerView() []string {
	st := m.st
	s := m.snap
	paused := ""
	if m.paused {
		paused = m.badge("PAUSED", st.paused)
	}

	addr := m.listen
	if addr == "" {
		addr = "?"
	}
	up := m.upstream
	if up == "" {
		up = "?"
	}
	where := addr + " -> " + up
	if m.source != "" {
		where = m.source
	}
	if m.inputStatus != nil {
		if note := m.inputStatus(); note != "" {
			where += " " + st.dim.Render("("+note+")")
		}
	}
	if s != nil && s.NoAnswers {
		where += " (answers not in a log)"
	}
	line1 := st.title.Render("pgpollwatch") + "  " + where
	if s == nil {
		return []string{joinLR(line1, paused, m.width), "", "", ""}
	}
	// The numbers after the addresses matter more than a long upstream name.
	var facts string
	facts += "  " + st.dim.Render("up ") + fmtDuration(s.Uptime)
	facts += "  " + st.dim.Render("conns ") + fmtRate(s.Rates.ConnsPerSec10) + "/s"
	facts += "  " + st.dim.Render("open ") + fmt.Sprint(s.Totals.OpenConnections)
	if s.Reuse != nil { // server connections handed to a later client instead of a new fork
		facts += "  " + st.dim.Render("reused ") + fmtCount(s.Reuse.Reused)
	}
	if s.Totals.CachedAnswers > 0 && s.Coalesce == nil { // with a cache, its line says more
		facts += "  " + st.dim.Render("cache hits ") + fmtCount(s.Totals.CachedAnswers)
	}
	addrW := m.width - len("pgpollwatch  ") - visibleWidth(facts) - visibleWidth(paused) - 1
	line1 = st.title.Render("pgpollwatch") + "  " + trunc(where, max(12, addrW)) + facts

	// Sparklines of the last 60 s, both on the scale of all queries so the watched share shows.
	const labelW = 16 // "queries  12345/s "
	tl := s.Timeline
	sparkW := max(0, min(60, m.width-labelW-5))
	if len(tl) > sparkW {
		tl = tl[len(tl)-sparkW:]
	}
	all := make([]uint32, len(tl))
	watched := make([]uint32, len(tl))
	for i, sec := range tl {
		all[i], watched[i] = sec.Queries, sec.Watched
	}
	top := maxOf(all)
	r := s.Rates
	share := 0.0
	if r.QPS10 > 0 {
		share = r.WatchedQPS10 / r.QPS10
	}
	line2 := st.dim.Render("queries ") + fit(fmtRate(r.QPS10)+"/s", labelW-9, true) + " " +
		st.spark.Render(sparkline(all, sparkW, top))
	shareText := fmtPct(share)
	if share >= 0.5 {
		shareText = st.hot.Render(shareText)
	}
	line3 := st.dim.Render("watched ") + fit(fmtRate(r.WatchedQPS10)+"/s", labelW-9, true) + " " +
		st.sparkWatched.Render(sparkline(watched, sparkW, top)) + " " + shareText

	lines := []string{joinLR(line1, paused, m.width), line2, line3, m.alertView(s, share)}
	if hasCacheLine(s) {
		lines = append(lines, trunc(m.cacheView(s), m.width))
	}
	return lines
}

// hasCacheLine reports whether the header has a cache line: when the proxy has a cache (on or
// off), or, without one, when the what-if estimate has something to say.
func hasCacheLine(s *analyzer.Snapshot) bool {
	if s.Coalesce != nil {
		return true
	}
	w, ok := whatIfAt(s, 500*time.Millisecond)
	return ok && w.Polls > 0
}

// whatIfAt finds the what-if estimate for ttl.
func whatIfAt(s *analyzer.Snapshot, ttl time.Duration) (analyzer.WhatIf, bool) {
	for _, w := range s.WhatIf {
		if w.TTL == ttl {
			return w, true
		}
	}
	return analyzer.WhatIf{}, false
}

// cacheView is the cache line. On: its TTL, hits with the hit ratio, upstream queries saved
// and the median age of the answers served. Off: how to turn it on and what it would save at
// its TTL (500 ms when the estimate has no such TTL). Without a cache: what one would save.
func (m model) cacheView(s *analyzer.Snapshot) string {
	st := m.st
	c := s.Coalesce
	if c != nil && c.Enabled {
		ratio := 0.0
		if n := c.Hits + c.Misses; n > 0 {
			ratio = float64(c.Hits) / float64(n)
		}
		return st.calm.Render("cache on") + " " + fmtTTL(c.TTL) +
			"  " + st.dim.Render("hits ") + fmtCount(c.Hits) + " (" + fmtPct(ratio) + ")" +
			"  " + st.dim.Render("saved ") + fmtCount(c.Saved) +
			"  " + st.dim.Render("age p50 ") + fmtMs(float64(c.AgeP50)/float64(time.Millisecond))
	}
	ttl := 500 * time.Millisecond
	if c != nil {
		if _, ok := whatIfAt(s, c.TTL); ok {
			ttl = c.TTL
		}
	}
	var would string
	if w, ok := whatIfAt(s, ttl); ok && w.Polls > 0 {
		would = fmt.Sprintf("a %s cache would save %s (%s)", fmtTTL(ttl), fmtCount(w.Saved), fmtPct(w.SavedShare))
	}
	if c == nil {
		return st.dim.Render("no cache (--coalesce): ") + would
	}
	line := st.hot.Render("cache off") + st.dim.Render(" — c to enable")
	if would != "" {
		line += st.dim.Render("; ") + would
	}
	return line
}

// fmtTTL writes a TTL the way the flag takes it: 100ms, 500ms, 1s, 5s.
func fmtTTL(d time.Duration) string { return d.String() }

// alertView is the header's last line: the storm badge and the seed's sentence.
func (m model) alertView(s *analyzer.Snapshot, share float64) string {
	st := m.st
	r := s.Rates
	if r.QPS10 == 0 {
		return st.dim.Render("no queries in the last 10 s")
	}
	sentence := fmt.Sprintf("%s of %s queries/s (%s) are polls of %d watched keys",
		fmtRate(r.WatchedQPS10), fmtRate(r.QPS10), fmtPct(share), r.KeysPolled10)
	if s.Totals.StormsActive == 0 {
		return sentence + st.dim.Render(" · ") + st.calm.Render("no storm")
	}
	label := "STORM"
	if spinLoop(s) {
		label = "SPIN LOOP"
	}
	what := "storm"
	if s.Totals.StormsActive > 1 {
		what = "storms"
	}
	b := m.badge(label, st.spin) + " "
	text := fmt.Sprintf("%d %s: %s", s.Totals.StormsActive, what, sentence)
	if visibleWidth(b)+visibleWidth(text) > m.width {
		text = fmt.Sprintf("%d %s: %s of %s q/s (%s) poll %d keys", s.Totals.StormsActive, what,
			fmtRate(r.WatchedQPS10), fmtRate(r.QPS10), fmtPct(share), r.KeysPolled10)
	}
	return b + st.alert.Render(text)
}

// spinLoop reports whether a storm going on now is a spin loop: a key's, or a poller's over
// many keys.
func spinLoop(s *analyzer.Snapshot) bool {
	for i := range s.Keys {
		if s.Keys[i].Storming && s.Keys[i].Spinning {
			return true
		}
	}
	for i := range s.Pollers {
		if s.Pollers[i].Storming && s.Pollers[i].Spinning {
			return true
		}
	}
	return false
}
