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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/report"
)

var bin string // the pgpollwatch binary, built once

func TestMain(m *testing.M) { pgtest.MainWithBinary(m, pgtest.Options{}, &bin) }

// What the binary logs once it listens, with the addresses it got: the tests give it port 0
// and read these, so that no other process can take a port between its choice and its use.
var (
	listeningLine = regexp.MustCompile(`msg="pgpollwatch listening" listen=(\S+)`)
	metricsLine   = regexp.MustCompile(`msg="serving metrics" addr=http://(\S+)/metrics`)
)

// waitForLine waits until out() holds a match of re, and returns its first group.
func waitForLine(t *testing.T, out func() string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(out()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %s within 20 s:\n%s", re, out())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "pgpollwatch ") {
		t.Fatalf("version: %q %v", out, err)
	}
	out, err = exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"-upstream", "-listen", "-watch", "-shutdown-grace", "-tls-cert", "-max-message-size", "-storm-qps", "-sweep-qps"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("--help does not explain %s", flag)
		}
	}
	cmd := exec.Command(bin, "--no-such-flag")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("unknown flag: exit %d (%v)", cmd.ProcessState.ExitCode(), err)
	}
	out, _ = exec.Command(bin, "--watch", "nocolumn").CombinedOutput()
	if !strings.Contains(string(out), "TABLE.COLUMN") {
		t.Fatalf("bad --watch: %q", out)
	}
	for _, flag := range []string{"--storm-qps", "--sweep-qps"} {
		cmd := exec.Command(bin, "--upstream", "127.0.0.1:1", flag, "0")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), flag+" must be positive") {
			t.Errorf("%s 0: exit %d, %q", flag, cmd.ProcessState.ExitCode(), out)
		}
	}
}

