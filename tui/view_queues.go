package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// The Queues view (job queues polled for work), a queue's detail (who polls it, which code),
// and the attribution tags under the Clients table.

func (m model) queueCell(q *analyzer.QueueStat, id string) cell {
	switch id {
	case "queue":
		return cell{text: q.Queue}
	case "library":
		return cell{text: q.Library}
	case "tables":
		return cell{text: q.Tables}
	case "pps":
		return cell{text: fmtRate(q.PollsPerSec10)}
	case "polls":
		return cell{text: fmtCount(q.Polls)}
	case "empty":
		return cell{text: fmtEmpty(q.EmptyPct)}
	case "eps":
		return cell{text: fmtRate(q.EnqueuedPerSec)}
	case "enq":
		return cell{text: fmtCount(q.Enqueued)}
	case "gap":
		return cell{text: fmtMs(q.IntervalP50Ms)}
	case "cli":
		return cell{text: fmt.Sprint(len(q.Clients))}
	}
	return cell{}
}

// fmtEmpty is a queue's EmptyPct (0-100); n/a when the source saw no answers (-1).
func fmtEmpty(pct float64) string {
	if pct < 0 {
		return notSeen
	}
	return fmtPct(pct / 100)
}

// Columns of the tables under a queue's numbers and under the Clients table.
var (
	queueClientColumns = slices.Concat(identityColumns, []column{
		{id: "pps", title: "POLL/S", width: 6, right: true, prio: 90},
		{id: "polls", title: "POLLS", width: 8, right: true, prio: 80},
		{id: "empty", title: "EMPTY", width: 5, right: true, prio: 70},
		{id: "gap", title: "INTERVAL", width: 8, right: true, prio: 60},
	})
	// A queue's tags: the polls that carried each (tagText of a TagCount as a TagStat).
	queueTagColumns = []column{
		{id: "tag", title: "TAG", width: 20, max: 60, want: 40, prio: keep},
		{id: "pps", title: "POLL/S", width: 6, right: true, prio: 90},
		{id: "polls", title: "POLLS", width: 8, right: true, prio: 80},
	}
	tagColumns = []column{
		{id: "tag", title: "TAG", width: 20, max: 60, want: 40, prio: keep},
		{id: "qps", title: "Q/S10", width: 6, right: true, prio: 90},
		{id: "queries", title: "QUERIES", width: 8, right: true, prio: 3},
		{id: "pps", title: "POLL/S", width: 6, right: true, prio: 85},
		{id: "polls", title: "POLLS", width: 8, right: true, prio: 80},
	}
)

// tagText is the text of a tag table's column.
func tagText(t *analyzer.TagStat, id string) string {
	switch id {
	case "tag":
		return oneLine(t.Tag)
	case "qps":
		return fmtRate(t.QPS10)
	case "queries":
		return fmtCount(t.Queries)
	case "pps":
		return fmtRate(t.PollsPerSec10)
	case "polls":
		return fmtCount(t.Polls)
	}
	return ""
}

