package report

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The queries/s chart: an inline SVG computed here and written by the HTML template.

const (
	chartW, chartH                          = 960, 300
	plotLeft, plotRight, plotTop, plotBelow = 56, 16, 14, 40
	chartKeys                               = 5 // keys drawn, the most polled
)

type chart struct {
	Empty         bool
	W, H          int
	X0, X1        float64 // plot area
	Y0, Y1        float64 // Y0 top, Y1 bottom
	YTicks        []tick
	XTicks        []tick
	Series        []series
	Area          string // the fill under the total line
	From, To      string // the time range, for the caption
	KeyWindowFrom float64
	HasKeyWindow  bool

	// Where the labels go.
	YLabelX, XLabelY, TickY, YTitleX, YTitleY, XTitleY float64
}

type tick struct {
	Pos    float64
	Label  string
	Anchor string // text-anchor of the label
}

type series struct {
	Name   string
	Title  string // the full name when Name is shortened
	Color  string
	Dash   string // stroke-dasharray, "" for solid
	Width  float64
	D      string // the SVG path
	Max    float64
	Points int
}

var keyColors = []string{"#2563eb", "#9333ea", "#0d9488", "#ca8a04", "#db2777"}

// point is one second's value of a series.
type point struct {
	t int64 // unix second
	v float64
}

// buildChart lays out the timeline and the top keys' histories.
func buildChart(r *Report) chart {
	c := chart{W: chartW, H: chartH, X0: plotLeft, X1: chartW - plotRight, Y0: plotTop, Y1: chartH - plotBelow}
	c.YLabelX, c.XLabelY, c.TickY = c.X0-8, c.Y1+17, c.Y1+4
	c.YTitleX, c.YTitleY, c.XTitleY = 13, (c.Y0+c.Y1)/2, c.Y1+35
	if len(r.Timeline) == 0 {
		c.Empty = true
		return c
	}
	tl := slices.Clone(r.Timeline)
	slices.SortFunc(tl, func(a, b Second) int { return a.Time.Compare(b.Time) })
	total := make([]point, len(tl))
	watched := make([]point, len(tl))
	for i, s := range tl {
		total[i] = point{s.Time.Unix(), float64(s.Queries)}
		watched[i] = point{s.Time.Unix(), float64(s.Watched)}
	}
	first, last := total[0].t, total[len(total)-1].t

	type line struct {
		name, title, color, dash string
		width                    float64
		pts                      []point
	}
	lines := []line{
		{name: "all queries/s", color: "#475569", width: 2, pts: total},
		{name: "watched polls/s", color: "#dc2626", width: 2, pts: watched},
	}
	// Key histories end with the timeline's last second.
	for i, k := range topKeys(r.Keys, chartKeys) {
		var pts []point
		for j, v := range k.History {
			t := last - int64(len(k.History)-1-j)
			if t >= first {
				pts = append(pts, point{t, float64(v)})
			}
		}
		name := shortKey(k.Key, 24)
		lines = append(lines, line{name: name, title: k.Table + "." + k.Column + " = " + k.Key,
			color: keyColors[i%len(keyColors)], dash: "5 3", width: 1.5, pts: pts})
		if len(pts) > 0 && (!c.HasKeyWindow || float64(pts[0].t) < c.KeyWindowFrom) {
			c.HasKeyWindow, c.KeyWindowFrom = true, float64(pts[0].t)
		}
	}

	var top float64
	for _, l := range lines {
		for _, p := range l.pts {
			top = max(top, p.v)
		}
	}
	yMax, yStep := niceScale(top, 5)
	span := max(last-first, 1)
	x := func(t int64) float64 { return c.X0 + (c.X1-c.X0)*float64(t-first)/float64(span) }
	y := func(v float64) float64 { return c.Y1 - (c.Y1-c.Y0)*v/yMax }
	if c.HasKeyWindow {
		c.KeyWindowFrom = x(int64(c.KeyWindowFrom))
	}

	for v := 0.0; v <= yMax+yStep/2; v += yStep {
		c.YTicks = append(c.YTicks, tick{Pos: round2(y(v)), Label: fmtRate(v)})
	}
	step := timeStep(span)
	for t := (first + step - 1) / step * step; t <= last; t += step {
		c.XTicks = append(c.XTicks, tick{Pos: round2(x(t)), Label: tickLabel(time.Unix(t, 0), step, span), Anchor: "middle"})
	}
	if len(c.XTicks) == 0 { // a single second
		c.XTicks = []tick{{Pos: round2(x(first)), Label: tickLabel(time.Unix(first, 0), 1, 1), Anchor: "start"}}
	}
	// Labels at the right end would be cut by the edge of the picture.
	for i := range c.XTicks {
		if c.XTicks[i].Pos > c.X1-30 {
			c.XTicks[i].Anchor = "end"
		}
	}
	for _, l := range lines {
		s := series{Name: l.name, Title: l.title, Color: l.color, Dash: l.dash, Width: l.width, Points: len(l.pts)}
		for _, p := range l.pts {
			s.Max = max(s.Max, p.v)
		}
		s.D = path(l.pts, c.X0, c.X1, first == last, x, y)
		c.Series = append(c.Series, s)
	}
	// The area under the total line.
	if d := c.Series[0].D; d != "" && !strings.Contains(d[1:], "M") {
		c.Area = d + " L" + num(x(total[len(total)-1].t)) + "," + num(c.Y1) + " L" + num(x(total[0].t)) + "," + num(c.Y1) + " Z"
		if len(total) == 1 {
			c.Area = ""
		}
	}
	c.From, c.To = fmtTime(time.Unix(first, 0)), fmtTime(time.Unix(last, 0))
	return c
}

