package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// Plain-text helpers: widths are terminal cells, never bytes or runes.

// visibleWidth is the cells s takes on the screen, escape sequences excluded.
func visibleWidth(s string) int { return ansi.StringWidth(s) }

// fit truncates s to w cells (with an ellipsis) and pads it to exactly w cells.
func fit(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	pad := w - ansi.StringWidth(s)
	if pad <= 0 {
		return s
	}
	if right {
		return strings.Repeat(" ", pad) + s
	}
	return s + strings.Repeat(" ", pad)
}

// trunc cuts s to at most w cells, with an ellipsis when it cut.
func trunc(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// oneLine folds every run of white space (newlines and tabs included) into one space.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\r\t\v\f") && !strings.Contains(s, "  ") &&
		!strings.HasPrefix(s, " ") && !strings.HasSuffix(s, " ") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// wrap word-wraps plain text to w cells, breaking words longer than w.
func wrap(s string, w int) []string {
	if w < 1 {
		w = 1
	}
	return strings.Split(ansi.Wrap(oneLine(s), w, ""), "\n")
}

// joinLR puts right at the right edge of a w-cell line, cutting left to make room.
func joinLR(left, right string, w int) string {
	rw := ansi.StringWidth(right)
	if rw == 0 {
		return left
	}
	avail := w - rw - 1
	if avail < 0 {
		return ansi.Truncate(right, w, "")
	}
	if ansi.StringWidth(left) > avail {
		left = ansi.Truncate(left, avail, "…")
	}
	return left + strings.Repeat(" ", w-ansi.StringWidth(left)-rw) + right
}

// fmtRate formats a per-second rate compactly: 0, 0.4, 9.5, 683, 12.3k.
func fmtRate(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "0"
	case v < 9.95:
		return fmt.Sprintf("%.1f", v)
	case v < 99_999.5:
		return fmt.Sprintf("%.0f", v)
	case v < 9_999_500:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.1fM", v/1e6)
}

// fmtCount formats a count: exact below a million, then 1.23M, 4.56G.
func fmtCount(n int64) string {
	switch {
	case n < 1_000_000:
		return fmt.Sprint(n)
	case n < 1_000_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2fG", float64(n)/1e9)
}

// fmtMs formats a duration in milliseconds; negative means "not known".
func fmtMs(ms float64) string {
	switch {
	case ms < 0 || math.IsNaN(ms):
		return "-"
	case ms == 0:
		return "0"
	case ms < 1:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 999.5:
		return fmt.Sprintf("%.0fms", ms)
	case ms < 59_950:
		return fmt.Sprintf("%.1fs", ms/1000)
	}
	return fmtDuration(time.Duration(ms * float64(time.Millisecond)))
}

// fmtPct formats a fraction as a percentage.
func fmtPct(f float64) string {
	if f <= 0 || math.IsNaN(f) {
		return "0%"
	}
	if f < 0.0995 {
		return fmt.Sprintf("%.1f%%", 100*f)
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}

// fmtWaits shows a key's WaitsPct: in how many of the latest gaps between polls the poller
// waited (a spin loop hardly ever does).
func fmtWaits(pct float64) string {
	if pct < 0 || math.IsNaN(pct) {
		return "-"
	}
	return fmt.Sprintf("%.0f%% of gaps", pct)
}

func ratio(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// fmtDuration formats a duration to two units: 42s, 5m07s, 1h02m, 3d04h.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// fmtAgo says how long before now t was.
func fmtAgo(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < time.Second {
		return "just now"
	}
	return fmtDuration(d) + " ago"
}

var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last w values, newest at the right, scaled to top (zero is blank).
func sparkline(values []uint32, w int, top uint32) string {
	if w <= 0 {
		return ""
	}
	if len(values) > w {
		values = values[len(values)-w:]
	}
	var b strings.Builder
	b.Grow(w * 3)
	b.WriteString(strings.Repeat(" ", w-len(values)))
	for _, v := range values {
		if v == 0 || top == 0 {
			b.WriteByte(' ')
			continue
		}
		i := int(math.Ceil(float64(v)/float64(top)*float64(len(sparkLevels)))) - 1
		b.WriteRune(sparkLevels[max(0, min(i, len(sparkLevels)-1))])
	}
	return b.String()
}

// barChart draws values as vertical bars h rows high, one column per value, scaled to top;
// it returns the rows top first.
func barChart(values []uint32, h int, top uint32) []string {
	rows := make([]string, h)
	if top == 0 {
		top = 1
	}
	for r := range h {
		var b strings.Builder
		floor := (h - 1 - r) * 8 // eighths below this row
		for _, v := range values {
			e := int(math.Round(float64(v) / float64(top) * float64(h*8)))
			if v > 0 && e == 0 {
				e = 1 // never hide a non-zero second
			}
			switch n := e - floor; {
			case n >= 8:
				b.WriteRune('█')
			case n > 0:
				b.WriteRune(sparkLevels[n-1])
			default:
				b.WriteByte(' ')
			}
		}
		rows[r] = b.String()
	}
	return rows
}

func maxOf(values []uint32) uint32 {
	var m uint32
	for _, v := range values {
		m = max(m, v)
	}
	return m
}

// What a source without answers (a server log) cannot tell: never shown as 0. notSeen fits a
// table column; the header says why.
const (
	notInLog = "not in a log"
	notSeen  = "n/a"
)

// fmtKnown is fmtCount for counts that are -1 when the source could not see them.
func fmtKnown(n int64) string {
	if n < 0 {
		return notInLog
	}
	return fmtCount(n)
}
