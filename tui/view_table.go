package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// column is one column of a table view. Fixed columns have width cells; a flex column (max > 0)
// has at least width and grows to max with the free space. When the screen is too narrow the
// columns of lowest prio go first; flex columns stay. Optional columns (prio below optional)
// also go when the flex columns would get less than they want.
type column struct {
	id    string
	title string
	width int
	max   int
	want  int
	right bool
	prio  int
}

const (
	keep     = 1 << 20 // prio of columns never dropped
	optional = 10
)

var tableColumns = [numViews][]column{
	viewTasks: {
		{id: "sel", width: 1, prio: keep},
		{id: "badge", width: 5, prio: keep},
		{id: "key", title: "KEY", width: 24, max: 40, want: 36, prio: keep},
		{id: "table", title: "TABLE", width: 16, prio: 1},
		{id: "qps", title: "Q/S", width: 6, right: true, prio: 90},
		{id: "qps10", title: "Q/S10", width: 6, right: true, prio: 2},
		{id: "polls", title: "POLLS", width: 7, right: true, prio: 80},
		{id: "gap", title: "INTERVAL", width: 8, right: true, prio: 70},
		{id: "same", title: "SAME", width: 5, right: true, prio: 60},
		{id: "status", title: "STATUS", width: 8, prio: 50},
		{id: "cli", title: "CLI", width: 3, right: true, prio: 40},
	},
	viewQueries: {
		{id: "sel", width: 1, prio: keep},
		{id: "watch", title: "WATCH", width: 5, prio: 95},
		{id: "query", title: "QUERY", width: 30, max: 400, want: 48, prio: keep},
		{id: "calls", title: "CALLS", width: 8, right: true, prio: 85},
		{id: "qps", title: "Q/S", width: 6, right: true, prio: 90},
		{id: "qps10", title: "Q/S10", width: 6, right: true, prio: 3},
		{id: "mean", title: "MEAN", width: 7, right: true, prio: 70},
		{id: "p99", title: "P99", width: 7, right: true, prio: 60},
		{id: "total", title: "TOTAL", width: 7, right: true, prio: 4},
		{id: "rows", title: "ROWS", width: 8, right: true, prio: 2},
		{id: "fail", title: "FAIL", width: 5, right: true, prio: 1},
	},
	viewClients: slices.Concat([]column{{id: "sel", width: 1, prio: keep}}, identityColumns, []column{
		{id: "qps", title: "Q/S10", width: 6, right: true, prio: 90},
		{id: "conns", title: "CONN/S", width: 6, right: true, prio: 85},
		{id: "qpc", title: "Q/CONN", width: 6, right: true, prio: 3},
		{id: "open", title: "OPEN", width: 5, right: true, prio: 2},
		{id: "queries", title: "QUERIES", width: 8, right: true, prio: 4},
		{id: "polls", title: "POLLS", width: 8, right: true, prio: 70},
		{id: "share", title: "POLL%", width: 6, right: true, prio: 80},
	}),
	viewQueues: {
		{id: "sel", width: 1, prio: keep},
		{id: "queue", title: "QUEUE", width: 12, max: 20, want: 14, prio: keep},
		{id: "library", title: "LIBRARY", width: 12, prio: 5},
		{id: "tables", title: "TABLES", width: 16, max: 60, want: 30, prio: 1},
		{id: "pps", title: "POLL/S", width: 7, right: true, prio: 90},
		{id: "polls", title: "POLLS", width: 8, right: true, prio: 80},
		{id: "empty", title: "EMPTY", width: 6, right: true, prio: 85},
		{id: "eps", title: "ENQ/S", width: 6, right: true, prio: 75},
		{id: "enq", title: "ENQUEUED", width: 8, right: true, prio: 3},
		{id: "gap", title: "INTERVAL", width: 9, right: true, prio: 70},
		{id: "cli", title: "CLI", width: 3, right: true, prio: 40},
	},
}

// identityColumns are a client's identity (see identityText).
var identityColumns = []column{
	{id: "addr", title: "ADDRESS", width: 15, max: 24, want: 15, prio: keep},
	{id: "app", title: "APPLICATION", width: 11, max: 40, want: 20, prio: keep},
	{id: "who", title: "USER@DATABASE", width: 20, prio: 1},
}

