// Package queuecorpus reads the job-queue libraries' statements kept in
// analyzer/testdata/queues/<preset>.sql, with where each was read and what it must count as.
// Two tests read them: the analyzer's, which classifies every statement in memory, and
// fixtures/queues', which sends them through the proxy to a real server; one reader makes sure
// both see the same text.
package queuecorpus

import (
	"bufio"
	"os"
	"strings"
)

// Statement is one block of a corpus file.
type Statement struct {
	Name   string // "-- name:"
	Source string // "-- source:": repository, file and version
	Expect string // "-- expect:": poll, enqueue or none
	SQL    string // the statement as the library sends it, surrounding white space trimmed
	Line   int    // the block's first line in the file
}

// Read reads a corpus file: blocks of "-- name:", "-- source:", "-- expect:" (and any other
// "--" lines), then the statement up to a blank line.
func Read(path string) ([]Statement, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Statement
	var cur Statement
	var sql []string
	flush := func() {
		if len(sql) > 0 {
			cur.SQL = strings.TrimSpace(strings.Join(sql, "\n"))
			out = append(out, cur)
		}
		cur, sql = Statement{}, nil
	}
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
				cur.Name = strings.TrimSpace(v)
			case "source":
				cur.Source = strings.TrimSpace(v)
			case "expect":
				cur.Expect = strings.TrimSpace(v)
			}
			if cur.Line == 0 {
				cur.Line = n
			}
		case trimmed != "":
			sql = append(sql, line)
		}
	}
	flush()
	return out, sc.Err()
}
