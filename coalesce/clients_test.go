package coalesce_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/internal/fuzzseed"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// The tasks every client polls: Celery task ids are UUIDs. A finished task (a pickled result
// with NUL bytes, no traceback), a failed one (a traceback with non-ASCII text and newlines),
// and a pending one, which has no row yet: 0 rows, Celery's spin-wait case.
const (
	taskDone    = "0b7d5f0e-6a3c-4f0e-9c1d-8e2b7a5d4c31"
	taskFailed  = "5e1c9a47-2f8b-4d6e-b3a0-7c9d1e2f4a58"
	taskPending = "c4a2e8f1-9b3d-4c7a-8e5f-1a2b3c4d5e6f"
)

var clientTasks = []string{taskDone, taskFailed, taskPending}

const clientRows = `INSERT INTO celery_taskmeta (id, task_id, status, result, date_done, traceback) VALUES
	(1, '` + taskDone + `', 'SUCCESS', '\x80049505000000000000004b2a2e00ff'::bytea, '2024-05-01 12:34:56.789012', NULL),
	(2, '` + taskFailed + `', 'FAILURE', '\x8004'::bytea, '2024-05-01 12:35:00', E'Traceback (most recent call last):\n  File "tâche.py", line 1\nZeroDivisionError: division by zero')`

// clientPolls is how many rounds each client polls every task in clientTasks.
const clientPolls = 20

// pollMarker is in the text of every client's poll (as pg_stat_statements normalizes it).
const pollMarker = "FROM celery_taskmeta WHERE "

// TestClientsGetByteIdenticalAnswers runs real clients' poll loops twice, once straight to
// PostgreSQL and once through the proxy with a one-minute cache (so every poll after a key's
// first is a hit), each time through a recording TCP relay, and requires that the server's
// bytes after the startup phase are the same in both runs, message for message. The cache and
// pg_stat_statements must both show that the proxy run really was answered from the cache.
func TestClientsGetByteIdenticalAnswers(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, c := range []struct {
		name string
		run  func(t *testing.T, e *env, addr string) string
		// upstream is how many polls the proxy run may send to the server: one per task per
		// distinct cache key (statement text, parameter and result formats).
		upstream int
		// check looks at what the client sent (the protocol paths it took).
		check func(t *testing.T, reqs []string)
		// binary: the client asks for binary results (some Bind has a result format code 1).
		binary bool
	}{
		{name: "psql", run: runPsql, upstream: len(clientTasks), check: wantRequests("Q")},
		// pgx's statement cache: Parse/Describe/Sync once, then Bind/Execute/Sync of the
		// named statement with binary results (uuid, timestamptz, bytea, int4).
		{name: "pgx_cache_statement", run: pgxPoller(pgx.QueryExecModeCacheStatement), upstream: len(clientTasks),
			check: wantRequests("P D S", "B E S"), binary: true},
		// Parse/Bind/Describe/Execute/Sync per poll: the Parse goes upstream, the rest is cached.
		{name: "pgx_exec", run: pgxPoller(pgx.QueryExecModeExec), upstream: len(clientTasks), check: wantRequests("P B D E S")},
		{name: "pgx_simple", run: pgxPoller(pgx.QueryExecModeSimpleProtocol), upstream: len(clientTasks), check: wantRequests("Q")},
		// SQLAlchemy-style BEGIN; SELECT; ROLLBACK: the read-committed scope answers the SELECT.
		{name: "psycopg2", run: runPsycopg2, upstream: len(clientTasks), check: wantRequests("Q")},
		// Unnamed statements for the first prepareThreshold-1 executions, then a named
		// server-side statement with binary results: two cache keys per task. With
		// assumeMinServerVersion=9.0 pgjdbc puts extra_float_digits and application_name in
		// its StartupMessage instead of sending SETs after connecting.
		{name: "jdbc", run: jdbcPoller("&assumeMinServerVersion=9.0"), upstream: 2 * len(clientTasks), check: wantJDBCPhases, binary: true},
		// By default pgjdbc sends SET extra_float_digits = 3 after connecting: a setting the
		// server does not report but that only changes how values are written out, so it
		// becomes part of the session's cache key, as the StartupMessage's settings are.
		{name: "jdbc_default", run: jdbcPoller(""), upstream: 2 * len(clientTasks), check: wantJDBCPhases, binary: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, coalesce.Config{TTL: time.Minute})
			e.super(clientRows)
			polls := int64(clientPolls * len(clientTasks))

			before := e.serverCalls(pollMarker)
			direct, directOut := recordSession(t, pg.Addr(), func(addr string) string { return c.run(t, e, addr) })
			if dir := os.Getenv("PGPOLLWATCH_CAPTURE_SEEDS"); dir != "" && strings.HasPrefix(c.name, "jdbc") {
				// JDBC's sessions as seeds of the proxy's fuzz targets (see proxy's TestCaptureFuzzSeeds):
				//   PGPOLLWATCH_CAPTURE_SEEDS=$PWD/proxy/testdata/fuzz go test -run Clients/jdbc ./coalesce/
				if _, err := fuzzseed.Write(dir, c.name, direct.c2s.Bytes(), direct.s2c.Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			directCalls := e.serverCalls(pollMarker) - before
			if directCalls != polls {
				t.Fatalf("direct run: the server ran %d polls, the client made %d", directCalls, polls)
			}

			cached, cachedOut := recordSession(t, e.addr, func(addr string) string { return c.run(t, e, addr) })
			proxyCalls := e.serverCalls(pollMarker) - before - directCalls
			st := e.cache.Stats()
			t.Logf("%d polls through the proxy: server ran %d; cache hits %d misses %d fills %d bypassed %d",
				polls, proxyCalls, st.Hits, st.Misses, st.Fills, st.Bypassed)
			if proxyCalls < 1 || proxyCalls > int64(c.upstream) {
				t.Errorf("through the proxy the server ran %d of %d polls, want 1..%d", proxyCalls, polls, c.upstream)
			}
			if st.Hits < polls-int64(c.upstream) || st.Hits > polls-proxyCalls {
				t.Errorf("cache hits %d for %d polls of which the server ran %d", st.Hits, polls, proxyCalls)
			}

			reqs := direct.requests(t)
			c.check(t, reqs)
			if bin := direct.binaryBinds(t); c.binary && bin < clientPolls {
				t.Errorf("the client asked for binary results in %d Binds, want at least %d", bin, clientPolls)
			}
			compareRuns(t, reqs, direct, cached, directOut, cachedOut)
		})
	}
}

