package report

import (
	"bytes"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	for _, c := range htmlCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMarkdown(&buf, c.r); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if !strings.HasPrefix(out, "# pgpollwatch report\n\n**") {
				t.Fatalf("starts %.60q", out)
			}
			// Every key, in a code span with | escaped.
			for _, k := range c.r.Keys {
				if want := mdCode(k.Key); !strings.Contains(out, "| "+want+" |") {
					t.Errorf("key %q not in a table cell as %s", k.Key, want)
				}
			}
			// Every poller, in the Pollers table; a poller's storm in the Storms table.
			for _, p := range c.r.Pollers {
				if want := "| " + mdCode(p.Address) + " | " + mdText(p.ApplicationName) + " |"; !strings.Contains(out, want) {
					t.Errorf("poller %s not in the Pollers table as %q", p.ApplicationName, want)
				}
			}
			for _, s := range c.r.Storms {
				if s.Kind == "poller" && !strings.Contains(out, "| poller "+mdText(s.ApplicationName)+" "+mdCode(s.Address)) {
					t.Errorf("poller storm of %s not in the Storms table", s.ApplicationName)
				}
			}
			for _, f := range c.r.Findings {
				if !strings.Contains(out, "> **Fix:** "+mdText(f.Fix)) {
					t.Errorf("fix of %s missing", f.ID)
				}
				for _, e := range f.Evidence {
					if !strings.Contains(out, "- "+mdText(e)+"\n") {
						t.Errorf("evidence %q missing", e)
					}
				}
			}
			// Tables: every row has as many cells as its header; no stray | splits a cell.
			lines := strings.Split(out, "\n")
			for i := 0; i < len(lines); i++ {
				if !strings.HasPrefix(lines[i], "| ") {
					continue
				}
				cols := cells(lines[i])
				if i+1 >= len(lines) || cells(lines[i+1]) != cols {
					t.Fatalf("table at line %d: header %q has %d cells, delimiter row %q", i+1, lines[i], cols, lines[i+1])
				}
				for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
					if got := cells(lines[i]); got != cols {
						t.Fatalf("line %d has %d cells, header %d: %q", i+1, got, cols, lines[i])
					}
				}
			}
			if len(c.r.Timeline) > 0 != strings.Contains(out, "queries/s from ") {
				t.Error("sparkline present without a timeline, or absent with one")
			}
			// Markup in the data only ever appears inside code spans.
			if strings.Count(out, "<script>") != strings.Count(out, "`<script>") {
				t.Error("raw HTML from the data")
			}
		})
	}
}

// cells counts the cells of a table row: the | not preceded by a backslash, minus one.
func cells(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n - 1
}

func TestMarkdownEscaping(t *testing.T) {
	cases := []struct{ in, text, code string }{
		{"a|b", `a\|b`, "`a\\|b`"},
		{"plain-key", "plain-key", "`plain-key`"},
		{"`x`", "\\`x\\`", "`` `x` ``"},
		{"a``b", "a\\`\\`b", "```a``b```"},
		{"*b* _i_ [l](u) <t> #h", `\*b\* \_i\_ \[l\](u) &lt;t&gt; \#h`, "`*b* _i_ [l](u) <t> #h`"},
		{"two\nlines", "two lines", "`two lines`"},
		{`back\slash`, `back\\slash`, "`back\\slash`"},
	}
	for _, c := range cases {
		if got := mdText(c.in); got != c.text {
			t.Errorf("mdText(%q) = %q, want %q", c.in, got, c.text)
		}
		if got := mdCode(c.in); got != c.code {
			t.Errorf("mdCode(%q) = %q, want %q", c.in, got, c.code)
		}
	}
}

func TestSparkline(t *testing.T) {
	cases := []struct {
		in    []float64
		width int
		want  string
	}{
		{nil, 10, ""},
		{[]float64{0, 0}, 10, "▁▁"},
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, 10, "▁▂▃▄▅▆▇█"},
		{[]float64{0, 0, 7, 7}, 2, "▁█"}, // averaged into buckets
		{[]float64{1, 1, 1}, 10, "███"},
	}
	for _, c := range cases {
		if got := sparkline(c.in, c.width); got != c.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
}
