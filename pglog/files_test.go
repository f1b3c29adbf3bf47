package pglog

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// stormFixture is testdata/storm.log.bz2 uncompressed: made by `bzip2 -1` (100 kB blocks, so
// that a truncated copy still has whole blocks) from stormLog(4000, 5, false).
func stormFixture(t *testing.T) []byte {
	data, _ := stormLog(4000, 5, false)
	return data
}

func compress(t *testing.T, kind string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch kind {
	case "gzip":
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
	case "xz":
		w, err := xz.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case "bzip2":
		bz, err := os.ReadFile("testdata/storm.log.bz2")
		if err != nil {
			t.Fatal(err)
		}
		return bz
	default:
		return data
	}
	return b.Bytes()
}

func readFiles(t *testing.T, paths []string, opt Options) ([]Record, Stats) {
	t.Helper()
	r, err := Open(paths, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	return drain(t, r)
}

func TestCompressed(t *testing.T) {
	data := stormFixture(t)
	plain, _ := read(t, string(data), Options{})
	if len(plain) < 2000 {
		t.Fatalf("fixture: %d records", len(plain))
	}
	dir := t.TempDir()
	// xz decodes in chunks of 2 MB of text: a truncated file needs more than one to show
	// that what came before the cut is kept.
	bigData, _ := stormLog(40000, 5, false)
	bigPlain, _ := read(t, string(bigData), Options{})
	for _, kind := range []string{"gzip", "bzip2", "xz", "zstd"} {
		t.Run(kind, func(t *testing.T) {
			data, plain := data, plain
			if kind == "xz" {
				data, plain = bigData, bigPlain
			}
			z := compress(t, kind, data)
			path := filepath.Join(dir, "storm.log."+kind)
			if err := os.WriteFile(path, z, 0o644); err != nil {
				t.Fatal(err)
			}
			var progress [][2]int64
			recs, st := readFiles(t, []string{path}, Options{Progress: func(n, total int64) { progress = append(progress, [2]int64{n, total}) }})
			if st.Files[0].Compression != kind || st.Incomplete || st.Bytes != int64(len(data)) || len(recs) != len(plain) {
				t.Fatalf("%d records of %d, stats %+v", len(recs), len(plain), st)
			}
			compare(t, recs, plain)
			if last := progress[len(progress)-1]; last != [2]int64{int64(len(z)), int64(len(z))} {
				t.Errorf("progress %v", progress)
			}

			// Truncated: what was read is kept, and the reader says the file is incomplete.
			cut := filepath.Join(dir, "cut.log."+kind)
			if err := os.WriteFile(cut, z[:len(z)*6/10], 0o644); err != nil {
				t.Fatal(err)
			}
			recs, st = readFiles(t, []string{cut}, Options{})
			if !st.Incomplete || st.Err == nil || !strings.Contains(st.Err.Error(), cut) {
				t.Fatalf("truncated: stats %+v", st)
			}
			if len(recs) == 0 || len(recs) >= len(plain) {
				t.Fatalf("truncated: %d records of %d", len(recs), len(plain))
			}
			// Every record read is one of the whole file's, whole: no statement cut short.
			for i, r := range recs[:len(recs)-1] {
				if r.Text != plain[i].Text || r.Session != plain[i].Session {
					t.Fatalf("truncated: record %d %+v, want %+v", i, r, plain[i])
				}
			}
			if last := recs[len(recs)-1]; last.Text != plain[len(recs)-1].Text {
				t.Errorf("truncated: last record %q", last.Text)
			}
			t.Logf("%s: %d of %d records before the cut: %v", kind, len(recs), len(plain), st.Err)
		})
	}
}

// TestRotatedFiles: logrotate's names sort newest first; the reader goes by time stamps, and
// a session's statement and its duration line may sit in two files.
func TestRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"postgresql.log.2.gz": `2024-03-01 10:00:00.000 UTC [1] a@x LOG:  statement: SELECT 'oldest'
2024-03-01 10:00:00.100 UTC [1] a@x LOG:  duration: 1.000 ms
`,
		"postgresql.log.1": `2024-03-01 11:00:00.000 UTC [1] a@x LOG:  statement: SELECT 'middle'
2024-03-01 11:00:00.100 UTC [2] a@x LOG:  statement: SELECT 'spans the rotation'
`,
		"postgresql.log": `2024-03-01 11:00:00.200 UTC [2] a@x LOG:  duration: 2.000 ms
2024-03-01 12:00:00.000 UTC [1] a@x LOG:  statement: SELECT 'newest'
`,
	}
	var paths []string
	for name, text := range files {
		data := []byte(text)
		if strings.HasSuffix(name, ".gz") {
			data = compress(t, "gzip", data)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	recs, st := readFiles(t, paths, Options{})
	var got []string
	for _, r := range recs {
		got = append(got, r.Text)
	}
	if strings.Join(got, ",") != "SELECT 'oldest',SELECT 'middle',SELECT 'spans the rotation',SELECT 'newest'" {
		t.Errorf("order: %v", got)
	}
	if recs[2].Duration != 2_000_000 {
		t.Errorf("duration across files: %+v", recs[2])
	}
	if filepath.Base(st.Files[0].Path) != "postgresql.log.2.gz" || filepath.Base(st.Files[2].Path) != "postgresql.log" {
		t.Errorf("files %+v", st.Files)
	}
	if st.Lines != 6 || len(st.Files) != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open([]string{"/nonexistent/pg.log"}, Options{}); err == nil || !strings.Contains(err.Error(), "/nonexistent/pg.log") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open([]string{t.TempDir()}, Options{}); err == nil {
		t.Errorf("a directory was opened")
	}
	if _, err := Open(nil, Options{}); err == nil {
		t.Errorf("no file")
	}
	if _, err := Open([]string{"-"}, Options{Format: "syslog"}); err == nil || !strings.Contains(err.Error(), "csvlog") {
		t.Errorf("unknown format: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.log")
	os.WriteFile(empty, nil, 0o644)
	recs, st := readFiles(t, []string{empty}, Options{})
	if len(recs) != 0 || st.Lines != 0 {
		t.Errorf("empty file: %v %+v", recs, st)
	}
}

// TestRealStormLog reads what PostgreSQL logged during a real storm (see realStormLog):
// every line is understood, and each statement line and execute is one record.
func TestRealStormLog(t *testing.T) {
	data := realStormLog(t)
	recs, st := read(t, string(data), Options{})
	if st.BadLines != 0 || st.Incomplete {
		t.Fatalf("stats %+v", st)
	}
	var starts, executes int
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, " LOG:  statement: ") {
			starts++
		}
		if strings.Contains(line, " LOG:  execute ") {
			executes++
		}
	}
	var simple, extended, withParams int
	sessions := map[string]bool{}
	for _, r := range statements(recs) {
		sessions[r.Session] = true
		if r.Protocol == Extended {
			extended++
			if len(r.Params) > 0 {
				withParams++
			}
		} else {
			simple++
		}
	}
	if simple != starts || extended != executes || withParams == 0 || st.Connections == 0 || len(sessions) < 4 {
		t.Errorf("%d simple (log: %d), %d extended (log: %d, %d with parameters), %d sessions, stats %+v",
			simple, starts, extended, executes, withParams, len(sessions), st)
	}
	t.Logf("%d lines, %d records, %d statements (%d extended), %d sessions", st.Lines, st.Records, st.Statements, extended, len(sessions))
}
