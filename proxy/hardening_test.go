package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// --- faults ---

// forward accepts on ln and pipes every connection to addr, until ln closes.
func forward(t *testing.T, ln net.Listener, addr string) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
		}
	}()
}

// TestUpstreamDownAtStartThenBack: while nothing listens upstream the client gets a clean FATAL
// 08006 and the proxy keeps running; once the upstream is there, the next client is served.
func TestUpstreamDownAtStartThenBack(t *testing.T) {
	pg := pgtest.Shared(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upAddr := ln.Addr().String()
	ln.Close()
	p := startProxyTo(t, "host=127.0.0.1 port="+portOf(upAddr)+" sslmode=disable")
	for i := 0; i < 2; i++ {
		_, err := pgconn.Connect(context.Background(), p.connString(pgtest.ScramUser, pgtest.Database))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "08006" || pe.Severity != "FATAL" {
			t.Fatalf("upstream down: want FATAL 08006, got %v", err)
		}
	}
	// The upstream comes back: a forwarder to the real server on the port the proxy points at.
	ln, err = net.Listen("tcp", upAddr)
	if err != nil {
		t.Fatalf("re-listening on %s: %v", upAddr, err)
	}
	forward(t, ln, pg.Addr())
	conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after the upstream came back: %d, %v", n, err)
	}
}

// TestConnectTimeoutCoversTheServersFirstAnswer: a server that accepts TCP connections but does
// not answer (frozen, or too busy to start a backend) is a server the client cannot reach:
// --connect-timeout bounds the wait for its first answer too, not only the TCP handshake, and
// the client gets FATAL 08006 in time, as libpq's connect_timeout would give it.
func TestConnectTimeoutCoversTheServersFirstAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // never accepted: the kernel completes handshakes
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const timeout = 500 * time.Millisecond
	p := startProxyTo(t, "host=127.0.0.1 port="+portOf(ln.Addr().String())+" sslmode=disable",
		func(c *proxy.Config) { c.ConnectTimeout = timeout })
	for range 3 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := pgconn.Connect(ctx, p.connString(pgtest.TrustUser, pgtest.Database))
		cancel()
		took := time.Since(start)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "08006" || pe.Severity != "FATAL" {
			t.Fatalf("server silent: want FATAL 08006, got %v after %v", err, took)
		}
		if took > timeout+time.Second {
			t.Fatalf("the client waited %v for a server that never answered, with a connect timeout of %v", took, timeout)
		}
		t.Logf("%v: %s", took.Round(time.Millisecond), pe.Message)
	}
}

// startupAs logs in as the trust user with extra startup parameters and reads up to the first
// ReadyForQuery.
func startupAs(t *testing.T, c net.Conn, db string, params ...string) *pgproto3.Frontend {
	t.Helper()
	fe, err := loginAs(c, db, params...)
	if err != nil {
		t.Fatal(err)
	}
	return fe
}

// TestBackendTerminatedMidSession: pg_terminate_backend (what a server restart does to every
// session) reaches the client as the server's own FATAL 57P01, with nothing of the proxy's
// added, and new connections work at once.
func TestBackendTerminatedMidSession(t *testing.T) {
	p := startProxy(t)
	c := rawConn(t, p.addr)
	fe := startupTrust(t, c)
	fe.Send(&pgproto3.Query{String: "SELECT pg_backend_pid()"})
	fe.Flush()
	var pid string
	for {
		msg := receive(t, fe)
		if d, ok := msg.(*pgproto3.DataRow); ok {
			pid = string(d.Values[0])
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	super := connect(t, directString(t, pgtest.SuperUser, pgtest.Database))
	var ok bool
	if err := super.QueryRow(context.Background(), "SELECT pg_terminate_backend($1::int)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend: %v %v", ok, err)
	}
	er, isErr := receive(t, fe).(*pgproto3.ErrorResponse)
	if !isErr || er.Severity != "FATAL" || er.Code != "57P01" || strings.Contains(er.Message, "pgpollwatch") {
		t.Fatalf("want the server's FATAL 57P01, got %#v", er)
	}
	if msg, err := fe.Receive(); err == nil {
		t.Fatalf("after the FATAL: %#v", msg)
	}
	conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	if _, err := conn.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatalf("a new connection right after: %v", err)
	}
}

