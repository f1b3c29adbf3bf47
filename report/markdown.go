package report

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes r as Markdown (GitHub flavoured) for pasting into an issue: the headline,
// the findings with their evidence and fix, a sparkline of queries/s and the tables.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	m := &md{b: &b}
	v := newHTMLView(r) // the same headline and key numbers as the HTML page
	m.header(r, v)
	m.findings(r, v)
	m.keys(r, v)
	m.queues(r, v)
	m.relief(r, v)
	m.clients(r, v)
	m.statements(r, v)
	m.storms(r, v)
	if len(r.Proxies) > 1 {
		m.line(fmt.Sprintf("## Sources (%d proxies)", len(r.Proxies)))
		m.blank()
		var rows [][]string
		for _, p := range r.Proxies {
			rows = append(rows, []string{mdText(orDash(p.Host)), mdCode(orDash(p.Listen)), mdCode(orDash(p.Upstream)),
				mdText(orDash(p.Version)), fmtTime(p.StartedAt), fmtTime(p.EndedAt)})
		}
		m.table([]string{"host", "listen", "upstream", "version", "started", "ended"}, "llllll", rows)
	}

	m.line(fmt.Sprintf("<sub>%s · report schema_version %d · no result data, passwords or SQL literals other than the watched keys</sub>",
		mdText(r.Generator), r.SchemaVersion))
	_, err := io.WriteString(w, b.String())
	return err
}

// header writes the title, headline, span and source, the log read, the cards and the sparkline.
func (m *md) header(r *Report, v *htmlView) {

	m.line("# pgpollwatch report")
	m.blank()
	var head strings.Builder
	for _, s := range v.Headline {
		head.WriteString(s.Text)
	}
	head.WriteString(v.HeadTail)
	m.line("**" + mdText(head.String()) + "**")
	if v.Sub != "" {
		m.blank()
		m.line(mdText(v.Sub))
	}
	m.blank()
	meta := fmt.Sprintf("%s → %s (%s)", fmtTime(r.StartedAt), fmtTime(r.EndedAt), v.Duration)
	if p := v.SingleProxy; p != nil && p.Input != "" {
		meta += " · " + mdText(p.Input)
	} else if p != nil {
		meta += " · proxy " + mdCode(orDash(p.Listen))
		if p.Upstream != "" {
			meta += " → " + mdCode(p.Upstream)
		}
		if p.Host != "" {
			meta += " on " + mdText(p.Host)
		}
	} else {
		meta += fmt.Sprintf(" · %d sources merged", len(r.Proxies))
	}
	m.line(meta + " · " + mdText(r.Generator))
	m.blank()
	if l := r.Log; l != nil {
		m.line(mdText(l.Summary()))
		for _, e := range l.BadExamples {
			m.line("- unreadable: " + mdCode(e))
		}
		m.blank()
	}
	if c := r.Capture; c != nil {
		m.line(mdText(c.Summary()))
		m.blank()
	}

	var hdr, vals []string
	for _, c := range v.Cards {
		hdr = append(hdr, c.Label)
		vals = append(vals, "**"+c.Value+"** "+c.Note)
	}
	m.table(hdr, "", [][]string{vals})

	if len(r.Timeline) > 0 {
		qs := make([]float64, len(r.Timeline))
		var top uint32
		for i, s := range r.Timeline {
			qs[i] = float64(s.Queries)
			top = max(top, s.Queries)
		}
		m.line(fmt.Sprintf("queries/s from %s to %s UTC (max %s): `%s`",
			fmtClock(r.Timeline[0].Time), fmtClock(r.Timeline[len(r.Timeline)-1].Time), fmtInt(top), sparkline(qs, 60)))
		m.blank()
	}
}

// findings writes the findings, each with its evidence and fix.
func (m *md) findings(r *Report, v *htmlView) {
	m.line(fmt.Sprintf("## Findings (%d)", len(r.Findings)))
	m.blank()
	if len(r.Findings) == 0 {
		m.line("No findings: nothing was polled at the storm rate, no connection churn, no repeated reads.")
		m.blank()
	}
	for _, f := range r.Findings {
		m.line(fmt.Sprintf("### %s · %s: %s", strings.ToUpper(mdText(f.Severity)), mdText(f.Kind), mdText(f.Summary+f.HeldUntil())))
		m.blank()
		for _, e := range f.Evidence {
			m.line("- " + mdText(e))
		}
		if len(f.Evidence) > 0 {
			m.blank()
		}
		m.line("> **Fix:** " + mdText(f.Fix))
		m.blank()
	}
}

