package sqlscan

import (
	"strings"
	"testing"
	"time"
)

// Normalize is on the proxy's hot path and sees whatever clients send, so
// no input may make it slower than linear. These inputs stress every place
// that looks ahead; a quadratic path would take many seconds on them.
func TestLinearTime(t *testing.T) {
	const n = 50000
	inputs := []string{
		strings.Repeat("- ", n) + "x",
		strings.Repeat("- ", n) + "5::int",
		"SELECT x IN " + strings.Repeat("(", n),
		strings.Repeat("x IN (1,", n),
		"x IN (" + strings.Repeat("1,", n) + "y)",
		strings.Repeat("NULL ", n),
		strings.Repeat("NULL /* long comment */ ", n),
		strings.Repeat("$a", n),
		strings.Repeat("$a$", n),
		strings.Repeat("'a'\n", n),
		strings.Repeat("'a' -- c\n", n),
		strings.Repeat("extract(", n),
		strings.Repeat("ORDER BY 1, ", n),
		"SELECT 1 ORDER BY " + strings.Repeat("1, ", n),
		strings.Repeat("::a(", n),
		strings.Repeat("CAST(x AS a(", n),
		strings.Repeat("/*", n),
		strings.Repeat("U&\"\\", n),
		strings.Repeat("E'\\", n),
		strings.Repeat("'", n),
		strings.Repeat("1 ", n) + "$1",
		strings.Repeat("create function begin case ", n),
	}
	for _, in := range inputs {
		t0 := time.Now()
		Normalize(nil, nil, []byte(in))
		Fingerprint([]byte(in))
		Split([]byte(in), func([]byte) bool { return true })
		// Linear work on these 0.1-1.4 MB inputs takes ~10 ms; quadratic
		// work takes minutes. The bound leaves room for a loaded machine.
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("%.24q... (%d bytes) took %v", in, len(in), d)
		}
	}
}
