package analyzer

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgpollwatch/pgpollwatch/internal/queuecorpus"
)

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
		stmts, err := queuecorpus.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stmts {
			if st.Source == "" {
				t.Errorf("%s:%d %s: no source cited", filepath.Base(path), st.Line, st.Name)
			}
			q, op := classifyQueue(QueuePresets, st.SQL)
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
			if got != st.Expect {
				t.Errorf("%s:%d %q is a %s, the corpus says %s:\n%s", filepath.Base(path), st.Line, st.Name, got, st.Expect, st.SQL)
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