// path draws points as an SVG path, lifting the pen across seconds missing from the data. A
// lone point becomes a short level stroke so that it shows; on a one-second chart it spans the
// plot.
func path(pts []point, lo, hi float64, single bool, x func(int64) float64, y func(float64) float64) string {
	var b strings.Builder
	for i, p := range pts {
		startsRun := i == 0 || pts[i-1].t != p.t-1
		endsRun := i == len(pts)-1 || pts[i+1].t != p.t+1
		switch {
		case startsRun && endsRun:
			x0, x1 := max(x(p.t)-3, lo), min(x(p.t)+3, hi)
			if single {
				x0, x1 = lo, hi
			}
			b.WriteString("M" + num(x0) + "," + num(y(p.v)) + " L" + num(x1) + "," + num(y(p.v)) + " ")
		case startsRun:
			b.WriteString("M" + num(x(p.t)) + "," + num(y(p.v)) + " ")
		default:
			b.WriteString("L" + num(x(p.t)) + "," + num(y(p.v)) + " ")
		}
	}
	return strings.TrimSpace(b.String())
}

// topKeys returns the n most polled keys.
func topKeys(keys []Key, n int) []Key {
	out := slices.Clone(keys)
	slices.SortStableFunc(out, func(a, b Key) int {
		return cmp.Or(cmp.Compare(b.Polls, a.Polls), cmp.Compare(a.Key, b.Key))
	})
	return out[:min(n, len(out))]
}

// shortKey shortens a long key in the middle: keys (UUIDs above all) differ at both ends.
func shortKey(k string, n int) string {
	r := []rune(k)
	if len(r) <= n {
		return k
	}
	head := (n - 1) * 2 / 5
	return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
}

// niceScale picks an axis maximum at or above top and a round step giving about n ticks.
func niceScale(top float64, n int) (maxV, step float64) {
	if top <= 0 {
		return 1, 0.25
	}
	raw := top / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	if step < 1 && top >= 1 {
		step = 1
	}
	return math.Ceil(top/step-1e-9) * step, step
}

// timeStep picks the spacing of time ticks for a span in seconds: at most about 8 ticks.
func timeStep(span int64) int64 {
	for _, s := range []int64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400} {
		if span/s <= 8 {
			return s
		}
	}
	return (span/8 + 86399) / 86400 * 86400
}

func tickLabel(t time.Time, step, span int64) string {
	t = t.UTC()
	switch {
	case span > 36*3600:
		return t.Format("01-02 15:04")
	case step >= 60:
		return t.Format("15:04")
	default:
		return t.Format("15:04:05")
	}
}

func num(f float64) string { return strconv.FormatFloat(round2(f), 'f', -1, 64) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }
