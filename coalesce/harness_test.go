package coalesce_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/fixtures"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestMain stops the real PostgreSQL the tests that need one share (pgtest.Shared), if one of
// them started it: the cache's rules and the storms' arithmetic run without a server.
func TestMain(m *testing.M) { pgtest.Main(m) }

// env is one test's database (with Celery's result table) and a coalescing proxy in front of it.
type env struct {
	t     testing.TB
	pg    *pgtest.Cluster // the package's shared server
	db    string
	cache *coalesce.Cache
	an    *analyzer.Analyzer
	srv   *proxy.Server
	addr  string
}

func newEnv(t testing.TB, cfg coalesce.Config, opts ...func(*proxy.Config)) *env {
	t.Helper()
	pg := pgtest.Shared(t)
	e := &env{t: t, pg: pg, db: pg.CreateDatabase(t)}
	ddl, err := fixtures.DDL(fixtures.Celery)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, e.db, ddl)
	pg.Exec(t, e.db, "GRANT ALL ON ALL TABLES IN SCHEMA public TO "+pgtest.ScramUser+", "+pgtest.TrustUser+
		"; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "+pgtest.ScramUser+", "+pgtest.TrustUser)
	up, err := proxy.ParseUpstream("host=127.0.0.1 port=" + portOf(pg.Addr()) + " sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Enabled = true
	e.cache = coalesce.New(cfg)
	e.an = analyzer.New(analyzer.Config{})
	e.an.SetCoalesceStats(e.cache.Stats)
	pcfg := proxy.Config{Upstream: up, Observer: e.an, Cache: e.cache,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&pcfg)
	}
	e.srv, err = proxy.NewServer(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go e.srv.Serve(ln)
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// dsn is a connection string for user through the proxy (via true) or straight to the server.
func (e *env) dsn(user string, via bool) string {
	host := e.pg.Addr()
	if via {
		host = e.addr
	}
	s := "postgres://" + user + ":" + pgtest.Password + "@" + host + "/" + e.db + "?sslmode=disable"
	if user == pgtest.TrustUser {
		s = "postgres://" + user + "@" + host + "/" + e.db + "?sslmode=disable"
	}
	return s
}

func (e *env) connect(via bool, mode pgx.QueryExecMode) *pgx.Conn {
	e.t.Helper()
	cfg, err := pgx.ParseConfig(e.dsn(pgtest.TrustUser, via))
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// super runs sql directly on the server as the superuser.
func (e *env) super(sql string) { e.pg.Exec(e.t, e.db, sql) }

// scalar runs a one-value query directly on the server.
func (e *env) scalar(sql string, args ...any) int64 {
	e.t.Helper()
	c, err := pgx.Connect(context.Background(), e.pg.ConnString(pgtest.SuperUser, e.db))
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// serverCalls is what pg_stat_statements counts for statements whose text contains like.
func (e *env) serverCalls(like string) int64 {
	return e.scalar(`SELECT coalesce(sum(calls),0)::bigint FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = current_database() AND query LIKE '%' || $1 || '%'`, like)
}
