package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// A finding is drawn as its summary, its fix and its evidence, wrapped to the width:
//
//	> HIGH   Spin loop: 10 celery_taskmeta.task_id value(s) polled 597 times/s …
//	         fix: Stop busy-waiting on results. …
//	         • 597 of 683 queries/s in the last 10 s are watched polls
const (
	findIndent = 9          // "> MEDIUM "
	evIndent   = findIndent // evidence and fix, under the summary
)

type lineKind int

const (
	lineSummary lineKind = iota
	lineEvidence
	lineFix
)

type findingLine struct {
	kind  lineKind
	first bool // first line of its part: carries the bullet or the label
	text  string
}

// findingLines wraps one finding to width w.
func findingLines(f *analyzer.Finding, w int) []findingLine {
	var out []findingLine
	add := func(kind lineKind, text string, indent int) {
		for i, l := range wrap(text, max(10, w-indent)) {
			out = append(out, findingLine{kind: kind, first: i == 0, text: l})
		}
	}
	// The fix comes before the evidence, so that on a small screen it is seen without
	// scrolling.
	summary := f.Summary
	if !f.Until.IsZero() { // held earlier only (a server log's past storm)
		summary += " (held until " + f.Until.UTC().Format("15:04:05") + " UTC)"
	}
	add(lineSummary, summary, findIndent)
	if f.Fix != "" {
		add(lineFix, f.Fix, evIndent+5)
	}
	for _, e := range f.Evidence {
		add(lineEvidence, e, evIndent+2)
	}
	return out
}

// findingsLayout returns the first line of each finding in rows and the number of lines they
// take at width w, blank separators included. Update scrolls with it; findingsView draws the
// same lines.
func findingsLayout(s *analyzer.Snapshot, rows []int, w int) (starts []int, total int) {
	for n, i := range rows {
		if n > 0 {
			total++ // blank line between findings
		}
		starts = append(starts, total)
		total += len(findingLines(&s.Findings[i], w))
	}
	return starts, total
}

func (m model) findingsView(h int) []string {
	st := m.st
	if len(m.rows) == 0 {
		if f := m.tabs[viewFindings].filter; f != "" {
			return []string{"", st.dim.Render("  no findings match \"" + f + "\" (esc clears the filter)")}
		}
		return []string{"", st.calm.Render("  no findings: nothing looks wrong right now")}
	}
	t := m.tabs[viewFindings]
	starts, total := m.findingLayout()
	off := max(0, min(t.offset, total-h))
	out := make([]string, 0, h)
	line := 0
	for n, i := range m.rows {
		if line >= off+h {
			break
		}
		f := &m.snap.Findings[i]
		if n > 0 {
			if line >= off {
				out = append(out, "")
			}
			line++
		}
		end := total
		if n+1 < len(starts) {
			end = starts[n+1] - 1
		}
		if end <= off {
			line = end
			continue // wholly above the screen: not even wrapped again
		}
		for _, l := range findingLines(f, m.width) {
			if line >= off && line < off+h {
				out = append(out, m.findingLine(f, l, n == t.cursor))
			}
			line++
		}
	}
	return out
}

func (m model) findingLine(f *analyzer.Finding, l findingLine, selected bool) string {
	st := m.st
	switch l.kind {
	case lineSummary:
		if !l.first {
			return strings.Repeat(" ", findIndent) + st.bold.Render(l.text)
		}
		sel := " "
		if selected {
			sel = ">"
		}
		sev := strings.ToUpper(f.Severity)
		sevStyle := m.sevStyle(f.Severity)
		head := sel + " " + sevStyle.Render(fit(sev, findIndent-3, false)) + " "
		if selected {
			head = st.selected.Render(sel) + " " + sevStyle.Render(fit(sev, findIndent-3, false)) + " "
		}
		return head + st.bold.Render(l.text)
	case lineEvidence:
		if l.first {
			return strings.Repeat(" ", evIndent) + st.dim.Render("• ") + l.text
		}
		return strings.Repeat(" ", evIndent+2) + l.text
	case lineFix:
		if l.first {
			return strings.Repeat(" ", evIndent) + st.good.Render("fix: ") + l.text
		}
		return strings.Repeat(" ", evIndent+5) + l.text
	}
	return ""
}

func (m model) sevStyle(severity string) lipgloss.Style {
	switch severity {
	case "high":
		return m.st.sevHigh
	case "medium":
		return m.st.sevMedium
	}
	return m.st.sevLow
}
