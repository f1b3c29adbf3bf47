package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// The tests in this file check that a session notices its peer's end of stream however it
// arrives: in the same TCP segment as the peer's last message (the case a proxy that waits for
// a new readiness edge after a short read misses), right after it, or alone. What is checked is
// the server's own view: pg_stat_activity and pg_locks.

// closeHow is how a test client ends its side of the connection right after its last write.
type closeHow int

const (
	// closeSameSegment puts the FIN in the segment that carries the last bytes (TCP_CORK holds
	// the bytes back until the FIN is queued behind them); reading stays open.
	closeSameSegment closeHow = iota
	// closeAtOnce writes, then closes the socket straight away.
	closeAtOnce
	// shutWrite writes, then shuts down the writing side only: the client could go on reading.
	shutWrite
)

var closeHows = []closeHow{closeSameSegment, closeAtOnce, shutWrite}

func (h closeHow) String() string {
	return [...]string{"fin-in-same-segment", "close-at-once", "shutdown-write"}[h]
}

// writeAndEnd writes b and ends the writing side of c as h says. With closeSameSegment and
// shutWrite, c stays open for reading and must be closed by the caller.
func writeAndEnd(t testing.TB, c net.Conn, b []byte, h closeHow) {
	t.Helper()
	tc := c.(*net.TCPConn)
	var err error
	switch h {
	case closeSameSegment:
		err = proxy.SendWithFIN(tc, b)
	case closeAtOnce:
		if _, err = c.Write(b); err == nil {
			err = c.Close()
		}
	case shutWrite:
		if _, err = c.Write(b); err == nil {
			err = tc.CloseWrite()
		}
	}
	if err != nil {
		t.Fatalf("%v: %v", h, err)
	}
}

func encode(msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		b, _ = m.Encode(b)
	}
	return b
}

// backendsOf counts the server's backends whose application_name is LIKE app: all of them, and those running
// a statement.
func backendsOf(t testing.TB, super *pgx.Conn, app string) (all, active int) {
	t.Helper()
	if err := super.QueryRow(context.Background(),
		"SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity WHERE application_name LIKE $1",
		app).Scan(&all, &active); err != nil {
		t.Fatal(err)
	}
	return all, active
}

