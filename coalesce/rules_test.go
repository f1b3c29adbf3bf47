package coalesce_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

const literalPoll = `SELECT status, result FROM celery_taskmeta WHERE task_id = 'rule-task'`

// served polls twice (the first may fill) and reports whether the second was a hit: the
// cache's count and the server's count (pg_stat_statements) must agree.
func (e *env) secondPollHit(t *testing.T, c *pgx.Conn, sql string, args ...any) bool {
	t.Helper()
	ctx := context.Background()
	run := func() {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
	}
	run()
	hits, server := e.cache.Stats().Hits, e.serverCalls("FROM celery_taskmeta")
	run()
	dh, ds := e.cache.Stats().Hits-hits, e.serverCalls("FROM celery_taskmeta")-server
	if dh+ds != 1 {
		t.Fatalf("one poll: %d hits and %d server executions", dh, ds)
	}
	return dh == 1
}

func newRuleEnv(t *testing.T, scope proxy.CacheScope) (*env, *pgx.Conn) {
	e := newEnv(t, coalesce.Config{TTL: time.Minute, Scope: scope})
	e.super(`INSERT INTO celery_taskmeta (id, task_id, status, date_done) VALUES (1, 'rule-task', 'PENDING', '2024-01-01 00:00:00');
		CREATE TABLE other (id int PRIMARY KEY, v int); INSERT INTO other VALUES (1, 0);
		GRANT ALL ON other TO trust_user`)
	return e, e.connect(true, pgx.QueryExecModeSimpleProtocol)
}

