package tui

import (
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtRate(0), "0"}, {fmtRate(0.44), "0.4"}, {fmtRate(9.94), "9.9"}, {fmtRate(683.2), "683"},
		{fmtRate(123_456), "123.5k"}, {fmtRate(12_345_678), "12.3M"},
		{fmtCount(999_999), "999999"}, {fmtCount(1_234_567), "1.23M"}, {fmtCount(9_876_543_210), "9.88G"},
		{fmtMs(-1), "-"}, {fmtMs(0), "0"}, {fmtMs(0.213), "0.21ms"}, {fmtMs(1.64), "1.6ms"}, {fmtMs(83), "83ms"},
		{fmtMs(1500), "1.5s"}, {fmtMs(125_000), "2m05s"},
		{fmtPct(0), "0%"}, {fmtPct(0.017), "1.7%"}, {fmtPct(0.874), "87%"},
		{fmtDuration(42 * time.Second), "42s"}, {fmtDuration(307 * time.Second), "5m07s"},
		{fmtDuration(3720 * time.Second), "1h02m"}, {fmtDuration(100 * time.Hour), "4d04h"},
		{fmtAgo(t0.Add(-90*time.Second), t0), "1m30s ago"}, {fmtAgo(t0, t0), "just now"}, {fmtAgo(time.Time{}, t0), "-"},
		{fit("abcdef", 4, false), "abc…"}, {fit("ab", 4, true), "  ab"}, {fit("ab", 4, false), "ab  "},
		{oneLine(" SELECT\n\t1  FROM x "), "SELECT 1 FROM x"}, {oneLine("SELECT 1"), "SELECT 1"},
		{sparkline([]uint32{0, 1, 4, 8}, 6, 8), "   ▁▄█"}, {sparkline([]uint32{1, 2, 3}, 2, 0), "  "},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := joinLR("left side", "right", 14); got != "left si… right" {
		t.Errorf("joinLR: %q", got)
	}
	if got := wrap("aaaa bbbb cccccccccc", 6); strings.Join(got, "|") != "aaaa|bbbb|cccccc|cccc" {
		t.Errorf("wrap: %q", got)
	}
	rows := barChart([]uint32{0, 4, 8, 1}, 2, 8)
	if rows[0] != "  █ " || rows[1] != " ██▂" {
		t.Errorf("barChart: %q", rows)
	}
}

func TestLayoutColumns(t *testing.T) {
	for _, w := range []int{20, 40, 80, 100, 120, 200} {
		for v := range viewFindings {
			cols := layoutColumns(tableColumns[v], w)
			total := len(cols) - 1
			for _, c := range cols {
				total += c.width
			}
			if total > w && len(cols) > 3 {
				t.Errorf("%v at %d: %d cells", v, w, total)
			}
		}
	}
	ids := func(cols []column) string {
		var s []string
		for _, c := range cols {
			s = append(s, c.id)
		}
		return strings.Join(s, ",")
	}
	if got := ids(layoutColumns(tableColumns[viewTasks], 80)); got != "sel,badge,key,qps,polls,gap,same,status,cli" {
		t.Errorf("tasks at 80: %s", got)
	}
	if got := ids(layoutColumns(tableColumns[viewTasks], 120)); got != "sel,badge,key,table,qps,qps10,polls,gap,same,status,cli" {
		t.Errorf("tasks at 120: %s", got)
	}
}
