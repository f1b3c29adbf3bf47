package sqlscan

import (
	"strings"
	"testing"
	"time"
)

// Normalize is on the proxy's hot path and sees whatever clients send, so
// no input may make it slower than linear. These inputs stress every place
// that looks ahead. Each runs at two sizes, n and 4n: linear work takes 4
// times as long on the larger one, quadratic work 16 times. A ratio does not
// depend on how fast the machine is, as a time limit would.
func TestLinearTime(t *testing.T) {
	inputs := []func(n int) string{
		func(n int) string { return strings.Repeat("- ", n) + "x" },
		func(n int) string { return strings.Repeat("- ", n) + "5::int" },
		func(n int) string { return "SELECT x IN " + strings.Repeat("(", n) },
		func(n int) string { return strings.Repeat("x IN (1,", n) },
		func(n int) string { return "x IN (" + strings.Repeat("1,", n) + "y)" },
		func(n int) string { return strings.Repeat("NULL ", n) },
		func(n int) string { return strings.Repeat("NULL /* long comment */ ", n) },
		func(n int) string { return strings.Repeat("$a", n) },
		func(n int) string { return strings.Repeat("$a$", n) },
		func(n int) string { return strings.Repeat("'a'\n", n) },
		func(n int) string { return strings.Repeat("'a' -- c\n", n) },
		func(n int) string { return strings.Repeat("extract(", n) },
		func(n int) string { return strings.Repeat("ORDER BY 1, ", n) },
		func(n int) string { return "SELECT 1 ORDER BY " + strings.Repeat("1, ", n) },
		func(n int) string { return strings.Repeat("::a(", n) },
		func(n int) string { return strings.Repeat("CAST(x AS a(", n) },
		func(n int) string { return strings.Repeat("/*", n) },
		func(n int) string { return strings.Repeat("U&\"\\", n) },
		func(n int) string { return strings.Repeat("E'\\", n) },
		func(n int) string { return strings.Repeat("'", n) },
		func(n int) string { return strings.Repeat("1 ", n) + "$1" },
		func(n int) string { return strings.Repeat("create function begin case ", n) },
	}
	const n = 12_500
	for _, input := range inputs {
		small, large := input(n), input(4*n)
		ts, tl := fastest(small), fastest(large)
		// The scheduler of a busy machine (the race detector, other packages' tests alongside)
		// blurs the ratio of runs of a few to a few tens of milliseconds: a clean clone's CI saw
		// 20x for 1.2 ms against 24 ms. Quadratic work on the larger input (0.1-1.4 MB) takes
		// many seconds, so only a ratio over half a second counts.
		if tl > 8*ts && tl > 500*time.Millisecond {
			t.Errorf("%.24q...: %d bytes took %v, %d bytes %v (%.1fx for 4x the input; linear is 4x, quadratic 16x)",
				large, len(small), ts, len(large), tl, float64(tl)/float64(ts))
		}
	}
}

// fastest is the shortest of three runs of everything the proxy does with a statement's text:
// the least disturbed by whatever else the machine does.
func fastest(in string) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		t0 := time.Now()
		Normalize(nil, nil, []byte(in))
		Fingerprint([]byte(in))
		Split([]byte(in), func([]byte) bool { return true })
		best = min(best, time.Since(t0))
	}
	return best
}