func run(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestSessionRules: when a cached answer may be served, and when the read must be forwarded.
func TestSessionRules(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
		if !e.secondPollHit(t, c, literalPoll) {
			t.Fatal("an idle session's repeated poll was not served from the cache")
		}
	})
	t.Run("begin-select-rollback", func(t *testing.T) {
		e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
		run(t, c, "BEGIN")
		if !e.secondPollHit(t, c, literalPoll) {
			t.Fatal("reads after a plain BEGIN were not served (read-committed scope)")
		}
		run(t, c, "ROLLBACK")
	})
	t.Run("scope-idle", func(t *testing.T) {
		e, c := newRuleEnv(t, proxy.ScopeIdle)
		run(t, c, "BEGIN")
		if e.secondPollHit(t, c, literalPoll) {
			t.Fatal("scope idle served a read inside a transaction block")
		}
		run(t, c, "ROLLBACK")
		if !e.secondPollHit(t, c, literalPoll) {
			t.Fatal("scope idle did not serve an idle session")
		}
	})
	for _, tc := range []struct{ name, before string }{
		{"after-a-write-in-the-transaction", "BEGIN; UPDATE other SET v = v + 1"},
		{"after-another-statement", "BEGIN; SELECT v FROM other"},
		{"repeatable-read", "BEGIN ISOLATION LEVEL REPEATABLE READ"},
		{"serializable", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
			e.secondPollHit(t, c, literalPoll) // fill
			for _, s := range strings.Split(tc.before, ";") {
				run(t, c, s)
			}
			if e.secondPollHit(t, c, literalPoll) {
				t.Fatalf("served from the cache %s", tc.name)
			}
			run(t, c, "ROLLBACK")
			if !e.secondPollHit(t, c, literalPoll) {
				t.Fatal("not served again once the transaction ended")
			}
		})
	}
	for _, tc := range []string{"SET search_path = public", "SET ROLE trust_user", "SET SESSION AUTHORIZATION DEFAULT",
		"SELECT set_config('search_path', 'public', false)", "RESET ALL", "DISCARD ALL", "SET statement_timeout = 0"} {
		t.Run("taint/"+tc, func(t *testing.T) {
			e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
			e.secondPollHit(t, c, literalPoll)
			run(t, c, tc)
			for i := 0; i < 3; i++ {
				if e.secondPollHit(t, c, literalPoll) {
					t.Fatalf("served from the cache after %q", tc)
				}
			}
		})
	}
	t.Run("write-inside-a-multi-statement-query", func(t *testing.T) {
		e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
		if !e.secondPollHit(t, c, literalPoll) {
			t.Fatal("not cached")
		}
		// psql -c and hand-written scripts send one string with several statements.
		run(t, c, "BEGIN; UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'rule-task'; COMMIT")
		var status string
		var result []byte
		if err := c.QueryRow(context.Background(), literalPoll).Scan(&status, &result); err != nil || status != "SUCCESS" {
			t.Fatalf("after a committed multi-statement write the poll says %q (%v)", status, err)
		}
	})
	t.Run("failed-transaction", func(t *testing.T) {
		e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
		e.secondPollHit(t, c, literalPoll)
		run(t, c, "BEGIN")
		if _, err := c.Exec(context.Background(), "SELECT 1/0"); err == nil {
			t.Fatal("no error")
		}
		_, err := c.Exec(context.Background(), literalPoll)
		if err == nil || !strings.Contains(err.Error(), "25P02") {
			t.Fatalf("a poll in a failed transaction answered %v, want the server's 25P02", err)
		}
		run(t, c, "ROLLBACK")
	})
	t.Run("set-time-zone-changes-the-key", func(t *testing.T) {
		e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
		q := `SELECT date_done::timestamptz::text FROM celery_taskmeta WHERE task_id = 'rule-task'`
		read := func() string {
			var s string
			if err := c.QueryRow(context.Background(), q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		run(t, c, "SET TIME ZONE 'UTC'")
		utc := read()
		if !e.secondPollHit(t, c, q) {
			t.Fatal("not cached")
		}
		run(t, c, "SET TIME ZONE 'Asia/Tokyo'")
		if tokyo := read(); tokyo == utc || !strings.HasSuffix(tokyo, "+09") {
			t.Fatalf("after SET TIME ZONE the poll says %q (UTC said %q)", tokyo, utc)
		}
		if !e.secondPollHit(t, c, q) {
			t.Fatal("a reported setting should change the key, not stop the cache")
		}
	})
	for _, q := range []string{
		literalPoll + " FOR UPDATE",
		`SELECT status, now() FROM celery_taskmeta WHERE task_id = 'rule-task'`,
		`SELECT status FROM celery_taskmeta WHERE task_id = 'rule-task'; SELECT 1`,
		`SELECT status FROM celery_taskmeta, other WHERE task_id = 'rule-task'`,
		`SELECT status FROM celery_taskmeta WHERE task_id = (SELECT 'rule-task')`,
	} {
		t.Run("not-eligible/"+q, func(t *testing.T) {
			e, c := newRuleEnv(t, proxy.ScopeReadCommitted)
			run(t, c, "BEGIN")
			if e.secondPollHit(t, c, q) {
				t.Fatalf("%q was served from the cache", q)
			}
			run(t, c, "ROLLBACK")
		})
	}
}

// TestSingleFlight: identical polls that miss together go upstream once; when that one fails,
// the others go upstream themselves and never see its error.
func TestSingleFlight(t *testing.T) {
	for _, failLeader := range []bool{false, true} {
		name := map[bool]string{false: "shared", true: "leader-cancelled"}[failLeader]
		t.Run(name, func(t *testing.T) {
			e, _ := newRuleEnv(t, proxy.ScopeReadCommitted)
			ctx := context.Background()
			locker := e.connect(false, pgx.QueryExecModeSimpleProtocol)
			const n = 8
			conns := make([]*pgx.Conn, n)
			for i := range conns {
				// Prepared before the lock (a Parse waits for it too), by a poll of another key.
				conns[i] = e.connect(true, pgx.QueryExecModeCacheStatement)
				if _, err := conns[i].Exec(ctx, pollSQL, "not-this-one"); err != nil {
					t.Fatal(err)
				}
			}
			st0 := e.cache.Stats()
			misses, before := st0.Misses, e.serverCalls("task_id = $1")
			run(t, locker, "BEGIN")
			run(t, locker, "LOCK TABLE celery_taskmeta IN ACCESS EXCLUSIVE MODE")
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var status string
					var result []byte
					errs[i] = c.QueryRow(ctx, pollSQL, "rule-task").Scan(&status, &result)
					if errs[i] == nil && status != "PENDING" {
						errs[i] = &wrongStatus{status}
					}
				}()
				if i == 0 {
					waitFor(t, func() bool { return e.cache.Stats().Misses == misses+1 }) // the leader is in flight
				}
			}
			waitFor(t, func() bool {
				return e.scalar(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%celery_taskmeta%'`) >= 1
			})
			time.Sleep(100 * time.Millisecond) // let the followers reach the cache
			if failLeader {
				// Cancel the one statement waiting on the lock: the leader's.
				e.scalar(`SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%celery_taskmeta%'`)
				time.Sleep(100 * time.Millisecond)
			}
			run(t, locker, "COMMIT")
			wg.Wait()
			failed := 0
			for i, err := range errs {
				if err != nil {
					failed++
					if !failLeader || i != 0 {
						t.Errorf("poller %d: %v", i, err)
					}
				}
			}
			st := e.cache.Stats()
			server := e.serverCalls("task_id = $1") - before
			t.Logf("%s: %d failed, server ran %d polls, cache %d hits %d misses", name, failed, server, st.Hits-st0.Hits, st.Misses-misses)
			if !failLeader && (server != 1 || st.Hits-st0.Hits != n-1 || st.Misses != misses+1) {
				t.Fatalf("%d identical polls: the server ran %d, the cache answered %d", n, server, st.Hits)
			}
			if failLeader && (failed != 1 || server < 1) {
				t.Fatalf("leader cancelled: %d failed (want only the leader), server ran %d", failed, server)
			}
		})
	}
}

