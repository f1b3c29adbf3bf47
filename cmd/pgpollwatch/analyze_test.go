package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// stormLog is a real server log of a storm (pglog's test data: 67,543 lines, zstd-compressed,
// Debian's log_line_prefix, log_statement = 'all' and log_connections).
const stormLog = "../../pglog/testdata/storm.log.zst"

// analyzeRun runs analyze in-process and returns its exit status and outputs.
func analyzeRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status := analyzeCommand(append([]string{"--progress", "never"}, args...), &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

// stormText is the storm log, decompressed.
func stormText(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(stormLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	out, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readJSONReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// Without --report analyze prints the headline, the storms and the findings; the reports say
// what a log cannot tell.
func TestAnalyzePrintsAndReports(t *testing.T) {
	status, out, errOut := analyzeRun(t, stormLog)
	if status != exitOK {
		t.Fatalf("exit %d\n%s", status, errOut)
	}
	for _, want := range []string{"queries/s are polls of", "Storms (", "Findings (", "HIGH spin-poll", "fix: ",
		"answers are not in a log"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "stderr with log_line_prefix \"%m [%p] %q%u@%d \", zstd") || !strings.Contains(errOut, "67543 lines") {
		t.Errorf("stderr does not say what was read:\n%s", errOut)
	}

	dir := t.TempDir()
	for _, ext := range []string{"json", "md", "html"} {
		path := filepath.Join(dir, "r."+ext)
		if status, _, errOut := analyzeRun(t, "--report", path, stormLog); status != exitOK {
			t.Fatalf("--report %s: exit %d\n%s", path, status, errOut)
		}
		b, _ := os.ReadFile(path)
		if ext != "json" && (!strings.Contains(string(b), "not in a log") || !strings.Contains(string(b), "server log: storm.log.zst")) {
			t.Errorf("%s does not say the answers are not in a log, or where it comes from", path)
		}
	}
	r := readJSONReport(t, filepath.Join(dir, "r.json"))
	if !r.NoAnswers || r.Log == nil || r.Log.Lines != 67543 || r.Log.Statements == 0 || len(r.Proxies) != 1 || r.Proxies[0].Input == "" {
		t.Errorf("report: no_answers %v, log %+v, sources %+v", r.NoAnswers, r.Log, r.Proxies)
	}
	for _, f := range r.Fingerprints { // the log has no durations: none is made up
		if f.MeanMs != -1 || f.P99Ms != -1 {
			t.Errorf("fingerprint %s: mean %.2f ms, p99 %.2f ms from a log without durations", f.Query, f.MeanMs, f.P99Ms)
		}
	}
	for _, k := range r.Keys {
		if k.UnchangedPolls != -1 || k.Rows != -1 || k.LastStatus != "" {
			t.Errorf("key %s: unchanged %d, rows %d, status %q: a log has no answers", k.Key, k.UnchangedPolls, k.Rows, k.LastStatus)
		}
	}
	// A merge of two log reports keeps them what they are.
	merged := filepath.Join(dir, "m.json")
	var so, se bytes.Buffer
	if st := report.Command([]string{"merge", "-o", merged, filepath.Join(dir, "r.json"), filepath.Join(dir, "r.json")}, &so, &se); st != 0 {
		t.Fatalf("report merge: %d %s", st, se.String())
	}
	if m := readJSONReport(t, merged); !m.NoAnswers || m.Log == nil || m.Log.Lines != 2*67543 || m.Keys[0].UnchangedPolls != -1 {
		t.Errorf("merged: no_answers %v, log %+v", m.NoAnswers, m.Log)
	}

	// --fail-on: the storm's spin loop is a high finding.
	if status, _, errOut := analyzeRun(t, "--fail-on", "high", stormLog); status != exitFindings || !strings.Contains(errOut, "--fail-on high") {
		t.Errorf("--fail-on high: exit %d\n%s", status, errOut)
	}
}

// Bad input gets a clear error and loses nothing.
func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	notALog := filepath.Join(dir, "notes.txt")
	os.WriteFile(notALog, []byte("shopping list: 'milk', eggs\nbread\n"), 0o644)
	status, _, errOut := analyzeRun(t, notALog)
	if status != exitUsage || !strings.Contains(errOut, notALog) || !strings.Contains(errOut, "--prefix") ||
		!strings.Contains(errOut, "a line: shopping list: '…', eggs") {
		t.Errorf("not a log: exit %d, %q", status, errOut)
	}

	// Unreadable lines among good ones: counted and shown, literals masked, never fatal.
	text := stormText(t)
	lines := bytes.SplitAfter(text, []byte("\n"))
	var damaged bytes.Buffer
	for i, l := range lines {
		damaged.Write(l)
		if i == 1000 || i == 2000 {
			damaged.WriteString("garbage line with 'a secret'\n")
		}
	}
	path := filepath.Join(dir, "damaged.log")
	os.WriteFile(path, damaged.Bytes(), 0o644)
	status, out, errOut := analyzeRun(t, path)
	if status != exitOK || !strings.Contains(errOut, "2 line(s) could not be read") || !strings.Contains(errOut, "garbage line with '…'") ||
		strings.Contains(errOut, "secret") || !strings.Contains(out, "Findings (") {
		t.Errorf("damaged log: exit %d\n%s", status, errOut)
	}

	// A truncated compressed file: an error, and the analysis of what was read, marked.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(text)
	w.Close()
	cut := filepath.Join(dir, "cut.log.gz")
	os.WriteFile(cut, gz.Bytes()[:gz.Len()*6/10], 0o644)
	rep := filepath.Join(dir, "cut.json")
	status, _, errOut = analyzeRun(t, "--report", rep, cut)
	if status != exitUsage || !strings.Contains(errOut, "could not be read to its end") {
		t.Fatalf("truncated gzip: exit %d\n%s", status, errOut)
	}
	r := readJSONReport(t, rep)
	if r.Log.Incomplete == "" || r.Log.Lines < 20000 || r.Log.Lines >= 67543 || r.Totals.Queries == 0 {
		t.Errorf("truncated gzip: report's log %+v, %d queries", r.Log, r.Totals.Queries)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no log file given"},
		{[]string{"--fail-on", "urgent", stormLog}, `"urgent" is not high, medium or low`},
		{[]string{"--since", "2026-12-06 10:00", "--until", "2026-12-06 09:00", stormLog}, "--since must be before --until"},
		{[]string{"--since", "yesterday", stormLog}, "is not a time"},
		{[]string{"--report", "out.pdf", stormLog}, "the format follows the extension"},
		{[]string{"--format", "syslog", stormLog}, "unknown log format"},
		{[]string{filepath.Join(dir, "missing.log")}, "no such file"},
		{[]string{"-", "-"}, "standard input (-) given twice"},
	} {
		if status, _, errOut := analyzeRun(t, c.args...); status != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("analyze %v: exit %d, %q; want 2 and %q", c.args, status, errOut, c.want)
		}
	}
}

// Standard input, filters, and the progress bar when asked for.
func TestAnalyzeStdinFiltersProgress(t *testing.T) {
	cmd := exec.Command(bin, "analyze", "--progress", "always", "--report", filepath.Join(t.TempDir(), "r.json"), "-")
	cmd.Stdin = bytes.NewReader(stormText(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("analyze -: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "lines/s") || !strings.Contains(stderr.String(), "-: stderr") {
		t.Errorf("stderr: %q", stderr.String())
	}

	// --until before the log: nothing left, said so, not an error.
	status, out, errOut := analyzeRun(t, "--until", "2020-01-01", stormLog)
	if status != exitOK || !strings.Contains(errOut, "left out by --since/--until") || !strings.Contains(out, "Findings (0)") {
		t.Errorf("--until 2020: exit %d\n%s\n%s", status, out, errOut)
	}
	// --dbname of another database: the same.
	if _, _, errOut := analyzeRun(t, "--dbname", "nosuchdb", stormLog); !strings.Contains(errOut, "0 statements") {
		t.Errorf("--dbname nosuchdb: %s", errOut)
	}
}

// --tui opens the live view's screens on the log's analysis: its keys, the log named in the
// header with the answers it lacks, the detail's "not in a log", and e exports --report.
func TestAnalyzeTUI(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is needed for this test: apt-get install -y tmux (make test installs it)")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "tmux.sock")
	session := "ppw-analyze-tui"
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-S", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	reportFile := filepath.Join(dir, "r.json")
	abs, _ := filepath.Abs(stormLog)
	tm("new-session", "-d", "-s", session, "-x", "160", "-y", "45",
		fmt.Sprintf("%s analyze --tui --report %s %s; echo exit=$?; sleep 30", bin, reportFile, abs))
	defer exec.Command(tmux, "-S", socket, "kill-server").Run()
	waitScreen := func(want ...string) string {
		t.Helper()
		var screen string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			screen = tm("capture-pane", "-p", "-t", session)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(screen, w)
			}
			if ok {
				return screen
			}
		}
		t.Fatalf("the screen does not show %q:\n%s", want, screen)
		return ""
	}
	waitScreen("server log: storm.log.zst", "answers not in a log", "SPIN", "n/a")
	tm("send-keys", "-t", session, "Enter")
	waitScreen("not in a log", "median gap")
	tm("send-keys", "-t", session, "Escape")
	tm("send-keys", "-t", session, "e")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(reportFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("e wrote no report:\n%s", tm("capture-pane", "-p", "-t", session))
		}
	}
	tm("send-keys", "-t", session, "q")
	waitScreen("exit=0")
}