// TestClientsStartupOptionsKeepTheirOwnAnswers: settings a client sets in its StartupMessage
// (here psql's PGOPTIONS='-c bytea_output=escape'; pgjdbc sends extra_float_digits there, others
// search_path) shape the server's answers but are never reported in ParameterStatus. A client
// with such options must not be served answers filled for a session without them.
func TestClientsStartupOptionsKeepTheirOwnAnswers(t *testing.T) {
	pg := pgtest.Shared(t)
	t.Parallel()
	e := newEnv(t, coalesce.Config{TTL: time.Minute})
	e.super(clientRows)
	// A client with the server's defaults (bytea_output=hex) fills the cache.
	recordSession(t, e.addr, func(addr string) string { return runPsql(t, e, addr) })
	fills := e.cache.Stats().Fills
	if fills != int64(len(clientTasks)) {
		t.Fatalf("the first client filled %d entries, want %d", fills, len(clientTasks))
	}

	escape := func(addr string) string { return runPsqlEnv(t, e, addr, "PGOPTIONS=-c bytea_output=escape") }
	direct, directOut := recordSession(t, pg.Addr(), escape)
	cached, cachedOut := recordSession(t, e.addr, escape)
	t.Logf("cache after the escape client: %+v", e.cache.Stats())
	reqs := direct.requests(t)
	wantRequests("Q")(t, reqs)
	compareRuns(t, reqs, direct, cached, directOut, cachedOut)
}