type wrongStatus struct{ s string }

func (w *wrongStatus) Error() string { return "status " + w.s }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestParseFailsAfterSchemaChange: a hit whose Parse goes upstream (Parse/Bind/Describe/
// Execute per poll) still gets the server's error when the Parse fails, never the cached rows.
func TestParseFailsAfterSchemaChange(t *testing.T) {
	e, _ := newRuleEnv(t, proxy.ScopeReadCommitted)
	c := e.connect(true, pgx.QueryExecModeExec)
	if !e.secondPollHit(t, c, pollSQL, "rule-task") {
		t.Fatal("not served from the cache")
	}
	e.super(`ALTER TABLE celery_taskmeta RENAME COLUMN status TO state`) // behind the proxy's back
	var status string
	var result []byte
	err := c.QueryRow(context.Background(), pollSQL, "rule-task").Scan(&status, &result)
	if err == nil || !strings.Contains(err.Error(), "42703") {
		t.Fatalf("poll after the column went: %v, want the server's 42703", err)
	}
	var n int
	if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the connection is unusable after the error: %v", err)
	}
}

// TestSwitchOnMidTransaction: a write sent while coalescing was off (so never read as one) whose
// transaction commits after it was switched on still invalidates what was cached meanwhile.
func TestSwitchOnMidTransaction(t *testing.T) {
	e, poller := newRuleEnv(t, proxy.ScopeReadCommitted)
	e.cache.SetEnabled(false)
	writer := e.connect(true, pgx.QueryExecModeSimpleProtocol)
	run(t, writer, "BEGIN")
	run(t, writer, "UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'rule-task'")
	e.cache.SetEnabled(true)
	if !e.secondPollHit(t, poller, literalPoll) { // the old, committed value, now cached
		t.Fatal("not cached")
	}
	run(t, writer, "COMMIT")
	var status string
	var result []byte
	if err := poller.QueryRow(context.Background(), literalPoll).Scan(&status, &result); err != nil || status != "SUCCESS" {
		t.Fatalf("after the commit the poll says %q (%v)", status, err)
	}
}