// TestClientEndOfStreamWithItsLastStatement: 50 clients, started at random over 5 s, each send
// a statement that would run for 30 s and end their side at once: in the same segment, by
// closing right after the write, or with shutdown(SHUT_WR). The proxy cancels every statement
// and closes every server connection: each statement is gone from pg_stat_activity within a
// second of its client's FIN, and then every backend of theirs. (Spread over 2 s, the server
// forking 50 logins and 50 cancel requests on a loaded 2-core host took up to 1.25 s to end a
// statement after the proxy had cancelled it: that is the server's time, not the proxy's.)
func TestClientEndOfStreamWithItsLastStatement(t *testing.T) {
	p := startProxy(t)
	super := connect(t, directString(t, pgtest.SuperUser, pgtest.Database))
	const clients = 50
	prefix := fmt.Sprintf("eof-last-%d-", rand.Int())
	w := watchStatements(t, prefix)

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		how := closeHows[i%len(closeHows)]
		extended := i%2 == 1
		app := fmt.Sprint(prefix, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(rand.N(5 * time.Second)) // a statement every 100 ms on average
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := loginAs(c, pgtest.Database, "application_name", app); err != nil {
				errs <- err
				return
			}
			time.Sleep(rand.N(50 * time.Millisecond))
			var b []byte
			if extended {
				b = encode(&pgproto3.Parse{Query: "SELECT pg_sleep($1)"},
					&pgproto3.Bind{Parameters: [][]byte{[]byte("30")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
			} else {
				b = encode(&pgproto3.Query{String: "SELECT pg_sleep(30)"})
			}
			writeAndEnd(t, c, b, how)
			w.clientEnded(app)
			if how != closeAtOnce {
				_, _ = io.Copy(io.Discard, c) // until the proxy closes its side too
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w.check(t, clients, time.Second)
	waitFor(t, "every backend of the vanished clients to end", func() bool { all, _ := backendsOf(t, super, prefix+"%"); return all == 0 })
	waitFor(t, "the proxy to close every session", func() bool { return p.srv.ActiveConnections() == 0 })
}

// statementWatch polls pg_stat_activity for the backends of the applications named prefix*, and
// records, for each application whose client has ended, when its backend first showed running
// nothing: the server's own word for when the statement stopped.
type statementWatch struct {
	mu    sync.Mutex
	ended map[string]time.Time // when the client ended its side
	gone  map[string]time.Time // when the server first showed the application running nothing after that
	stop  chan struct{}
	done  chan struct{}
}

func watchStatements(t *testing.T, prefix string) *statementWatch {
	super := connect(t, directString(t, pgtest.SuperUser, pgtest.Database))
	w := &statementWatch{ended: map[string]time.Time{}, gone: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			at := time.Now() // a backend not active now was not active from at on
			rows, err := super.Query(context.Background(),
				"SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1 AND state <> 'idle'", prefix+"%")
			if err != nil {
				t.Error(err)
				return
			}
			active, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Error(err)
				return
			}
			w.mu.Lock()
			for app := range w.ended {
				if _, ok := w.gone[app]; !ok && !slices.Contains(active, app) {
					w.gone[app] = at
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.halt() })
	return w
}

func (w *statementWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// clientEnded records that app's client ended its side just now.
func (w *statementWatch) clientEnded(app string) {
	w.mu.Lock()
	w.ended[app] = time.Now()
	w.mu.Unlock()
}

// check waits for the statements of all n ended applications to stop and fails when one took
// longer than within after its client ended.
func (w *statementWatch) check(t *testing.T, n int, within time.Duration) {
	t.Helper()
	waitFor(t, "every statement of the ended clients to stop", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.gone) == n
	})
	w.halt()
	var lat []time.Duration
	for app, end := range w.ended {
		d := w.gone[app].Sub(end)
		lat = append(lat, d)
		if d > within {
			t.Errorf("%s: the statement ran on %v after its client's end of stream", app, d.Round(time.Millisecond))
		}
	}
	slices.Sort(lat)
	t.Logf("statement gone after its client's end: median %v, max %v (%d clients)",
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
}

// loginAs logs in as the trust user with extra startup parameters and reads up to the first
// ReadyForQuery, returning errors instead of failing (it runs on the tests' client goroutines).
func loginAs(c net.Conn, db string, params ...string) (*pgproto3.Frontend, error) {
	fe := pgproto3.NewFrontend(c, c)
	m := map[string]string{"user": pgtest.TrustUser, "database": db}
	for i := 0; i+1 < len(params); i += 2 {
		m[params[i]] = params[i+1]
	}
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: m})
	if err := fe.Flush(); err != nil {
		return nil, err
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			return fe, nil
		case *pgproto3.ErrorResponse:
			return nil, errors.New("startup: " + m.Message)
		}
	}
}

// endsWith runs one client of application app through the proxy: start sends what the client
// does before it leaves and returns once the server is busy with it (running a statement,
// waiting in COPY, or holding locks in a transaction); then last is written and the client
// ends its side as how says, without reading anything more. The server must show no backend of
// app within a second of that end of stream, and the proxy must close the session.
func endsWith(t *testing.T, p *testProxy, db, app string, how closeHow, start func(fe *pgproto3.Frontend), last []byte) {
	t.Helper()
	super := connect(t, directString(t, pgtest.SuperUser, db))
	c := rawConn(t, p.addr)
	fe := startupAs(t, c, db, "application_name", app)
	start(fe)
	writeAndEnd(t, c, last, how)
	end := time.Now()
	for {
		all, _ := backendsOf(t, super, app)
		if all == 0 {
			break
		}
		if time.Since(end) > time.Second {
			t.Fatalf("%s, %v: the server still has the backend a second after the client's end of stream", app, how)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s, %v: backend gone %v after the client's end", app, how, time.Since(end).Round(time.Millisecond))
	c.Close() // a client that only shut down its writing side closes at last
	waitFor(t, "the proxy to close the session", func() bool { return p.srv.ActiveConnections() == 0 })
}

// TestClientEndsWhileLargeAnswerStreams: the client asks for a large answer, reads a little of
// it and leaves without reading the rest. The server, blocked writing to the proxy, must not
// stay blocked: its backend ends within a second of the client's end of stream.
func TestClientEndsWhileLargeAnswerStreams(t *testing.T) {
	p := startProxy(t)
	for _, how := range closeHows {
		app := "eof-streaming-" + how.String()
		endsWith(t, p, pgtest.Database, app, how, func(fe *pgproto3.Frontend) {
			fe.Send(&pgproto3.Query{String: "SELECT repeat('x', 1000) FROM generate_series(1, 10000000)"})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			for range 1000 { // a megabyte of it
				if _, ok := receive(t, fe).(*pgproto3.ErrorResponse); ok {
					t.Fatal("the large query failed")
				}
			}
		}, encode(&pgproto3.Sync{}))
	}
}

// TestClientEndsDuringCopyFromStdin: the client leaves in the middle of COPY FROM STDIN, its last
// rows and its end of stream together. The server, waiting for more rows, must end the COPY and
// its backend, and release the table.
func TestClientEndsDuringCopyFromStdin(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, "CREATE TABLE copied (n int); GRANT ALL ON copied TO trust_user")
	super := connect(t, directString(t, pgtest.SuperUser, db))
	for _, how := range closeHows {
		app := "eof-copy-" + how.String()
		endsWith(t, p, db, app, how, func(fe *pgproto3.Frontend) {
			fe.Send(&pgproto3.Query{String: "COPY copied FROM STDIN"})
			fe.Flush()
			if _, ok := receive(t, fe).(*pgproto3.CopyInResponse); !ok {
				t.Fatal("want CopyInResponse")
			}
		}, encode(&pgproto3.CopyData{Data: []byte("1\n2\n3\n")}))
		var locks int
		if err := super.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_locks WHERE relation = 'copied'::regclass").Scan(&locks); err != nil || locks != 0 {
			t.Fatalf("%v: %d locks on the table after the COPY's client left (%v)", how, locks, err)
		}
	}
	var n int
	if err := super.QueryRow(context.Background(), "SELECT count(*) FROM copied").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows of unfinished COPYs committed (%v)", n, err)
	}
}

// TestClientEndsInsideTransactionHoldingLocks: a client holding an advisory lock and a row lock
// in an open transaction sends one more statement and leaves with it. The server rolls the
// transaction back and both locks are free within a second of the client's end of stream.
func TestClientEndsInsideTransactionHoldingLocks(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, "CREATE TABLE locked (id int PRIMARY KEY, v int); INSERT INTO locked VALUES (1, 0); GRANT ALL ON locked TO trust_user")
	other := connect(t, directString(t, pgtest.SuperUser, db))
	ctx := context.Background()
	for i, how := range closeHows {
		app := "eof-locks-" + how.String()
		key := 4200 + i
		endsWith(t, p, db, app, how, func(fe *pgproto3.Frontend) {
			fe.Send(&pgproto3.Query{String: fmt.Sprintf(
				"BEGIN; SELECT pg_advisory_xact_lock(%d); UPDATE locked SET v = v + 1 WHERE id = 1", key)})
			fe.Flush()
			for {
				if z, ok := receive(t, fe).(*pgproto3.ReadyForQuery); ok {
					if z.TxStatus != 'T' {
						t.Fatalf("status %c, want an open transaction", z.TxStatus)
					}
					return
				}
			}
		}, encode(&pgproto3.Query{String: "SELECT 1"}))
		// The backend is gone, so its locks are: check both the way another client would.
		var got bool
		if err := other.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
			t.Fatalf("%v: advisory lock %d still held (%v)", how, key, err)
		}
		if _, err := other.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := other.QueryRow(ctx, "SELECT v FROM locked WHERE id = 1 FOR UPDATE NOWAIT").Scan(&v); err != nil || v != 0 {
			t.Fatalf("%v: row lock still held or the update committed: v=%d, %v", how, v, err)
		}
	}
}

