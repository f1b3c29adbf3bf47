package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// TestConfigPrecedence runs `pgpollwatch config` with a setting given three ways and others
// two ways: the flag wins, then the environment, then the file; passwords are masked; an
// unknown key, variable or bad value is an error naming it and its source.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pgpollwatch.toml")
	os.WriteFile(file, []byte(`storm-qps = 30
sweep_qps = 300
storm-window = "9s"
upstream = "postgres://app:s3cret@db.internal:5432/app"
watch = ["jobs.id", "orders.id"]
`), 0o644)
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"config"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, status := run([]string{"PGPOLLWATCH_STORM_QPS=20", "PGPOLLWATCH_STORM_WINDOW=7s", "PGPOLLWATCH_CONFIG=" + file}, "--storm-qps", "10")
	if status != 0 {
		t.Fatalf("config: exit %d\n%s", status, out)
	}
	for _, want := range []string{
		"storm-qps = 10  # flag",
		"storm-window = \"7s\"  # environment PGPOLLWATCH_STORM_WINDOW",
		"sweep-qps = 300  # file " + file,
		"upstream = \"postgres://app:xxxxx@db.internal:5432/app\"  # file " + file,
		"watch = [\"jobs.id\", \"orders.id\"]  # file " + file,
		"max-keys = 100000  # default",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Error("config prints the upstream's password")
	}
	for _, c := range []struct {
		env  []string
		file string
		want string
	}{
		{nil, "storm-qs = 5\n", `unknown key "storm-qs"`},
		{nil, "storm-window = \"soon\"\n", `storm-window = "soon"`},
		{[]string{"PGPOLLWATCH_STORM_QPSS=5"}, "", "PGPOLLWATCH_STORM_QPSS is no setting"},
		{[]string{"PGPOLLWATCH_MAX_KEYS=many"}, "", `PGPOLLWATCH_MAX_KEYS="many"`},
	} {
		os.WriteFile(file, []byte(c.file), 0o644)
		out, status := run(c.env, "--config", file)
		if status != 2 || !strings.Contains(out, c.want) {
			t.Errorf("env %v, file %q: exit %d, %q; want 2 and %q", c.env, c.file, status, out, c.want)
		}
	}
}

// TestReloadUnderLoad runs the proxy from a configuration file while eight clients poll
// through it, and reloads it 20 times with new storm thresholds, cache TTLs, coalescing on and
// off and log levels: no client sees an error, every change shows on /metrics at once and in
// the exit report, a bad file is refused and leaves the running configuration, and a change
// that needs a restart (the listen address) is said to.
func TestReloadUnderLoad(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE celery_taskmeta (id int PRIMARY KEY, task_id text UNIQUE, status text);
		INSERT INTO celery_taskmeta SELECT g, 'task-' || g, 'PENDING' FROM generate_series(1, 50) g;
		CREATE TABLE jobs (id int PRIMARY KEY, state text); INSERT INTO jobs SELECT g, 'queued' FROM generate_series(1, 50) g;
		GRANT ALL ON celery_taskmeta, jobs TO scram_user`)
	dir := t.TempDir()
	file, reportFile := filepath.Join(dir, "pgpollwatch.toml"), filepath.Join(dir, "report.json")
	listen := "127.0.0.1:0"
	write := func(i int, extra string) {
		t.Helper()
		level := []string{"info", "debug"}[i%2]
		conf := fmt.Sprintf(`upstream = "host=127.0.0.1 port=%d sslmode=disable"
listen = %q
metrics-listen = "127.0.0.1:0"
coalesce = %v
coalesce-ttl = "%dms"
storm-qps = %d
storm-window = "%ds"
log-level = %q
report = %q
%s
%s`, pg.Port, listen, i%3 != 2, 100+10*i, 10+i, 2+i%3, level, reportFile, map[bool]string{true: `watch = ["jobs.id"]`}[i >= 10], extra)
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(0, "")
	stderr := &pgtest.Output{}
	cmd := exec.Command(bin, "--no-tui", "--config", file)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	addr := waitForLine(t, stderr.String, listeningLine)
	metricsAddr := waitForLine(t, stderr.String, metricsLine)

	// The load: eight clients polling, four on a connection each, four connecting per poll.
	host, port, _ := net.SplitHostPort(addr)
	dsn := fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable", host, port, pgtest.ScramUser, pgtest.Password, db)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var polls, failures atomic.Int64
	var firstErr atomic.Pointer[string]
	for c := range 8 {
		wg.Go(func() {
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					conn.Close(context.Background())
				}
			}()
			for i := 0; ctx.Err() == nil; i++ {
				var err error
				if conn == nil {
					if conn, err = pgx.Connect(ctx, dsn); err != nil {
						if ctx.Err() == nil {
							failures.Add(1)
							msg := err.Error()
							firstErr.CompareAndSwap(nil, &msg)
						}
						return
					}
				}
				var status string
				if c == 3 { // a job queue, watched from reload 10 on
					err = conn.QueryRow(ctx, "SELECT state FROM jobs WHERE id = $1", 1+(c*7+i)%50).Scan(&status)
				} else {
					err = conn.QueryRow(ctx, "SELECT status FROM celery_taskmeta WHERE task_id = $1", fmt.Sprintf("task-%d", 1+(c*7+i)%50)).Scan(&status)
				}
				if err != nil && ctx.Err() == nil {
					failures.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					return
				}
				polls.Add(1)
				if c >= 4 { // a connection per poll
					conn.Close(context.Background())
					conn = nil
				}
			}
		})
	}

	scrape := func() string {
		t.Helper()
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("%v; the proxy's log:\n%s", err, stderr.String())
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	metric := func(text, name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("/metrics has no %s", name)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	for i := 1; i <= 20; i++ {
		write(i, "")
		cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(5 * time.Second)
		for {
			text := scrape()
			if metric(text, `pgpollwatch_config_reloads_total{result="success"}`) == float64(i) {
				// The reload is counted once its changes are in force; a scrape begun after one
				// that saw the count sees them all (the count and the cache's state are read at
				// different moments of one snapshot, so that same scrape may not).
				text = scrape()
				ttl, qps, on := metric(text, "pgpollwatch_cache_ttl_seconds"), metric(text, "pgpollwatch_storm_threshold_qps"), metric(text, "pgpollwatch_cache_enabled")
				if want := float64(100+10*i) / 1000; ttl != want || on != map[bool]float64{true: 1, false: 0}[i%3 != 2] {
					t.Errorf("reload %d: cache TTL %v s, enabled %v; want %v s, %v", i, ttl, on, want, i%3 != 2)
				}
				// The thresholds reach the analyzer at its next tick, within a second.
				for qps != float64(10+i) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
					qps = metric(scrape(), "pgpollwatch_storm_threshold_qps")
				}
				if qps != float64(10+i) {
					t.Errorf("reload %d: storm threshold %v, want %d", i, qps, 10+i)
				}
				// The jobs table is watched from reload 10 on: its polls count from then.
				jobs := regexp.MustCompile(`(?m)^pgpollwatch_watched_lookups_total\{column="id",table="jobs"\} (\S+)$`).FindStringSubmatch(text)
				if (jobs != nil) != (i >= 10) {
					t.Errorf("reload %d: jobs.id watched lookups on /metrics: %v; want them from reload 10 on", i, jobs)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload %d not counted within 5 s:\n%s", i, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // traffic between reloads
	}
	// A bad file is refused; the running configuration stays.
	write(99, "storm-qs = 3\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitForLine(t, stderr.String, regexp.MustCompile(`(configuration reload refused).*storm-qs`))
	text := scrape()
	if metric(text, `pgpollwatch_config_reloads_total{result="failure"}`) != 1 || metric(text, "pgpollwatch_config_last_reload_successful") != 0 ||
		metric(text, "pgpollwatch_storm_threshold_qps") != 30 {
		t.Errorf("after a bad file: failures, last reload successful, storm threshold:\n%s", text)
	}
	// A setting that needs a restart is said to, and the others still apply.
	listen = "127.0.0.1:1"
	write(20, "")
	cmd.Process.Signal(syscall.SIGHUP)
	waitForLine(t, stderr.String, regexp.MustCompile(`some changes need a restart.*(need_restart=\S*listen)`))

	stop()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d clients saw an error during the reloads; the first: %s", n, *firstErr.Load())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("proxy: %v\n%s", err, stderr.String())
	}
	rep := readReport(t, reportFile)
	if rep.Thresholds == nil || rep.Thresholds.StormQPS != 30 || rep.Config == nil || rep.Config.Reloads != 21 || rep.Config.ReloadFailures != 1 ||
		rep.Coalesce == nil || rep.Coalesce.TTLMs != 300 {
		t.Errorf("report: thresholds %+v, config %+v, coalesce %+v; want storm-qps 30, 21 reloads and 1 failure, TTL 300 ms", rep.Thresholds, rep.Config, rep.Coalesce)
	}
	var jobsPolls int64
	for _, w := range rep.Watches {
		if w.Table == "jobs" {
			jobsPolls = w.Lookups
		}
	}
	if jobsPolls == 0 {
		t.Errorf("report: no polls of jobs.id, watched since reload 10: %+v", rep.Watches)
	}
	t.Logf("%d polls by 8 clients through 22 reloads, no error", polls.Load())
}

// The log's level and format change under loggers already made (a reload's log-level and
// log-format), attributes of derived loggers included.
func TestLogSwitch(t *testing.T) {
	var b strings.Builder
	sw, err := newLogSwitch(&b, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(sw).With("session", 7)
	log.Debug("hidden")
	log.Info("plain")
	if err := sw.set("debug", "json"); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown")
	if err := sw.set("loud", "json"); err == nil {
		t.Error("a bad level was taken")
	}
	out := b.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "msg=plain session=7") || !strings.Contains(out, `"msg":"shown","session":7`) {
		t.Errorf("log:\n%s", out)
	}
}
