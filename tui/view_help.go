package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
)

// legend explains the column titles; shown under the keys when there is room.
var legend = []string{
	"Q/S: last second   Q/S10: last 10 s   INTERVAL: median gap between polls",
	"SAME: polls that read what the previous poll read   CLI: clients",
	"STORM: polled at the storm rate   SPIN: a storm with a poll every few ms",
	"POLL/S: last 10 s   EMPTY: polls that found no job   ENQ/S: enqueued/s",
}

// helpView is the key overlay, drawn over the body: every binding, in two columns when wide
// enough.
func (m model) helpView(h int) []string {
	st := m.st
	var entries []key.Binding
	for _, g := range m.keys.FullHelp() {
		entries = append(entries, g...)
	}
	keyW, descW := 0, 0
	for _, b := range entries {
		keyW = max(keyW, visibleWidth(b.Help().Key))
		descW = max(descW, visibleWidth(b.Help().Desc))
	}
	entry := func(b key.Binding) string {
		return st.helpKey.Render(fit(b.Help().Key, keyW, false)) + "  " + st.helpDesc.Render(b.Help().Desc)
	}
	colW := keyW + 2 + descW
	inner := m.width - 4 // border and padding
	var lines []string
	if inner >= 2*colW+3 {
		half := (len(entries) + 1) / 2
		for i := range half {
			l := fit(entry(entries[i]), colW, false)
			if i+half < len(entries) {
				l += "   " + entry(entries[i+half])
			}
			lines = append(lines, l)
		}
	} else {
		for _, b := range entries {
			lines = append(lines, entry(b))
		}
	}
	lines = append([]string{st.helpHead.Render("pgpollwatch keys")}, lines...)
	if room := h - len(lines) - 2; room >= 2 { // as many lines of the legend as fit
		lines = append(lines, "")
		for _, l := range legend[:min(len(legend), room-1)] {
			lines = append(lines, st.dim.Render(trunc(l, inner)))
		}
	}
	for i, l := range lines {
		lines[i] = trunc(l, inner)
	}
	box := strings.Split(st.helpBox.Render(strings.Join(lines, "\n")), "\n")
	// Centre the box in the body.
	boxW := 0
	for _, l := range box {
		boxW = max(boxW, visibleWidth(l))
	}
	pad := strings.Repeat(" ", max(0, (m.width-boxW)/2))
	out := make([]string, 0, h)
	for range max(0, (h-len(box))/2) {
		out = append(out, "")
	}
	for _, l := range box {
		out = append(out, pad+l)
	}
	return out
}
