package proxy_test

// Tests that run the real PostgreSQL command-line clients (psql, pgbench) through the proxy and
// compare what they see with what they see when talking to the server directly.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// cliInstallCommand installs psql and pgbench on the Debian/Ubuntu test machines.
const cliInstallCommand = "apt-get install -y postgresql-client-15"

// cliBin returns the path of a PostgreSQL client program: from pg.BinDir, or else from the
// directory initdb really lives in (pg.BinDir may hold only a symlink to initdb, e.g.
// /usr/local/bin -> /usr/lib/postgresql/15/bin, so that is the same installation). The tests
// fail (never skip) when it is missing.
func cliBin(t testing.TB, name string) string {
	t.Helper()
	pg := pgtest.Shared(t)
	dirs := []string{pg.BinDir}
	if initdb, err := filepath.EvalSymlinks(filepath.Join(pg.BinDir, "initdb")); err == nil && filepath.Dir(initdb) != pg.BinDir {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			return path
		}
	}
	t.Fatalf("%s not found in %s; install it with: %s", name, strings.Join(dirs, " or "), cliInstallCommand)
	return ""
}

// cliTarget is where a client program connects: the proxy or the server itself.
type cliTarget struct{ host, port string }

func viaProxy(p *testProxy) cliTarget {
	host, port, _ := net.SplitHostPort(p.addr)
	return cliTarget{host, port}
}

func direct(t testing.TB) cliTarget {
	pg := pgtest.Shared(t)
	return cliTarget{pg.Host, strconv.Itoa(pg.Port)}
}

// cliEnv is pg.Env() pointed at tg as user on db without TLS, with a private HOME (no
// ~/.psqlrc, ~/.pgpass or ~/.postgresql/root.crt can leak in) and untranslated messages. extra
// holds KEY=VALUE overrides; os/exec keeps the last value of a duplicated key.
func cliEnv(t testing.TB, tg cliTarget, user, db string, extra ...string) []string {
	t.Helper()
	pg := pgtest.Shared(t)
	env := append(pg.Env(),
		"PGHOST="+tg.host,
		"PGPORT="+tg.port,
		"PGUSER="+user,
		"PGPASSWORD="+pgtest.Password,
		"PGDATABASE="+db,
		"PGSSLMODE=disable",
		"PGCONNECT_TIMEOUT=10",
		"HOME="+t.TempDir(),
		"PSQLRC=/dev/null",
		"LC_ALL=C",
		"LANG=C",
		"LANGUAGE=",
	)
	return append(env, extra...)
}

