package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestMain stops the cluster the tests that need a real PostgreSQL share (pgtest.Shared), if
// one of them started it: the others (framing, inspectors, fuzz targets) run without one.
func TestMain(m *testing.M) { pgtest.Main(m) }

// testProxy is a proxy.Server listening on a random loopback port, in front of pg.
type testProxy struct {
	srv  *proxy.Server
	addr string
	obs  *recorder
}

type proxyOption func(*proxy.Config)

// startProxy runs a proxy in front of pg (sslmode=disable upstream unless an option changes it)
// for the duration of the test. With withUpstream, the test needs no pg: none is started.
func startProxy(t testing.TB, opts ...proxyOption) *testProxy {
	t.Helper()
	obs := &recorder{}
	cfg := proxy.Config{
		Observer:       obs,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		ConnectTimeout: 5 * time.Second,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Upstream == nil {
		up, err := proxy.ParseUpstream("host=127.0.0.1 port=" + portOf(pgtest.Shared(t).Addr()) + " sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Upstream = up
	}
	srv, err := proxy.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &testProxy{srv: srv, addr: ln.Addr().String(), obs: obs}
}

func withUpstream(dsn string) proxyOption {
	return func(c *proxy.Config) {
		up, err := proxy.ParseUpstream(dsn)
		if err != nil {
			panic(err)
		}
		c.Upstream = up
	}
}

func withTLS(conf *tls.Config) proxyOption { return func(c *proxy.Config) { c.TLS = conf } }

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// connString is a DSN for user and db through the proxy (sslmode=disable unless extra says).
func (p *testProxy) connString(user, db string, extra ...string) string {
	return dsnFor(p.addr, user, db, extra...)
}

// directString is the same DSN straight to PostgreSQL, for comparisons.
func directString(t testing.TB, user, db string, extra ...string) string {
	return dsnFor(pgtest.Shared(t).Addr(), user, db, extra...)
}

func dsnFor(addr, user, db string, extra ...string) string {
	host, port, _ := net.SplitHostPort(addr)
	s := "host=" + host + " port=" + port + " user=" + user + " dbname=" + db
	if user != pgtest.TrustUser {
		s += " password=" + pgtest.Password
	}
	hasSSL := false
	for _, e := range extra {
		s += " " + e
		hasSSL = hasSSL || strings.HasPrefix(e, "sslmode=")
	}
	if !hasSSL {
		s += " sslmode=disable"
	}
	return s
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn := open(t, dsn)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// open connects without registering a cleanup, for tests where when a connection closes is
// the point.
func open(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(dsn), err)
	}
	return conn
}

func redact(dsn string) string { return strings.ReplaceAll(dsn, pgtest.Password, "***") }

// recordedEvent is an Event copied out of the observer call.
type recordedEvent struct {
	conn      uint64
	protocol  proxy.Protocol
	text      string
	index     int
	stmtName  string
	params    []string // text of each parameter; "<NULL>" for NULL
	tag       string
	rows      int64
	digest    uint64
	sqlstate  string
	failed    bool
	suspended bool
	duration  time.Duration
	columns   int    // columns in the RowDescription the event carried
	firstRow  string // the prefix of the first DataRow
}

// recorder is an Observer that keeps everything, for assertions.
type recorder struct {
	mu     sync.Mutex
	events []recordedEvent
	opened []proxy.ConnInfo
	auth   []string // "ok" or the SQLSTATE of a refusal
	closed []proxy.ConnStats
}

func (r *recorder) ConnOpened(c *proxy.ConnInfo) {
	r.mu.Lock()
	r.opened = append(r.opened, *c)
	r.mu.Unlock()
}

func (r *recorder) ConnAuthenticated(c *proxy.ConnInfo, ok bool, sqlstate string) {
	r.mu.Lock()
	if ok {
		r.auth = append(r.auth, "ok")
	} else {
		r.auth = append(r.auth, sqlstate)
	}
	r.mu.Unlock()
}

func (r *recorder) ConnClosed(c *proxy.ConnInfo, st proxy.ConnStats) {
	r.mu.Lock()
	r.closed = append(r.closed, st)
	r.mu.Unlock()
}

func (r *recorder) Statements(c *proxy.ConnInfo, batch []proxy.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range batch {
		ev := &batch[i]
		re := recordedEvent{
			conn:      c.ID,
			protocol:  ev.Protocol,
			text:      string(ev.Text),
			index:     ev.Index,
			stmtName:  string(ev.StatementName),
			tag:       string(ev.Tag),
			rows:      ev.Rows,
			digest:    ev.Digest,
			failed:    ev.Failed,
			suspended: ev.Suspended,
			duration:  ev.Duration,
		}
		if len(ev.Columns) >= 2 {
			re.columns = int(ev.Columns[0])<<8 | int(ev.Columns[1])
		}
		re.firstRow = string(ev.FirstRow)
		if ev.Failed {
			re.sqlstate = string(ev.SQLState[:])
		}
		if ev.Protocol == proxy.Extended {
			ev.Bind.Params(func(_ int, _ int16, v []byte) bool {
				if v == nil {
					re.params = append(re.params, "<NULL>")
				} else {
					re.params = append(re.params, string(v))
				}
				return true
			})
		}
		r.events = append(r.events, re)
	}
}

// snapshot returns a copy of the events so far.
func (r *recorder) snapshot() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events...)
}

// waitFor polls cond until it holds or the deadline passes (events reach the observer after the
// client already has its answer, so assertions on them must allow a moment).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// statStatements returns pg_stat_statements calls per query text for database db, read as the
// superuser. It is the ground truth the proxy's own counts are checked against.
func statStatements(t testing.TB, db string) map[string]int64 {
	t.Helper()
	conn := connect(t, directString(t, pgtest.SuperUser, pgtest.Database))
	rows, err := conn.Query(context.Background(),
		`SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`, db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var q string
		var n int64
		if err := rows.Scan(&q, &n); err != nil {
			t.Fatal(err)
		}
		out[q] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