// activeStatements counts the backends of application app that are running a statement.
func activeStatements(t *testing.T, super *pgx.Conn, app string) int {
	t.Helper()
	var n int
	if err := super.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// abort closes c with a reset, as a crashed or killed client does.
func abort(c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// TestVanishedClientStatementIsCancelled: when a client disappears while its statement runs,
// the server would go on running it (it notices a closed socket only when it next reads or
// writes): the proxy cancels it, so the backend is gone from pg_stat_activity within a second.
func TestVanishedClientStatementIsCancelled(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, "CREATE TABLE v (n int); GRANT ALL ON v TO trust_user")
	super := connect(t, directString(t, pgtest.SuperUser, db))
	ctx := context.Background()

	run := func(name string, send func(fe *pgproto3.Frontend)) {
		app := "vanish-" + name
		c := rawConn(t, p.addr)
		fe := startupAs(t, c, db, "application_name", app)
		send(fe)
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, name+": the statement running", func() bool { return activeStatements(t, super, app) == 1 })
		abort(c)
		start := time.Now()
		for activeStatements(t, super, app) != 0 {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: the backend still runs the statement a second after its client vanished", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: statement gone %v after the client", name, time.Since(start).Round(time.Millisecond))
	}
	run("simple", func(fe *pgproto3.Frontend) { fe.Send(&pgproto3.Query{String: "SELECT pg_sleep(30)"}) })
	run("extended", func(fe *pgproto3.Frontend) {
		fe.Send(&pgproto3.Parse{Query: "SELECT pg_sleep($1)"})
		fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte("30")}})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
	})
	// A transaction idle in the middle: nothing to cancel, and closing rolls it back.
	run("in-transaction", func(fe *pgproto3.Frontend) {
		fe.Send(&pgproto3.Query{String: "BEGIN; INSERT INTO v VALUES (1); SELECT pg_sleep(30)"})
	})

	// A client that sent Terminate asked for its statements to complete before the end: the
	// proxy leaves them alone, as the server would. One that vanished does not get its INSERT.
	for i, terminate := range []bool{true, false} {
		c := rawConn(t, p.addr)
		fe := startupAs(t, c, db)
		fe.Send(&pgproto3.Query{String: fmt.Sprintf("INSERT INTO v SELECT %d FROM pg_sleep(1)", 10+i)})
		if terminate {
			fe.Send(&pgproto3.Terminate{})
		}
		fe.Flush()
		time.Sleep(100 * time.Millisecond)
		abort(c)
	}
	// Wait until neither INSERT runs any more (each sleeps 1 s), then look at what committed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var running int
		if err := super.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO v SELECT%' AND state <> 'idle'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d INSERTs still running after 10 s", running)
		}
	}
	var got []int32
	rows, _ := super.Query(ctx, "SELECT n FROM v ORDER BY n")
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(got) != 1 || got[0] != 10 {
		t.Fatalf("rows %v (%v): want only the terminated client's 10", got, err)
	}
}

// dialClosed reports how long addr took to close a connection after send was written, reading
// (and returning) whatever it answered.
func dialClosed(t *testing.T, addr string, send []byte) (time.Duration, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(10 * time.Second))
	if len(send) > 0 {
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("reading until the proxy closes: %v", err)
	}
	return time.Since(start), got
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestStartupTimeout closes clients that never finish their startup packet or TLS handshake.
func TestStartupTimeout(t *testing.T) {
	conf, _ := selfSignedTLS(t)
	p := startProxy(t, withTLS(conf), func(c *proxy.Config) { c.StartupTimeout = 300 * time.Millisecond })
	cases := map[string][]byte{
		"nothing":         nil,
		"half a header":   {0, 0, 0},
		"half a packet":   {0, 0, 1, 0, 0, 3, 0, 0, 'u', 's'},
		"TLS never begun": {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f},
	}
	for name, send := range cases {
		took, got := dialClosed(t, p.addr, send)
		if took < 250*time.Millisecond || took > 3*time.Second {
			t.Errorf("%s: closed after %v, want about the 300ms startup timeout", name, took)
		}
		if name == "TLS never begun" && string(got) != "S" || name != "TLS never begun" && len(got) != 0 {
			t.Errorf("%s: answered %q", name, got)
		}
	}
	waitFor(t, "no connection left", func() bool { return p.srv.ActiveConnections() == 0 })
}

