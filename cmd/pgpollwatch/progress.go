package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressBar draws, on a terminal, how far a long read has come: bytes read of the total,
// lines (or packets) per second and the time left. It draws nothing when off (not a terminal), and at most
// five times a second, so that it costs nothing next to the reading.
type progressBar struct {
	w       io.Writer
	on      bool
	start   time.Time
	last    time.Time
	drawn   bool
	count   func() int64 // lines or packets so far; set once the reader exists
	unit    string       // what count counts: "lines" (the default) or "packets"
	nowFunc func() time.Time
}

func newProgressBar(w io.Writer, on bool) *progressBar {
	return &progressBar{w: w, on: on, start: time.Now(), nowFunc: time.Now}
}

// update is pglog.Options.Progress (and the capture reader's): read of total bytes as stored (-1: unknown, standard input).
func (p *progressBar) update(read, total int64) {
	if !p.on {
		return
	}
	now := p.nowFunc()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	var lines int64
	if p.count != nil {
		lines = p.count()
	}
	fmt.Fprint(p.w, "\r"+p.line(read, total, lines, now.Sub(p.start))+"\x1b[K")
	p.drawn = true
}

// line renders the bar: "[#####-----]  41%  280 MB of 690 MB  812k lines/s  6s left".
func (p *progressBar) line(read, total, lines int64, took time.Duration) string {
	const width = 24
	secs := max(took.Seconds(), 1e-3)
	unit := p.unit
	if unit == "" {
		unit = "lines"
	}
	rate := fmt.Sprintf("%s %s/s", compact(float64(lines)/secs), unit)
	if total <= 0 {
		return fmt.Sprintf("reading  %s  %s", bytesText(read), rate)
	}
	frac := min(float64(read)/float64(total), 1)
	filled := int(frac * width)
	left := "…"
	if frac > 0.01 {
		left = time.Duration(secs / frac * (1 - frac) * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %3.0f%%  %s of %s  %s  %s left",
		strings.Repeat("#", filled), strings.Repeat("-", width-filled), 100*frac, bytesText(read), bytesText(total), rate, left)
}

// done clears the bar, so that what is printed next starts on a clean line.
func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// bytesText is a size in B, kB, MB or GB.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// compact is a count in k or M.
func compact(f float64) string {
	switch {
	case f >= 1e6:
		return fmt.Sprintf("%.1fM", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.0fk", f/1e3)
	}
	return fmt.Sprintf("%.0f", f)
}