// TestServerFatalWithEndOfStreamInOneSegment: a server that ends a session sends a FATAL
// ErrorResponse and closes, often in one segment. The client gets the error and then the end of
// stream at once (libpq waits for it to report the connection lost), and the proxy closes the
// session. Twenty times, against a server that puts both in one segment every time.
func TestServerFatalWithEndOfStreamInOneSegment(t *testing.T) {
	f := startFakeUpstream(t)
	p := startProxyTo(t, f.dsn())
	for i := range 20 {
		c := rawConn(t, p.addr)
		fe := pgproto3.NewFrontend(c, c)
		if _, err := c.Write(fakeStartup); err != nil {
			t.Fatal(err)
		}
		for {
			if _, ok := receive(t, fe).(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		fe.Send(&pgproto3.Query{String: fakeFatalQuery})
		fe.Flush()
		if er, ok := receive(t, fe).(*pgproto3.ErrorResponse); !ok || er.Severity != "FATAL" {
			t.Fatalf("want the server's FATAL, got %#v", er)
		}
		sent := time.Now()
		c.SetReadDeadline(sent.Add(time.Second))
		msg, err := fe.Receive()
		if err == nil || isTimeout(err) {
			t.Fatalf("connection %d: after the FATAL, want the end of stream within a second, got %#v, %v", i, msg, err)
		}
		c.Close()
	}
	waitFor(t, "the proxy to close every session", func() bool { return p.srv.ActiveConnections() == 0 })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
