package deploy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// PromQL's words that are not metric names where an identifier stands: aggregations (which
// may come before their "by (...)"), binary operators and modifiers, and number literals.
var promqlWords = map[string]bool{
	"sum": true, "avg": true, "count": true, "min": true, "max": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

// Words followed by a list of label names in parentheses, which are not metric names either.
var labelListWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlSelectors returns the metric names an expression selects, in order, and the label names
// its label lists (by, without, on, ignoring, group_left, group_right) and matchers use. It is a
// lexer, not a parser: enough for expressions promtool accepts, which TestPromtool checks.
// Grafana's variables ($job, ${x}, $__rate_interval) are skipped where they stand.
func promqlSelectors(expr string) (metrics, labels []string, err error) {
	s := expr
	i := 0
	next := func() byte { // the next byte that is not blank, or 0
		for j := i; j < len(s); j++ {
			if !isSpace(s[j]) {
				return s[j]
			}
		}
		return 0
	}
	skipSpace := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for i < len(s) {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, nil, err
			}
			i = end
		case c == '{':
			names, matcherLabels, end, err := matchers(s, i+1)
			if err != nil {
				return nil, nil, fmt.Errorf("%w in %q", err, expr)
			}
			metrics = append(metrics, names...)
			labels = append(labels, matcherLabels...)
			i = end
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("unclosed [ in %q", expr)
			}
			i += end + 1
		case c == '$': // a Grafana variable
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, nil, fmt.Errorf("unclosed ${ in %q", expr)
				}
				i += end + 1
			} else {
				for i < len(s) && isIdent(s[i], false) {
					i++
				}
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i], false) || s[i] == '.') { // 0.5, 1e3, 5m, 0x1f
				i++
			}
		case isIdent(c, true):
			start := i
			for i < len(s) && isIdent(s[i], false) {
				i++
			}
			word := s[start:i]
			switch {
			case labelListWords[word]:
				skipSpace()
				if i < len(s) && s[i] == '(' {
					end := strings.IndexByte(s[i:], ')')
					if end < 0 {
						return nil, nil, fmt.Errorf("unclosed %s ( in %q", word, expr)
					}
					for _, l := range strings.Split(s[i+1:i+end], ",") {
						if l = strings.TrimSpace(l); l != "" {
							labels = append(labels, l)
						}
					}
					i += end + 1
				}
			case promqlWords[strings.ToLower(word)], next() == '(': // an operator, or a function called
			default:
				metrics = append(metrics, word)
			}
		default: // operators and punctuation
			i++
		}
	}
	return metrics, labels, nil
}

// matchers reads a selector's matchers from s[i], just after its {: the label names it matches
// on, the metric name when it is given as __name__="...", and the index after the closing }.
func matchers(s string, i int) (names, labels []string, end int, err error) {
	for {
		for i < len(s) && (isSpace(s[i]) || s[i] == ',') {
			i++
		}
		if i < len(s) && s[i] == '}' {
			return names, labels, i + 1, nil
		}
		start := i
		for i < len(s) && isIdent(s[i], false) {
			i++
		}
		if start == i {
			return nil, nil, 0, errors.New("a selector's matchers are not label=\"value\" pairs closed by }")
		}
		label := s[start:i]
		for i < len(s) && (isSpace(s[i]) || strings.IndexByte("=!~", s[i]) >= 0) {
			i++
		}
		if i == len(s) || strings.IndexByte("\"'`", s[i]) < 0 {
			return nil, nil, 0, fmt.Errorf("label %s matches no string", label)
		}
		after, err := skipString(s, i)
		if err != nil {
			return nil, nil, 0, err
		}
		if label == "__name__" {
			names = append(names, s[i+1:after-1])
		} else {
			labels = append(labels, label)
		}
		i = after
	}
}

// skipString returns the index after the string literal that starts at s[i].
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string in %q", s)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isIdent(c byte, first bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// labelValuesQuery is a Grafana variable's query: label_values(SELECTOR, LABEL) or
// label_values(LABEL).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*\S)\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// variableSelectors returns the metric names and labels a Grafana variable's query reads.
func variableSelectors(query string) (metrics, labels []string, err error) {
	m := labelValuesQuery.FindStringSubmatch(query)
	if m == nil {
		return nil, nil, fmt.Errorf("variable query %q is not label_values(...), the only kind this test reads", query)
	}
	metrics, labels, err = promqlSelectors(m[1])
	return metrics, append(labels, m[2]), err
}

func TestPromqlSelectors(t *testing.T) {
	for _, c := range []struct {
		expr            string
		metrics, labels []string
	}{
		{`rate(pgpollwatch_queries_total[5m])`, []string{"pgpollwatch_queries_total"}, nil},
		{`sum by (job, instance) (rate(a_total{job="$job",instance=~"$instance"}[$__rate_interval]))`,
			[]string{"a_total"}, []string{"job", "instance", "job", "instance"}},
		{`instance:a:rate1m / (instance:b:rate1m > 0)`, []string{"instance:a:rate1m", "instance:b:rate1m"}, nil},
		{"x{quantile=\"1\"}\n  > on (job, instance)\n  y\nand on (job) changes(x{quantile=\"1\"}[15m]) > 0",
			[]string{"x", "y", "x"}, []string{"quantile", "job", "instance", "job", "quantile"}},
		{`sum by (ttl) (rate(s[1m])) / ignoring (ttl) group_left () (sum(rate(p[1m])) > 0)`,
			[]string{"s", "p"}, []string{"ttl", "ttl"}},
		{`topk(10, sum without (fingerprint) (f)) offset 5m`, []string{"f"}, []string{"fingerprint"}},
		{`histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m]))) * 1e3 + 0.5`, []string{"h_bucket"}, []string{"le"}},
		{`label_replace(up{job="p"}, "dst", "$1", "src", "(.*)") == bool 0`, []string{"up"}, []string{"job"}},
		{`{__name__="by_name", kind!~'k{1,2}}'} # a comment naming not_a_metric`, []string{"by_name"}, []string{"kind"}},
		{`max(a) or min(b) unless count(c) and avg(d)`, []string{"a", "b", "c", "d"}, nil},
	} {
		metrics, labels, err := promqlSelectors(c.expr)
		if err != nil || !slices.Equal(metrics, c.metrics) || !slices.Equal(labels, c.labels) {
			t.Errorf("%s:\n metrics %q, labels %q, %v\n want %q, %q", c.expr, metrics, labels, err, c.metrics, c.labels)
		}
	}
	for _, bad := range []string{`rate(x[5m)`, `x{job="a}`, `x{job}`} {
		if _, _, err := promqlSelectors(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	metrics, labels, err := variableSelectors(`label_values(pgpollwatch_queries_total{job="$job"}, instance)`)
	if err != nil || !slices.Equal(metrics, []string{"pgpollwatch_queries_total"}) || !slices.Equal(labels, []string{"job", "instance"}) {
		t.Errorf("label_values: %q %q %v", metrics, labels, err)
	}
}
