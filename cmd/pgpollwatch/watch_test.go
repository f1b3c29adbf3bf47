package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/internal/storm"
)

// TestWatchInterface runs `pgpollwatch watch --interface lo` headless beside a spinning storm
// driven straight at PostgreSQL (no proxy), and checks the report against the server: the
// polls of every key are the ones the storm completed, all of them are in pg_stat_statements'
// count of the poll statement, the finished subtasks' last status is SUCCESS, and the keys spin.
func TestWatchInterface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("watch --interface needs CAP_NET_RAW: run the tests as root (CI does), or grant it: sudo setcap cap_net_raw+ep " + bin)
	}
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	dsn := pg.ConnString(pgtest.SuperUser, db)
	ctx := context.Background()
	if err := storm.Setup(ctx, dsn, storm.FlavourCelery); err != nil {
		t.Fatal(err)
	}
	reportFile := filepath.Join(t.TempDir(), "watch.json")
	cmd := exec.Command(bin, "watch", "--interface", "lo", "--port", strconv.Itoa(pg.Port), "--no-tui",
		"--log-interval", "1s", "--storm-window", "1s", "--report", reportFile, "--metrics-listen", "127.0.0.1:0")
	out := &pgtest.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitForLine(t, out.String, regexp.MustCompile(`msg=(capturing)`))

	st, err := storm.Run(ctx, storm.Config{DSN: dsn, Tasks: 3, Duration: 3 * time.Second, Pattern: storm.PatternSpin,
		Protocol: storm.ProtocolExtended, SubtaskDuration: storm.Dist{Min: time.Second, Max: 2 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the last answers reach the capture
	// /metrics serves the live capture's analysis as the proxy's does.
	m := regexp.MustCompile(`(?m)^pgpollwatch_queries_total (\d+)$`).FindStringSubmatch(scrapeMetrics(t, waitForLine(t, out.String, metricsLine)))
	if m == nil || m[1] == "0" {
		t.Errorf("/metrics of watch: queries %v", m)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	rep := readReport(t, reportFile)
	if rep.Capture == nil || rep.Capture.Interface != "lo" || rep.Capture.Gaps != 0 || rep.NoAnswers {
		t.Fatalf("capture section %+v, no answers %v: want lo, no gap, answers seen", rep.Capture, rep.NoAnswers)
	}

	// The server's count of the poll statement, in this database.
	conn, err := pgx.Connect(ctx, pg.ConnString(pgtest.SuperUser, pgtest.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var served int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = $1 AND s.query LIKE 'SELECT%celery_taskmeta%task_id = $1%'`, db).Scan(&served); err != nil {
		t.Fatal(err)
	}
	// A key is read by its parent's polls and once more by the worker (Celery's backend reads
	// the row before it stores the result): both are lookups of the key.
	var total int64
	for _, task := range st.Tasks {
		k, want := polls(rep, task.ID), task.Polls
		if task.Stored {
			want++
		}
		total += k
		if k != want {
			t.Errorf("%s: %d polls watched, the storm completed %d (stored %v)", task.ID, k, want, task.Stored)
		}
	}
	if total != served || total != st.Polls+st.Writes {
		t.Errorf("%d polls watched; pg_stat_statements counts %d calls of the lookup, the storm %d polls and %d stores",
			total, served, st.Polls, st.Writes)
	}
	for _, k := range rep.Keys {
		for _, task := range st.Tasks {
			if k.Key != task.ID {
				continue
			}
			if task.Seen && k.LastStatus != "SUCCESS" || !k.Spinning || k.UnchangedPolls < k.Polls/2 {
				t.Errorf("%s: status %q (seen done %v), spinning %v, unchanged %d of %d", k.Key, k.LastStatus, task.Seen, k.Spinning, k.UnchangedPolls, k.Polls)
			}
		}
	}
	if !strings.Contains(out.String(), "storms=") {
		t.Errorf("no headline logged:\n%s", out.String())
	}
	t.Logf("%d polls of %d keys watched on lo; pg_stat_statements: %d; %s", total, len(st.Tasks), served, rep.Capture.Summary())
}

// TestWatchErrors: what is missing or wrong is said, with status 2.
func TestWatchErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"watch"}, "--interface is required"},
		{[]string{"watch", "--interface", "nosuch0"}, "nosuch0"},
		{[]string{"watch", "--interface", "lo", "capture.pcap"}, "pgpollwatch analyze"},
		{[]string{"watch", "--interface", "lo", "--port", "0"}, "not a TCP port"},
	} {
		cmd := exec.Command(bin, c.args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, cmd.ProcessState.ExitCode(), out, c.want)
		}
	}
}

// TestAnalyzeCaptureErrors: a capture is told from a log by its first bytes; what cannot be
// done with one is said, with status 2.
func TestAnalyzeCaptureErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pcap") // a pcap header and no packet
	hdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0}
	logFile := filepath.Join(dir, "postgresql.log")
	if err := os.WriteFile(empty, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logFile, []byte("2026-12-06 10:00:00.000 UTC [7] app@db LOG:  statement: SELECT 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"analyze", empty, logFile}, 2, "give captures or logs, not both"},
		{[]string{"analyze", "--dbname", "app", empty}, 2, "a capture is analysed whole"},
		{[]string{"analyze", "--port", "6432", empty}, 0, "Packet capture: 0 packets"},
	} {
		cmd := exec.Command(bin, c.args...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != c.status || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, cmd.ProcessState.ExitCode(), out, c.status, c.want)
		}
	}
}
