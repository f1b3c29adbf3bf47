package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

func withReuse(idle time.Duration) proxyOption {
	return func(c *proxy.Config) {
		c.ReuseServerConnections = true
		c.ReuseIdleTimeout = idle
	}
}

func backendPID(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	return queryInt(t, conn, "SELECT pg_backend_pid()")
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string) int { return queryOne[int](t, conn, sql) }

func queryText(t *testing.T, conn *pgx.Conn, sql string) string {
	return queryOne[string](t, conn, sql)
}

func queryOne[T any](t *testing.T, conn *pgx.Conn, sql string) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// backendAlive asks the server (as the superuser, directly) whether a backend process exists.
func backendAlive(t *testing.T, pid int) bool {
	t.Helper()
	admin := connect(t, directString(t, pgtest.SuperUser, pgtest.Database))
	return queryInt(t, admin, "SELECT count(*)::int FROM pg_stat_activity WHERE pid = "+strconv.Itoa(pid)) == 1
}

func waitKept(t *testing.T, p *testProxy, n int64) {
	t.Helper()
	waitFor(t, "kept server connections to reach "+strconv.FormatInt(n, 10), func() bool { return p.srv.ReuseStats().Kept >= n })
}

// reportedParams are the ParameterStatus values PostgreSQL 15 reports.
var reportedParams = []string{"application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
	"in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding", "server_version",
	"session_authorization", "standard_conforming_strings", "TimeZone"}

// A client that leaves cleanly hands its server connection to the next client with the same
// startup packet, and nothing of its session survives the reset: the next client sees what a
// new connection straight to the server sees.
func TestReuseServerConnectionIsReset(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	p := startProxy(t, withReuse(time.Minute))
	dsn := p.connString(pgtest.TrustUser, db)

	first := open(t, dsn)
	pid := backendPID(t, first)
	ctx := context.Background()
	for _, sql := range []string{
		"SET search_path TO pg_catalog",
		"SET TIME ZONE 'Asia/Tokyo'", // reported: the reset must report it back
		"SET application_name TO 'dirty'",
		"PREPARE leftover AS SELECT 1",
		"CREATE TEMP TABLE leftover (x int)",
		"LISTEN leftover",
		"SELECT pg_advisory_lock(42)",
		"BEGIN", "DECLARE leftover CURSOR WITH HOLD FOR SELECT 1", "COMMIT",
	} {
		if _, err := first.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitKept(t, p, 1)

	second := open(t, dsn)
	defer second.Close(ctx)
	if got := backendPID(t, second); got != pid {
		t.Fatalf("second client got server backend %d, want the kept %d", got, pid)
	}
	direct := connect(t, directString(t, pgtest.TrustUser, db))
	for _, name := range reportedParams {
		if got, want := second.PgConn().ParameterStatus(name), direct.PgConn().ParameterStatus(name); got != want {
			t.Errorf("ParameterStatus %s = %q through a kept connection, %q on a new one", name, got, want)
		}
	}
	for sql, want := range map[string]string{
		"SHOW search_path":      queryText(t, direct, "SHOW search_path"),
		"SHOW TimeZone":         queryText(t, direct, "SHOW TimeZone"),
		"SHOW application_name": queryText(t, direct, "SHOW application_name"),
	} {
		if got := queryText(t, second, sql); got != want {
			t.Errorf("%s = %q after reuse, want %q", sql, got, want)
		}
	}
	for _, sql := range []string{
		"SELECT count(*)::int FROM pg_prepared_statements WHERE name = 'leftover'",
		"SELECT count(*)::int FROM pg_class WHERE relname = 'leftover' AND relpersistence = 't'",
		"SELECT count(*)::int FROM pg_listening_channels()",
		"SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
		"SELECT count(*)::int FROM pg_cursors WHERE name = 'leftover'",
	} {
		if n := queryInt(t, second, sql); n != 0 {
			t.Errorf("%s = %d after reuse: the previous client's session leaked", sql, n)
		}
	}

	// The replayed BackendKeyData is the backend's: a cancel reaches the statement.
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = second.PgConn().CancelRequest(ctx)
	}()
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := second.Exec(qctx, "SELECT pg_sleep(30)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("cancelled pg_sleep on a kept connection: %v, want SQLSTATE 57014", err)
	}
	if st := p.srv.ReuseStats(); st.Reused != 1 {
		t.Fatalf("ReuseStats = %+v, want 1 reused", st)
	}
}