// TestGarbageOnListenPort sends what a port scanner, a browser or a TLS client that skips
// SSLRequest would: each is closed promptly and a session in progress is not disturbed.
func TestGarbageOnListenPort(t *testing.T) {
	p := startProxy(t, func(c *proxy.Config) { c.StartupTimeout = time.Second })
	conn := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"random bytes":  random,
		"HTTP request":  []byte("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\n\r\n"),
		"HTTP/2":        []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		"zero length":   {0, 0, 0, 0, 0, 0, 0, 0},
		"huge length":   {0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0},
		"no parameters": {0, 0, 0, 9, 0, 3, 0, 0, 0},
		"protocol 2":    {0, 0, 0, 9, 0, 2, 0, 0, 0},
		"random length": {0, 0, 0x20, 0, 0, 3, 0, 0, 'x'}, // waits for bytes that never come
	}
	for name, send := range cases {
		took, got := dialClosed(t, p.addr, send)
		if took > 3*time.Second {
			t.Errorf("%s: open for %v", name, took)
		}
		if len(got) > 0 && got[0] != 'E' {
			t.Errorf("%s: answered %q", name, got)
		}
	}
	// A TLS ClientHello straight away, without SSLRequest.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake(); err == nil {
		t.Fatal("a TLS handshake without SSLRequest succeeded")
	}
	c.Close()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("the session in progress was hurt: %v", err)
	}
	waitFor(t, "only the good session left", func() bool { return p.srv.ActiveConnections() == 1 })
}

// openFake opens n connections through p to a fake upstream and logs each in.
func openFake(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(fakeGreeting))
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := net.Dial("tcp", addr)
				if err == nil {
					conns[i] = c
					c.SetDeadline(time.Now().Add(20 * time.Second))
					_, err = c.Write(fakeStartup)
				}
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

