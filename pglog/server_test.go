package pglog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// TestMain stops the server logging everything that the tests of the server's own log share
// (pgtest.Shared), if one of them started it.
func TestMain(m *testing.M) { pgtest.MainWith(m, pgtest.Options{Conf: pgtest.LogEverything}) }

// TestServerFormatsAgree drives psql and pgx against a real PostgreSQL 15 logging in the
// three formats at once, and checks that each file yields the same records, and the records
// the clients' statements must give.
func TestServerFormatsAgree(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	ctx := t.Context()
	logDir := filepath.Join(pg.DataDir, "log")
	files := map[string]string{
		"stderr":  filepath.Join(logDir, "postgresql.log"),
		"csvlog":  filepath.Join(logDir, "postgresql.csv"),
		"jsonlog": filepath.Join(logDir, "postgresql.json"),
	}

	// psql: the simple protocol, one Query per statement of the script.
	script := filepath.Join(t.TempDir(), "script.sql")
	if err := os.WriteFile(script, []byte(`SELECT 1;
SELECT 'it''s' AS a, E'tab\tnew\\nline' AS b, $fn$dollar 'quoted' $x$ $fn$ AS c, -- a comment
  /* block
     comment */ 2 AS "Col""x";
SELECT 1/0;
SELECT 'after the error'; SELECT 'same line';
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(pg.BinDir, "psql"), "-X", "-q", "-d", db, "-f", script)
	cmd.Env = pg.Env()
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "division by zero") {
		t.Fatalf("psql: %v\n%s", err, out)
	}

	// pgx: the extended protocol, named (statement cache) and unnamed statements.
	connect := func(app string) *pgx.Conn {
		conn, err := pgx.Connect(ctx, pg.ConnString(pgtest.SuperUser, db)+"&application_name="+app)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	type want struct {
		text   string
		params []Param
		failed bool
		proto  Protocol
	}
	a := connect("pglog-a")
	aPID := int(a.PgConn().PID())
	wantA := []want{
		{"SELECT $1::text, $2::text, $3::int", []Param{{Value: `it's "q" ''`}, {Null: true}, {Value: "42"}}, false, Extended},
		{"SELECT $1::text /* multi\nline */", []Param{{Value: "line1\nline2\n\ttabbed"}}, false, Extended},
		{"SELECT $$dollar $1 'x'$$, $1::text", []Param{{Value: "$$ and 'quote"}}, false, Extended},
		// Fails while it executes: logged when it starts, then its ERROR.
		{"SELECT 1/(SELECT $1::int)", []Param{{Value: "0"}}, true, Extended},
		// Fails at Bind (planning folds 1/0) before its execute is logged: only its ERROR
		// and STATEMENT are in the log, which show neither the protocol nor the parameters.
		{"SELECT 1/$1::int", nil, true, Simple},
		{"SELECT $1::int", []Param{{Value: "7"}}, false, Extended},
		{"SELECT 'simple text'", nil, false, Simple},
	}
	args := map[int][]any{4: {0}}
	for i, w := range wantA {
		switch i {
		case 5:
			args[i] = append(args[i], pgx.QueryExecModeExec) // the unnamed statement
		case 6:
			args[i] = append(args[i], pgx.QueryExecModeSimpleProtocol)
		}
		for _, p := range w.params {
			if p.Null {
				args[i] = append(args[i], nil)
			} else {
				args[i] = append(args[i], p.Value)
			}
		}
		_, err := a.Exec(ctx, w.text, args[i]...)
		if (err != nil) != w.failed {
			t.Fatalf("%s: %v", w.text, err)
		}
	}
	a.Close(context.Background())

	// A session that logs durations too, with parameters shortened in the log.
	b := connect("pglog-b")
	bPID := int(b.PgConn().PID())
	if _, err := b.Exec(ctx, "SET log_min_duration_statement = 0; SET log_parameter_max_length = 8", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT $1::text", []any{"0123456789abcdef"}},
		{"SELECT pg_sleep($1)", []any{0.02}},
		{"SELECT pg_sleep($1)", []any{0.0}},
		{"SELECT 'simple', pg_sleep(0.01)", []any{pgx.QueryExecModeSimpleProtocol}},
	} {
		if _, err := b.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	b.Close(context.Background())

	// The collector writes asynchronously: wait until every file has the sessions' ends.
	byFormat := map[string][]Record{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := true
		for format, path := range files {
			recs, st := readServerLog(t, path, db)
			if st.Files[0].Format != format || st.BadLines != 0 {
				t.Fatalf("%s: %+v", path, st)
			}
			byFormat[format] = recs
			ended := 0
			for _, r := range recs {
				if r.Kind == Disconnection && (r.PID == aPID || r.PID == bPID) {
					ended++
				}
			}
			done = done && ended == 2
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's logs do not show both pgx sessions ending")
		}
		time.Sleep(100 * time.Millisecond)
	}

	recs := byFormat["stderr"]
	// Session a: each statement once, in order, as sent.
	var gotA []Record
	for _, r := range statements(recs) {
		if r.PID == aPID {
			gotA = append(gotA, r)
		}
	}
	if len(gotA) != len(wantA) {
		t.Fatalf("session a: %d statements, want %d: %+v", len(gotA), len(wantA), gotA)
	}
	for i, w := range wantA {
		g := gotA[i]
		if g.Text != w.text || g.Failed != w.failed || g.Protocol != w.proto || !slices.Equal(g.Params, w.params) || g.App != "pglog-a" ||
			g.User != pgtest.SuperUser || g.Database != db || g.Host != "127.0.0.1" || g.Port == 0 {
			t.Errorf("session a, statement %d:\n got %+v\nwant %+v", i, g, w)
		}
		if i >= 4 && g.Name != "" || i < 4 && !strings.HasPrefix(g.Name, "stmtcache_") {
			t.Errorf("statement %d name %q", i, g.Name)
		}
	}
	// Session b: no parse or bind counted, durations paired, the long parameter marked.
	var gotB []Record
	for _, r := range statements(recs) {
		if r.PID == bPID {
			gotB = append(gotB, r)
		}
	}
	if len(gotB) != 5 {
		t.Fatalf("session b: %d statements: %+v", len(gotB), gotB)
	}
	if p := gotB[1].Params; len(p) != 1 || p[0] != (Param{Value: "01234567", Truncated: true}) {
		t.Errorf("shortened parameter: %+v", gotB[1])
	}
	if d := gotB[2].Duration; d < 20*time.Millisecond || d > 10*time.Second {
		t.Errorf("pg_sleep(0.02) took %v", d)
	}
	if d := gotB[4].Duration; gotB[4].Protocol != Simple || d < 10*time.Millisecond {
		t.Errorf("simple statement with duration: %+v", gotB[4])
	}
	for _, r := range gotB[1:] {
		if r.Duration < 0 {
			t.Errorf("no duration: %+v", r)
		}
	}
	// psql's session: application_name psql, the error marked, one record per Query.
	var psql []string
	for _, r := range statements(recs) {
		if r.App == "psql" {
			psql = append(psql, fmt.Sprintf("%v %s", r.Failed, strings.Join(strings.Fields(r.Text), " ")))
		}
	}
	if len(psql) != 5 || psql[2] != "true SELECT 1/0;" && psql[2] != "true SELECT 1/0" || !strings.Contains(psql[1], "$fn$dollar 'quoted' $x$ $fn$") {
		t.Errorf("psql's statements:\n%s", strings.Join(psql, "\n"))
	}

	// The three formats: the same records, with the same partition into sessions.
	for _, format := range []string{"csvlog", "jsonlog"} {
		other := byFormat[format]
		if len(other) != len(recs) {
			t.Errorf("%s: %d records, stderr %d", format, len(other), len(recs))
			continue
		}
		sessions := map[string]string{}
		reverse := map[string]string{}
		for i := range recs {
			s, o := recs[i], other[i]
			if sessions[s.Session] == "" && reverse[o.Session] == "" {
				sessions[s.Session], reverse[o.Session] = o.Session, s.Session
			}
			if sessions[s.Session] != o.Session || reverse[o.Session] != s.Session {
				t.Errorf("%s: record %d in session %s, stderr's in %s (paired with %s)", format, i, o.Session, s.Session, sessions[s.Session])
			}
			s.Session, o.Session = "", ""
			if !equalRecords(s, o) {
				t.Errorf("%s: record %d:\n   %+v\nstderr %+v", format, i, o, s)
			}
		}
	}
	t.Logf("%d records in each format, %d statements", len(recs), len(statements(recs)))
	if os.Getenv("SHOWLOG") != "" {
		b, _ := os.ReadFile(files["stderr"])
		t.Logf("%s", b)
	}
}

func equalRecords(a, b Record) bool {
	return a.Kind == b.Kind && a.Time.Equal(b.Time) && a.Duration == b.Duration && a.PID == b.PID &&
		a.Host == b.Host && a.Port == b.Port && a.User == b.User && a.Database == b.Database && a.App == b.App &&
		a.Protocol == b.Protocol && a.Name == b.Name && a.Text == b.Text && slices.Equal(a.Params, b.Params) && a.Failed == b.Failed
}

func readServerLog(t *testing.T, path, db string) ([]Record, Stats) {
	t.Helper()
	r, err := Open([]string{path}, Options{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return drain(t, r)
}