type cliResult struct {
	stdout, stderr string
	code           int // exit status; -1 when killed by a signal
	elapsed        time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d after %v\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// cliCmd prepares a client program run bounded by timeout.
func cliCmd(t testing.TB, timeout time.Duration, env []string, stdin []byte, prog string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, cliBin(t, prog), args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	cmd.WaitDelay = 2 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// waitCLI waits for a started cmd and collects its result.
func waitCLI(t testing.TB, cmd *exec.Cmd, stdout, stderr *bytes.Buffer, started time.Time) cliResult {
	t.Helper()
	err := cmd.Wait()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(started)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v\n%s", cmd.Path, err, r)
	}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	return r
}

// runCLI runs a client program to completion.
func runCLI(t testing.TB, timeout time.Duration, env []string, stdin []byte, prog string, args ...string) cliResult {
	t.Helper()
	cmd, stdout, stderr := cliCmd(t, timeout, env, stdin, prog, args...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", prog, err)
	}
	return waitCLI(t, cmd, stdout, stderr, start)
}

// psql runs psql without ~/.psqlrc and never prompting for a password.
func psql(t testing.TB, env []string, stdin []byte, args ...string) cliResult {
	t.Helper()
	return runCLI(t, 30*time.Second, env, stdin, "psql", append([]string{"-X", "-w"}, args...)...)
}

// normalizePorts replaces the proxy's and the server's port numbers so messages that name the
// port they connected to compare equal.
func normalizePorts(s string, ports ...string) string {
	for _, p := range ports {
		s = strings.ReplaceAll(s, p, "<PORT>")
	}
	return s
}

// sqlText is a statement's text without surrounding blanks or a final semicolon.
func sqlText(s string) string { return strings.TrimSuffix(strings.TrimSpace(s), ";") }

// eventsOf returns the recorded events for which keep is true.
func eventsOf(p *testProxy, keep func(recordedEvent) bool) []recordedEvent {
	var out []recordedEvent
	for _, ev := range p.obs.snapshot() {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// 1. pgbench in the three query modes, and in pipeline mode

// pgbenchStatements are the statements of pgbench's built-in TPC-B-like script as
// pg_stat_statements normalizes them (constants and pgbench variables both become $n).
var pgbenchStatements = []string{
	"BEGIN",
	"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
	"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
	"UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
	"UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2",
	"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
	"END",
}

// pipelineStatements are those of testdata/cli/pipeline.pgbench, normalized.
var pipelineStatements = []string{
	"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
	"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
	"SELECT tbalance FROM pgbench_tellers WHERE tid = $1",
	"INSERT INTO pgbench_history (tid, aid, delta, mtime) VALUES ($1, $2, $3, CURRENT_TIMESTAMP)",
}

// matchesStatement reports whether the text the proxy observed is an execution of norm, the
// normalized form pg_stat_statements stores: with the simple protocol the text carries the
// literals, so everything up to the first placeholder must match and the rest is ignored.
func matchesStatement(text, norm string) bool {
	text = sqlText(text)
	prefix, _, hasParams := strings.Cut(norm, "$")
	if !hasParams {
		return text == norm
	}
	return strings.HasPrefix(text, prefix)
}

func TestCLIPgbench(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	const clients, perClient = 4, 200
	const total = clients * perClient
	for _, c := range []struct {
		name, mode string
		script     string // -f file; "" for the built-in TPC-B-like script
		stmts      []string
	}{
		{"simple", "simple", "", pgbenchStatements},
		{"extended", "extended", "", pgbenchStatements},
		{"prepared", "prepared", "", pgbenchStatements},
		{"extended-pipeline", "extended", "testdata/cli/pipeline.pgbench", pipelineStatements},
		{"prepared-pipeline", "prepared", "testdata/cli/pipeline.pgbench", pipelineStatements},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := pg.CreateDatabase(t)
			p := startProxy(t)

			initRes := runCLI(t, 60*time.Second, cliEnv(t, direct(t), pgtest.ScramUser, db), nil, "pgbench", "-i", "-s", "1", "-q")
			if initRes.code != 0 {
				t.Fatalf("pgbench -i directly failed:\n%s", initRes)
			}

			args := []string{"-n", "-t", strconv.Itoa(perClient), "-c", strconv.Itoa(clients), "-j", "2", "-M", c.mode}
			if c.script != "" {
				script, err := filepath.Abs(c.script)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, "-f", script)
			}
			res := runCLI(t, 60*time.Second, cliEnv(t, viaProxy(p), pgtest.ScramUser, db), nil, "pgbench", args...)
			t.Logf("pgbench %s through the proxy: %v", strings.Join(args, " "), res.elapsed.Round(time.Millisecond))
			if res.code != 0 {
				t.Fatalf("pgbench %s through the proxy failed:\n%s", strings.Join(args, " "), res)
			}
			want := fmt.Sprintf("number of transactions actually processed: %d/%d", total, total)
			if !strings.Contains(res.stdout, want) {
				t.Errorf("pgbench output lacks %q:\n%s", want, res)
			}
			if strings.Contains(res.stdout, "number of failed transactions:") && !strings.Contains(res.stdout, "number of failed transactions: 0 ") {
				t.Errorf("pgbench reports failed transactions:\n%s", res)
			}
			if strings.Contains(strings.ToLower(res.stderr), "error") {
				t.Errorf("pgbench stderr reports errors:\n%s", res)
			}

			// Ground truth: what the server executed. pgbench's own count is ground truth too:
			// PostgreSQL 15's pg_stat_statements counts a utility statement run from a prepared
			// statement only on its first execution (pgss_ProcessUtility zeroes the queryId of the
			// cached plan), so under -M prepared BEGIN and END show one call per client.
			stats := statStatements(t, db)
			wantCalls := func(norm string) int64 {
				if c.mode == "prepared" && (norm == "BEGIN" || norm == "END") {
					return clients
				}
				return total
			}
			for _, norm := range c.stmts {
				if got := stats[norm]; got != wantCalls(norm) {
					var similar []string
					for q, n := range stats {
						if strings.Contains(q, "pgbench_") || q == "BEGIN" || q == "END" {
							similar = append(similar, fmt.Sprintf("%d\t%s", n, q))
						}
					}
					slices.Sort(similar)
					t.Errorf("pg_stat_statements calls of %q = %d, want %d; pgbench-like entries:\n%s",
						norm, got, wantCalls(norm), strings.Join(similar, "\n"))
				}
			}

			// The proxy must have seen exactly what the server executed, no more and no less.
			observed := func(norm string) int64 {
				if wantCalls(norm) != total {
					return total // the pg_stat_statements quirk above: pgbench's count is the truth
				}
				return stats[norm]
			}
			wantProto := proxy.Extended
			if c.mode == "simple" {
				wantProto = proxy.Simple
			}
			count := func(norm string) int {
				return len(eventsOf(p, func(ev recordedEvent) bool { return matchesStatement(ev.text, norm) }))
			}
			waitFor(t, "the observer to see every pgbench statement", func() bool {
				for _, norm := range c.stmts {
					if int64(count(norm)) < observed(norm) {
						return false
					}
				}
				return true
			})
			time.Sleep(50 * time.Millisecond) // let any surplus event arrive before counting exactly
			for _, norm := range c.stmts {
				evs := eventsOf(p, func(ev recordedEvent) bool { return matchesStatement(ev.text, norm) })
				if int64(len(evs)) != observed(norm) {
					t.Errorf("observer saw %d events of %q, want %d (pg_stat_statements counted %d calls)",
						len(evs), norm, observed(norm), stats[norm])
				}
				var failed, wrongProto, wrongParams, unnamed int
				wantParams := strings.Count(norm, "$")
				for _, ev := range evs {
					if ev.failed {
						failed++
					}
					if ev.protocol != wantProto {
						wrongProto++
					}
					if c.mode != "simple" && len(ev.params) != wantParams {
						wrongParams++
					}
					if ev.stmtName == "" {
						unnamed++
					}
				}
				if failed > 0 || wrongProto > 0 || wrongParams > 0 {
					t.Errorf("%q: %d events failed, %d not %v protocol, %d without %d parameters (first: %+v)",
						norm, failed, wrongProto, wantProto, wrongParams, wantParams, evs[:1])
				}
				if c.mode == "prepared" && unnamed > 0 {
					t.Errorf("%q: %d events of -M prepared name no prepared statement", norm, unnamed)
				}
				if c.mode == "extended" && unnamed != len(evs) {
					t.Errorf("%q: %d events of -M extended name a prepared statement", norm, len(evs)-unnamed)
				}
			}
			// Each SELECT returns exactly one row of one column.
			for _, ev := range eventsOf(p, func(ev recordedEvent) bool {
				return strings.HasPrefix(sqlText(ev.text), "SELECT ") && strings.Contains(ev.text, "pgbench_")
			}) {
				if ev.rows != 1 || ev.tag != "SELECT 1" || ev.digest == 0 || ev.columns != 1 || ev.firstRow == "" {
					t.Errorf("SELECT event: rows %d, tag %q, digest %x, columns %d, first row %q; want 1 row of 1 column, SELECT 1",
						ev.rows, ev.tag, ev.digest, ev.columns, ev.firstRow)
					break
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// 2. COPY in both directions

// copyData returns n rows in COPY text format, written the way COPY TO writes them (so the
// table dumps back to exactly these bytes): escapes, NULLs, non-ASCII text, and a few rows far
// larger than the proxy's buffers so CopyData messages stream through in pieces.
func copyData(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("row %d", i)
		switch i % 7 {
		case 1:
			name += `\ttab\\backslash\nnewline\rcr`
		case 2:
			name += " héllo wörld ✓"
		case 3:
			name = ""
		}
		note := `\N`
		if i%3 == 0 {
			note = fmt.Sprintf("note-%x", i*7919)
		}
		if i%1000 == 500 {
			note = strings.Repeat(fmt.Sprintf("%07d|", i), 6000) // 48 KB
		}
		fmt.Fprintf(&b, "%d\t%s\t%d.%02d\t%s\n", i, name, i*37%100000, i%100, note)
	}
	return b.Bytes()
}

func TestCLICopy(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	const nrows = 10000
	db := pg.CreateDatabase(t)
	p := startProxy(t)
	proxyEnv := cliEnv(t, viaProxy(p), pgtest.ScramUser, db)
	directEnv := cliEnv(t, direct(t), pgtest.ScramUser, db)
	data := copyData(nrows)

	ddl := psql(t, directEnv, nil, "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE TABLE via_proxy (id int, name text, amount numeric(12,2), note text)",
		"-c", "CREATE TABLE via_direct (LIKE via_proxy)")
	if ddl.code != 0 {
		t.Fatalf("creating tables:\n%s", ddl)
	}

	// COPY FROM STDIN: psql's stdin carries the data after the \copy command.
	load := func(env []string, table string) cliResult {
		r := psql(t, env, data, "-v", "ON_ERROR_STOP=1", "-c", `\copy `+table+` FROM STDIN`)
		if r.code != 0 {
			t.Fatalf("\\copy %s FROM STDIN failed:\n%s", table, r)
		}
		return r
	}
	viaProxyLoad := load(proxyEnv, "via_proxy")
	directLoad := load(directEnv, "via_direct")
	if viaProxyLoad.stdout != directLoad.stdout || viaProxyLoad.stderr != directLoad.stderr {
		t.Errorf("\\copy FROM STDIN through the proxy:\n%s\ndirectly:\n%s", viaProxyLoad, directLoad)
	}
	if want := fmt.Sprintf("COPY %d\n", nrows); viaProxyLoad.stdout != want {
		t.Errorf("\\copy FROM STDIN through the proxy printed %q, want %q", viaProxyLoad.stdout, want)
	}

	// Row counts, checked directly.
	conn := connect(t, directString(t, pgtest.SuperUser, db))
	for _, table := range []string{"via_proxy", "via_direct"} {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != nrows {
			t.Errorf("%s holds %d rows, want %d", table, n, nrows)
		}
	}
	var same bool
	if err := conn.QueryRow(context.Background(),
		`SELECT NOT EXISTS (SELECT * FROM via_proxy EXCEPT ALL SELECT * FROM via_direct)
		    AND NOT EXISTS (SELECT * FROM via_direct EXCEPT ALL SELECT * FROM via_proxy)`).Scan(&same); err != nil {
		t.Fatal(err)
	}
	if !same {
		t.Errorf("the table loaded through the proxy differs from the one loaded directly")
	}

	// COPY TO STDOUT: byte-identical through the proxy and directly, in every format.
	for _, c := range []struct{ name, cmd string }{
		{"text", "COPY via_proxy TO STDOUT"},
		// The heap may reorder a few rows (free space reuse), so compare with the input in id order.
		{"text ordered", `\copy (SELECT * FROM via_proxy ORDER BY id) TO STDOUT`},
		{"csv", `\copy (SELECT * FROM via_proxy ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)`},
		{"binary", "COPY via_proxy TO STDOUT (FORMAT binary)"},
	} {
		got := psql(t, proxyEnv, nil, "-v", "ON_ERROR_STOP=1", "-c", c.cmd)
		want := psql(t, directEnv, nil, "-v", "ON_ERROR_STOP=1", "-c", c.cmd)
		if got.code != 0 || want.code != 0 {
			t.Fatalf("%s: through the proxy:\n%s\ndirectly:\n%s", c.cmd, got, want)
		}
		if got.stdout != want.stdout {
			t.Errorf("%s: %d bytes through the proxy differ from %d bytes directly (first difference at byte %d)",
				c.cmd, len(got.stdout), len(want.stdout), firstDiff(got.stdout, want.stdout))
		}
		if got.stderr != want.stderr {
			t.Errorf("%s: stderr through the proxy %q, directly %q", c.cmd, got.stderr, want.stderr)
		}
		if c.name == "text ordered" && got.stdout != string(data) {
			t.Errorf("COPY TO STDOUT through the proxy does not give back the loaded data (%d bytes vs %d, first difference at byte %d)",
				len(got.stdout), len(data), firstDiff(got.stdout, string(data)))
		}
	}

	// A row the server rejects half way through the data: the server answers while psql is
	// still streaming (the data is far larger than the socket buffers), drops the rest, and the
	// session goes on in sync. Same table both ways, so the error text is the same too.
	bad := bytes.Replace(data, []byte("\n5000\t"), []byte("\noops\t"), 1)
	script := append(append([]byte("\\copy via_proxy FROM STDIN\n"), bad...), "\\.\nSELECT count(*) AS rows_after FROM via_proxy;\n"...)
	badVia := psql(t, proxyEnv, script, "-f", "-")
	badDirect := psql(t, directEnv, script, "-f", "-")
	if badVia.code != badDirect.code || badVia.stdout != badDirect.stdout || badVia.stderr != badDirect.stderr {
		t.Errorf("COPY with a bad row through the proxy:\n%s\ndirectly:\n%s", badVia, badDirect)
	}
	if !strings.Contains(badVia.stderr, `invalid input syntax for type integer: "oops"`) ||
		!strings.Contains(badVia.stdout, fmt.Sprintf(" rows_after \n------------\n      %d\n", nrows)) {
		t.Errorf("COPY with a bad row through the proxy: want the error and the unchanged count:\n%s", badVia)
	}

	// The proxy saw every COPY through it: the load and the four dumps complete with their row
	// counts, the bad load failed with the server's SQLSTATE.
	copyTag := fmt.Sprintf("COPY %d", nrows)
	isCopy := func(ev recordedEvent) bool { return strings.HasPrefix(strings.TrimSpace(ev.text), "COPY") }
	waitFor(t, "COPY events", func() bool { return len(eventsOf(p, isCopy)) >= 6 })
	time.Sleep(50 * time.Millisecond)
	evs := eventsOf(p, isCopy)
	if len(evs) != 6 {
		t.Errorf("observer saw %d COPY events, want 6: %+v", len(evs), evs)
	}
	for i, ev := range evs {
		if i == len(evs)-1 {
			if !ev.failed || ev.sqlstate != "22P02" {
				t.Errorf("COPY event %+v: want the bad load to fail with 22P02", ev)
			}
			continue
		}
		if ev.failed || ev.tag != copyTag || ev.protocol != proxy.Simple {
			t.Errorf("COPY event %+v: want tag %q, simple protocol, not failed", ev, copyTag)
		}
	}
	if got := eventsOf(p, func(ev recordedEvent) bool { return strings.Contains(ev.text, "rows_after") }); len(got) != 1 || got[0].failed || got[0].rows != 1 {
		t.Errorf("the SELECT after the failed COPY: events %+v, want one that returned a row", got)
	}
}

// lineDiff shows the first line where a and b differ, with a little context; "" when equal.
func lineDiff(a, b string) string {
	if a == b {
		return ""
	}
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	var out strings.Builder
	for j := max(0, i-3); j < i; j++ {
		fmt.Fprintf(&out, "  %s\n", al[j])
	}
	for j := i; j < min(i+5, len(al)); j++ {
		fmt.Fprintf(&out, "- %s\n", al[j])
	}
	for j := i; j < min(i+5, len(bl)); j++ {
		fmt.Fprintf(&out, "+ %s\n", bl[j])
	}
	fmt.Fprintf(&out, "(first difference at line %d of %d / %d)", i+1, len(al), len(bl))
	return out.String()
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// ---------------------------------------------------------------------------------------------
// 3. \watch

func TestCLIWatch(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	db := pg.CreateDatabase(t)
	p := startProxy(t)

	// PostgreSQL 15's \watch has no iteration count: stop it with SIGINT as a user would. (It
	// also cannot follow a separate -c: each -c starts with an empty query buffer, and \watch
	// refuses "an empty query"; so the script comes on stdin.)
	cmd, stdout, stderr := cliCmd(t, 20*time.Second, cliEnv(t, viaProxy(p), pgtest.ScramUser, db),
		[]byte("SELECT 1 AS x \\watch 0.2\n"), "psql", "-X", "-w", "-f", "-")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt after the fifth iteration went through the proxy, however long psql took to
	// start (a fixed sleep would count on a fast machine).
	isWatch := func(ev recordedEvent) bool { return sqlText(ev.text) == "SELECT 1 AS x" } // psql sends "SELECT 1 AS x "
	waitFor(t, "5 \\watch iterations", func() bool { return len(eventsOf(p, isWatch)) >= 5 })
	interrupted := time.Since(start)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	killer := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
	defer killer.Stop()
	res := waitCLI(t, cmd, stdout, stderr, start)
	if res.elapsed-interrupted > 5*time.Second {
		t.Errorf("psql took %v to stop after SIGINT", res.elapsed-interrupted)
	}
	if res.code < 0 {
		t.Fatalf("psql was killed:\n%s", res)
	}

	// One result per \watch iteration (every 0.2 s, at least 5 before the interrupt; the last
	// may not be printed yet), each under a timestamped header.
	const result = " x \n---\n 1\n(1 row)\n"
	n := strings.Count(res.stdout, result)
	if n < 4 {
		t.Fatalf("the result of SELECT 1 AS x appears %d times, want at least 4:\n%s", n, res)
	}
	if ticks := regexp.MustCompile(`\(every 0\.2s\)\n\n x \n`).FindAllStringIndex(res.stdout, -1); len(ticks) != n {
		t.Errorf("%d \\watch headers for %d results:\n%s", len(ticks), n, res)
	}
	if strings.Contains(res.stderr, "ERROR") || strings.Contains(res.stderr, "FATAL") {
		t.Errorf("psql reported an error:\n%s", res)
	}

	// Every result psql printed went through the proxy as a statement event; the SIGINT may
	// have landed after one more result arrived but before psql printed it.
	ok := func(ev recordedEvent) bool { return isWatch(ev) && !ev.failed }
	waitFor(t, "watch events", func() bool { return len(eventsOf(p, ok)) >= n })
	time.Sleep(50 * time.Millisecond)
	evs := eventsOf(p, isWatch)
	if len(evs) < n || len(evs) > n+1 {
		t.Errorf("observer saw %d events of SELECT 1 AS x for %d printed results: %+v", len(evs), n, evs)
	}
	var digest uint64
	for i, ev := range evs {
		if ev.failed {
			if i != len(evs)-1 || ev.sqlstate != "57014" {
				t.Errorf("event %d failed: %+v", i, ev)
			}
			continue
		}
		if ev.rows != 1 || ev.tag != "SELECT 1" || ev.protocol != proxy.Simple || ev.columns != 1 || !strings.HasSuffix(ev.firstRow, "\x00\x00\x00\x011") {
			t.Errorf("event %d: %+v; want 1 row of 1 column holding \"1\", tag SELECT 1, simple protocol", i, ev)
		}
		if digest == 0 {
			digest = ev.digest
		} else if ev.digest != digest {
			t.Errorf("event %d: digest %x differs from the first poll's %x for the same result", i, ev.digest, digest)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// 4. Ctrl-C cancels the running statement through the proxy

func TestCLICancel(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	_, tlsConf := writeTestCert(t)
	upstreamTLS := withUpstream("host=127.0.0.1 port=" + portOf(pg.Addr()) + " sslmode=require")
	for _, c := range []struct {
		name string
		opts []proxyOption
		user string   // MD5User where the upstream is TLS, to stay clear of SCRAM channel binding
		env  []string // PGSSLMODE
	}{
		{"plain", nil, pgtest.ScramUser, nil},
		// The CancelRequest itself travels unencrypted on a new connection, as libpq sends it.
		{"client-tls", []proxyOption{withTLS(tlsConf)}, pgtest.ScramUser, []string{"PGSSLMODE=require"}},
		// The proxy forwards it to the server over TLS, as its upstream settings say.
		{"tls-both-legs", []proxyOption{withTLS(tlsConf), upstreamTLS}, pgtest.MD5User, []string{"PGSSLMODE=require"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testCancel(t, startProxy(t, c.opts...), c.user, c.env)
		})
	}
}

func testCancel(t *testing.T, p *testProxy, user string, env []string) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	super := connect(t, directString(t, pgtest.SuperUser, db))
	ctx := context.Background()

	sleepers := func(activeOnly bool) int {
		t.Helper()
		var n int
		err := super.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid() AND query = 'SELECT pg_sleep(30)'
			  AND (state = 'active' OR NOT $2)`, db, activeOnly).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	cmd, stdout, stderr := cliCmd(t, 40*time.Second, cliEnv(t, viaProxy(p), user, db, env...), nil,
		"psql", "-X", "-w", "-v", "VERBOSITY=verbose", "-c", "SELECT pg_sleep(30)")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pg_sleep to run on the server", func() bool { return sleepers(true) == 1 })
	time.Sleep(200 * time.Millisecond)
	sigAt := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// Without a working cancel psql would wait out the whole pg_sleep(30): give up well before.
	killer := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
	defer killer.Stop()
	res := waitCLI(t, cmd, stdout, stderr, start)
	stopped := time.Since(sigAt)
	t.Logf("psql exited %v after SIGINT", stopped.Round(time.Millisecond))

	if stopped > 3*time.Second {
		t.Errorf("psql took %v to exit after SIGINT, want a few seconds at most (the cancel was not forwarded?):\n%s", stopped, res)
	}
	if !strings.Contains(res.stderr, "ERROR:  57014: canceling statement due to user request") {
		t.Errorf("psql did not report the cancel (SQLSTATE 57014):\n%s", res)
	}
	if res.code != 1 {
		t.Errorf("psql exit status %d, want 1 (query error):\n%s", res.code, res)
	}
	// The statement ended on the server before psql got its answer, so this holds at once.
	if n := sleepers(true); n != 0 {
		t.Errorf("%d backends still run pg_sleep after the cancel", n)
	}
	waitFor(t, "the canceled session's backend to exit", func() bool { return sleepers(false) == 0 })

	waitFor(t, "the pg_sleep event", func() bool {
		return len(eventsOf(p, func(ev recordedEvent) bool { return ev.text == "SELECT pg_sleep(30)" })) > 0
	})
	evs := eventsOf(p, func(ev recordedEvent) bool { return ev.text == "SELECT pg_sleep(30)" })
	if len(evs) != 1 || !evs[0].failed || evs[0].sqlstate != "57014" {
		t.Errorf("pg_sleep events %+v, want one that failed with 57014", evs)
	}
}

// ---------------------------------------------------------------------------------------------
// 5. TLS between psql and the proxy

// writeTestCert writes a self-signed certificate for 127.0.0.1 (its own CA, so it can serve as
// sslrootcert) and returns the certificate's path and a tls.Config serving it.
func writeTestCert(t testing.TB) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "pgpollwatch test proxy"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	path := filepath.Join(t.TempDir(), "proxy.crt")
	if err := os.WriteFile(path, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return path, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

func TestCLITLS(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	db := pg.CreateDatabase(t)
	certFile, tlsConf := writeTestCert(t)
	withTLSProxy := startProxy(t, withTLS(tlsConf))
	plainProxy := startProxy(t)

	// openedTLS returns the TLS flag the observer recorded for the connection named app.
	openedTLS := func(p *testProxy, app string) (tls, found bool) {
		p.obs.mu.Lock()
		defer p.obs.mu.Unlock()
		for _, c := range p.obs.opened {
			if c.ApplicationName == app {
				return c.TLS, true
			}
		}
		return false, false
	}

	for _, c := range []struct {
		name    string
		p       *testProxy
		env     []string // PGSSLMODE etc.
		wantTLS bool
		wantErr string // psql must fail with this on stderr
	}{
		{name: "require", p: withTLSProxy, env: []string{"PGSSLMODE=require"}, wantTLS: true},
		{name: "prefer", p: withTLSProxy, env: []string{"PGSSLMODE=prefer"}, wantTLS: true},
		{name: "verify-full", p: withTLSProxy, env: []string{"PGSSLMODE=verify-full", "PGSSLROOTCERT=" + certFile}, wantTLS: true},
		{name: "verify-ca", p: withTLSProxy, env: []string{"PGSSLMODE=verify-ca", "PGSSLROOTCERT=" + certFile}, wantTLS: true},
		{name: "disable", p: withTLSProxy, env: []string{"PGSSLMODE=disable"}, wantTLS: false},
		// A root that did not sign the proxy's certificate (it is the server's own) must be refused.
		{name: "verify-full-wrong-root", p: withTLSProxy, env: []string{"PGSSLMODE=verify-full", "PGSSLROOTCERT=" + pg.CertFile},
			wantErr: "certificate verify failed"},
		{name: "plain-require", p: plainProxy, env: []string{"PGSSLMODE=require"},
			wantErr: "server does not support SSL, but SSL was required"},
		{name: "plain-prefer", p: plainProxy, env: []string{"PGSSLMODE=prefer"}, wantTLS: false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := "cli-tls-" + c.name
			env := cliEnv(t, viaProxy(c.p), pgtest.ScramUser, db, append([]string{"PGAPPNAME=" + app}, c.env...)...)
			res := psql(t, env, nil, "-A", "-t", "-c", "SELECT 40 + 2", "-c", `\conninfo`)
			if c.wantErr != "" {
				if res.code != 2 || !strings.Contains(res.stderr, c.wantErr) {
					t.Fatalf("want psql to fail to connect (exit 2) with %q:\n%s", c.wantErr, res)
				}
				if _, found := openedTLS(c.p, app); found {
					t.Errorf("the proxy opened a session for a client that could not connect")
				}
				return
			}
			if res.code != 0 || !strings.HasPrefix(res.stdout, "42\n") {
				t.Fatalf("want SELECT 40 + 2 to print 42:\n%s", res)
			}
			if ssl := strings.Contains(res.stdout, "SSL connection ("); ssl != c.wantTLS {
				t.Errorf("\\conninfo mentions an SSL connection: %v, want %v:\n%s", ssl, c.wantTLS, res)
			}
			gotTLS, found := openedTLS(c.p, app)
			if !found {
				t.Fatalf("the observer recorded no connection with application_name %q", app)
			}
			if gotTLS != c.wantTLS {
				t.Errorf("observer ConnInfo.TLS = %v, want %v", gotTLS, c.wantTLS)
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// 6. Authentication methods

func TestCLIAuth(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	db := pg.CreateDatabase(t)
	p := startProxy(t)
	ports := []string{portOf(p.addr), strconv.Itoa(pg.Port)}

	for _, user := range []string{pgtest.ScramUser, pgtest.MD5User, pgtest.TrustUser} {
		res := psql(t, cliEnv(t, viaProxy(p), user, db), nil, "-A", "-t", "-c", "SELECT current_user")
		if res.code != 0 || res.stdout != user+"\n" {
			t.Errorf("%s through the proxy: want current_user %s:\n%s", user, user, res)
		}
	}

	var wrongStderr string
	for _, user := range []string{pgtest.ScramUser, pgtest.MD5User} {
		viaRes := psql(t, cliEnv(t, viaProxy(p), user, db, "PGPASSWORD=wrong-"+pgtest.Password), nil, "-c", "SELECT 1")
		directRes := psql(t, cliEnv(t, direct(t), user, db, "PGPASSWORD=wrong-"+pgtest.Password), nil, "-c", "SELECT 1")
		want := fmt.Sprintf(`password authentication failed for user "%s"`, user)
		if viaRes.code != 2 || !strings.Contains(viaRes.stderr, want) {
			t.Errorf("%s with a wrong password through the proxy: want exit 2 and %q:\n%s", user, want, viaRes)
		}
		if viaRes.code != directRes.code || normalizePorts(viaRes.stderr, ports...) != normalizePorts(directRes.stderr, ports...) {
			t.Errorf("%s with a wrong password: through the proxy\n%s\ndirectly\n%s", user, viaRes, directRes)
		}
		if user == pgtest.ScramUser {
			wrongStderr = viaRes.stderr
		}
	}
	t.Logf("wrong password: %s", strings.TrimSpace(wrongStderr))

	want := []string{"28P01", "28P01", "ok", "ok", "ok"}
	var got []string
	waitFor(t, "five auth outcomes", func() bool {
		p.obs.mu.Lock()
		defer p.obs.mu.Unlock()
		got = append(got[:0], p.obs.auth...)
		return len(got) >= len(want)
	})
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("observer auth outcomes %q, want %q", got, want)
	}
}

// ---------------------------------------------------------------------------------------------
// 7. Errors inside multi-statement strings and scripts

func TestCLIErrorInTransaction(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	db := pg.CreateDatabase(t)
	p := startProxy(t)
	ports := []string{portOf(p.addr), strconv.Itoa(pg.Port)}

	const multi = "BEGIN; SELECT 1; SELECT 1/0; SELECT 2; COMMIT;"
	script := []byte("BEGIN;\nSELECT 1;\nSELECT 1/0;\nSELECT 2;\nCOMMIT;\nSELECT 3;\n")
	for _, c := range []struct {
		name  string
		stdin []byte
		args  []string
	}{
		{"one -c", nil, []string{"-c", multi}},
		{"one -c verbose", nil, []string{"-v", "VERBOSITY=verbose", "-c", multi}},
		{"one -c implicit transaction", nil, []string{"-c", "SELECT 1; SELECT 1/0; SELECT 2;"}},
		{"script", script, []string{"-f", "-"}},
		{"script ON_ERROR_STOP", script, []string{"-v", "ON_ERROR_STOP=1", "-f", "-"}},
		{"script single transaction", script[len("BEGIN;\n"):], []string{"-1", "-f", "-"}},
	} {
		viaRes := psql(t, cliEnv(t, viaProxy(p), pgtest.ScramUser, db), c.stdin, c.args...)
		directRes := psql(t, cliEnv(t, direct(t), pgtest.ScramUser, db), c.stdin, c.args...)
		if viaRes.code != directRes.code || viaRes.stdout != directRes.stdout ||
			normalizePorts(viaRes.stderr, ports...) != normalizePorts(directRes.stderr, ports...) {
			t.Errorf("%s: through the proxy\n%s\ndirectly\n%s", c.name, viaRes, directRes)
		}
		if !strings.Contains(viaRes.stderr, "division by zero") {
			t.Errorf("%s: want a division by zero error:\n%s", c.name, viaRes)
		}
	}

	// The observer saw the first -c string as three statements: BEGIN, SELECT 1, and the failed
	// division; the server never ran the rest.
	var evs []recordedEvent
	waitFor(t, "events of the multi-statement string", func() bool {
		evs = eventsOf(p, func(ev recordedEvent) bool { return ev.text == multi })
		return len(evs) >= 6 // run twice (plain and verbose), three events each
	})
	time.Sleep(50 * time.Millisecond)
	evs = eventsOf(p, func(ev recordedEvent) bool { return ev.text == multi })
	if len(evs) != 6 {
		t.Fatalf("got %d events for %q, want 6: %+v", len(evs), multi, evs)
	}
	for i, ev := range evs {
		var ok bool
		switch i % 3 {
		case 0:
			ok = ev.index == 0 && ev.tag == "BEGIN" && !ev.failed
		case 1:
			ok = ev.index == 1 && ev.tag == "SELECT 1" && ev.rows == 1 && ev.columns == 1 && !ev.failed
		case 2:
			ok = ev.index == 2 && ev.failed && ev.sqlstate == "22012"
		}
		if !ok || ev.protocol != proxy.Simple {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// 8. A psql script exercising many client features gives the same output through the proxy

var pidRE = regexp.MustCompile(`server process with PID \d+`)

func TestCLIFeatureScript(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	script, err := os.ReadFile("testdata/cli/features.sql")
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t)
	ports := []string{portOf(p.addr), strconv.Itoa(pg.Port)}
	// Each run gets a fresh database, so both start from the same state.
	viaRes := psql(t, cliEnv(t, viaProxy(p), pgtest.ScramUser, pg.CreateDatabase(t)), script, "-f", "-")
	directRes := psql(t, cliEnv(t, direct(t), pgtest.ScramUser, pg.CreateDatabase(t)), script, "-f", "-")
	norm := func(s string) string {
		return pidRE.ReplaceAllString(normalizePorts(s, ports...), "server process with PID <PID>")
	}
	if viaRes.code != directRes.code {
		t.Errorf("features.sql: exit %d through the proxy, %d directly", viaRes.code, directRes.code)
	}
	if d := lineDiff(norm(viaRes.stdout), norm(directRes.stdout)); d != "" {
		t.Errorf("features.sql stdout differs (- through the proxy, + directly):\n%s", d)
	}
	if d := lineDiff(norm(viaRes.stderr), norm(directRes.stderr)); d != "" {
		t.Errorf("features.sql stderr differs (- through the proxy, + directly):\n%s", d)
	}
	for _, want := range []string{"n = 3000, total = 5626875.00", "the table is not empty", "notice number 42",
		`Asynchronous notification "features_channel" with payload "hello"`, "recovered"} {
		if !strings.Contains(viaRes.stdout+viaRes.stderr, want) {
			t.Errorf("features.sql through the proxy lacks %q; stderr:\n%s", want, viaRes.stderr)
		}
	}

	// The observer saw the script's failing statements, and only those, fail: FETCH_COUNT makes
	// psql run the bad SELECT as a cursor, and after its DECLARE fails psql still sends CLOSE
	// inside the aborted transaction (25P02) before rolling back.
	var failed []string
	waitFor(t, "the script's events", func() bool {
		return len(eventsOf(p, func(ev recordedEvent) bool { return sqlText(ev.text) == "DROP TABLE items" })) == 1
	})
	for _, ev := range p.obs.snapshot() {
		if ev.failed {
			failed = append(failed, ev.sqlstate+" "+sqlText(ev.text))
		}
	}
	want := []string{
		"42703 DECLARE _psql_cursor NO SCROLL CURSOR FOR\nSELECT nosuchcolumn FROM items",
		"25P02 CLOSE _psql_cursor",
		"22012 SELECT 1/0",
		"22012 SELECT 1/0",
	}
	if !slices.Equal(failed, want) {
		t.Errorf("failed events %q, want %q", failed, want)
	}
}

// ---------------------------------------------------------------------------------------------
// 9. Large objects: libpq's lo_import/lo_export speak the fast-path FunctionCall protocol

func TestCLILargeObject(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	db := pg.CreateDatabase(t)
	p := startProxy(t)
	proxyEnv := cliEnv(t, viaProxy(p), pgtest.ScramUser, db)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.bin")
	data := make([]byte, 300_000)
	_, _ = rand.Read(data)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}

	imp := psql(t, proxyEnv, nil, "-v", "ON_ERROR_STOP=1", "-c", `\lo_import '`+in+`'`)
	oid, ok := strings.CutPrefix(strings.TrimSpace(imp.stdout), "lo_import ")
	if imp.code != 0 || !ok || imp.stderr != "" {
		t.Fatalf("\\lo_import through the proxy:\n%s", imp)
	}
	if _, err := strconv.ParseUint(oid, 10, 32); err != nil {
		t.Fatalf("\\lo_import printed %q, not an OID", imp.stdout)
	}

	for _, c := range []struct {
		name string
		env  []string
	}{{"proxy", proxyEnv}, {"direct", cliEnv(t, direct(t), pgtest.ScramUser, db)}} {
		out := filepath.Join(dir, "out-"+c.name+".bin")
		exp := psql(t, c.env, nil, "-v", "ON_ERROR_STOP=1", "-c", `\lo_export `+oid+` '`+out+`'`)
		if exp.code != 0 || exp.stdout != "lo_export\n" || exp.stderr != "" {
			t.Fatalf("\\lo_export %s:\n%s", c.name, exp)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("\\lo_export %s: %d bytes differ from the %d imported (first difference at byte %d)",
				c.name, len(got), len(data), firstDiff(string(got), string(data)))
		}
	}

	// Every chunk travelled as a FunctionCall (lowrite on import, loread on export) and the
	// observer saw each answered.
	chunks := (len(data) + 8191) / 8192
	var calls []recordedEvent
	waitFor(t, "FunctionCall events", func() bool {
		calls = eventsOf(p, func(ev recordedEvent) bool { return ev.protocol == proxy.FunctionCall })
		return len(calls) >= 2*chunks
	})
	for _, ev := range calls {
		if ev.failed || ev.text != "" {
			t.Errorf("FunctionCall event %+v: want success with no text", ev)
			break
		}
	}
	t.Logf("%d FunctionCall events for %d chunks each way", len(calls), chunks)
}

// ---------------------------------------------------------------------------------------------
// 10. TLS on both legs: client to proxy and proxy to server

// TestCLITLSBothLegs runs psql over TLS to a proxy whose upstream connection is TLS too. The
// server then offers SCRAM-SHA-256-PLUS, and libpq (channel_binding=prefer by default) binds
// the SCRAM exchange to the certificate it sees, the proxy's: the server, comparing with its
// own certificate, must not be shown a binding it cannot check. psql must be able to log in
// with its default settings, as it can directly to the server.
func TestCLITLSBothLegs(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	db := pg.CreateDatabase(t)
	certFile, tlsConf := writeTestCert(t)
	// sslmode=prefer is pgx's and libpq's default, and the README's example upstream.
	p := startProxy(t, withTLS(tlsConf), withUpstream("host=127.0.0.1 port="+portOf(pg.Addr())+" sslmode=prefer"))
	ports := []string{portOf(p.addr), strconv.Itoa(pg.Port)}
	query := []string{"-A", "-t", "-c", "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"}

	// SCRAM with channel binding (libpq's and pgx's default over TLS) binds the login to the
	// certificate the client sees, which is the proxy's: the server refuses it, as it must. This
	// is a documented limitation of terminating TLS at the proxy; every other login works.
	for _, c := range []struct {
		name, user string
		env        []string
		refused    bool
	}{
		{"scram default channel_binding", pgtest.ScramUser, []string{"PGSSLMODE=verify-full", "PGSSLROOTCERT=" + certFile}, true},
		{"scram sslmode=require", pgtest.ScramUser, []string{"PGSSLMODE=require"}, true},
		{"scram channel_binding=disable", pgtest.ScramUser, []string{"PGSSLMODE=require", "PGCHANNELBINDING=disable"}, false},
		{"md5", pgtest.MD5User, []string{"PGSSLMODE=require"}, false},
		{"trust", pgtest.TrustUser, []string{"PGSSLMODE=require"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := psql(t, cliEnv(t, viaProxy(p), c.user, db, c.env...), nil, query...)
			if c.refused {
				if res.code != 2 || !strings.Contains(res.stderr, "channel binding") {
					t.Errorf("want the server's channel binding refusal, got:\n%s", normalizePorts(res.String(), ports...))
				}
				return
			}
			if want := c.user + " true\n"; res.code != 0 || res.stdout != want {
				directEnv := cliEnv(t, direct(t), c.user, db, "PGSSLMODE=require")
				directRes := psql(t, directEnv, nil, query...)
				t.Errorf("%s over TLS through a proxy with a TLS upstream: want %q (as directly over TLS: exit %d, %q):\n%s",
					c.user, want, directRes.code, directRes.stdout, normalizePorts(res.String(), ports...))
			}
		})
	}

	// channel_binding=require cannot be satisfied through a TLS-terminating proxy (the client
	// cannot bind to the server's certificate); it must fail cleanly, not hang or log in.
	res := psql(t, cliEnv(t, viaProxy(p), pgtest.ScramUser, db, "PGSSLMODE=require", "PGCHANNELBINDING=require"), nil, query...)
	if res.code != 2 {
		t.Errorf("channel_binding=require through the proxy: want a refused connection (exit 2):\n%s", res)
	}
	t.Logf("channel_binding=require through the proxy: %s", strings.TrimSpace(normalizePorts(res.stderr, ports...)))
}

// ---------------------------------------------------------------------------------------------
// 11. pgbench retrying serialization failures: the extended protocol's error path under load

var retriesRE = regexp.MustCompile(`total number of retries: (\d+)`)

func TestCLIPgbenchRetries(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	const clients, perClient = 4, 100
	const total = clients * perClient
	db := pg.CreateDatabase(t)
	p := startProxy(t)
	if r := runCLI(t, 60*time.Second, cliEnv(t, direct(t), pgtest.ScramUser, db), nil, "pgbench", "-i", "-s", "1", "-q"); r.code != 0 {
		t.Fatalf("pgbench -i directly failed:\n%s", r)
	}
	script, err := filepath.Abs("testdata/cli/retry.pgbench")
	if err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, 60*time.Second, cliEnv(t, viaProxy(p), pgtest.ScramUser, db), nil, "pgbench",
		"-n", "-t", strconv.Itoa(perClient), "-c", strconv.Itoa(clients), "-j", "2", "-M", "extended",
		"--max-tries=10000", "-f", script)
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("number of transactions actually processed: %d/%d", total, total)) {
		t.Fatalf("pgbench through the proxy:\n%s", res)
	}
	m := retriesRE.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("pgbench reports no retry count:\n%s", res)
	}
	retries, _ := strconv.ParseInt(m[1], 10, 64)
	t.Logf("%d transactions, %d retries, %v", total, retries, res.elapsed.Round(time.Millisecond))
	if retries == 0 {
		t.Logf("no serialization failure happened; the error path was not exercised")
	}

	// Every try runs BEGIN and SELECT; a failed try ends at the UPDATE (40001) and pgbench rolls
	// it back; a successful one runs UPDATE and END. pg_stat_statements counts what succeeded.
	const (
		begin  = "BEGIN ISOLATION LEVEL REPEATABLE READ"
		sel    = "SELECT bbalance FROM pgbench_branches WHERE bid = $1"
		update = "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2"
		end    = "END"
	)
	want := map[string]int64{begin: total + retries, sel: total + retries, update: total, end: total}
	stats := statStatements(t, db)
	for q, n := range want {
		if stats[q] != n {
			t.Errorf("pg_stat_statements calls of %q = %d, want %d", q, stats[q], n)
		}
	}
	if stats["ROLLBACK"] != retries {
		t.Errorf("pg_stat_statements calls of ROLLBACK = %d, want %d (one per retry)", stats["ROLLBACK"], retries)
	}

	ok := func(norm string) func(recordedEvent) bool {
		return func(ev recordedEvent) bool { return !ev.failed && matchesStatement(ev.text, norm) }
	}
	waitFor(t, "every statement event", func() bool {
		for q, n := range want {
			if int64(len(eventsOf(p, ok(q)))) < n {
				return false
			}
		}
		return int64(len(eventsOf(p, func(ev recordedEvent) bool { return ev.failed }))) >= retries
	})
	time.Sleep(50 * time.Millisecond)
	for q, n := range want {
		if got := int64(len(eventsOf(p, ok(q)))); got != n {
			t.Errorf("observer saw %d successful events of %q, want %d", got, q, n)
		}
	}
	if got := int64(len(eventsOf(p, ok("ROLLBACK")))); got != retries {
		t.Errorf("observer saw %d ROLLBACK events, want %d", got, retries)
	}
	failed := eventsOf(p, func(ev recordedEvent) bool { return ev.failed })
	if int64(len(failed)) != retries {
		t.Errorf("observer saw %d failed events, want one per retry (%d)", len(failed), retries)
	}
	for _, ev := range failed {
		if ev.sqlstate != "40001" || !matchesStatement(ev.text, update) {
			t.Errorf("failed event %+v, want the UPDATE with 40001", ev)
			break
		}
	}
}