// TestManyIdleConnectionsBoundedMemory holds 2,000 sessions open (against a fake upstream: the
// test server allows 300) and bounds what each costs the proxy. The same 2,000 clients are first
// measured straight against the fake server, so that the difference is the proxy's own share.
func TestManyIdleConnectionsBoundedMemory(t *testing.T) {
	const n = 2000
	up := startFakeUpstream(t)
	p := startProxyTo(t, up.dsn(), func(c *proxy.Config) { c.Observer = proxy.NopObserver{} })
	query, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	// measure opens n logged-in connections to addr, runs a query on each, and returns the
	// heap, stack and goroutines they add, per connection.
	measure := func(addr string) (heap, stack int64, goroutines float64) {
		for _, c := range openFake(t, addr, 20) { // warm-up: pools, first-use allocations
			c.Close()
		}
		waitFor(t, "warm-up connections closed", func() bool { return p.srv.ActiveConnections() == 0 && up.open.Load() == 0 })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		conns := openFake(t, addr, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			waitFor(t, "every connection closed", func() bool { return p.srv.ActiveConnections() == 0 && up.open.Load() == 0 })
		}()
		reply := make([]byte, len(fakeQueryReply))
		for i, c := range conns {
			if _, err := c.Write(query); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if _, err := io.ReadFull(c, reply); err != nil || !bytes.Equal(reply, fakeQueryReply) {
				t.Fatalf("connection %d: %q %v", i, reply, err)
			}
		}
		if got := up.open.Load(); got != n {
			t.Fatalf("%d connections at the fake server, want %d", got, n)
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		return (int64(after.HeapInuse) - int64(before.HeapInuse)) / n,
			(int64(after.StackInuse) - int64(before.StackInuse)) / n,
			float64(runtime.NumGoroutine()-g0) / n
	}
	dHeap, dStack, dG := measure(up.addr())
	pHeap, pStack, pG := measure(p.addr)
	heap, stack, goroutines := pHeap-dHeap, pStack-dStack, pG-dG
	t.Logf("per idle connection, the proxy's share: heap %d bytes, stacks %d bytes, %.2f goroutines (client and fake server: heap %d, stacks %d)",
		heap, stack, goroutines, dHeap, dStack)
	// The session's state and two goroutines: an idle session holds no read buffer (a busy one
	// has 8 KiB + 32 KiB from the pools).
	if heap > 16<<10 {
		t.Errorf("%d bytes of heap per idle connection, want under 16 KiB", heap)
	}
	if goroutines > 2.1 {
		t.Errorf("%.2f goroutines per connection, want 2", goroutines)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestConnectDisconnectCyclesLeakNothing runs 10,000 short sessions (some end with Terminate,
// some with a reset, some vanish with a query in flight) and checks that no goroutine and no
// file descriptor is left behind.
func TestConnectDisconnectCyclesLeakNothing(t *testing.T) {
	const cycles, workers = 10000, 8
	up := startFakeUpstream(t)
	p := startProxyTo(t, up.dsn(), func(c *proxy.Config) { c.Observer = proxy.NopObserver{} })
	terminate := []byte{'X', 0, 0, 0, 4}
	query, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	cycle := func(i int, buf []byte) error {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(fakeStartup); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf[:len(fakeGreeting)]); err != nil {
			return err
		}
		switch i % 4 {
		case 0:
			_, err = c.Write(terminate)
		case 1:
			abort(c)
		case 2:
			_, err = c.Write(query) // and vanish before the answer
		case 3:
			if _, err = c.Write(query); err == nil {
				_, err = io.ReadFull(c, buf[:len(fakeQueryReply)])
			}
		}
		return err
	}
	run := func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 256)
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := cycle(i, buf); err != nil {
						failed.Store(fmt.Errorf("cycle %d: %w", i, err))
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			t.Fatal(err)
		}
	}
	settled := func() { // every session, cancel and fake connection over
		waitFor(t, "sessions closed", func() bool { return p.srv.ActiveConnections() == 0 && up.open.Load() == 0 })
	}
	run(200)
	settled()
	// A finished session's goroutines wait 10 s in the server's pool for the next session
	// (workers.go); those parked are not leaks, so they are left out of both counts.
	live := func() int { return runtime.NumGoroutine() - proxy.IdleWorkers(p.srv) }
	g0, fd0 := live(), openFDs(t)
	start := time.Now()
	run(cycles)
	t.Logf("%d cycles in %v; %d cancels forwarded for vanished queries", cycles, time.Since(start).Round(time.Millisecond), up.cancels.Load())
	settled()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g1, fd1 := live(), openFDs(t)
		if g1 <= g0+3 && fd1 <= fd0+3 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Logf("goroutines left:\n%s", buf[:runtime.Stack(buf, true)])
			t.Fatalf("after %d cycles: goroutines (not parked in the pool) %d -> %d, file descriptors %d -> %d", cycles, g0, g1, fd0, fd1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- limits ---

// TestMaxConnections refuses the client past the limit with SQLSTATE 53300, still forwards
// CancelRequests at the limit, and serves again once a session ends.
func TestMaxConnections(t *testing.T) {
	p := startProxy(t, func(c *proxy.Config) { c.MaxConnections = 2 })
	ctx := context.Background()
	a := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	b := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	_, err := pgconn.Connect(ctx, p.connString(pgtest.ScramUser, pgtest.Database))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || pe.Severity != "FATAL" || !strings.Contains(pe.Message, "too many") {
		t.Fatalf("third connection: want FATAL 53300, got %v", err)
	}
	// A cancel is not a client: pgx's context cancel still reaches the server.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := a.Exec(cctx, "SELECT pg_sleep(20)"); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel at the limit: %v after %v", err, time.Since(start))
	}
	b.Close(ctx)
	waitFor(t, "a free slot", func() bool { return p.srv.ActiveConnections() <= 1 })
	c := connect(t, p.connString(pgtest.ScramUser, pgtest.Database))
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}

	// Far past the limit, connections that have not even sent a startup packet yet are refused
	// at once instead of each holding a goroutine until the startup timeout.
	var held []net.Conn
	for len(held) < 3 { // with a and c: twice the limit, plus one
		h := rawConn(t, p.addr)
		held = append(held, h)
	}
	waitFor(t, "the held connections counted", func() bool { return p.srv.ActiveConnections() >= 4 })
	took, got := dialClosed(t, p.addr, nil)
	if took > 2*time.Second || len(got) == 0 || got[0] != 'E' || !bytes.Contains(got, []byte("53300")) {
		t.Fatalf("flood connection: %q after %v", got, took)
	}
}

// TestTLSBelow12Refused: a TLS config that allows TLS 1.0 is raised to 1.2 (without changing
// the caller's), so a TLS 1.1-only client cannot connect while a TLS 1.2 one can.
func TestTLSBelow12Refused(t *testing.T) {
	conf, _ := selfSignedTLS(t)
	conf.MinVersion = tls.VersionTLS10
	p := startProxy(t, withTLS(conf))
	if conf.MinVersion != tls.VersionTLS10 {
		t.Fatal("NewServer changed the caller's tls.Config")
	}
	handshake := func(minV, maxV uint16) (*tls.Conn, error) {
		c := rawConn(t, p.addr)
		c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f})
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answered %q, %v", b[0], err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: minV, MaxVersion: maxV})
		return tc, tc.Handshake()
	}
	if _, err := handshake(tls.VersionTLS10, tls.VersionTLS11); err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
	tc, err := handshake(tls.VersionTLS12, tls.VersionTLS12)
	if err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}
	if v := tc.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Fatalf("negotiated %x", v)
	}
}

// --- secrets ---

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dumpObserver writes down everything an observer is given, byte for byte.
type dumpObserver struct{ out lockedBuffer }