// compareRuns compares the direct and the cached run of one client: the batches it sent, the
// replies it got after startup, byte for byte, and what it printed.
func compareRuns(t *testing.T, reqs []string, direct, cached *recording, directOut, cachedOut string) {
	t.Helper()
	if got := cached.requests(t); !slices.Equal(got, reqs) {
		t.Errorf("the client sent different batches through the proxy:\n%s", diffLines(reqs, got))
	}
	dr, cr := direct.replies(t), cached.replies(t)
	if len(dr) != len(reqs) {
		t.Errorf("direct run: %d batches got %d replies", len(reqs), len(dr))
	}
	compareReplies(t, reqs, dr, cr)
	if directOut != cachedOut {
		d, c := strings.Split(directOut, "\n"), strings.Split(cachedOut, "\n")
		i := 0
		for i < min(len(d), len(c)) && d[i] == c[i] {
			i++
		}
		line := func(ls []string) string {
			if i < len(ls) {
				return ls[i]
			}
			return "(end)"
		}
		t.Errorf("the client printed different results, first at line %d:\n  direct: %s\n  cached: %s", i+1, line(d), line(c))
	}
}

// compareReplies requires the server-to-client messages after startup to be identical, one
// reply (the messages up to and including a ReadyForQuery) at a time.
func compareReplies(t *testing.T, reqs []string, direct, cached [][]byte) {
	t.Helper()
	if len(direct) != len(cached) {
		t.Errorf("direct run got %d replies after startup, the cached run %d", len(direct), len(cached))
	}
	bad := 0
	for i := range min(len(direct), len(cached)) {
		if bytes.Equal(direct[i], cached[i]) {
			continue
		}
		if bad++; bad > 3 {
			t.Errorf("... and more replies differ")
			return
		}
		req := "?"
		if i < len(reqs) {
			req = reqs[i]
		}
		dm, cm := messages(direct[i]), messages(cached[i])
		j := 0
		for j < min(len(dm), len(cm)) && bytes.Equal(dm[j], cm[j]) {
			j++
		}
		msg := func(ms [][]byte) string {
			if j < len(ms) {
				return fmt.Sprintf("%q", ms[j])
			}
			return "(none)"
		}
		t.Errorf("reply %d (to %q) differs at message %d:\n  direct  %s: %s\n  cached  %s: %s",
			i, req, j, msgTypes(dm), msg(dm), msgTypes(cm), msg(cm))
	}
}

// ---- clients

func runPsql(t *testing.T, e *env, addr string) string { return runPsqlEnv(t, e, addr) }