// keys writes the watched keys.
func (m *md) keys(r *Report, v *htmlView) {
	m.line(fmt.Sprintf("## Watched keys (%d listed of %s tracked)", len(r.Keys), fmtInt(r.Totals.KeysTracked)))
	m.blank()
	if len(r.Keys) == 0 {
		m.line("No lookups on a watched table.column were seen.")
		m.blank()
	} else {
		var rows [][]string
		for _, k := range r.Keys {
			var flags []string
			if k.Storming {
				flags = append(flags, "**STORM**")
			}
			if k.Spinning {
				flags = append(flags, "**SPIN**")
			}
			rows = append(rows, []string{mdCode(k.Key), mdText(k.Table + "." + k.Column), fmtInt(k.Polls), fmtRate(k.QPS10),
				fmtRate(k.PeakQPS), fmtMs(k.MedianIntervalMs), fmtWaits(k.WaitsPct), fmtPct(float64(k.UnchangedPolls), float64(k.Polls)),
				mdText(fmtStatus(k.LastStatus, k.UnchangedPolls)), fmtMs(k.TimeToResultMs), fmtInt(k.Clients), strings.Join(flags, " ")})
		}
		m.table([]string{"key", "table.column", "polls", "q/s", "peak q/s", "median gap", "waited", "unchanged", "last status", "time to result", "clients", ""},
			"llrrrrrrlrrl", rows)
	}
}

// queues writes the job queues polled.
func (m *md) queues(r *Report, v *htmlView) {
	if len(r.Queues) == 0 {
		return
	}
	m.line(fmt.Sprintf("## Job queues (%d)", len(r.Queues)))
	m.blank()
	var rows [][]string
	for _, q := range r.Queues {
		rows = append(rows, []string{mdText(orDash(q.Library)), mdText(q.Queue), mdCode(q.Tables), fmtInt(q.Polls), fmtRate(q.PollsPerSec10),
			fmtRate(q.PollsPerSec), mdText(fmtEmpty(q.EmptyPct)), fmtInt(q.Enqueued), fmtRate(q.EnqueuedPerSec), fmtMs(q.IntervalP50Ms),
			mdText(orDash(joinItems(queueClientItems(q.Clients)))), mdText(orDash(joinItems(tagItems(q.Tags))))})
	}
	m.table([]string{"library", "queue", "tables", "polls", "polls/s", "avg polls/s", "empty", "enqueued", "enqueued/s", "interval", "top clients", "top tags"},
		"lllrrrrrrrll", rows)
	m.line(mdText(queuesNote))
	m.blank()
}

// relief writes the coalescing cache, what a cache would save, and server connection reuse.
func (m *md) relief(r *Report, v *htmlView) {
	if r.Coalesce != nil {
		m.line("## Coalescing")
		m.blank()
		m.measures(coalesceMeasures(r.Coalesce))
	}

	if len(r.WhatIf) > 0 {
		m.line("## What coalescing would save")
		m.blank()
		if whatIfPolls(r.WhatIf) == 0 {
			m.line("No watched polls were seen, so there is nothing a cache could have saved.")
			m.blank()
		} else {
			m.line(mdText(whatIfSentence(r.WhatIf)))
			m.blank()
			var rows [][]string
			for _, w := range whatIfRows(r.WhatIf) {
				row := []string{mdText(w.TTL), mdText(w.Polls), mdText(w.Saved), mdText(w.Share), mdText(w.Left)}
				if w.Highlight {
					for i := range row {
						row[i] = "**" + row[i] + "**"
					}
				}
				rows = append(rows, row)
			}
			m.table([]string{"TTL", "polls", "answered by the cache", "share", "still sent to the server"}, "rrrrr", rows)
			m.line(mdText(whatIfNote))
			m.blank()
		}
	}

	if r.Reuse != nil {
		m.line("## Server connection reuse")
		m.blank()
		m.measures(reuseMeasures(r.Reuse, r.Totals.Connections))
	}
}