// TestProxyFindsStormThenStopsOnSIGTERM runs the real binary headless in front of the test
// server, spins on one key, and checks the storm is logged, then that SIGTERM stops it cleanly.
func TestProxyFindsStormThenStopsOnSIGTERM(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE jobs (id int PRIMARY KEY, state text); INSERT INTO jobs VALUES (7, 'queued'); GRANT ALL ON jobs TO scram_user`)
	reportFile := filepath.Join(t.TempDir(), "report.json")
	addr, cmd, stderr := startHeadless(t, "--watch", "jobs.id", "--storm-window", "1s", "--log-interval", "1s", "--report", reportFile)

	host, port, _ := net.SplitHostPort(addr)
	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
		host, port, pgtest.ScramUser, pgtest.Password, db))
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	usr1Sent := false
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); sent++ {
		var state string
		if err := conn.QueryRow(context.Background(), "SELECT state FROM jobs WHERE id = $1", 7).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if !usr1Sent && sent == 50 { // a report while traffic flows
			cmd.Process.Signal(syscall.SIGUSR1)
			usr1Sent = true
		}
	}
	mid := readReport(t, reportFile)
	conn.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "storm started: jobs.id = 7") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	log := stderr.String()
	for _, want := range []string{"storm started: jobs.id = 7", "a spin loop", "queries/s are polls of 1 watched keys"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, pgtest.Password) {
		t.Error("the log holds the password")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("no orderly stop in the log:\n%s", stderr.String())
	}
	// The report written at exit has every poll; the one from SIGUSR1 had some of them.
	final := readReport(t, reportFile)
	if polls(final, "7") != int64(sent) || polls(mid, "7") <= 0 || polls(mid, "7") >= polls(final, "7") {
		t.Errorf("polls of key 7: SIGUSR1 report %d, exit report %d, sent %d", polls(mid, "7"), polls(final, "7"), sent)
	}
}

// polls is the report's poll count for key, 0 when absent.
func polls(r *report.Report, key string) int64 {
	for _, k := range r.Keys {
		if k.Key == key {
			return k.Polls
		}
	}
	return 0
}

// readReport waits for a complete report at path (it is written atomically) and reads it.
func readReport(t *testing.T, path string) *report.Report {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := report.Read(path)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no readable report at %s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startHeadless runs the binary headless in front of pg with args, on a port of its own choice,
// and returns the address once it listens. It is killed when the test ends, if it has not
// stopped by then.
func startHeadless(t *testing.T, args ...string) (addr string, cmd *exec.Cmd, stderr *pgtest.Output) {
	t.Helper()
	pg := pgtest.Shared(t)
	stderr = &pgtest.Output{}
	cmd = exec.Command(bin, append([]string{"--no-tui", "--listen", "127.0.0.1:0",
		"--upstream", "host=127.0.0.1 port=" + fmt.Sprint(pg.Port) + " sslmode=disable"}, args...)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return waitForLine(t, stderr.String, listeningLine), cmd, stderr
}

// TestTUIShowsPolledKeys runs the real binary with its terminal UI inside tmux, polls two task
// ids through it, and finds them on the screen; q then stops it and the exit report is written.
func TestTUIShowsPolledKeys(t *testing.T) {
	pg := pgtest.Shared(t)
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux is needed for this test: apt-get install -y tmux (make test installs it)")
	}
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE celery_taskmeta (id serial PRIMARY KEY, task_id varchar(155) UNIQUE, status varchar(50));
INSERT INTO celery_taskmeta (task_id, status) VALUES ('tui-task-aaaa', 'PENDING');
GRANT ALL ON celery_taskmeta TO scram_user`)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "proxy.log") // where the TUI's proxy says where it listens
	session := fmt.Sprintf("ppw-test-%d", os.Getpid())
	socket := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-S", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	reportFile := filepath.Join(dir, "exit.md")
	tm("new-session", "-d", "-s", session, "-x", "120", "-y", "40",
		fmt.Sprintf("%s --listen 127.0.0.1:0 --log-file %s --upstream 'host=127.0.0.1 port=%d sslmode=disable' --report %s --refresh 100ms; sleep 30", bin, logFile, pg.Port, reportFile))
	defer exec.Command(tmux, "-S", socket, "kill-server").Run()
	addr := waitForLine(t, func() string { b, _ := os.ReadFile(logFile); return string(b) }, listeningLine)

	host, port, _ := net.SplitHostPort(addr)
	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable application_name=tui-test",
		host, port, pgtest.ScramUser, pgtest.Password, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var screen string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, key := range []string{"tui-task-aaaa", "tui-task-bbbb"} {
			rows, err := conn.Query(context.Background(), "SELECT status FROM celery_taskmeta WHERE task_id = $1", key)
			if err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
		screen = tm("capture-pane", "-p", "-t", session)
		if strings.Contains(screen, "tui-task-aaaa") && strings.Contains(screen, "tui-task-bbbb") && strings.Contains(screen, "PENDING") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(screen, "tui-task-aaaa") || !strings.Contains(screen, "tui-task-bbbb") {
		t.Fatalf("polled keys not on screen:\n%s", screen)
	}
	if !strings.Contains(screen, addr) {
		t.Errorf("header does not show the listen address %s:\n%s", addr, screen)
	}
	conn.Close(context.Background()) // no session left to drain: q stops at once
	tm("send-keys", "-t", session, "q")
	deadline = time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(reportFile)
		if err == nil && strings.Contains(string(b), "tui-task-aaaa") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exit report with the keys after q: %v\n%s", err, tm("capture-pane", "-p", "-t", session))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDemoHeadless runs `pgpollwatch demo` exactly as the README says for scripts and checks
// its report: the ten subtasks storm and spin, and the finding names the fix.
func TestDemoHeadless(t *testing.T) {
	reportFile := filepath.Join(t.TempDir(), "demo.json")
	cmd := exec.Command(bin, "demo", "--duration", "8s", "--report", reportFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	r, err := report.Read(reportFile)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	spinning := 0
	for _, k := range r.Keys {
		if k.Storming && k.Spinning {
			spinning++
		}
	}
	if spinning < 10 {
		t.Errorf("%d keys storm and spin, want the 10 subtasks\n%s", spinning, out)
	}
	var fix bool
	for _, f := range r.Findings {
		fix = fix || f.Kind == "spin-poll" && strings.Contains(f.Fix, "chord")
	}
	if !fix {
		t.Errorf("no spin-poll finding with its fix: %+v", r.Findings)
	}
	if !strings.Contains(string(out), "stopping PostgreSQL and removing its files") {
		t.Errorf("demo did not clean up:\n%s", out)
	}
}

// TestReuseServerConnectionsFlag: with --reuse-server-connections, clients that connect once per
// query share one server backend (the server's own pg_backend_pid says so), and /metrics and the
// headline count the reuse.
func TestReuseServerConnectionsFlag(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	addr, _, stderr := startHeadless(t, "--reuse-server-connections", "--metrics-listen", "127.0.0.1:0", "--log-interval", "500ms")
	maddr := waitForLine(t, stderr.String, metricsLine)
	host, port, _ := net.SplitHostPort(addr)
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable", host, port, pgtest.TrustUser, db)
	pids := map[int]int{}
	const clients = 5
	for i := 0; i < clients; i++ {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids[pid]++
		conn.Close(context.Background())
		// The proxy resets the connection after the client has gone; the next client takes it
		// once it is back. Wait for that, as a program polling once a second would.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(scrapeMetrics(t, maddr), fmt.Sprintf("pgpollwatch_server_connections_kept_total %d", i+1)) {
			if time.Now().After(deadline) {
				t.Fatalf("connection %d not kept:\n%s", i+1, scrapeMetrics(t, maddr))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("%d clients ran on server backends %v, want one backend for all", clients, pids)
	}
	if m := scrapeMetrics(t, maddr); !strings.Contains(m, fmt.Sprintf("pgpollwatch_server_connections_reused_total %d", clients-1)) {
		t.Errorf("/metrics does not count %d reuses:\n%s", clients-1, m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), fmt.Sprintf("server_conns_reused=%d", clients-1)) {
		if time.Now().After(deadline) {
			t.Fatalf("the headline does not count the reuses:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	_, body := httpGet(t, "http://"+addr+"/metrics")
	return body
}

// httpGet gets url from the proxy's metrics listener, which may come up just after the proxy's
// own: a connection refused is tried again for 5 s.
func httpGet(t *testing.T, url string) (status int, body string) {
	t.Helper()
	res, err := http.Get(url)
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		res, err = http.Get(url)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestReadyz runs the binary with --metrics-listen in front of three upstreams: the test server
// (ready), a closed port and a listener that accepts and never answers (both 503 with the
// reason, the silent one after --connect-timeout). /healthz answers 200 throughout: the proxy
// itself is fine.
func TestReadyz(t *testing.T) {
	pgtest.Shared(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, unanswered, until the test ends
		}
	}()
	upstream := func(addr string) string {
		host, port, _ := net.SplitHostPort(addr)
		return "host=" + host + " port=" + port + " sslmode=prefer"
	}
	const connectTimeout = 500 * time.Millisecond
	for _, c := range []struct {
		name, upstream string // "": the test server
		code           int
		reason         string
		took           time.Duration
	}{
		{name: "server up", code: 200, reason: "ready"},
		{name: "port closed", upstream: upstream(closedAddr), code: 503, reason: "connection refused"},
		{name: "no answer", upstream: upstream(silent.Addr().String()), code: 503, reason: "no answer to the SSL request", took: connectTimeout},
	} {
		args := []string{"--metrics-listen", "127.0.0.1:0", "--connect-timeout", connectTimeout.String()}
		if c.upstream != "" {
			args = append(args, "--upstream", c.upstream)
		}
		_, _, stderr := startHeadless(t, args...)
		maddr := waitForLine(t, stderr.String, metricsLine)
		begin := time.Now()
		code, body := httpGet(t, "http://"+maddr+"/readyz")
		took := time.Since(begin)
		if code != c.code || !strings.Contains(body, c.reason) {
			t.Errorf("%s: /readyz %d %q, want %d with %q", c.name, code, body, c.code, c.reason)
		}
		if took < c.took || took > c.took+2*time.Second {
			t.Errorf("%s: /readyz answered in %v, want %v and a little", c.name, took, c.took)
		}
		if code, _ := httpGet(t, "http://"+maddr+"/healthz"); code != 200 {
			t.Errorf("%s: /healthz %d, want 200", c.name, code)
		}
	}
}
