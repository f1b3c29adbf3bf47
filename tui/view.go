package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// View draws the whole screen: exactly m.height lines, none wider than m.width, so nothing
// ever wraps.
func (m model) View() string {
	if m.width <= 0 || m.height <= 0 {
		return "pgpollwatch: starting…"
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.headerView()...)
	lines = append(lines, m.tabsView())

	bodyH := m.bodyHeight()
	var body []string
	switch {
	case m.snap == nil:
		body = []string{"", m.st.dim.Render("  waiting for the first snapshot…")}
	case m.showHelp:
		body = m.helpView(bodyH)
	case m.detail.open:
		body = m.detailView(bodyH)
	case m.view == viewFindings:
		body = m.findingsView(bodyH)
	default:
		body = m.tableView(bodyH)
	}
	lines = append(lines, sized(body, bodyH)...)
	lines = append(lines, m.statusView(), m.keysView())
	return finish(lines, m.width, m.height)
}

// sized cuts or pads lines to exactly n.
func sized(lines []string, n int) []string {
	if len(lines) > n {
		return lines[:n]
	}
	for len(lines) < n {
		lines = append(lines, "")
	}
	return lines
}

// finish makes the screen: lines cut to w cells and to h lines.
func finish(lines []string, w, h int) string {
	if len(lines) > h {
		// Tiny terminals: keep the body over the header.
		lines = lines[len(lines)-h:]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return strings.Join(lines, "\n")
}

// plain reports whether the styles are colourless, where badges get brackets instead of a
// background.
func (m model) plain() bool { return m.st.profile == termenv.Ascii }

// badge renders a short label that must stand out.
func (m model) badge(text string, st lipgloss.Style) string {
	if m.plain() {
		return "[" + text + "]"
	}
	return st.Render(" " + text + " ")
}

func (m model) tabsView() string {
	var b strings.Builder
	for v := range numViews {
		label := fmt.Sprintf("%d %s", v+1, viewNames[v])
		if n := rowCount(m.snap, v); m.snap != nil {
			label += fmt.Sprintf(" %d", n)
		}
		switch {
		case v == m.view:
			b.WriteString(m.st.tabActive.Render("[" + label + "]"))
		case v == viewFindings && hasHigh(m.snap):
			b.WriteString(" " + m.st.sevHigh.Render(label) + " ")
		default:
			b.WriteString(" " + m.st.tabInactive.Render(label) + " ")
		}
		b.WriteString(" ")
	}
	right := ""
	switch {
	case m.snap == nil || m.showHelp:
	case m.detail.open:
		right = m.st.dim.Render("esc: back")
	default:
		t := m.tabs[m.view]
		spec := sorts[m.view][t.sort]
		right = spec.name + " " + arrow(spec.desc != t.reverse)
		if visibleWidth(strings.TrimRight(b.String(), " "))+1+len("sort: ")+visibleWidth(right) <= m.width {
			right = m.st.dim.Render("sort: ") + right // the word only where the tabs leave room
		}
	}
	return joinLR(strings.TrimRight(b.String(), " "), right, m.width)
}

func arrow(desc bool) string {
	if desc {
		return "▼"
	}
	return "▲"
}

func hasHigh(s *analyzer.Snapshot) bool {
	if s == nil {
		return false
	}
	for i := range s.Findings {
		if s.Findings[i].Severity == "high" {
			return true
		}
	}
	return false
}

func (m model) statusView() string {
	if m.filtering {
		return m.input.View(m.width)
	}
	left := ""
	switch {
	case m.status != "" && m.statusErr:
		left = m.st.statusErr.Render(m.status)
	case m.status != "":
		left = m.st.status.Render(m.status)
	case m.paused:
		left = m.st.warn.Render("paused: the display is frozen, traffic is not (p resumes)")
	}
	right := ""
	if m.snap != nil && !m.detail.open && !m.showHelp {
		t := m.tabs[m.view]
		total := rowCount(m.snap, m.view)
		pos := ""
		if len(m.rows) > 0 {
			pos = fmt.Sprintf("%d/%d", t.cursor+1, len(m.rows))
		}
		if m.view == viewFindings && len(m.rows) > 0 {
			if _, total := m.findingLayout(); t.offset+m.bodyHeight() < total {
				pos = "more below (pgdn)  " + pos
			}
		}
		if t.filter != "" {
			right = m.st.dim.Render(fmt.Sprintf("filter %q: %d of %d  ", t.filter, len(m.rows), total)) + pos
		} else {
			right = m.st.dim.Render(pos)
		}
	}
	if left == "" {
		return joinLR("", right, m.width)
	}
	return joinLR(left, right, m.width)
}

func (m model) keysView() string {
	switch {
	case m.filtering:
		return m.help.ShortHelpView(m.keys.filterHelp())
	case m.showHelp:
		return m.help.ShortHelpView(m.keys.overlayHelp())
	case m.detail.open:
		return m.help.ShortHelpView(m.keys.detailHelp())
	}
	return m.help.ShortHelpView(m.keys.ShortHelp())
}