// clients writes the clients and the pollers.
func (m *md) clients(r *Report, v *htmlView) {
	if len(r.Clients) > 0 {
		m.line(fmt.Sprintf("## Clients (%d)", len(r.Clients)))
		m.blank()
		var rows [][]string
		for _, c := range r.Clients {
			rows = append(rows, []string{mdCode(c.Address), mdText(orDash(c.ApplicationName)), mdText(orDash(c.User)), mdText(orDash(c.Database)),
				fmtInt(c.Queries), fmtRate(c.QPS10), fmtInt(c.Polls), fmtPct(c.PollShare, 1), fmtInt(c.Connections),
				fmtRate(c.ConnsPerSec10), fmtRate(c.QueriesPerConn)})
		}
		m.table([]string{"address", "application", "user", "database", "queries", "q/s", "polls", "poll share", "connections", "conn/s", "queries/conn"},
			"llllrrrrrrr", rows)
	}

	if len(r.Pollers) > 0 {
		m.line(fmt.Sprintf("## Pollers (%d)", len(r.Pollers)))
		m.blank()
		var rows [][]string
		for _, p := range r.Pollers {
			flag := ""
			if p.Storming {
				flag = "**STORM**"
			}
			if p.Spinning {
				flag = strings.TrimSpace(flag + " **SPIN**")
			}
			rows = append(rows, []string{mdCode(p.Address), mdText(orDash(p.ApplicationName)), mdText(orDash(p.User)), mdText(orDash(p.Database)),
				fmtInt(p.Polls), fmtRate(p.PollQPS10), fmtPct(p.QueryShare, 1), fmtInt(int64(p.Keys)), fmtMs(p.KeyGapMs), fmtWaits(p.WaitsPct),
				fmtOverlap(p.OverlapPct), flag})
		}
		m.table([]string{"address", "application", "user", "database", "polls", "polls/s", "share of queries", "keys", "key gap", "waited", "overlap", ""},
			"llllrrrrrrrl", rows)
		m.line("A poller is a client identity across its connections; key gap is its median time between two polls of one key, waited the share of those gaps " +
			"in which it waited 20 ms or more, overlap the share of its polling statements that began while another of its connections was busy (above 0%: several processes share the identity).")
		m.blank()
	}

	if len(r.Tags) > 0 {
		m.line(fmt.Sprintf("## Attribution tags (%d)", len(r.Tags)))
		m.blank()
		var rows [][]string
		for _, t := range r.Tags {
			rows = append(rows, []string{mdCode(t.Tag), fmtInt(t.Queries), fmtRate(t.QPS10), fmtInt(t.Polls), fmtRate(t.PollsPerSec10)})
		}
		m.table([]string{"tag", "queries", "q/s", "polls", "polls/s"}, "lrrrr", rows)
		m.line(mdText(tagsNote))
		m.blank()
	}
}

// statements writes the statements and the repeated reads.
func (m *md) statements(r *Report, v *htmlView) {
	if len(r.Fingerprints) > 0 {
		m.line(fmt.Sprintf("## Statements (%d fingerprints, by calls)", len(r.Fingerprints)))
		m.blank()
		var rows [][]string
		for _, f := range r.Fingerprints {
			flag := ""
			switch {
			case f.Watched:
				flag = "watched"
			case f.Write:
				flag = "write"
			}
			q := mdCode(f.Query)
			if f.Example != "" { // --report-literals
				q += " e.g. " + mdCode(f.Example)
			}
			rows = append(rows, []string{q, fmtInt(f.Calls), fmtRate(f.QPS10), fmtMs(f.MeanMs), fmtMs(f.P99Ms),
				fmtKnown(f.Rows), fmtInt(f.Failed), flag})
		}
		m.table([]string{"normalized statement", "calls", "q/s", "mean", "p99", "rows", "failed", ""}, "lrrrrrrl", rows)
	}

	if len(r.Repeats) > 0 {
		m.line(fmt.Sprintf("## Repeated reads (%d)", len(r.Repeats)))
		m.blank()
		var rows [][]string
		for _, p := range r.Repeats {
			flag := ""
			if p.Storming {
				flag = "**STORM**"
			}
			rows = append(rows, []string{mdCode(p.Query), mdCode(p.Values), fmtInt(p.Reads),
				fmtPct(float64(p.Unchanged), float64(p.Reads)), fmtRate(p.QPS10), fmtRate(p.PeakQPS), flag})
		}
		m.table([]string{"statement", "values (digest)", "reads", "unchanged", "q/s", "peak q/s", ""}, "llrrrrl", rows)
	}
}