// runPsqlEnv runs psql's poll script with extra environment variables.
func runPsqlEnv(t *testing.T, e *env, addr string, extraEnv ...string) string {
	pg := pgtest.Shared(t)
	bin, err := pgtest.FindBinDir()
	if err != nil {
		t.Fatalf("%v: run %s", err, pgtest.InstallCommand)
	}
	psql := filepath.Join(bin, "psql")
	if _, err := os.Stat(psql); err != nil {
		t.Fatalf("psql not found beside initdb: run apt-get update && apt-get install -y postgresql-client-15")
	}
	var script strings.Builder
	for range clientPolls {
		for _, id := range clientTasks {
			fmt.Fprintf(&script, "SELECT id, task_id, status, result, date_done, traceback FROM celery_taskmeta WHERE task_id = '%s';\n", id)
		}
	}
	file := filepath.Join(t.TempDir(), "poll.sql")
	if err := os.WriteFile(file, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	return runCommand(t, append(append(pg.Env(), "PGHOST="+host, "PGPORT="+port, "PGUSER="+pgtest.TrustUser,
		"PGDATABASE="+e.db, "PGSSLMODE=disable", "PGGSSENCMODE=disable", "PGOPTIONS="),
		extraEnv...),
		psql, "-X", "-A", "-v", "ON_ERROR_STOP=1", "-f", file)
}

// pgxPoll reads uuid, timestamptz, bytea and int4 columns: in binary wherever pgx can.
const pgxPoll = `SELECT id, task_id::uuid, status, result, date_done::timestamptz, traceback FROM celery_taskmeta WHERE task_id = $1`

func pgxPoller(mode pgx.QueryExecMode) func(*testing.T, *env, string) string {
	return func(t *testing.T, e *env, addr string) string {
		cfg, err := pgx.ParseConfig("postgres://" + pgtest.TrustUser + "@" + addr + "/" + e.db + "?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var out strings.Builder
		for range clientPolls {
			for _, id := range clientTasks {
				rows, _ := c.Query(ctx, pgxPoll, id)
				for rows.Next() {
					var (
						n         int32
						uuid      [16]byte
						status    *string
						result    []byte
						done      *time.Time
						traceback *string
					)
					if err := rows.Scan(&n, &uuid, &status, &result, &done, &traceback); err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&out, "%d %x %v %x %v %v\n", n, uuid, deref(status), result, done, deref(traceback))
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&out, "%s\n", rows.CommandTag())
			}
		}
		return out.String()
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// psycopg2Script polls the way Celery's SQLAlchemy result backend does: autocommit off, so
// psycopg2 sends BEGIN before the SELECT, and the session ends the transaction with ROLLBACK.
const psycopg2Script = `import sys
import psycopg2

dsn, rounds, tasks = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
conn = psycopg2.connect(dsn)
for _ in range(rounds):
    for task_id in tasks:
        cur = conn.cursor()
        cur.execute(
            "SELECT celery_taskmeta.id AS celery_taskmeta_id, celery_taskmeta.task_id AS celery_taskmeta_task_id, "
            "celery_taskmeta.status AS celery_taskmeta_status, celery_taskmeta.result AS celery_taskmeta_result, "
            "celery_taskmeta.date_done AS celery_taskmeta_date_done, celery_taskmeta.traceback AS celery_taskmeta_traceback "
            "FROM celery_taskmeta WHERE celery_taskmeta.task_id = %s",
            (task_id,),
        )
        rows = [tuple(bytes(v).hex() if isinstance(v, memoryview) else v for v in row) for row in cur.fetchall()]
        print(repr(rows), cur.statusmessage)
        cur.close()
        conn.rollback()
conn.close()
`

func runPsycopg2(t *testing.T, e *env, addr string) string {
	pg := pgtest.Shared(t)
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import psycopg2").Run(); err != nil {
		t.Fatalf("%s cannot import psycopg2 (%v): run apt-get update && apt-get install -y python3-psycopg2", python, err)
	}
	file := filepath.Join(t.TempDir(), "poll.py")
	if err := os.WriteFile(file, []byte(psycopg2Script), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable gssencmode=disable", host, port, pgtest.TrustUser, e.db)
	return runCommand(t, pg.Env(), python, append([]string{file, dsn, strconv.Itoa(clientPolls)}, clientTasks...)...)
}

const jdbcJar = "/usr/share/java/postgresql.jar"

// jdbcSource polls with one PreparedStatement: pgjdbc sends unnamed Parse/Bind/Describe/
// Execute/Sync for its first prepareThreshold-1 executions, then prepares a named statement
// and from then on sends only Bind/Execute/Sync, asking for binary results.
const jdbcSource = `import java.sql.*;

public class Poll {
    public static void main(String[] args) throws Exception {
        int rounds = Integer.parseInt(args[1]);
        try (Connection c = DriverManager.getConnection(args[0]);
             PreparedStatement ps = c.prepareStatement(
                 "SELECT id, task_id, status, result, date_done, traceback FROM celery_taskmeta WHERE task_id = ?")) {
            for (int i = 0; i < rounds; i++) {
                for (int a = 2; a < args.length; a++) {
                    ps.setString(1, args[a]);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            StringBuilder hex = new StringBuilder();
                            byte[] r = rs.getBytes(4);
                            if (r != null) for (byte b : r) hex.append(String.format("%02x", b));
                            System.out.println(rs.getInt(1) + " " + rs.getString(2) + " " + rs.getString(3) + " " + hex
                                + " " + rs.getTimestamp(5) + " " + rs.getString(6));
                        }
                    }
                    System.out.println("--");
                }
            }
        }
    }
}
`

// jdbcPoller runs the JDBC program with extra URL parameters (each "&name=value").
func jdbcPoller(params string) func(*testing.T, *env, string) string {
	return func(t *testing.T, e *env, addr string) string { return runJDBC(t, e, addr, params) }
}

func runJDBC(t *testing.T, e *env, addr, params string) string {
	if _, err := os.Stat(jdbcJar); err != nil {
		t.Fatalf("no %s: run apt-get update && apt-get install -y libpostgresql-jdbc-java", jdbcJar)
	}
	for _, tool := range []string{"javac", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s on PATH: run apt-get update && apt-get install -y default-jdk-headless", tool)
		}
	}
	// Compiled afresh by each run: a second or so, and no state shared between runs.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Poll.java"), []byte(jdbcSource), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("javac", "-d", dir, filepath.Join(dir, "Poll.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	url := fmt.Sprintf("jdbc:postgresql://%s/%s?user=%s&sslmode=disable&gssEncMode=disable&prepareThreshold=5%s",
		addr, e.db, pgtest.TrustUser, params)
	return runCommand(t, os.Environ(), "java", append([]string{"-Xshare:auto", "-XX:TieredStopAtLevel=1",
		"-cp", jdbcJar + string(os.PathListSeparator) + dir, "Poll", url, strconv.Itoa(clientPolls)}, clientTasks...)...)
}

// wantJDBCPhases checks that pgjdbc went through both phases: unnamed statements, then Bind
// and Execute of a named server-side statement without a Parse.
func wantJDBCPhases(t *testing.T, reqs []string) {
	t.Helper()
	wantRequests("P B E S", "P B D E S", "B E S")(t, reqs) // "P B E S": its SETs after connecting
	unnamed, named := 0, 0
	for _, r := range reqs {
		switch {
		case strings.HasPrefix(r, "P B "):
			unnamed++
		case strings.HasPrefix(r, "B "):
			named++
		}
	}
	if unnamed == 0 || named < clientPolls {
		t.Fatalf("pgjdbc sent %d unnamed and %d named-statement polls; batches: %q", unnamed, named, reqs)
	}
}

func runCommand(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return stdout.String()
}

// wantRequests checks that every batch the client sent after startup, apart from its closing
// Terminate, is one of shapes (message types, e.g. "B E S").
func wantRequests(shapes ...string) func(*testing.T, []string) {
	return func(t *testing.T, reqs []string) {
		t.Helper()
		for _, r := range reqs {
			if !slices.Contains(shapes, r) {
				t.Fatalf("the client sent a batch %q, expected only %q; all: %q", r, shapes, reqs)
			}
		}
		if len(reqs) < clientPolls*len(clientTasks) {
			t.Fatalf("the client sent %d batches: %q", len(reqs), reqs)
		}
	}
}

// ---- the recording relay

// recording is one relayed connection: the bytes each way.
type recording struct {
	c2s, s2c bytes.Buffer
	err      error
}

// recordSession runs client against a relay to target and returns the one connection it made
// and what the client printed.
func recordSession(t *testing.T, target string, client func(addr string) string) (*recording, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		recs  []*recording
		wg    sync.WaitGroup
		serve = make(chan struct{})
	)
	go func() {
		defer close(serve)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rec := &recording{}
			mu.Lock()
			recs = append(recs, rec)
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				relay(c, target, rec)
			}()
		}
	}()
	out := client(ln.Addr().String())
	ln.Close()
	<-serve
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the relayed connection did not end after the client finished")
	}
	if len(recs) != 1 {
		t.Fatalf("the client made %d connections, want 1", len(recs))
	}
	if recs[0].err != nil {
		t.Fatal(recs[0].err)
	}
	return recs[0], out
}

