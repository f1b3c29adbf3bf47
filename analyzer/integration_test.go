package analyzer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/fixtures"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestMain stops the PostgreSQL the integration tests share (pgtest.Shared), if one of them
// started it: the analyzer's other tests run without a server.
func TestMain(m *testing.M) { pgtest.Main(m) }

// celerySchema creates Celery's result tables in db (the DDL Celery itself creates, from
// fixtures) and lets the test user use them.
func celerySchema(t *testing.T, db string) {
	t.Helper()
	pg := pgtest.Shared(t)
	ddl, err := fixtures.DDL(fixtures.Celery)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, db, ddl)
	pg.Exec(t, db, "GRANT ALL ON ALL TABLES IN SCHEMA public TO scram_user; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO scram_user")
}

// pendingTasks inserts PENDING rows the way Celery's SQLAlchemy backend does (id from the sequence).
func pendingTasks(t *testing.T, db string, ids ...string) {
	t.Helper()
	pg := pgtest.Shared(t)
	pg.Exec(t, db, "INSERT INTO celery_taskmeta (id, task_id, status) SELECT nextval('task_id_sequence'), k, 'PENDING' FROM unnest(ARRAY['"+strings.Join(ids, "','")+"']) k")
}

// sqlalchemyPoll is the statement Celery's database backend sends for AsyncResult.state.
const sqlalchemyPoll = `SELECT celery_taskmeta.id AS celery_taskmeta_id, celery_taskmeta.task_id AS celery_taskmeta_task_id, celery_taskmeta.status AS celery_taskmeta_status, celery_taskmeta.result AS celery_taskmeta_result, celery_taskmeta.date_done AS celery_taskmeta_date_done, celery_taskmeta.traceback AS celery_taskmeta_traceback 
FROM celery_taskmeta 
WHERE celery_taskmeta.task_id = `

type proxied struct {
	an   *analyzer.Analyzer
	addr string
}

