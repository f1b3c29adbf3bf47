package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Number and time formatting shared by the HTML and Markdown writers.

const dash = "—"

// fmtInt writes n with thousands separators: 1,234,567.
func fmtInt[T int | int64 | uint32 | uint64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtRate writes a per-second rate with the precision its size deserves.
func fmtRate(f float64) string {
	switch a := math.Abs(f); {
	case f == 0:
		return "0"
	case a >= 100:
		return fmtInt(int64(math.Round(f)))
	case a >= 10:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case a >= 0.1:
		return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0")
	default:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
}

// fmtMs writes a duration given in milliseconds; negative means unknown.
func fmtMs(ms float64) string {
	switch {
	case ms < 0 || math.IsNaN(ms):
		return dash
	case ms == 0:
		return "0 ms"
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	case ms < 100:
		return strings.TrimSuffix(strconv.FormatFloat(ms, 'f', 1, 64), ".0") + " ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
	default:
		return fmtDur(time.Duration(ms * float64(time.Millisecond)))
	}
}

// fmtDur writes a duration for people: 850 ms, 12.3 s, 4m 05s, 2h 10m.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return dash
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return strings.TrimSuffix(strconv.FormatFloat(d.Seconds(), 'f', 1, 64), ".0") + " s"
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
}

// fmtWaits shows waits_pct: the share of the latest gaps between polls in which the poller
// waited; a dash when unknown.
func fmtWaits(pct float64) string {
	if pct < 0 {
		return dash
	}
	return fmtPct(pct, 100)
}

// fmtOverlap writes a poller's overlap share; 0 is "none": one loop, one poll after another.
func fmtOverlap(pct float64) string {
	if pct <= 0 {
		return "none"
	}
	return fmtPct(pct, 100)
}

// fmtPct writes part/whole as a percentage; "—" when whole is 0.
func fmtPct(part, whole float64) string {
	if part < 0 {
		return notInLog
	}
	if whole <= 0 {
		return dash
	}
	p := 100 * part / whole
	if p > 0 && p < 1 {
		return "<1%"
	}
	if p < 100 && p > 99 {
		return ">99%"
	}
	return strconv.FormatFloat(math.Round(p), 'f', 0, 64) + "%"
}

// fmtTime writes an instant in UTC, to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtClock writes the time of day in UTC.
func fmtClock(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format("15:04:05")
}

// orDash stands in "—" for an empty string.
// notInLog stands for what the source could not see: a server log holds no answers, so a count
// of -1 (unchanged polls, rows) is shown so, never as 0.
const notInLog = "not in a log"

// fmtKnown is fmtInt for counts that are -1 when not known.
func fmtKnown(n int64) string {
	if n < 0 {
		return notInLog
	}
	return fmtInt(n)
}

// fmtStatus is a key's last status: unchanged = -1 says the source saw no answers.
func fmtStatus(status string, unchanged int64) string {
	if unchanged < 0 && status == "" {
		return notInLog
	}
	return orDash(status)
}

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}

// duration is how long a report covers.
func (r *Report) duration() time.Duration {
	if r.StartedAt.IsZero() || r.EndedAt.IsZero() {
		return -1
	}
	return r.EndedAt.Sub(r.StartedAt)
}

// keyStatusClass maps a status to a CSS class.
func keyStatusClass(s string) string {
	switch strings.ToUpper(s) {
	case "SUCCESS":
		return "ok"
	case "FAILURE", "REVOKED":
		return "bad"
	case "":
		return ""
	default:
		return "wait"
	}
}

// sparkline draws values with ▁▂▃▄▅▆▇█, averaging them into at most width buckets.
func sparkline(values []float64, width int) string {
	if len(values) == 0 || width <= 0 {
		return ""
	}
	buckets := values
	if len(values) > width {
		buckets = make([]float64, width)
		for i := range buckets {
			lo, hi := i*len(values)/width, (i+1)*len(values)/width
			var sum float64
			for _, v := range values[lo:hi] {
				sum += v
			}
			buckets[i] = sum / float64(hi-lo)
		}
	}
	var top float64
	for _, v := range buckets {
		top = max(top, v)
	}
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	var b strings.Builder
	for _, v := range buckets {
		i := 0
		if top > 0 {
			i = int(math.Round(v / top * float64(len(runes)-1)))
		}
		b.WriteRune(runes[min(max(i, 0), len(runes)-1)])
	}
	return b.String()
}