// miniTable draws n rows of a table that is not the view's own (no cursor, no sort): the
// column titles, then what fits in room lines, the last one counting the rows left out. Its
// columns line up with a view's, whose first is the cursor's.
func (m model) miniTable(cols []column, n int, text func(i int, id string) string, room int) []string {
	if room < 2 || n == 0 {
		return nil
	}
	cols = layoutColumns(append([]column{{id: "sel", width: 1, prio: keep}}, cols...), m.width)
	out := []string{m.titleLine(cols, "", false)}
	parts := make([]string, len(cols))
	for i := range n {
		if len(out) == room-1 && i < n-1 {
			out = append(out, m.st.dim.Render(fmt.Sprintf("  … and %d more", n-i)))
			break
		}
		for j, c := range cols {
			parts[j] = ""
			if c.id != "sel" {
				parts[j] = text(i, c.id)
			}
			parts[j] = fit(parts[j], c.width, c.right)
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func (m model) queueDetail(h int) []string {
	st := &m.st
	q := &m.detail.queue
	title := st.bold.Render(q.Queue) + st.dim.Render("  "+q.Library+"  tables ") + q.Tables
	empty := notInLog
	if q.EmptyPolls >= 0 {
		empty = fmtCount(q.EmptyPolls) + " (" + fmtEmpty(q.EmptyPct) + ")"
	}
	items := []kv{
		{"polls/s 10 s", fmtRate(q.PollsPerSec10), nil},
		{"polls/s avg", fmtRate(q.PollsPerSec), nil},
		{"polls", fmtCount(q.Polls), nil},
		{"empty polls", empty, nil},
		{"enqueued/s", fmtRate(q.EnqueuedPerSec), nil},
		{"enqueued", fmtCount(q.Enqueued), nil},
		{"interval p50", fmtMs(q.IntervalP50Ms), nil},
		{"clients", fmt.Sprint(len(q.Clients)), nil},
	}
	out := []string{title, m.staleNote()}
	out = append(out, m.grid(items, m.width)...)
	out = append(out, "")
	for _, l := range wrap("avg polls/s and enqueued/s: from the first poll to the last; interval: median gap between two polls by one client", m.width-2) {
		out = append(out, st.dim.Render("  "+l))
	}

	// The clients, then the tags, sharing what room is left.
	room := h - len(out)
	tagRoom := 0
	if len(q.Tags) > 0 {
		tagRoom = min(len(q.Tags)+2, max(3, room/2))
	}
	out = append(out, "")
	clients := q.Clients
	out = append(out, m.miniTable(queueClientColumns, len(clients), func(i int, id string) string {
		return queueClientText(&clients[i], id)
	}, room-1-tagRoom)...)
	if len(clients) == 0 {
		out = append(out, st.dim.Render("  no client polled it in the snapshot"))
	}
	if tagRoom > 0 {
		out = append(out, "")
		tags := q.Tags
		out = append(out, m.miniTable(queueTagColumns, len(tags), func(i int, id string) string {
			return tagText(&analyzer.TagStat{Tag: tags[i].Tag, Polls: tags[i].Count, PollsPerSec10: tags[i].PerSec10}, id)
		}, tagRoom-1)...)
	}
	return out
}

func queueClientText(c *analyzer.QueueClient, id string) string {
	if text, ok := identityText(c.Address, c.ApplicationName, c.User, c.Database, id); ok {
		return text
	}
	switch id {
	case "pps":
		return fmtRate(c.PollsPerSec10)
	case "polls":
		return fmtCount(c.Polls)
	case "empty":
		if c.EmptyPolls < 0 {
			return notSeen
		}
		return fmtPct(ratio(c.EmptyPolls, c.Polls))
	case "gap":
		return fmtMs(c.IntervalP50Ms)
	}
	return ""
}

// tagLines is how many lines the Clients view keeps under its table for the attribution tags:
// a third of the body at most, none on a small screen or without tags.
func (m model) tagLines() int {
	if m.view != viewClients || m.snap == nil || len(m.snap.Tags) == 0 {
		return 0
	}
	h := m.bodyHeight()
	if h < 12 {
		return 0
	}
	return min(len(m.snap.Tags)+3, h/3)
}

// tagStrip is the Clients view's tags, from every client, in at most room lines: which code
// sent the statements and the polls, by the comments' key=value pairs.
func (m model) tagStrip(room int) []string {
	s := m.snap
	if m.view != viewClients || s == nil || len(s.Tags) == 0 || room < 4 {
		return nil
	}
	out := []string{"", m.st.colHeader.Render("TAGS") + m.st.dim.Render("  per tag, from all clients: which code sent the statements")}
	return append(out, m.miniTable(tagColumns, len(s.Tags), func(i int, id string) string { return tagText(&s.Tags[i], id) }, room-2)...)
}