// relay copies client <-> target until both directions end, recording both.
func relay(client net.Conn, target string, rec *recording) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		rec.err = err
		return
	}
	defer up.Close()
	c2sDone := make(chan struct{})
	go func() {
		defer close(c2sDone)
		io.Copy(io.MultiWriter(up, &rec.c2s), client)
		up.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(io.MultiWriter(client, &rec.s2c), up)
	client.(*net.TCPConn).CloseWrite()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	<-c2sDone
}

// Protocol codes of the untyped requests a client may send before its StartupMessage; the
// server answers each with one byte.
const (
	sslRequestCode    = 80877103
	gssencRequestCode = 80877104
)

// requests splits what the client sent after its startup into batches, each the message types
// up to a Sync or a Query (the messages a ReadyForQuery answers), e.g. "P B D E S". Its
// closing Terminate is dropped.
func (r *recording) requests(t *testing.T) []string {
	t.Helper()
	b := r.c2s.Bytes()
	for { // untyped: SSLRequest/GSSENCRequest ... StartupMessage
		if len(b) < 8 {
			t.Fatalf("client stream too short: %q", b)
		}
		n := int(binary.BigEndian.Uint32(b))
		code := binary.BigEndian.Uint32(b[4:])
		b = b[n:]
		if code != sslRequestCode && code != gssencRequestCode {
			break
		}
	}
	ms, err := splitMessages(b)
	if err != nil {
		t.Fatalf("client stream: %v", err)
	}
	var reqs []string
	var cur []string
	authDone := false
	for _, m := range ms {
		if !authDone && m[0] == 'p' { // password, SASL: part of the startup
			continue
		}
		authDone = true
		cur = append(cur, string(m[0]))
		if m[0] == 'S' || m[0] == 'Q' {
			reqs = append(reqs, strings.Join(cur, " "))
			cur = cur[:0]
		}
	}
	if strings.Join(cur, " ") != "X" {
		t.Fatalf("the client's stream ends with %q, not a Terminate", cur)
	}
	return reqs
}

