package chaos

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Result is what a case did, what it measured and its verdict.
type Result struct {
	Case    string
	Did     string   // what was run, exactly enough to run it again
	Figures []string // what was measured
	Notes   []string // what clients saw that is reported, not judged
	Fails   []string // the properties that did not hold; empty: the case passed
	Elapsed time.Duration
}

// Figure records a measured figure.
func (r *Result) Figure(format string, args ...any) {
	r.Figures = append(r.Figures, fmt.Sprintf(format, args...))
}

// Note records an observation that is reported but not judged.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Check records a failure when ok is false and returns ok.
func (r *Result) Check(ok bool, format string, args ...any) bool {
	if !ok {
		r.Fails = append(r.Fails, fmt.Sprintf(format, args...))
	}
	return ok
}

// Passed reports whether every checked property held.
func (r *Result) Passed() bool { return len(r.Fails) == 0 }

// Verdict is "PASS" or "FAIL: " and the reasons.
func (r *Result) Verdict() string {
	if r.Passed() {
		return "PASS"
	}
	return "FAIL: " + strings.Join(r.Fails, "; ")
}

func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%v): %s\n  did: %s\n", r.Case, r.Elapsed.Round(time.Second), r.Verdict(), r.Did)
	for _, f := range r.Figures {
		fmt.Fprintf(&b, "  - %s\n", f)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  - note: %s\n", n)
	}
	return b.String()
}

// Table renders results as one Markdown table.
func Table(rs []*Result) string {
	var b strings.Builder
	b.WriteString("| case | what was done | measured | verdict |\n|---|---|---|---|\n")
	cell := func(s string) string {
		return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
	}
	for _, r := range rs {
		figs := append(append([]string{}, r.Figures...), prefixed("note: ", r.Notes)...)
		fmt.Fprintf(&b, "| %s | %s (%v) | %s | %s |\n", r.Case, cell(r.Did), r.Elapsed.Round(time.Second),
			cell(strings.Join(figs, "; ")), cell(r.Verdict()))
	}
	return b.String()
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// tally counts outcomes by name (a SQLSTATE, "ok", "timeout", ...), safe for concurrent use.
type tally struct {
	mu sync.Mutex
	n  map[string]int
	ex map[string]string // one example message per outcome
}

func (t *tally) add(outcome, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n, t.ex = map[string]int{}, map[string]string{}
	}
	t.n[outcome]++
	if _, ok := t.ex[outcome]; !ok && example != "" {
		t.ex[outcome] = example
	}
}

func (t *tally) get(outcome string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[outcome]
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, v := range t.n {
		n += v
	}
	return n
}

// outcomes lists the outcomes, most frequent first, except those for which skip is true.
func (t *tally) outcomes(skip func(string) bool) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ks []string
	for k := range t.n {
		if skip == nil || !skip(k) {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return t.n[ks[i]] > t.n[ks[j]] || t.n[ks[i]] == t.n[ks[j]] && ks[i] < ks[j] })
	return ks
}

// String is "57P01 ×12, 08006 ×3"; with examples, each is followed by its first message.
func (t *tally) String() string { return t.format(false) }

func (t *tally) format(examples bool) string {
	ks := t.outcomes(nil)
	if len(ks) == 0 {
		return "none"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s ×%d", k, t.n[k])
		if ex := t.ex[k]; examples && ex != "" {
			parts[i] += fmt.Sprintf(" (%q)", truncate(ex, 160))
		}
	}
	return strings.Join(parts, ", ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
