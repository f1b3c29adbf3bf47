package tui

import (
	"fmt"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// headerView is four lines: where the proxy sits and how long it has run; all queries per
// second with the last minute as a sparkline; the watched polls on the same scale with their
// share; and the storm alert, the seed's "597 of 683 queries/s are polls of 10 keys".
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
	line1 := st.title.Render("pgpollwatch") + "  " + addr + " -> " + up
	if s == nil {
		return []string{joinLR(line1, paused, m.width), "", "", ""}
	}
	// The numbers after the addresses matter more than a long upstream name.
	var facts string
	facts += "  " + st.dim.Render("up ") + fmtDuration(s.Uptime)
	facts += "  " + st.dim.Render("conns ") + fmtRate(s.Rates.ConnsPerSec10) + "/s"
	facts += "  " + st.dim.Render("open ") + fmt.Sprint(s.Totals.OpenConnections)
	if s.Totals.CachedAnswers > 0 {
		facts += "  " + st.dim.Render("cache hits ") + fmtCount(s.Totals.CachedAnswers)
	}
	addrW := m.width - len("pgpollwatch  ") - visibleWidth(facts) - visibleWidth(paused) - 1
	line1 = st.title.Render("pgpollwatch") + "  " + trunc(addr+" -> "+up, max(12, addrW)) + facts

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

	return []string{joinLR(line1, paused, m.width), line2, line3, m.alertView(s, share)}
}

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
	for i := range s.Keys {
		if s.Keys[i].Storming && s.Keys[i].Spinning {
			label = "SPIN LOOP"
			break
		}
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
