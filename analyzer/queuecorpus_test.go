package analyzer

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusStatement is one statement of testdata/queues/<preset>.sql: as the library sends it,
// with where it was read and what it must count as.
type corpusStatement struct {
	file, name, source, expect, sql string
	line                            int
}

// readQueueCorpus reads the blocks of a corpus file: "-- name:", "-- source:", "-- expect:"
// (and any other "--" lines) followed by the statement, blocks separated by blank lines.
func readQueueCorpus(t *testing.T, path string) []corpusStatement {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusStatement
	var cur corpusStatement
	var sql []string
	flush := func() {
		if len(sql) > 0 {
			cur.sql = strings.TrimSpace(strings.Join(sql, "\n"))
			out = append(out, cur)
		}
		cur, sql = corpusStatement{file: filepath.Base(path)}, nil
	}
	flush()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" && len(sql) > 0:
			flush()
		case len(sql) == 0 && strings.HasPrefix(trimmed, "--"):
			k, v, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(trimmed, "--")), ":")
			switch strings.TrimSpace(k) {
			case "name":
				cur.name = strings.TrimSpace(v)
			case "source":
				cur.source = strings.TrimSpace(v)
			case "expect":
				cur.expect = strings.TrimSpace(v)
			}
			if cur.line == 0 {
				cur.line = n
			}
		case trimmed != "":
			sql = append(sql, line)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every statement a library sends, taken from its source (testdata/queues), is classified as
// its corpus says: a poll or an enqueue of that library's preset, or nothing. The corpus holds
// each library's idle loop, its enqueue and statements that are neither (finishing a job).
func TestQueueCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/queues/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in testdata/queues: %v", err)
	}
	presets := map[string]int{}
	for i, q := range QueuePresets {
		presets[q.Name] = i
	}
	seen := map[string]bool{}
	for _, path := range files {
		preset := strings.TrimSuffix(filepath.Base(path), ".sql")
		want, ok := presets[preset]
		if !ok {
			t.Errorf("%s: no preset named %q", path, preset)
			continue
		}
		seen[preset] = true
		polls := 0
		for _, st := range readQueueCorpus(t, path) {
			if st.source == "" {
				t.Errorf("%s:%d %s: no source cited", st.file, st.line, st.name)
			}
			q, op := classifyQueue(QueuePresets, st.sql)
			var got string
			switch {
			case op == queueNone:
				got = "none"
			case q != want:
				got = "another preset's (" + QueuePresets[q].Name + ")"
			case op == queuePoll:
				got, polls = "poll", polls+1
			default:
				got = "enqueue"
			}
			if got != st.expect {
				t.Errorf("%s:%d %q is a %s, the corpus says %s:\n%s", st.file, st.line, st.name, got, st.expect, st.sql)
			}
		}
		if polls == 0 {
			t.Errorf("%s: no poll statement", path)
		}
	}
	for name := range presets {
		if !seen[name] {
			t.Errorf("preset %s has no corpus (testdata/queues/%s.sql)", name, name)
		}
	}
}
