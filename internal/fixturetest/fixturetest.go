// Package fixturetest is what the truth tests of the fixtures share (fixtures/serverlog,
// fixtures/capture): the server's own statement log read for each task_id's polls, the
// pgpollwatch binary run as a proxy or as analyze, and the verdicts read from its reports.
package fixturetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// KeyStormed says whether the report's storm log holds a storm of key.
func KeyStormed(r *report.Report, key string) bool {
	for _, s := range r.Storms {
		if s.Kind == "key" && s.Key == key {
			return true
		}
	}
	return false
}

// PollerSpins says whether the report holds a spinning poller storm in database db.
func PollerSpins(r *report.Report, db string) bool {
	for _, s := range r.Storms {
		if s.Kind == "poller" && s.Database == db && s.Spin {
			return true
		}
	}
	return false
}

// StartProxy runs the proxy binary bin headless in front of the test's server, with --report; stop
// ends it with SIGTERM, which writes the report.
func StartProxy(t *testing.T, bin, reportPath string, args ...string) (addr string, stop func()) {
	t.Helper()
	pg := pgtest.Shared(t)
	cmd := exec.Command(bin, append([]string{"--no-tui", "--listen", "127.0.0.1:0", "--report", reportPath,
		"--upstream", fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", pg.Port)}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := regexp.MustCompile(`msg="pgpollwatch listening" listen=(\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr = <-found:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the proxy did not say where it listens within 20 s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("proxy: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}

// Analyze runs `bin analyze args...` and checks its exit status.
func Analyze(t *testing.T, bin string, status int, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"analyze", "--progress", "never"}, args...)...)
	out, err := cmd.CombinedOutput()
	if got := cmd.ProcessState.ExitCode(); got != status {
		t.Fatalf("analyze %v: exit status %d (%v), want %d\n%s", args, got, err, status, out)
	}
}

func ReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ReadReport(t *testing.T, path string) *report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal(ReadFile(t, path), &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

// LogTruth is what the test reads in the server's stderr log itself: each poll of a task_id,
// with its database and the time of its first and last poll, and the connections over TCP.
type LogTruth struct {
	Polls          map[string]int64     // polls of each task_id
	DB             map[string]string    // the database each task_id was polled in
	First, Last    map[string]time.Time // the times of each task_id's first and last poll
	TCPConnections int64                // connections received over TCP
	TLSLogins      int64                // sessions authorized with SSL enabled
}

func (l *LogTruth) Span(key string) time.Duration { return l.Last[key].Sub(l.First[key]) }

var (
	// '%m [%p] %q%u@%d/%a ' (pgtest.LogEverything): time, pid, user@db/app, then the message.
	entryLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC) \[(\d+)\] (?:[^@ ]*@([^/ ]*)/\S* )?(\w+):  (.*)$`)
	// A poll of celery_taskmeta by task_id: SQLAlchemy's spelling (celery_taskmeta.task_id) or a
	// hand-written one (task_id), the key a literal or bound to $1 (with a cast or not).
	pollText   = regexp.MustCompile(`(?s)^(?:statement|execute [^:]*): SELECT .*\bFROM celery_taskmeta\s+WHERE (?:celery_taskmeta\.)?task_id = (?:'([^']*)'|\$1)`)
	firstParam = regexp.MustCompile(`^parameters: \$1 = '([^']*)'`)
	tlsLogin   = regexp.MustCompile(`^connection authorized: .* SSL enabled `)
	tcpConn    = regexp.MustCompile(`^connection received: host=127\.0\.0\.1 port=\d+$`)
)

// ReadLog counts the polls of each task_id in the stderr log from offset: a statement with the
// key as a literal, or an execute whose DETAIL line binds it to $1. Lines continuing an entry
// start with a tab.
func ReadLog(t *testing.T, path string, offset int64) *LogTruth {
	t.Helper()
	l := &LogTruth{Polls: map[string]int64{}, DB: map[string]string{}, First: map[string]time.Time{}, Last: map[string]time.Time{}}
	type entry struct {
		at       time.Time
		pid, db  string
		severity string
		msg      string
	}
	awaiting := map[string]entry{} // pid -> an execute of the poll, until its parameters
	count := func(key string, e entry) {
		l.Polls[key]++
		l.DB[key] = e.db
		if _, ok := l.First[key]; !ok {
			l.First[key] = e.at
		}
		l.Last[key] = e.at
	}
	handle := func(e entry) {
		if e.severity == "DETAIL" {
			if ex, ok := awaiting[e.pid]; ok {
				delete(awaiting, e.pid)
				if m := firstParam.FindStringSubmatch(e.msg); m != nil {
					count(m[1], ex)
				}
			}
			return
		}
		delete(awaiting, e.pid)
		if e.severity != "LOG" {
			return
		}
		if tcpConn.MatchString(e.msg) {
			l.TCPConnections++
		}
		if tlsLogin.MatchString(e.msg) {
			l.TLSLogins++
		}
		if m := pollText.FindStringSubmatch(e.msg); m != nil {
			if strings.HasPrefix(e.msg, "statement:") {
				count(m[1], e)
			} else {
				awaiting[e.pid] = e
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var cur *entry
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "\t") && cur != nil {
			cur.msg += "\n" + line[1:]
			continue
		}
		m := entryLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: a line the test cannot read: %q", path, line)
		}
		if cur != nil {
			handle(*cur)
		}
		at, err := time.Parse("2006-01-02 15:04:05.000 MST", m[1])
		if err != nil {
			t.Fatal(err)
		}
		cur = &entry{at: at, pid: m[2], db: m[3], severity: m[4], msg: m[5]}
	}
	if cur != nil {
		handle(*cur)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return l
}
