package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// kv is one number of a detail screen.
type kv struct {
	label, value string
	style        *lipgloss.Style
}

func (m model) detailView(h int) []string {
	switch m.detail.view {
	case viewTasks:
		return m.keyDetail(h)
	case viewQueries:
		return m.queryDetail(h)
	case viewClients:
		return m.clientDetail()
	case viewQueues:
		return m.queueDetail(h)
	}
	return nil
}

// staleNote is the line under a detail's title: empty, or a warning that the row has left the
// snapshot (its key was evicted, or it fell out of the top rows the analyzer copies).
func (m model) staleNote() string {
	if m.detail.stale {
		return m.st.warn.Render("gone from the latest snapshot: the last values seen are shown")
	}
	return ""
}

func (m model) keyDetail(h int) []string {
	st := &m.st
	k := &m.detail.key
	title := ""
	if b := badgeText(k); b != "" {
		style := st.storm
		if b == "SPIN" {
			style = st.spin
		}
		title = m.badge(b, style) + " "
	}
	title += st.dim.Render(k.Table+"."+k.Column+" = ") + st.bold.Render(oneLine(k.Key))

	ttr := "not yet"
	if k.TimeToResultMs >= 0 {
		ttr = fmtMs(k.TimeToResultMs)
	}
	status := k.LastStatus
	if status == "" {
		status = "-"
	}
	now := m.snap.TakenAt
	unchanged, rows := fmtCount(k.UnchangedPolls), fmtCount(k.Rows)
	if k.Polls > 0 {
		unchanged += " (" + fmtPct(ratio(k.UnchangedPolls, k.Polls)) + ")"
	}
	if k.UnchangedPolls < 0 { // a server log: statements without their answers
		unchanged, rows = notInLog, notInLog
		if k.LastStatus == "" {
			status = notInLog
		}
	}
	items := []kv{
		{"q/s now", fmtRate(k.QPS1), hotIf(st, k.Storming)},
		{"q/s 10 s", fmtRate(k.QPS10), nil},
		{"q/s 60 s", fmtRate(k.QPS60), nil},
		{"peak q/s", fmtRate(k.PeakQPS), nil},
		{"polls", fmtCount(k.Polls), nil},
		{"unchanged", unchanged, nil},
		{"cached", fmtCount(k.CachedPolls), nil},
		{"rows read", rows, nil},
		{"median gap", fmtMs(k.MedianIntervalMs), hotIf(st, k.Spinning)},
		{"p10 gap", fmtMs(k.P10IntervalMs), nil},
		{"waited", fmtWaits(k.WaitsPct), hotIf(st, k.Spinning)},
		{"clients", fmt.Sprint(k.Clients), nil},
		{"writes", fmtCount(k.Writes), nil},
		{"last status", status, nil},
		{"to result", ttr, nil},
		{"after final", fmtCount(k.PollsAfterTerminal), hotIf(st, k.PollsAfterTerminal >= 10)},
		{"first seen", fmtAgo(k.FirstSeen, now), nil},
		{"last seen", fmtAgo(k.LastSeen, now), nil},
	}
	grid := m.grid(items, m.width)
	var by []string
	if len(k.Tags) > 0 { // which code polls it: the tags of its polls' comments
		var parts []string
		for _, t := range k.Tags {
			parts = append(parts, fmt.Sprintf("%s (%s)", t.Tag, fmtCount(t.Count)))
		}
		by = []string{"", trunc(st.dim.Render("polled by ")+strings.Join(parts, ", "), m.width)}
	}
	chartH := max(3, min(15, h-5-len(grid)-len(by)))
	out := []string{title, m.staleNote()}
	out = append(out, m.chart("polls per second, last 60 s", k.History, chartH)...)
	out = append(out, "")
	out = append(out, grid...)
	return append(out, by...)
}

func (m model) queryDetail(h int) []string {
	st := &m.st
	f := &m.detail.fp
	mark := ""
	switch {
	case f.Watched:
		mark = m.badge("POLL", st.spin) + " "
	case f.Write:
		mark = m.badge("WRITE", st.storm) + " "
	}
	title := mark + st.bold.Render(f.Command) + st.dim.Render("  fingerprint ") + f.Fingerprint
	if f.Table != "" {
		title += st.dim.Render("  table ") + f.Table
	}

	const maxText = 4
	text := wrap(f.Query, max(10, m.width-2))
	if len(text) > maxText {
		text = text[:maxText]
		text[maxText-1] = trunc(text[maxText-1]+" …", m.width-2)
	}
	now := m.snap.TakenAt
	items := []kv{
		{"calls", fmtCount(f.Calls), nil},
		{"q/s now", fmtRate(f.QPS1), nil},
		{"q/s 10 s", fmtRate(f.QPS10), nil},
		{"failed", fmtCount(f.Failed), hotIf(st, f.Failed > 0)},
		{"cached", fmtCount(f.Cached), nil},
		{"rows", fmtKnown(f.Rows), nil},
		{"mean", fmtMs(f.MeanMs), nil},
		{"p99", fmtMs(f.P99Ms), nil},
		{"total time", fmtMs(f.TotalMs), nil},
		{"first seen", fmtAgo(f.FirstSeen, now), nil},
		{"last seen", fmtAgo(f.LastSeen, now), nil},
	}
	grid := m.grid(items, m.width)
	out := []string{title, m.staleNote()}
	for _, l := range text {
		out = append(out, "  "+l)
	}
	out = append(out, "")
	chartH := max(3, min(15, h-len(out)-3-len(grid)))
	out = append(out, m.chart("calls per second, last 60 s", f.History, chartH)...)
	out = append(out, "")
	return append(out, grid...)
}