// binaryBinds counts the client's Bind messages that ask for a result column in binary.
func (r *recording) binaryBinds(t *testing.T) int {
	t.Helper()
	b := r.c2s.Bytes()
	n := 0
	for len(b) >= 8 { // the untyped requests and the StartupMessage
		code := binary.BigEndian.Uint32(b[4:])
		b = b[binary.BigEndian.Uint32(b):]
		if code != sslRequestCode && code != gssencRequestCode {
			break
		}
	}
	for _, m := range messages(b) {
		if m[0] != 'B' {
			continue
		}
		body := m[5:]
		for range 2 { // portal and statement names
			body = body[bytes.IndexByte(body, 0)+1:]
		}
		u16 := func() int {
			v := int(binary.BigEndian.Uint16(body))
			body = body[2:]
			return v
		}
		body = body[2*u16():] // parameter format codes
		for range u16() {     // parameter values
			l := int32(binary.BigEndian.Uint32(body))
			body = body[4+max(l, 0):]
		}
		for range u16() {
			if u16() == 1 {
				n++
				break
			}
		}
	}
	return n
}

// replies splits what the server (or the proxy) sent after the startup phase (everything up
// to and including the first ReadyForQuery) into replies, each ending with a ReadyForQuery.
func (r *recording) replies(t *testing.T) [][]byte {
	t.Helper()
	b := r.s2c.Bytes()
	c := r.c2s.Bytes()
	for len(c) >= 8 { // each SSLRequest/GSSENCRequest was answered with one byte
		code := binary.BigEndian.Uint32(c[4:])
		if code != sslRequestCode && code != gssencRequestCode {
			break
		}
		c, b = c[8:], b[1:]
	}
	ms, err := splitMessages(b)
	if err != nil {
		t.Fatalf("server stream: %v", err)
	}
	i := slices.IndexFunc(ms, func(m []byte) bool { return m[0] == 'Z' })
	if i < 0 {
		t.Fatalf("no ReadyForQuery from the server: %s", msgTypes(ms))
	}
	var out [][]byte
	var cur []byte
	for _, m := range ms[i+1:] {
		cur = append(cur, m...)
		if m[0] == 'Z' {
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		t.Fatalf("the server's stream ends with an incomplete reply: %s", msgTypes(messages(cur)))
	}
	return out
}

// splitMessages splits a stream of typed protocol messages.
func splitMessages(b []byte) ([][]byte, error) {
	var ms [][]byte
	for len(b) > 0 {
		if len(b) < 5 {
			return ms, fmt.Errorf("%d trailing bytes", len(b))
		}
		n := 1 + int(binary.BigEndian.Uint32(b[1:]))
		if n < 5 || n > len(b) {
			return ms, errors.New("truncated message " + strconv.Quote(string(b[:1])))
		}
		ms = append(ms, b[:n:n])
		b = b[n:]
	}
	return ms, nil
}

func messages(b []byte) [][]byte {
	ms, _ := splitMessages(b)
	return ms
}

func msgTypes(ms [][]byte) string {
	var s strings.Builder
	for _, m := range ms {
		s.WriteByte(m[0])
	}
	return s.String()
}

func diffLines(a, b []string) string {
	var s strings.Builder
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			fmt.Fprintf(&s, "  %d: direct %q, proxy %q\n", i, x, y)
		}
	}
	return s.String()
}