// Connections are kept only when that is safe: a password the proxy never learns, a client
// that leaves inside a transaction or without Terminate, or another startup packet all get a
// server connection of their own, and the unused ones end.
func TestReuseOnlyWhenSafe(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	p := startProxy(t, withReuse(time.Minute))
	ctx := context.Background()

	// A password user: the server asked for a password, so the next client must be asked too.
	scram := p.connString(pgtest.ScramUser, db)
	c := open(t, scram)
	pid := backendPID(t, c)
	c.Close(ctx)
	waitFor(t, "the password user's backend to end", func() bool { return !backendAlive(t, pid) })
	c = open(t, scram)
	if backendPID(t, c) == pid {
		t.Fatal("a server connection that asked for a password was reused")
	}
	c.Close(ctx)

	trust := p.connString(pgtest.TrustUser, db)
	// Inside a transaction: the server would roll it back on a reset, but its locks and
	// snapshot belong to the client that left.
	c = open(t, trust)
	pid = backendPID(t, c)
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	waitFor(t, "the backend left in a transaction to end", func() bool { return !backendAlive(t, pid) })

	// Without Terminate: the client vanished, perhaps mid-message.
	c = open(t, trust)
	pid = backendPID(t, c)
	c.PgConn().Conn().Close()
	waitFor(t, "the vanished client's backend to end", func() bool { return !backendAlive(t, pid) })

	if st := p.srv.ReuseStats(); st.Kept != 0 || st.Reused != 0 {
		t.Fatalf("ReuseStats = %+v, want nothing kept", st)
	}

	// Another startup packet (here application_name) does not get the connection.
	c = open(t, trust)
	pid = backendPID(t, c)
	c.Close(ctx)
	waitKept(t, p, 1)
	other := open(t, trust+" application_name=other")
	defer other.Close(ctx)
	if backendPID(t, other) == pid {
		t.Fatal("a connection kept for one startup packet went to a client that sent another")
	}
	// The kept one still serves its own kind.
	same := open(t, trust)
	defer same.Close(ctx)
	if got := backendPID(t, same); got != pid {
		t.Fatalf("same startup packet got backend %d, want the kept %d", got, pid)
	}
}

// A kept connection the server ended meanwhile is noticed and replaced; kept connections end
// after the idle timeout and when the proxy shuts down.
func TestReuseKeptConnectionsEnd(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	p := startProxy(t, withReuse(time.Minute))
	trust := p.connString(pgtest.TrustUser, db)
	ctx := context.Background()

	c := open(t, trust)
	pid := backendPID(t, c)
	c.Close(ctx)
	waitKept(t, p, 1)
	pg.Exec(t, db, "SELECT pg_terminate_backend("+strconv.Itoa(pid)+")")
	waitFor(t, "the terminated backend to end", func() bool { return !backendAlive(t, pid) })
	c = open(t, trust)
	if got := backendPID(t, c); got == pid {
		t.Fatal("a terminated backend was handed out")
	}
	if n := queryInt(t, c, "SELECT 7"); n != 7 {
		t.Fatalf("query on the replacement connection returned %d", n)
	}
	if st := p.srv.ReuseStats(); st.Discarded != 1 || st.Reused != 0 {
		t.Fatalf("ReuseStats = %+v, want the dead one discarded and none reused", st)
	}
	pid = backendPID(t, c)
	c.Close(ctx)
	waitKept(t, p, 2)

	// Shutdown ends what is kept.
	ctx5, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the kept backend to end at shutdown", func() bool { return !backendAlive(t, pid) })

	// The idle timeout ends what nobody takes.
	q := startProxy(t, withReuse(200*time.Millisecond))
	c = open(t, q.connString(pgtest.TrustUser, db))
	pid = backendPID(t, c)
	c.Close(ctx)
	waitKept(t, q, 1)
	waitFor(t, "the idle kept backend to end", func() bool { return !backendAlive(t, pid) })
	if st := q.srv.ReuseStats(); st.Idle != 0 || st.Discarded != 1 {
		t.Fatalf("ReuseStats = %+v after the idle timeout, want none idle and one discarded", st)
	}
}

// Many clients connecting once per query, concurrently, some leaving inside a transaction and
// some without Terminate: each starts with a clean session, the answers are right, and the
// server ran them on a handful of backends (its own pg_backend_pid says which).
func TestReuseUnderChurn(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	p := startProxy(t, withReuse(time.Minute))
	dsn := p.connString(pgtest.TrustUser, db)
	const workers, each = 8, 60
	var mu sync.Mutex
	pids := map[int]bool{}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < each; i++ {
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					errs <- err
					return
				}
				var path string
				var pid, sum int
				err = conn.QueryRow(ctx, "SELECT current_setting('search_path'), pg_backend_pid(), $1::int + $2::int", w, i).Scan(&path, &pid, &sum)
				if err == nil && (path != `"$user", public` || sum != w+i) {
					err = fmt.Errorf("client %d/%d: search_path %q, sum %d: a previous session leaked or the answer is wrong", w, i, path, sum)
				}
				if err == nil {
					_, err = conn.Exec(ctx, "SET search_path TO pg_catalog")
				}
				if err != nil {
					errs <- err
					conn.Close(ctx)
					return
				}
				mu.Lock()
				pids[pid] = true
				mu.Unlock()
				switch i % 10 {
				case 3:
					_, _ = conn.Exec(ctx, "BEGIN")
					conn.Close(ctx)
				case 7:
					conn.PgConn().Conn().Close()
				default:
					conn.Close(ctx)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := p.srv.ReuseStats()
	t.Logf("%d connections on %d server backends; %+v", workers*each, len(pids), st)
	// Two in ten leave in a way that ends their backend: about 100 backends, not 480.
	if len(pids) > workers*each/3 || st.Reused < workers*each/2 {
		t.Fatalf("%d connections used %d server backends (%+v): reuse did not happen", workers*each, len(pids), st)
	}
}