// storms writes the storms.
func (m *md) storms(r *Report, v *htmlView) {
	m.line(fmt.Sprintf("## Storms (%d)", len(r.Storms)))
	m.blank()
	if len(r.Storms) == 0 {
		m.line("No storms: no key was polled at the storm rate for a whole window.")
		m.blank()
	} else {
		var rows [][]string
		for _, s := range r.Storms {
			what := mdCode(s.Key) + " (" + mdText(s.Table+"."+s.Column) + ")"
			switch s.Kind {
			case "key":
			case "poller":
				what = fmt.Sprintf("poller %s %s (%s@%s): %d keys of %s, %s of all queries", mdText(orDash(s.ApplicationName)), mdCode(s.Address),
					mdText(orDash(s.User)), mdText(orDash(s.Database)), s.Keys, mdText(s.Table+"."+s.Column), fmtPct(s.QueryShare, 1))
			default:
				what = mdText(s.Kind) + ": " + mdCode(s.Query)
			}
			if len(s.Tags) > 0 {
				what += "; tags: " + mdText(joinItems(tagItems(s.Tags)))
			}
			ended, lasted := fmtTime(s.EndedAt), fmtDur(s.EndedAt.Sub(s.StartedAt))
			if s.EndedAt.IsZero() {
				ended, lasted = "**active**", fmtDur(r.EndedAt.Sub(s.StartedAt))+" so far"
			}
			gap, waits := fmtMs(s.MedianIntervalMs), fmtWaits(s.WaitsPct)
			if s.Kind == "repeat" {
				gap, waits = dash, dash
			}
			flag := ""
			if s.Spin {
				flag = "**SPIN**"
			}
			rows = append(rows, []string{what, fmtTime(s.StartedAt), ended, lasted, fmtInt(s.Polls), fmtRate(s.PeakQPS), gap, waits, flag})
		}
		m.table([]string{"what", "started", "ended", "lasted", "polls", "peak q/s", "median gap", "waited", ""}, "lllrrrrrl", rows)
	}
}

type md struct{ b *strings.Builder }

func (m *md) line(s string) { m.b.WriteString(s + "\n") }
func (m *md) blank()        { m.b.WriteString("\n") }

// measures writes a table of measures, each with its value and what it means.
func (m *md) measures(ms []measure) {
	var rows [][]string
	for _, c := range ms {
		rows = append(rows, []string{mdText(c.Label), "**" + mdText(c.Value) + "**", mdText(c.Note)})
	}
	m.table([]string{"measure", "value", "meaning"}, "lrl", rows)
}

// table writes a GitHub table; align holds one letter per column, l or r ("" for all right).
func (m *md) table(header []string, align string, rows [][]string) {
	if len(header) == 0 {
		return
	}
	cells := make([]string, len(header))
	for i, h := range header {
		cells[i] = mdText(h)
	}
	m.line("| " + strings.Join(cells, " | ") + " |")
	for i := range header {
		cells[i] = "--:"
		if i < len(align) && align[i] == 'l' {
			cells[i] = "---"
		}
	}
	m.line("|" + strings.Join(cells, "|") + "|")
	for _, row := range rows {
		m.line("| " + strings.Join(row, " | ") + " |")
	}
	m.blank()
}

// mdText escapes text for Markdown, inside or outside a table cell: the characters that start
// markup, the table's cell separator, and line breaks.
var mdEscaper = strings.NewReplacer(
	"\\", "\\\\", "|", "\\|", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]",
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "#", "\\#", "~", "\\~",
	"\r\n", " ", "\n", " ", "\r", " ",
)

func mdText(s string) string { return mdEscaper.Replace(s) }

// mdCode writes s as a code span that survives a table cell: the fence is longer than any run
// of backticks in s, and | is escaped (GitHub unescapes \| inside code spans in tables).
func mdCode(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "|", "\\|").Replace(s)
	run, longest := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || s == "" {
		s = " " + s + " "
	}
	return fence + s + fence
}