// identityText is the text of an identity column for a client; ok is false for another
// column.
func identityText(addr, app, user, database, id string) (text string, ok bool) {
	switch id {
	case "addr":
		return addr, true
	case "app":
		if app == "" {
			return "-", true
		}
		return oneLine(app), true
	case "who":
		return user + "@" + database, true
	}
	return "", false
}

// layoutColumns picks the columns that fit in width and sizes the flex ones. Columns are
// separated by one space.
func layoutColumns(all []column, width int) []column {
	cols := append([]column(nil), all...)
	need := func() int {
		n := len(cols) - 1
		for _, c := range cols {
			n += c.width
		}
		return n
	}
	short := func() bool { // the flex columns would get less than they want
		wanted := 0
		for _, c := range cols {
			wanted += max(0, c.want-c.width)
		}
		return width-need() < wanted
	}
	drop := func(below int) bool {
		d := -1
		for i, c := range cols {
			if c.prio < below && (d < 0 || c.prio < cols[d].prio) {
				d = i
			}
		}
		if d < 0 {
			return false
		}
		cols = append(cols[:d], cols[d+1:]...)
		return true
	}
	for need() > width {
		if !drop(keep) {
			break
		}
	}
	for short() {
		if !drop(optional) {
			break
		}
	}
	// Free room goes first to the flex columns short of what they want, then to all of them
	// up to their maximum, a cell at a time in turn.
	free := width - need()
	for _, limit := range []func(c column) int{
		func(c column) int { return min(c.want, c.max) },
		func(c column) int { return c.max },
	} {
		for free > 0 {
			grew := false
			for i := range cols {
				if free > 0 && cols[i].width < limit(cols[i]) {
					cols[i].width++
					free--
					grew = true
				}
			}
			if !grew {
				break
			}
		}
	}
	return cols
}

// cell is one rendered cell: its text and, when it stands out, its style.
type cell struct {
	text  string
	style *lipgloss.Style
}

// tableView draws the column titles and the visible rows of the current view. Only visible
// rows are formatted.
func (m model) tableView(h int) []string {
	cols := layoutColumns(tableColumns[m.view], m.width)
	t := m.tabs[m.view]
	spec := sorts[m.view][t.sort]
	var sweeps []string
	if m.view == viewTasks {
		sweeps = m.pollerStrip(h / 3)
		h -= len(sweeps)
	}
	tags := 0 // lines kept for the tags under the Clients table
	if m.view == viewClients {
		tags = m.tagLines()
		h -= tags
	}

	out := append(sweeps, m.titleLine(cols, spec.col, spec.desc != t.reverse))

	if len(m.rows) == 0 {
		out = append(out, "", m.st.dim.Render("  "+m.emptyText()))
		return append(out, m.tagStrip(max(tags, h+tags-len(out)))...)
	}
	end := min(len(m.rows), t.offset+h-1)
	h += len(sweeps) // the findings strip below counts the lines drawn, sweeps included
	for pos := t.offset; pos < end; pos++ {
		selected := pos == t.cursor
		cells := m.rowCells(m.rows[pos], cols, selected)
		parts := make([]string, len(cols))
		for i, c := range cols {
			if cells[i].style == nil || selected {
				parts[i] = fit(cells[i].text, c.width, c.right)
				continue
			}
			// Style the text, not its padding: a badge is a word, not a bar.
			text := trunc(cells[i].text, c.width)
			pad := strings.Repeat(" ", c.width-visibleWidth(text))
			if c.right {
				parts[i] = pad + cells[i].style.Render(text)
			} else {
				parts[i] = cells[i].style.Render(text) + pad
			}
		}
		line := strings.Join(parts, " ")
		if selected && !m.plain() {
			line = m.st.selected.Render(fit(line, m.width, false))
		}
		out = append(out, line)
	}
	switch m.view {
	case viewTasks:
		out = append(out, m.findingsStrip(h-len(out))...)
	case viewClients: // the tags take the room the clients leave, and at least what was kept
		out = append(out, m.tagStrip(max(tags, h+tags-len(out)))...)
	}
	return out
}

// titleLine is the column titles of a table, the sorted column's with its arrow.
func (m model) titleLine(cols []column, sortCol string, desc bool) string {
	titles := make([]string, len(cols))
	for i, c := range cols {
		title := c.title
		if sortCol != "" && sortCol == c.id {
			title += arrow(desc)
		}
		titles[i] = fit(title, c.width, c.right)
	}
	return m.st.colHeader.Render(strings.Join(titles, " "))
}

// pollerStrip tops the Tasks table with the pollers storming over many keys: a loop over a
// large group polls each key too seldom to stand out in the table below, so the poller is
// named above it. At most room lines.
func (m model) pollerStrip(room int) []string {
	s := m.snap
	if s == nil || room < 2 {
		return nil
	}
	st := m.st
	var out []string
	n := 0
	for i := range s.Pollers {
		if s.Pollers[i].Storming {
			n++
		}
	}
	for i := range s.Pollers {
		p := &s.Pollers[i]
		if !p.Storming {
			continue
		}
		if len(out) == room-1 && len(out) < n {
			out = append(out, st.dim.Render(fmt.Sprintf("  … and %d more storming pollers (see 3 Clients, 4 Findings)", n-len(out))))
			break
		}
		label, style := "POLLER", st.storm
		if p.Spinning {
			label, style = "SPIN LOOP", st.spin
		}
		app := p.ApplicationName
		if app == "" {
			app = "-"
		}
		waits := "-"
		if p.WaitsPct >= 0 {
			waits = fmt.Sprintf("%.0f%%", p.WaitsPct)
		}
		text := fmt.Sprintf("%s %s %s@%s: %d keys, %s polls/s (%s of queries), waited in %s of key gaps",
			oneLine(app), p.Address, p.User, p.Database, p.Keys, fmtRate(p.PollQPS10), fmtPct(p.QueryShare), waits)
		b := m.badge(label, style) + " "
		out = append(out, b+trunc(text, m.width-visibleWidth(b)))
	}
	if len(out) > 0 {
		out = append(out, "")
	}
	return out
}

// findingsStrip fills the room left under the Tasks table with the findings' summaries, so
// the diagnosis is on the first screen too.
func (m model) findingsStrip(room int) []string {
	s := m.snap
	if room < 4 || len(s.Findings) == 0 {
		return nil
	}
	st := m.st
	order := selectRows(s, viewFindings, "", 0, false, nil) // most severe first
	out := []string{"", st.colHeader.Render("FINDINGS") + st.dim.Render("  (4 shows the evidence and the fix)")}
	for n, i := range order {
		if len(out) == room {
			break
		}
		if len(out) == room-1 && n < len(order)-1 {
			out = append(out, st.dim.Render(fmt.Sprintf("  … and %d more", len(order)-n)))
			break
		}
		f := &s.Findings[i]
		sev := strings.ToUpper(f.Severity)
		out = append(out, "  "+m.sevStyle(f.Severity).Render(fit(sev, 7, false))+trunc(oneLine(f.Summary), m.width-9))
	}
	return out
}

func (m model) emptyText() string {
	if f := m.tabs[m.view].filter; f != "" {
		return fmt.Sprintf("no rows match %q (esc clears the filter)", f)
	}
	switch m.view {
	case viewTasks:
		return "no watched keys polled yet: point the application's result backend at the proxy"
	case viewQueries:
		return "no queries yet"
	case viewClients:
		return "no clients yet"
	case viewQueues:
		return "no job queue polled yet (queues come from the library presets and --watch-queue)"
	}
	return ""
}

func (m model) rowCells(i int, cols []column, selected bool) []cell {
	sel := " "
	if selected {
		sel = ">"
	}
	out := make([]cell, len(cols))
	for j, c := range cols {
		if c.id == "sel" {
			out[j] = cell{text: sel}
			continue
		}
		switch m.view {
		case viewTasks:
			out[j] = m.taskCell(&m.snap.Keys[i], c.id)
		case viewQueries:
			out[j] = m.queryCell(&m.snap.Fingerprints[i], c.id)
		case viewClients:
			out[j] = m.clientCell(&m.snap.Clients[i], c.id)
		case viewQueues:
			out[j] = m.queueCell(&m.snap.Queues[i], c.id)
		}
	}
	return out
}

func (m model) taskCell(k *analyzer.KeyStat, id string) cell {
	st := &m.st
	hot := func(text string, on bool) cell {
		if on {
			return cell{text, &st.hot}
		}
		return cell{text: text}
	}
	switch id {
	case "badge":
		switch b := badgeText(k); b {
		case "SPIN":
			return cell{b, &st.spin}
		case "STORM":
			return cell{b, &st.storm}
		}
		return cell{}
	case "key":
		return hot(oneLine(k.Key), k.Storming)
	case "table":
		return cell{text: k.Table}
	case "qps":
		return hot(fmtRate(k.QPS1), k.Storming)
	case "qps10":
		return cell{text: fmtRate(k.QPS10)}
	case "polls":
		return cell{text: fmtCount(k.Polls)}
	case "gap":
		return hot(fmtMs(k.MedianIntervalMs), k.Spinning)
	case "same":
		if k.UnchangedPolls < 0 {
			return cell{text: notSeen}
		}
		if k.Polls == 0 {
			return cell{text: "-"}
		}
		return cell{text: fmtPct(ratio(k.UnchangedPolls, k.Polls))}
	case "status":
		if k.LastStatus == "" && k.UnchangedPolls < 0 {
			return cell{text: notSeen}
		}
		if k.LastStatus == "" {
			return cell{text: "-"}
		}
		return cell{text: k.LastStatus}
	case "cli":
		return cell{text: fmt.Sprint(k.Clients)}
	}
	return cell{}
}

func (m model) queryCell(f *analyzer.FingerprintStat, id string) cell {
	st := &m.st
	switch id {
	case "watch":
		switch {
		case f.Watched:
			return cell{"poll", &st.warn}
		case f.Write:
			return cell{text: "write"}
		}
		return cell{}
	case "query":
		return cell{text: oneLine(f.Query)}
	case "calls":
		return cell{text: fmtCount(f.Calls)}
	case "qps":
		return cell{text: fmtRate(f.QPS1)}
	case "qps10":
		return cell{text: fmtRate(f.QPS10)}
	case "mean":
		return cell{text: fmtMs(f.MeanMs)}
	case "p99":
		return cell{text: fmtMs(f.P99Ms)}
	case "total":
		return cell{text: fmtMs(f.TotalMs)}
	case "rows":
		if f.Rows < 0 {
			return cell{text: notSeen}
		}
		return cell{text: fmtCount(f.Rows)}
	case "fail":
		if f.Failed > 0 {
			return cell{fmtCount(f.Failed), &st.hot}
		}
		return cell{text: "0"}
	}
	return cell{}
}

// churning is the analyzer's connection-churn rule: new connections every second, few
// queries on each.
func churning(c *analyzer.ClientStat) bool { return c.ConnsPerSec10 >= 1 && c.QueriesPerConn <= 20 }

func (m model) clientCell(c *analyzer.ClientStat, id string) cell {
	st := &m.st
	if text, ok := identityText(c.Address, c.ApplicationName, c.User, c.Database, id); ok {
		return cell{text: text}
	}
	switch id {
	case "qps":
		return cell{text: fmtRate(c.QPS10)}
	case "conns":
		if churning(c) {
			return cell{fmtRate(c.ConnsPerSec10), &st.hot}
		}
		return cell{text: fmtRate(c.ConnsPerSec10)}
	case "qpc":
		return cell{text: fmtRate(c.QueriesPerConn)}
	case "open":
		return cell{text: fmt.Sprint(c.OpenConnections)}
	case "queries":
		return cell{text: fmtCount(c.Queries)}
	case "polls":
		return cell{text: fmtCount(c.Polls)}
	case "share":
		if c.PollShare >= 0.5 {
			return cell{fmtPct(c.PollShare), &st.hot}
		}
		return cell{text: fmtPct(c.PollShare)}
	}
	return cell{}
}