func (m model) clientDetail() []string {
	st := &m.st
	c := &m.detail.client
	app := c.ApplicationName
	if app == "" {
		app = "(no application_name)"
	}
	title := st.bold.Render(c.Address) + "  " + app + st.dim.Render("  "+c.User+"@"+c.Database)
	items := []kv{
		{"q/s 10 s", fmtRate(c.QPS10), nil},
		{"queries", fmtCount(c.Queries), nil},
		{"watched polls", fmtCount(c.Polls), nil},
		{"poll share", fmtPct(c.PollShare), hotIf(st, c.PollShare >= 0.5)},
		{"conns/s", fmtRate(c.ConnsPerSec10), hotIf(st, churning(c))},
		{"connections", fmtCount(c.Connections), nil},
		{"open now", fmt.Sprint(c.OpenConnections), nil},
		{"queries/conn", fmtRate(c.QueriesPerConn), hotIf(st, churning(c))},
	}
	out := []string{title, m.staleNote()}
	out = append(out, m.grid(items, m.width)...)
	barW := max(10, min(50, m.width-30))
	filled := int(c.PollShare*float64(barW) + 0.5)
	filled = max(0, min(barW, filled))
	bar := st.sparkWatched.Render(strings.Repeat("█", filled)) + st.dim.Render(strings.Repeat("░", barW-filled))
	out = append(out, "", st.dim.Render("share of all watched polls ")+bar+" "+fmtPct(c.PollShare))
	if churning(c) {
		out = append(out, "", st.hot.Render(fmt.Sprintf("connection churn: %.1f new connections/s with %.1f queries on each",
			c.ConnsPerSec10, c.QueriesPerConn)))
	}
	return out
}

func hotIf(st *styles, on bool) *lipgloss.Style {
	if on {
		return &st.hot
	}
	return nil
}

// chart is a caption, a bar chart of the per-second values (newest at the right) h rows high
// with its scale, and a time axis.
func (m model) chart(caption string, values []uint32, h int) []string {
	st := &m.st
	top := max(1, maxOf(values))
	label := fmtCount(int64(top))
	lw := len(label)
	if n := m.width - lw - 3; len(values) > n {
		values = values[len(values)-max(1, n):]
	}
	n := len(values)
	last := uint32(0)
	if n > 0 {
		last = values[n-1]
	}
	out := []string{joinLR(st.dim.Render(caption), st.dim.Render(fmt.Sprintf("now %d/s  max %d/s", last, maxOf(values))), min(m.width, lw+3+max(n, 40)))}
	for r, row := range barChart(values, h, top) {
		y := strings.Repeat(" ", lw) + " │"
		switch r {
		case 0:
			y = label + " ┤"
		case h - 1:
			y = fit("0", lw, true) + " ┤"
		}
		out = append(out, st.dim.Render(y)+st.chart.Render(row))
	}
	axis := strings.Repeat(" ", lw+2)
	if n > 0 {
		axis += fit(fmt.Sprintf("-%ds", n), n/2, false) + fit("now", n-n/2, true)
	}
	return append(out, st.dim.Render(axis))
}

// grid lays the numbers out in as many columns as fit, filling each column top to bottom.
func (m model) grid(items []kv, w int) []string {
	ncol := max(1, min(4, w/26))
	colW := w / ncol
	rows := (len(items) + ncol - 1) / ncol
	labelW := 0
	for _, it := range items {
		labelW = max(labelW, len(it.label))
	}
	out := make([]string, rows)
	for r := range rows {
		var b strings.Builder
		for c := range ncol {
			i := c*rows + r
			if i >= len(items) {
				break
			}
			it := items[i]
			v := fit(it.value, max(1, colW-labelW-3), false)
			if it.style != nil {
				v = it.style.Render(v)
			}
			b.WriteString(" " + m.st.dim.Render(fit(it.label, labelW, false)) + " " + v + " ")
		}
		out[r] = strings.TrimRight(b.String(), " ")
	}
	return out
}