func (d *dumpObserver) ConnOpened(c *proxy.ConnInfo) { fmt.Fprintf(&d.out, "opened %+v\n", *c) }
func (d *dumpObserver) ConnAuthenticated(c *proxy.ConnInfo, ok bool, sqlstate string) {
	fmt.Fprintf(&d.out, "auth %s %v %s\n", c.User, ok, sqlstate)
}
func (d *dumpObserver) ConnClosed(c *proxy.ConnInfo, st proxy.ConnStats) {
	fmt.Fprintf(&d.out, "closed %+v %+v\n", *c, st)
}
func (d *dumpObserver) Statements(c *proxy.ConnInfo, batch []proxy.Event) {
	for _, ev := range batch {
		fmt.Fprintf(&d.out, "event %+v text=%s bind=%s cols=%s row=%s\n", ev, ev.Text, []byte(ev.Bind), ev.Columns, ev.FirstRow)
	}
}

// TestSecretsNeverLoggedOrObserved logs in with SCRAM and MD5 (right and wrong passwords,
// through plain and TLS-on-both-legs proxies) with the logger at Debug and an observer that
// keeps everything: no password, no SASL message and no MD5 response appears anywhere.
func TestSecretsNeverLoggedOrObserved(t *testing.T) {
	pg := pgtest.Shared(t)
	logs := &lockedBuffer{}
	obs := &dumpObserver{}
	withSinks := func(c *proxy.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Observer = obs
	}
	conf, caFile := selfSignedTLS(t)
	plain := startProxy(t, withSinks)
	tlsBoth := startProxy(t, withSinks, withTLS(conf), withUpstream("host=127.0.0.1 port="+portOf(pg.Addr())+" sslmode=require"))
	ctx := context.Background()
	const wrong = "wrong-Passw0rd-xyz"
	for _, user := range []string{pgtest.ScramUser, pgtest.MD5User} {
		for _, p := range []*testProxy{plain, tlsBoth} {
			extra := []string{"sslmode=verify-full", "sslrootcert=" + caFile, "channel_binding=disable"}
			if p == plain {
				extra = nil
			}
			conn, err := pgx.Connect(ctx, p.connString(user, pgtest.Database, extra...))
			if err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			if _, err := conn.Exec(ctx, "SELECT $1::text", "visible-"+user); err != nil {
				t.Fatal(err)
			}
			conn.Close(ctx)
			bad := strings.Replace(p.connString(user, pgtest.Database, extra...), pgtest.Password, wrong, 1)
			if _, err := pgconn.Connect(ctx, bad); sqlstate(err) != "28P01" {
				t.Fatalf("%s with a wrong password: %v", user, err)
			}
		}
	}
	waitFor(t, "every connection closed", func() bool {
		return plain.srv.ActiveConnections() == 0 && tlsBoth.srv.ActiveConnections() == 0
	})
	all := logs.String() + "\n" + obs.out.String()
	// The recording worked: statements, users and auth outcomes are there.
	for _, want := range []string{"visible-" + pgtest.ScramUser, "visible-" + pgtest.MD5User, "auth " + pgtest.MD5User + " false 28P01", "level=WARN"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the recording lacks %q:\n%s", want, all)
		}
	}
	for _, secret := range []string{pgtest.Password, wrong, "SCRAM-SHA-256", "n,,n=", "c=biws", ",p="} {
		if strings.Contains(all, secret) {
			t.Errorf("%q appears in the logs or events", secret)
		}
	}
	if m := regexp.MustCompile(`md5[0-9a-f]{32}`).FindString(all); m != "" {
		t.Errorf("an MD5 password response appears: %s", m)
	}
}

// TestShutdownCancelsStatementsInFlight: sessions still running a statement when the shutdown
// grace period ends are told 57P01, and their statements are cancelled on the server too.
func TestShutdownCancelsStatementsInFlight(t *testing.T) {
	p := startProxy(t)
	super := connect(t, directString(t, pgtest.SuperUser, pgtest.Database))
	c := rawConn(t, p.addr)
	fe := startupAs(t, c, pgtest.Database, "application_name", "shutdown-in-flight")
	fe.Send(&pgproto3.Query{String: "SELECT pg_sleep(30)"})
	fe.Flush()
	waitFor(t, "the statement running", func() bool { return activeStatements(t, super, "shutdown-in-flight") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.srv.Shutdown(ctx)
	if er, ok := receive(t, fe).(*pgproto3.ErrorResponse); !ok || er.Code != "57P01" {
		t.Fatalf("want 57P01 from the proxy, got %#v", er)
	}
	start := time.Now()
	for activeStatements(t, super, "shutdown-in-flight") != 0 {
		if time.Since(start) > time.Second {
			t.Fatal("the statement still runs a second after the proxy shut down")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
