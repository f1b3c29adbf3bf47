package main

// pgpollwatch check: a CI gate. It runs a command (a test suite) with its database traffic
// through the proxy, then judges what the analyzer found against a budget.

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// exitBudget is check's status when the command succeeded and its traffic broke the budget. Not
// 1, which test runners exit with when tests fail: the two must never be taken for each other.
const exitBudget = 99

// checkOptions are the flags of `pgpollwatch check`.
type checkOptions struct {
	proxy      proxyOptions // the proxy's flags check takes (checkProxyFlags), and the defaults of the others
	failOn     failOnList
	maxKeyRate keyRate
}

// checkProxyFlags are the proxy's flags that check takes, with what they mean here where it
// is not what they mean to the proxy.
var checkProxyFlags = []struct{ name, usage string }{
	{"upstream", "the real server: HOST:PORT, or a libpq `DSN` as for the proxy (postgres://host:5432/db?sslmode=prefer\nor 'host=... port=...'); empty means the PG* environment variables and libpq defaults"},
	{"report", "write the report to `file` once the command has exited; the format follows the extension:\n.json, .html or .md"},
	{"report-literals", ""},
	{"watch", ""},
	{"max-keys", ""},
	{"storm-qps", ""},
	{"sweep-qps", ""},
	{"storm-window", "how long the storm rate must hold to start a storm (the proxy's default is 5s: check's is\nshorter so that a spin loop of 2 s in a short test run storms)"},
	{"connect-timeout", ""},
	{"shutdown-grace", "once the command has exited, how long the sessions it left open (a daemon it started) may\nfinish before they are closed"},
	{"tls-cert", ""},
	{"tls-key", ""},
	{"log-level", "debug, info, warn or error (warn: storms and findings are logged on standard error as they\nstart)"},
	{"log-format", ""},
}

// failOnKinds are the finding kinds (analyzer.Finding.Kind) each --fail-on category selects.
// A spin loop is a storm too: a key spins only when it storms.
var failOnKinds = map[string][]string{
	"spin":         {"spin-poll"},
	"storm":        {"poll-storm", "spin-poll"},
	"churn":        {"connection-churn"},
	"queue":        {"queue-poll"},
	"repeat":       {"repeated-read"},
	"after-result": {"polls-after-result"},
}

const failOnNames = "spin, storm, churn, queue, repeat, after-result, all or none"

// failOnList is --fail-on: the categories of findings that break the budget.
type failOnList []string

func (l *failOnList) String() string { return strings.Join(*l, ",") }