// TestRedefinedStatementKeepsItsClass: a Parse that tries to redefine a named statement as a
// poll fails on the server (42P05), which keeps the old statement, here one with a side effect:
// executing it must still reach the server every time, never be answered from the cache.
func TestRedefinedStatementKeepsItsClass(t *testing.T) {
	e, _ := newRuleEnv(t, proxy.ScopeReadCommitted)
	e.super("CREATE SEQUENCE ctr; GRANT ALL ON ctr TO trust_user")
	c := e.connect(true, pgx.QueryExecModeSimpleProtocol).PgConn()
	ctx := context.Background()
	if _, err := c.Prepare(ctx, "s", "SELECT nextval('ctr')::text AS status, NULL::bytea AS result WHERE $1::text IS NOT NULL", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "s", pollSQL, nil); err == nil || !strings.Contains(err.Error(), "42P05") {
		t.Fatalf("redefining a prepared statement: %v, want the server's 42P05", err)
	}
	for i := 0; i < 3; i++ {
		if res := c.ExecPrepared(ctx, "s", [][]byte{[]byte("rule-task")}, nil, nil).Read(); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if v := e.scalar("SELECT last_value FROM ctr"); v != 3 {
		t.Fatalf("three executions of the statement ran nextval %d times", v)
	}
}

// TestKeyedSettings: SET extra_float_digits (pgjdbc sends it after connecting) outside a
// transaction block makes its value part of the session's key: the session gets answers written
// the way it asked, from the cache; inside a block (a ROLLBACK could undo it) the session is
// never answered from the cache again.
func TestKeyedSettings(t *testing.T) {
	e, other := newRuleEnv(t, proxy.ScopeReadCommitted)
	q := `SELECT (id / 3.0::float8)::text FROM celery_taskmeta WHERE task_id = 'rule-task'`
	read := func(c *pgx.Conn) string {
		var s string
		if err := c.QueryRow(context.Background(), q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	def := read(other) // fills the cache with the default rendering
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := e.connect(true, mode)
		run(t, c, "SET extra_float_digits = -5")
		if got := read(c); got == def || got != "0.3333333333" {
			t.Fatalf("after SET extra_float_digits = -5 the poll says %q (default %q)", got, def)
		}
		if !e.secondPollHit(t, c, q) {
			t.Fatal("a keyed setting stopped the cache")
		}
		run(t, c, "BEGIN")
		run(t, c, "SET extra_float_digits = 2")
		run(t, c, "ROLLBACK")
		for i := 0; i < 2; i++ {
			if e.secondPollHit(t, c, q) {
				t.Fatal("served from the cache after a SET inside a transaction block")
			}
		}
	}
}

// TestPortalKeepsItsStatement: a named portal runs the statement it was bound to, even after
// that statement was closed and a poll parsed under its name: executing the portal is the
// write it is, and the write invalidates.
func TestPortalKeepsItsStatement(t *testing.T) {
	e, poller := newRuleEnv(t, proxy.ScopeReadCommitted)
	if !e.secondPollHit(t, poller, literalPoll) { // PENDING, cached
		t.Fatal("not cached")
	}
	c := e.connect(true, pgx.QueryExecModeSimpleProtocol).PgConn()
	ctx := context.Background()
	if err := c.Exec(ctx, "BEGIN").Close(); err != nil { // named portals live until the transaction ends
		t.Fatal(err)
	}
	fe := c.Frontend()
	fe.Send(&pgproto3.Parse{Name: "w", Query: "UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = $1"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "w", Parameters: [][]byte{[]byte("rule-task")}})
	fe.Send(&pgproto3.Close{ObjectType: 'S', Name: "w"})
	fe.Send(&pgproto3.Parse{Name: "w", Query: pollSQL})
	fe.Send(&pgproto3.Execute{Portal: "p"})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("server: %s %s", e.Code, e.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if err := c.Exec(ctx, "COMMIT").Close(); err != nil {
		t.Fatal(err)
	}
	var status string
	var result []byte
	if err := poller.QueryRow(ctx, literalPoll).Scan(&status, &result); err != nil || status != "SUCCESS" {
		t.Fatalf("after the portal's committed UPDATE the poll says %q (%v)", status, err)
	}
}

// TestSetTTL: a reload's new TTL takes effect at once; what was cached under the old one is
// dropped, and the new one bounds what is served.
func TestSetTTL(t *testing.T) {
	e, c := newRuleEnv(t, proxy.ScopeReadCommitted) // TTL a minute
	if !e.secondPollHit(t, c, literalPoll) {
		t.Fatal("the second poll under a TTL of a minute was not served from the cache")
	}
	e.cache.SetTTL(200 * time.Millisecond)
	if got := e.cache.TTL(); got != 200*time.Millisecond {
		t.Fatalf("TTL %v after SetTTL(200ms)", got)
	}
	if e.cache.Stats().Entries != 0 {
		t.Error("entries of the old TTL kept")
	}
	if !e.secondPollHit(t, c, literalPoll) {
		t.Fatal("the second poll right after a fill, within the new TTL, was not served")
	}
	time.Sleep(250 * time.Millisecond)
	hits := e.cache.Stats().Hits
	run(t, c, literalPoll)
	if e.cache.Stats().Hits != hits {
		t.Error("an answer older than the new TTL of 200ms was served")
	}
}
