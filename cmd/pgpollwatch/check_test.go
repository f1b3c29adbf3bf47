package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/fixtures"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// checkPython is Debian's interpreter, for which python3-psycopg2 is installed; the python3
// first on PATH may be another build that cannot see Debian's packages.
const checkPython = "/usr/bin/python3"

// checkPoller is the command the check tests run: it prints the environment it was given,
// polls one celery_taskmeta row through DATABASE_URL (psycopg2, so literal keys over the simple
// protocol, as Celery's own polls), and exits as told.
//
//	poller.py PAUSE SECONDS MAXPOLLS KEY STATUS
//
// It polls KEY until SECONDS have passed or it has polled MAXPOLLS times, sleeping PAUSE
// seconds between two polls, prints how many polls it made and exits with STATUS; a negative
// STATUS is a signal it kills itself with.
const checkPoller = `import os, sys, time, psycopg2
pause, seconds, maxpolls, key, status = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
for name in ("DATABASE_URL", "PGHOST", "PGPORT", "PGHOSTADDR", "PGPOLLWATCH_CHECK"):
    print("%s=%s" % (name, os.environ.get(name, "")))
sys.stdout.flush()
conn = psycopg2.connect(os.environ["DATABASE_URL"])
conn.autocommit = True
cur = conn.cursor()
polls, end = 0, time.monotonic() + seconds
while polls < maxpolls and (polls == 0 or time.monotonic() < end):
    if polls and pause:
        time.sleep(pause)
    cur.execute("SELECT status, result FROM celery_taskmeta WHERE task_id = %s", (key,))
    cur.fetchall()
    polls += 1
conn.close()
print("polls=%d" % polls)
sys.stdout.flush()
if status < 0:
    os.kill(os.getpid(), -status)
sys.exit(status)
`

// checkSetup gives a test the poller script and a database with Celery's result tables, where
// task ids task-* are pending (no row) and task-done has its result.
func checkSetup(t *testing.T) (pg *pgtest.Cluster, db, script string) {
	t.Helper()
	if out, err := exec.Command(checkPython, "-c", "import psycopg2").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import psycopg2 (%v): %s\ninstall it with: apt-get update && apt-get install -y python3-psycopg2 (make test installs it: scripts/install-test-deps)", checkPython, err, out)
	}
	pg = pgtest.Shared(t)
	db = pg.CreateDatabase(t)
	ddl, err := fixtures.DDL(fixtures.Celery)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, db, ddl+`
		INSERT INTO celery_taskmeta (id, task_id, status) VALUES (1, 'task-done', 'SUCCESS');
		GRANT ALL ON ALL TABLES IN SCHEMA public TO `+pgtest.TrustUser+`, `+pgtest.ScramUser)
	script = filepath.Join(t.TempDir(), "poller.py")
	if err := os.WriteFile(script, []byte(checkPoller), 0o644); err != nil {
		t.Fatal(err)
	}
	return pg, db, script
}

// checkEnv is the test's environment without anything that names a server or configures
// pgpollwatch, and with extra.
func checkEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "DATABASE_URL=")
	})
	return append(env, extra...)
}

// trustURL is a DATABASE_URL of the trust user straight to the test server.
func trustURL(pg *pgtest.Cluster, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.TrustUser, pg.Addr(), db)
}

// runChecked runs `pgpollwatch check args...` in env and returns its exit status and output.
func runChecked(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"check"}, args...)...)
	cmd.Env = env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("pgpollwatch check: %v\n%s", err, errOut.String())
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// printed is the value the poller printed for name, "" when absent.
func printed(stdout, name string) string {
	for _, line := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return v
		}
	}
	return ""
}

// finding is the report's first finding of kind, or nil.
func finding(r *report.Report, kind string) *report.Finding {
	for i := range r.Findings {
		if r.Findings[i].Kind == kind {
			return &r.Findings[i]
		}
	}
	return nil
}

// A spin loop on one task id for 3 s, under check's defaults: the gate fails with its own
// status, names the finding, the key and the rate broken, and the report has every poll.
func TestCheckFailsOnSpinLoop(t *testing.T) {
	pg, db, script := checkSetup(t)
	rep := filepath.Join(t.TempDir(), "check.json")
	code, stdout, stderr := runChecked(t, checkEnv("DATABASE_URL="+trustURL(pg, db)),
		"--upstream", pg.Addr(), "--report", rep, "--max-key-rate", "100/s", "--",
		checkPython, script, "0", "3", "1000000", "task-spin", "0")
	if code != exitBudget {
		t.Fatalf("exit status %d, want %d (budget broken)\nstdout:\n%s\nstderr:\n%s", code, exitBudget, stdout, stderr)
	}
	for _, want := range []string{
		"budget broken: --fail-on spin: spin-poll finding: Spin loop", "keys: task-spin",
		"budget broken: --max-key-rate 100/s: celery_taskmeta.task_id = task-spin was polled",
		"FAILED: the command succeeded", "(exit status 99)",
		"HIGH spin-poll", // the findings as analyze prints them
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	r := readReport(t, rep)
	sent, _ := strconv.ParseInt(printed(stdout, "polls"), 10, 64)
	if got := polls(r, "task-spin"); sent < 100 || got != sent {
		t.Errorf("the report counts %d polls of task-spin, the poller sent %d (want 100 or more)", got, sent)
	}
	if finding(r, "spin-poll") == nil {
		t.Errorf("the report has no spin-poll finding: %+v", r.Findings)
	}
}

// The same poller with a second between polls keeps to the budget, a key rate included.
func TestCheckPassesPolitePoller(t *testing.T) {
	pg, db, script := checkSetup(t)
	code, stdout, stderr := runChecked(t, checkEnv("DATABASE_URL="+trustURL(pg, db)),
		"--upstream", pg.Addr(), "--max-key-rate", "2/s", "--",
		checkPython, script, "1", "3", "1000000", "task-polite", "0")
	if code != exitOK || !strings.Contains(stderr, "passed: the command succeeded") || strings.Contains(stderr, "budget broken") {
		t.Fatalf("exit status %d, want 0 and passed\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if n := printed(stdout, "polls"); n != "4" {
		t.Errorf("the poller made %s polls in 3 s with a second between them, want 4", n)
	}
}

// A command that fails gives its own status, told apart from the gate's verdict, though its
// findings are printed: exit 3, killed by a signal, and killed by the SIGTERM check was sent
// and passed on.
func TestCheckCommandFailure(t *testing.T) {
	pg, db, script := checkSetup(t)
	env := checkEnv("DATABASE_URL=" + trustURL(pg, db))
	code, stdout, stderr := runChecked(t, env, "--upstream", pg.Addr(), "--",
		checkPython, script, "0", "1.5", "1000000", "task-spin", "3")
	if code != 3 {
		t.Fatalf("exit status %d, want the command's 3\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"the command failed (exit status 3)", "the gate did not judge them", "spin-poll"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "budget broken") {
		t.Errorf("a failed command's findings were judged:\n%s", stderr)
	}

	code, stdout, stderr = runChecked(t, env, "--upstream", pg.Addr(), "--",
		checkPython, script, "0", "10", "3", "task-1", "-9")
	if code != 128+9 || !strings.Contains(stderr, "the command was killed by signal 9 (killed)") || printed(stdout, "polls") != "3" {
		t.Errorf("a command that killed itself: exit status %d, want 137\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// SIGTERM to check reaches the command, which dies of it.
	cmd := exec.Command(bin, "check", "--upstream", pg.Addr(), "--",
		checkPython, "-c", "import time; print('ready', flush=True); time.sleep(30)")
	cmd.Env = env
	var errOut pgtest.Output
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the command said %q\n%s", line, errOut.String())
	}
	began := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 128+15 || !strings.Contains(errOut.String(), "the command was killed by signal 15 (terminated)") {
		t.Errorf("after SIGTERM: exit status %d, want 143\n%s", code, errOut.String())
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("check took %v to stop after SIGTERM: the command did not get it", took)
	}
}

// The command sees the proxy in PGHOST, PGPORT and DATABASE_URL, and no PGHOSTADDR; a
// DATABASE_URL keeps its user, password, database and parameters, one is built from the
// upstream and PG* when there is none; and the proxy saw every query.
func TestCheckEnvironment(t *testing.T) {
	pg, db, script := checkSetup(t)
	sent := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&application_name=checktest", pgtest.ScramUser, pgtest.Password, pg.Addr(), db)
	for _, c := range []struct {
		name     string
		env      []string
		upstream string
		want     string // DATABASE_URL, PORT for the proxy's port
	}{
		{"DATABASE_URL rewritten", []string{"DATABASE_URL=" + sent, "PGHOSTADDR=192.0.2.1"}, "host=127.0.0.1 sslmode=disable port=" + strconv.Itoa(pg.Port),
			fmt.Sprintf("postgres://%s:%s@127.0.0.1:PORT/%s?sslmode=disable&application_name=checktest", pgtest.ScramUser, url.QueryEscape(pgtest.Password), db)},
		{"DATABASE_URL built", []string{"PGUSER=" + pgtest.TrustUser, "PGDATABASE=" + db, "PGHOSTADDR=192.0.2.1"}, pg.Addr(),
			fmt.Sprintf("postgresql://%s@127.0.0.1:PORT/%s", pgtest.TrustUser, db)},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := filepath.Join(t.TempDir(), "check.json")
			code, stdout, stderr := runChecked(t, checkEnv(c.env...), "--upstream", c.upstream, "--report", rep, "--",
				checkPython, script, "0", "10", "7", "task-env", "0")
			if code != exitOK {
				t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			port := printed(stdout, "PGPORT")
			if p, err := strconv.Atoi(port); err != nil || p == pg.Port {
				t.Errorf("PGPORT=%s: not the proxy's port (the server's is %d)", port, pg.Port)
			}
			want := strings.ReplaceAll(c.want, "PORT", port)
			if got := printed(stdout, "DATABASE_URL"); got != want {
				t.Errorf("DATABASE_URL=%s\nwant         %s", got, want)
			}
			for name, want := range map[string]string{"PGHOST": "127.0.0.1", "PGHOSTADDR": "", "PGPOLLWATCH_CHECK": "1", "polls": "7"} {
				if got := printed(stdout, name); got != want {
					t.Errorf("%s=%s, want %q", name, got, want)
				}
			}
			r := readReport(t, rep)
			if got := polls(r, "task-env"); got != 7 || r.Totals.Connections != 1 {
				t.Errorf("the proxy saw %d polls of task-env on %d connections, want 7 on 1", got, r.Totals.Connections)
			}
		})
	}
}

// Usage errors exit with 2, say what is wrong, and never run the command.
func TestCheckUsageErrors(t *testing.T) {
	pg := pgtest.Shared(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	marker := filepath.Join(t.TempDir(), "ran")
	touch := []string{"--", "touch", marker}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", pg.Addr()}, "no command given"},
		{append([]string{"--upstream", pg.Addr(), "--fail-on", "spin,stroms"}, touch...), `"stroms" is not spin, storm, churn`},
		{append([]string{"--upstream", pg.Addr(), "--max-key-rate", "fast"}, touch...), `"fast" is not a rate`},
		{append([]string{"--upstream", pg.Addr(), "--max-key-rate", "5/h"}, touch...), "the unit is s or min"},
		{append([]string{"--upstream", pg.Addr(), "--report", "r.txt"}, touch...), "--report"},
		{append([]string{"--upstream", closedAddr}, touch...), "the upstream server " + closedAddr + " does not answer"},
		{[]string{"--upstream", pg.Addr(), "--", "no-such-command-pgpollwatch"}, "cannot run the command"},
	} {
		code, _, stderr := runChecked(t, checkEnv(), c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("check %s: exit status %d, want 2 with %q:\n%s", strings.Join(c.args, " "), code, c.want, stderr)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("check %s ran the command", strings.Join(c.args, " "))
		}
	}
}

// The budget's flags read what they document.
func TestCheckBudgetFlags(t *testing.T) {
	var l failOnList
	if err := l.Set("Spin, queue,spin"); err != nil || l.String() != "spin,queue" {
		t.Errorf("--fail-on 'Spin, queue,spin': %v %v", l, err)
	}
	for kind, want := range map[string]string{"spin-poll": "spin", "queue-poll": "queue", "poll-storm": "", "connection-churn": ""} {
		if got := l.category(kind); got != want {
			t.Errorf("--fail-on spin,queue takes %s for %q, want %q", kind, got, want)
		}
	}
	l.Set("storm")
	if l.category("spin-poll") != "storm" {
		t.Error("--fail-on storm does not take a spin loop")
	}
	l.Set("all")
	if l.category("some-future-kind") != "all" {
		t.Error("--fail-on all does not take every kind")
	}
	for _, bad := range []string{"", "spin,", "none,spin", "spinning"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("--fail-on %q accepted", bad)
		}
	}
	for in, want := range map[string]float64{"5/s": 5, "5": 5, "120/min": 2, "0.5/s": 0.5} {
		var r keyRate
		if err := r.Set(in); err != nil || r.perSec != want {
			t.Errorf("--max-key-rate %s: %v/s %v, want %v/s", in, r.perSec, err, want)
		}
	}
	for _, bad := range []string{"0", "-1/s", "5/h", "NaN", "Inf", "fast"} {
		var r keyRate
		if err := r.Set(bad); err == nil {
			t.Errorf("--max-key-rate %q accepted", bad)
		}
	}
}

// DATABASE_URL is pointed at the proxy whatever its form, and built when absent.
func TestCheckProxiedURL(t *testing.T) {
	const proxy = "127.0.0.1:4242"
	for _, c := range []struct{ dbURL, upstream, password, want string }{
		{"postgres://app:s%40cret@db.internal:5432/app?sslmode=prefer&application_name=x", "", "", "postgres://app:s%40cret@127.0.0.1:4242/app?sslmode=prefer&application_name=x"},
		{"db+postgresql://app@db/app", "", "", "db+postgresql://app@127.0.0.1:4242/app"},
		{"postgresql+psycopg2://app@/app?host=/var/run/postgresql&hostaddr=10.0.0.1", "", "", "postgresql+psycopg2://app@127.0.0.1:4242/app"},
		{"sqlite:///tmp/app.db", "", "", "sqlite:///tmp/app.db"}, // not PostgreSQL's: left alone
		{"", "postgres://app:pw@db:5432/app?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5", "", "postgres://app:pw@127.0.0.1:4242/app?connect_timeout=5"},
		{"", "host=db port=5432 user=app dbname=shop", "pw", "postgresql://app:pw@127.0.0.1:4242/shop"},
	} {
		got, err := proxiedURL(c.dbURL, proxy, c.upstream, c.password)
		if err != nil || got != c.want {
			t.Errorf("DATABASE_URL %q, upstream %q: %q %v\nwant %q", c.dbURL, c.upstream, got, err, c.want)
		}
	}
	if _, err := proxiedURL("host=db dbname=app password=secret", proxy, "", ""); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("a key=value DATABASE_URL: %v, want an error without its password", err)
	}
	if got := upstreamDSN("localhost:5432"); got != "host='localhost' port=5432" {
		t.Errorf("--upstream localhost:5432 is %q", got)
	}
	_, warnings, _ := proxiedEnv([]string{"DATABASE_URL=postgres://app@db/app?sslmode=require"}, proxy, "", false)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "--tls-cert") {
		t.Errorf("sslmode=require without a certificate: warnings %q", warnings)
	}
}