// Set replaces the list (the default included) with the comma-separated categories s.
func (l *failOnList) Set(s string) error {
	var out failOnList
	for _, c := range strings.Split(s, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if _, ok := failOnKinds[c]; !ok && c != "all" && c != "none" {
			return fmt.Errorf("%q is not %s", c, failOnNames)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if slices.Contains(out, "none") && len(out) > 1 {
		return errors.New("none goes alone")
	}
	*l = out
	return nil
}

// category is the first category of the list that selects findings of kind, or "".
func (l failOnList) category(kind string) string {
	for _, c := range l {
		if c == "all" || slices.Contains(failOnKinds[c], kind) {
			return c
		}
	}
	return ""
}

// keyRate is --max-key-rate: the most polls of one watched key in one second; 0 is no limit.
type keyRate struct {
	perSec float64
	text   string // as given
}

func (r *keyRate) String() string { return r.text }

// Set reads N/s, N/min or N (per second).
func (r *keyRate) Set(s string) error {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a rate: give N/s, N/min or N (per second), N above 0", s)
	}
	switch strings.TrimSpace(unit) {
	case "", "s", "sec":
	case "min", "m":
		v /= 60
	default:
		return fmt.Errorf("%q: the unit is s or min", s)
	}
	r.perSec, r.text = v, s
	return nil
}

func checkFlags(o *checkOptions) *flag.FlagSet {
	pfs := proxyFlags(&o.proxy)
	// check's own defaults, and what it always is: headless, on a free loopback port.
	o.proxy.stormWindow = 2 * time.Second
	o.proxy.shutdownGrace = 5 * time.Second
	o.proxy.logLevel = "warn"
	o.proxy.listen = "127.0.0.1:0"
	o.proxy.noTUI = true
	o.proxy.keepFindings = true // a storm of the first test is judged after the last
	o.failOn = failOnList{"spin", "storm", "churn", "queue"}

	fs := flag.NewFlagSet("pgpollwatch check", flag.ContinueOnError)
	for _, f := range checkProxyFlags {
		pf := pfs.Lookup(f.name)
		fs.Var(pf.Value, f.name, cmp.Or(f.usage, pf.Usage))
	}
	fs.Var(&o.failOn, "fail-on", "the `kinds` of findings that break the budget, comma-separated: spin, storm, churn,\nqueue, repeat, after-result, all or none")
	fs.Var(&o.maxKeyRate, "max-key-rate", "break the budget when one watched key was polled more than `rate` times in one second:\nN/s, N/min or N (per second); off by default")
	fs.Usage = func() {
		io.WriteString(fs.Output(), `pgpollwatch check: a CI gate. It runs a command (a test suite) with its database traffic
through the proxy, and fails when that traffic broke the budget: a spin loop, a polling storm,
connection churn, a job queue polled much faster than jobs arrive.

Usage:
  pgpollwatch check [flags] -- COMMAND [ARGS...]

The proxy listens on a free loopback port in front of --upstream, and COMMAND runs with
PGHOST=127.0.0.1, PGPORT=<that port>, DATABASE_URL pointed at it (its user, password, database
and parameters kept; built from a URL --upstream, or from PGUSER, PGDATABASE and PGPASSWORD, when
it is not set), PGHOSTADDR removed and PGPOLLWATCH_CHECK=1. Its standard input and output are
pgpollwatch's; SIGINT and SIGTERM are passed on to it. Once it has exited and the sessions it left
open have ended (--shutdown-grace), the analysis takes its last second, and the storms and
findings are printed on standard error, as analyze prints them, then the verdict.

The budget:
  --fail-on KINDS   the findings that break it (default spin,storm,churn,queue):
                      spin          spin-poll: a key, or a poller over many keys, polled with no
                                    wait in between
                      storm         poll-storm, and spin-poll: a spin loop is a storm too
                      churn         connection-churn: many connections, few queries on each
                      queue         queue-poll: a job queue polled much faster than jobs arrive
                      repeat        repeated-read: the same read with the same values, storming
                      after-result  polls-after-result: a result polled on after it was final
                      all           any finding; none: no finding (only --max-key-rate judges)
                    A finding that held earlier in the run counts as much as one at its end.
  --max-key-rate R  the most polls of any one watched key within one second of the clock (the
                    key's peak_qps in the report: its busiest second, the finest measure of its
                    rate the analysis keeps). R is N/s, N/min or N; a key polled exactly once a
                    second may show 2 in a second, so give no less than 2/s.

Short runs: a key storms when it is polled --storm-qps times a second (10) on average over
--storm-window. The proxy's window is 5s; check's is 2s, so that a loop spinning for 2 s of a
short test run (20 polls of a key in 2 s are enough) storms and is judged.

Exit status:
  0     the command succeeded and kept to the budget
  99    the command succeeded and broke the budget; a line per broken rule names the findings
        and keys. Not 1: test runners exit 1 when tests fail (pytest, go test, jest, rspec), and
        a broken budget must never be taken for failed tests, nor failed tests for it (k6 exits
        99 when its thresholds fail, for the same reason)
  2     check could not run the command, which was not started: bad flags, no command, one that
        cannot be started, an upstream that does not answer, a DATABASE_URL it cannot rewrite;
        or the report could not be written
  other the command's own status when it failed (128+N when signal N killed it): its findings
        are printed, but the gate did not judge them

Examples:
  pgpollwatch check --upstream localhost:5432 -- pytest -x tests/
  pgpollwatch check --upstream "$DATABASE_URL" --report pgpollwatch.html -- pytest tests/
  pgpollwatch check --fail-on spin --max-key-rate 2/s -- python manage.py test
  pgpollwatch check --fail-on all --watch jobs.id -- go test ./...

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

func runCheck(args []string) int { return checkCommand(args, os.Stdout, os.Stderr) }

// checkCommand is `pgpollwatch check args...`; the command's standard input and output are
// this process's own, stderr takes pgpollwatch's messages.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	var o checkOptions
	fs := checkFlags(&o)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "pgpollwatch check:", err) // again, after the help
		return exitUsage
	}
	command := fs.Args()
	if len(command) == 0 {
		fmt.Fprintln(stderr, "pgpollwatch check: no command given: pgpollwatch check [flags] -- COMMAND ARGS... (see --help)")
		return exitUsage
	}
	path, err := exec.LookPath(command[0])
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch check: cannot run the command:", err)
		return exitUsage
	}
	o.proxy.upstream = upstreamDSN(o.proxy.upstream)
	log, err := newLogger(stderr, o.proxy.logLevel, o.proxy.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch check:", err)
		return exitUsage
	}
	a, err := newApp(o.proxy, log)
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch check:", err)
		return exitUsage
	}
	defer a.ln.Close()
	if err := a.srv.ProbeUpstream(context.Background()); err != nil {
		fmt.Fprintf(stderr, "pgpollwatch check: the upstream server %s does not answer: %v\n", a.up, err)
		fmt.Fprintln(stderr, "pgpollwatch check: give --upstream HOST:PORT or a DSN (default: the PG* environment variables); the command was not run")
		return exitUsage
	}
	env, warnings, err := proxiedEnv(os.Environ(), a.ln.Addr().String(), o.proxy.upstream, o.proxy.tlsCert != "")
	if err != nil {
		fmt.Fprintln(stderr, "pgpollwatch check:", err)
		return exitUsage
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "pgpollwatch check: warning:", w)
	}

	// Signals are caught before the command starts: one sent as it starts must reach it, not
	// end pgpollwatch.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, stopAnalysis := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); a.an.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(a.ln) }()

	cmd := exec.Command(path, command[1:]...)
	cmd.Args[0] = command[0]
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = env, os.Stdin, stdout, stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		stopAnalysis()
		a.srv.Close()
		fmt.Fprintln(stderr, "pgpollwatch check: cannot run the command:", err)
		return exitUsage
	}
	ps := waitForwarding(cmd, sigs)
	took := time.Since(began).Round(10 * time.Millisecond)

	a.shutdown(context.Background(), "the command exited", sigs)
	<-served
	stopAnalysis()
	<-ran
	return verdict(o, a.reportOf(lastSecond(a.an)), ps, took, stderr)
}

// waitForwarding waits for cmd to exit, passing SIGINT and SIGTERM on to it meanwhile. A ctrl-c
// at a terminal that reached the command too is not passed on again, unless it is the second.
func waitForwarding(cmd *exec.Cmd, sigs <-chan os.Signal) *os.ProcessState {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	interrupts := 0
	for {
		select {
		case <-done:
			return cmd.ProcessState
		case sig := <-sigs:
			if sig == os.Interrupt {
				interrupts++
			}
			if sig != os.Interrupt || interrupts > 1 || !terminalInterrupts() {
				cmd.Process.Signal(sig)
			}
		}
	}
}

// lastSecond takes the final snapshot. The analysis judges complete seconds only, once a second
// (Run, stopped by now): it waits for the second the command ended in to end, and judges it.
func lastSecond(an *analyzer.Analyzer) *analyzer.Snapshot {
	since := time.Since(an.Snapshot().StartedAt)
	time.Sleep(since.Truncate(time.Second) + time.Second - since + 5*time.Millisecond)
	an.Tick(time.Now())
	return an.Snapshot()
}

// verdict prints the findings and the verdict on the command that exited as ps after took,
// writes the report, and gives check's exit status.
func verdict(o checkOptions, rep *report.Report, ps *os.ProcessState, took time.Duration, stderr io.Writer) int {
	report.WriteText(stderr, rep)
	status := exitOK
	if o.proxy.report != "" {
		if err := report.Write(o.proxy.report, rep); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch check: --report:", err)
			status = exitUsage
		} else {
			fmt.Fprintf(stderr, "pgpollwatch check: report written to %s\n", o.proxy.report)
		}
	}
	if rep.Totals.Connections == 0 {
		fmt.Fprintln(stderr, "pgpollwatch check: warning: no connection reached the proxy: does the command take its server from PGHOST/PGPORT or DATABASE_URL?")
	}
	traffic := fmt.Sprintf("%d queries on %d connections through the proxy", rep.Totals.Queries, rep.Totals.Connections)
	if failed, code := commandFailure(ps); failed != "" {
		fmt.Fprintf(stderr, "pgpollwatch check: the command %s after %v (%s): its findings are above, but the gate did not judge them; exit status %d is the command's\n",
			failed, took, traffic, code)
		return code
	}
	broken := o.broken(rep)
	for _, b := range broken {
		fmt.Fprintln(stderr, "pgpollwatch check: budget broken:", b)
	}
	if len(broken) > 0 {
		fmt.Fprintf(stderr, "pgpollwatch check: FAILED: the command succeeded after %v (%s), but its traffic broke %d rule(s) of the budget (exit status %d)\n",
			took, traffic, len(broken), exitBudget)
		return exitBudget
	}
	fmt.Fprintf(stderr, "pgpollwatch check: passed: the command succeeded after %v (%s) and kept to the budget (%s)\n", took, traffic, o.budget())
	return status
}

// commandFailure says how the command failed, and the status check exits with for it: its own,
// or 128+N when signal N killed it, as shells say it. "" when it succeeded.
func commandFailure(ps *os.ProcessState) (string, int) {
	if ps.Success() {
		return "", exitOK
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal()), 128 + int(ws.Signal())
	}
	return fmt.Sprintf("failed (exit status %d)", ps.ExitCode()), ps.ExitCode()
}

// budget words the rules in force.
func (o checkOptions) budget() string {
	s := "no finding of " + o.failOn.String()
	if o.failOn.String() == "none" {
		s = "no finding judged"
	}
	if o.maxKeyRate.perSec > 0 {
		s += ", no key above " + o.maxKeyRate.text
	}
	return s
}

// broken lists the rules of the budget that rep breaks, a line each: a finding of a kind
// --fail-on names, a key polled faster than --max-key-rate.
func (o checkOptions) broken(rep *report.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		c := o.failOn.category(f.Kind)
		if c == "" {
			continue
		}
		line := fmt.Sprintf("--fail-on %s: %s finding: %s", c, f.Kind, f.Summary+f.HeldUntil())
		if keys := findingKeys(rep, f); len(keys) > 0 {
			line += "; keys: " + strings.Join(keys, ", ")
		}
		out = append(out, line)
	}
	if o.maxKeyRate.perSec > 0 {
		fast := keyPeaks(rep, o.maxKeyRate.perSec)
		for i, k := range fast {
			if i == 10 {
				out = append(out, fmt.Sprintf("--max-key-rate %s: … and %d more keys", o.maxKeyRate.text, len(fast)-i))
				break
			}
			out = append(out, fmt.Sprintf("--max-key-rate %s: %s.%s = %s was polled %.0f times in its busiest second",
				o.maxKeyRate.text, k.Table, k.Column, k.Key, k.PeakQPS))
		}
	}
	return out
}

// findingKeys are the keys whose storms make a finding about keys (a poll storm or spin loop of
// a table's keys), at most 5; none for other findings, whose summary names their client or
// statement.
func findingKeys(rep *report.Report, f report.Finding) []string {
	if f.Kind != "spin-poll" && f.Kind != "poll-storm" {
		return nil
	}
	var keys []string
	for _, st := range rep.Storms {
		if st.Kind != "key" || st.Spin != (f.Kind == "spin-poll") || !strings.Contains(f.ID, st.Table+"."+st.Column) || slices.Contains(keys, st.Key) {
			continue
		}
		keys = append(keys, st.Key)
	}
	if len(keys) > 5 {
		keys = append(keys[:5], fmt.Sprintf("… %d more", len(keys)-5))
	}
	return keys
}

// keyPeaks are the keys polled more than limit times in one second, fastest first: from the
// report's keys, and from its storms for keys the report's table of keys left out.
func keyPeaks(rep *report.Report, limit float64) []report.Key {
	var out []report.Key
	seen := map[[3]string]bool{}
	add := func(k report.Key) {
		id := [3]string{k.Table, k.Column, k.Key}
		if k.PeakQPS > limit && !seen[id] {
			seen[id] = true
			out = append(out, k)
		}
	}
	for _, k := range rep.Keys {
		add(k)
	}
	for _, st := range rep.Storms {
		if st.Kind == "key" {
			add(report.Key{Table: st.Table, Column: st.Column, Key: st.Key, PeakQPS: st.PeakQPS})
		}
	}
	slices.SortStableFunc(out, func(x, y report.Key) int { return cmp.Compare(y.PeakQPS, x.PeakQPS) })
	return out
}

// upstreamDSN reads --upstream HOST:PORT (or HOST) as the DSN host=HOST port=PORT; a URL or a
// key=value DSN is left as it is.
func upstreamDSN(s string) string {
	if s == "" || strings.Contains(s, "=") || strings.Contains(s, "://") {
		return s
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		return fmt.Sprintf("host='%s' port=%s", host, port)
	}
	return fmt.Sprintf("host='%s'", s)
}

// proxiedEnv is the command's environment: environ with the PostgreSQL clients' variables
// pointed at the proxy at addr. PGHOST and PGPORT name it, PGHOSTADDR (which would win over
// PGHOST) goes, DATABASE_URL is rewritten to it or, when there is none, built from the upstream
// DSN and the PG* variables, and PGPOLLWATCH_CHECK=1 says the command runs under check. It
// warns when the command's clients would ask the proxy for TLS it cannot give (tls: the proxy
// has a certificate).
func proxiedEnv(environ []string, addr, upstream string, tls bool) (env, warnings []string, err error) {
	var dbURL, password string
	modes := map[string]string{} // where the clients' sslmode comes from: its value
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PGHOST", "PGPORT", "PGHOSTADDR", "PGPOLLWATCH_CHECK":
			continue
		case "DATABASE_URL":
			dbURL = v
			continue
		case "PGSSLMODE":
			modes["PGSSLMODE"] = v
		case "PGPASSWORD":
			password = v
		}
		env = append(env, kv)
	}
	u, err := proxiedURL(dbURL, addr, upstream, password)
	if err != nil {
		return nil, nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	env = append(env, "PGHOST="+host, "PGPORT="+port, "DATABASE_URL="+u, "PGPOLLWATCH_CHECK=1")
	if p, err := url.Parse(u); err == nil && p.Query().Has("sslmode") {
		modes["DATABASE_URL"] = p.Query().Get("sslmode")
	}
	for _, from := range []string{"PGSSLMODE", "DATABASE_URL"} {
		switch m := modes[from]; m {
		case "require", "verify-ca", "verify-full":
			if !tls {
				warnings = append(warnings, fmt.Sprintf("%s asks for TLS (sslmode=%s), which the proxy gives only with --tls-cert and --tls-key: the command's clients will not connect", from, m))
			}
		}
	}
	return env, warnings, nil
}

// proxiedURL is the command's DATABASE_URL: dbURL pointed at the proxy at addr, its user,
// password, database and parameters kept; or, with none, the upstream's user, password,
// database and parameters other than TLS ones (which are the proxy's business with the server)
// when it is a URL; otherwise a URL of the user and database of the upstream DSN, which libpq's
// PG* variables fill, and PGPASSWORD. A DATABASE_URL of another database (sqlite://) stays.
func proxiedURL(dbURL, addr, upstream, password string) (string, error) {
	if dbURL != "" {
		u, err := url.Parse(dbURL)
		if err != nil || u.Scheme == "" || u.Opaque != "" {
			return "", fmt.Errorf("DATABASE_URL %s is not a URL (postgres://user:password@host:port/dbname): check cannot point it at the proxy; the command was not run", report.RedactDSN(dbURL))
		}
		if !strings.Contains(u.Scheme, "postgres") && !strings.Contains(u.Scheme, "pgsql") {
			return dbURL, nil
		}
		return pointAt(u, addr, false), nil
	}
	if strings.Contains(upstream, "://") {
		if u, err := url.Parse(upstream); err == nil {
			return pointAt(u, addr, true), nil
		}
	}
	cfg, err := pgconn.ParseConfig(upstream)
	if err != nil {
		return "", err
	}
	u := &url.URL{Scheme: "postgresql", Host: addr} // not postgres://, which SQLAlchemy refuses
	switch {
	case cfg.User != "" && password != "":
		u.User = url.UserPassword(cfg.User, password)
	case cfg.User != "":
		u.User = url.User(cfg.User)
	}
	if cfg.Database != "" {
		u.Path = "/" + cfg.Database
	}
	return u.String(), nil
}

// pointAt gives u the proxy's address: its host and port, and none in its parameters (libpq's
// host, hostaddr and port parameters win over the URL's host), nor TLS settings with noTLS.
func pointAt(u *url.URL, addr string, noTLS bool) string {
	u.Host = addr
	q := u.Query()
	drop := false
	for k := range q {
		if k == "host" || k == "hostaddr" || k == "port" || noTLS && strings.HasPrefix(k, "ssl") {
			q.Del(k)
			drop = true
		}
	}
	if drop {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