func startAnalyzedProxy(t *testing.T, cfg analyzer.Config) *proxied {
	t.Helper()
	pg := pgtest.Shared(t)
	an := analyzer.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go an.Run(ctx)
	up, err := proxy.ParseUpstream("host=127.0.0.1 port=" + portOf(pg.Addr()) + " sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.NewServer(proxy.Config{Upstream: up, Observer: an, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); cancel() })
	return &proxied{an: an, addr: ln.Addr().String()}
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func (p *proxied) dsn(db, app string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%s user=%s password=%s dbname=%s sslmode=disable application_name=%s",
		portOf(p.addr), pgtest.ScramUser, pgtest.Password, db, app)
}

// TestPollCountsMatchServerLog drives known polls per task_id through the proxy with every
// client habit (psql literals, pgx parameters, persistent and per-poll connections), and checks
// the analyzer's per-key counts against the server's own statement log, exactly. It also checks
// the storm and spin flags: on the spinning key only, not on a key polled every 500 ms, and not
// on a pgbench run.
func TestPollCountsMatchServerLog(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	celerySchema(t, db)
	pendingTasks(t, db, "key-psql", "key-pgx", "key-slow", "key-spin")
	pg.Exec(t, db, `ALTER DATABASE "`+db+`" SET log_statement = 'all'`)
	pg.Exec(t, db, `ALTER DATABASE "`+db+`" SET log_min_messages = 'log'`)
	logStart := fileSize(pg.LogFile)
	p := startAnalyzedProxy(t, analyzer.Config{StormWindow: 2 * time.Second})
	ctx := context.Background()

	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	// psql, simple protocol with literals, one persistent connection: 17 polls.
	run(func() {
		var script strings.Builder
		for i := 0; i < 17; i++ {
			script.WriteString(sqlalchemyPoll + "'key-psql';\nSELECT pg_sleep(0.15);\n")
		}
		psql(t, p.dsn(db, "psql-poller"), script.String())
	})
	// psql, a new connection per poll: 6 polls of a key nobody else polls.
	run(func() {
		for i := 0; i < 6; i++ {
			psql(t, p.dsn(db, "psql-churn"), sqlalchemyPoll+"'key-psql-churn';\n")
		}
	})
	// pgx, extended protocol, persistent: 23 polls; the task succeeds after the 10th.
	run(func() {
		conn := mustConnect(t, p.dsn(db, "pgx-poller"))
		for i := 0; i < 23; i++ {
			time.Sleep(150 * time.Millisecond)
			poll(t, conn, "key-pgx")
			if i == 9 {
				if _, err := conn.Exec(ctx, "UPDATE celery_taskmeta SET status = 'SUCCESS', date_done = now() WHERE task_id = $1", "key-pgx"); err != nil {
					t.Error(err)
				}
			}
		}
	})
	// pgx, a new connection per poll (SQLAlchemy NullPool): 11 polls. Its churn is judged over
	// the last 10 whole seconds: look once the second it ended in is over, not after the
	// slowest of the others.
	var churnSnap *analyzer.Snapshot
	run(func() {
		for i := 0; i < 11; i++ {
			time.Sleep(100 * time.Millisecond)
			conn := mustConnect(t, p.dsn(db, "pgx-churn"))
			poll(t, conn, "key-pgx-churn")
			conn.Close(ctx)
		}
		time.Sleep(1100 * time.Millisecond)
		churnSnap = p.an.Snapshot()
	})
	// A polite poller: every 500 ms for 4 s.
	run(func() {
		conn := mustConnect(t, p.dsn(db, "slow"))
		for i := 0; i < 9; i++ {
			poll(t, conn, "key-slow")
			time.Sleep(500 * time.Millisecond)
		}
	})
	// A spin loop: as fast as it goes for 4 s.
	run(func() {
		conn := mustConnect(t, p.dsn(db, "spinner"))
		for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); {
			poll(t, conn, "key-spin")
		}
	})
	// pgbench: lots of ordinary traffic that must not look like a storm.
	run(func() {
		pgbenchInit(t, db)
		cmd := exec.Command(pg.BinDir+"/pgbench", "-n", "-S", "-T", "3", "-c", "2", "-M", "prepared", p.dsn(db, "pgbench"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("pgbench: %v\n%s", err, out)
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}

	truth := countPollsInLog(t, pg.LogFile, logStart, db, []string{"key-psql", "key-psql-churn", "key-pgx", "key-pgx-churn", "key-slow", "key-spin"})
	want := map[string]int{"key-psql": 17, "key-psql-churn": 6, "key-pgx": 23, "key-pgx-churn": 11, "key-slow": 9}
	for k, n := range want {
		if truth[k] != n {
			t.Fatalf("server log shows %d polls of %s, the test sent %d: the log parsing is off", truth[k], k, n)
		}
	}
	time.Sleep(1100 * time.Millisecond) // let the ticker see the last second
	s := p.an.Snapshot()
	keys := map[string]analyzer.KeyStat{}
	for _, k := range s.Keys {
		keys[k.Key] = k
	}
	for k, n := range truth {
		if keys[k].Polls != int64(n) {
			t.Errorf("%s: analyzer counted %d polls, the server executed %d", k, keys[k].Polls, n)
		}
	}
	t.Logf("server log: %v", truth)

	spin := keys["key-spin"]
	if !spin.Spinning || !stormed(s, "key-spin") {
		t.Errorf("spinning key not flagged: %+v", spin)
	}
	for _, k := range []string{"key-slow", "key-psql", "key-pgx", "key-pgx-churn"} {
		if stormed(s, k) || keys[k].Spinning {
			t.Errorf("%s flagged as storming or spinning: %+v", k, keys[k])
		}
	}
	for _, st := range s.Storms {
		if st.Kind != "key" || st.Key != "key-spin" {
			t.Errorf("unexpected storm %+v", st)
		}
	}
	if m := keys["key-slow"].MedianIntervalMs; m < 450 || m > 1500 { // 500 ms sleeps, plus a loaded machine
		t.Errorf("key-slow median interval %.1f ms, want about 500", m)
	}

	// Status, time to result and the write that produced it.
	pgxKey := keys["key-pgx"]
	if pgxKey.LastStatus != "SUCCESS" || pgxKey.TimeToResultMs <= 0 || pgxKey.PollsAfterTerminal != 12 || pgxKey.Writes != 1 {
		t.Errorf("key-pgx: status %q, time to result %.1f ms, %d polls after terminal, %d writes", pgxKey.LastStatus, pgxKey.TimeToResultMs, pgxKey.PollsAfterTerminal, pgxKey.Writes)
	}
	if k := keys["key-psql"]; k.LastStatus != "PENDING" || k.UnchangedPolls != 16 {
		t.Errorf("key-psql: status %q, unchanged %d (want PENDING, 16)", k.LastStatus, k.UnchangedPolls)
	}
	if k := keys["key-pgx-churn"]; k.LastStatus != "no row" || k.Rows != 0 {
		t.Errorf("key-pgx-churn (no row yet): status %q rows %d", k.LastStatus, k.Rows)
	}

	// Connection churn shows per client.
	clients := map[string]analyzer.ClientStat{}
	for _, c := range s.Clients {
		clients[c.ApplicationName] = c
	}
	if c := clients["pgx-churn"]; c.Connections != 11 || c.Polls != 11 {
		t.Errorf("pgx-churn client: %+v", c)
	}
	if c := clients["pgx-poller"]; c.Connections != 1 || c.Polls != 23 {
		t.Errorf("pgx-poller client: %+v", c)
	}
	var churn bool
	for _, f := range churnSnap.Findings {
		churn = churn || f.Kind == "connection-churn" && strings.Contains(f.Summary, "pgx-churn")
	}
	if !churn {
		t.Errorf("no connection-churn finding for pgx-churn right after it: %+v", churnSnap.Findings)
	}
}

func stormed(s *analyzer.Snapshot, key string) bool {
	for _, st := range s.Storms {
		if st.Key == key {
			return true
		}
	}
	return false
}

func poll(t *testing.T, conn *pgx.Conn, key string) {
	rows, err := conn.Query(context.Background(), sqlalchemyPoll+"$1", key)
	if err != nil {
		t.Error(err)
		return
	}
	rows.Close()
	if rows.Err() != nil {
		t.Error(rows.Err())
	}
}

func mustConnect(t *testing.T, dsn string) *pgx.Conn {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func psql(t *testing.T, dsn, script string) {
	pg := pgtest.Shared(t)
	cmd := exec.Command(pg.BinDir+"/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("psql: %v\n%s", err, out)
	}
}

func pgbenchInit(t *testing.T, db string) {
	pg := pgtest.Shared(t)
	cmd := exec.Command(pg.BinDir+"/pgbench", "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", portOf(pg.Addr()), "-U", pgtest.SuperUser, db)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pgtest.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("pgbench -i: %v\n%s", err, out)
	}
	pg.Exec(t, db, "GRANT ALL ON ALL TABLES IN SCHEMA public TO scram_user")
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// countPollsInLog counts, per key, the polls the server logged for database db since offset:
// simple-protocol statements carry the key as a literal; extended executions log it in the
// DETAIL line with the parameters.
func countPollsInLog(t *testing.T, path string, offset int64, db string, keys []string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(offset, io.SeekStart)
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pendingExecute := false // the last LOG line was the execution of the poll statement
	inDB := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "] ") && strings.Contains(line, "LOG:") || strings.Contains(line, "DETAIL:") {
			inDB = strings.Contains(line, "@"+db+" ")
		}
		if !inDB {
			continue
		}
		switch {
		case strings.Contains(line, "LOG:  statement: SELECT celery_taskmeta.id"):
			pendingExecute = false
			// the literal is on the statement's last line; handled below
		case strings.Contains(line, "LOG:  execute ") && strings.Contains(line, "SELECT celery_taskmeta.id"):
			pendingExecute = true
			continue
		case strings.Contains(line, "DETAIL:  parameters: $1 = '"):
			if pendingExecute {
				v := strings.TrimSuffix(line[strings.Index(line, "$1 = '")+len("$1 = '"):], "'")
				counts[v]++
			}
			pendingExecute = false
			continue
		case strings.Contains(line, "LOG:"):
			pendingExecute = false
		}
		for _, k := range keys {
			if strings.HasSuffix(strings.TrimSuffix(line, ";"), "WHERE celery_taskmeta.task_id = '"+k+"'") && !pendingExecute {
				counts[k]++
			}
		}
	}
	return counts
}
