package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// TestObserverCountsMatchServer drives known statement counts through the proxy over both
// protocols and checks the observer's per-statement counts against pg_stat_statements.
func TestObserverCountsMatchServer(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 50) g; GRANT ALL ON items TO scram_user`)
	ctx := context.Background()
	conn := connect(t, p.connString(pgtest.ScramUser, db))

	const extended, simple = 37, 23
	for i := 0; i < extended; i++ {
		var v string
		if err := conn.QueryRow(ctx, "SELECT v FROM items WHERE id = $1", i%5+1).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < simple; i++ {
		if _, err := conn.Exec(ctx, fmt.Sprintf("SELECT v FROM items WHERE id = %d", i%7+1), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}

	stats := statStatements(t, db)
	if got := stats["SELECT v FROM items WHERE id = $1"]; got != extended+simple {
		t.Fatalf("server counted %d, want %d (%v)", got, extended+simple, stats)
	}
	waitFor(t, "all events", func() bool { return countEvents(p.obs, "SELECT v FROM items WHERE id =") == extended+simple })
	var ext, simp int
	for _, ev := range p.obs.snapshot() {
		if !strings.HasPrefix(ev.text, "SELECT v FROM items WHERE id =") {
			continue
		}
		if ev.rows != 1 || ev.tag != "SELECT 1" || ev.failed {
			t.Fatalf("bad event %+v", ev)
		}
		if ev.text == "SELECT v FROM items WHERE id = $1" {
			ext++
			if len(ev.params) != 1 {
				t.Fatalf("extended event without its parameter: %+v", ev)
			}
		} else {
			simp++
		}
	}
	if ext != extended || simp != simple {
		t.Fatalf("observer saw %d extended and %d simple, server ran %d and %d", ext, simp, extended, simple)
	}
}

func countEvents(r *recorder, prefix string) int {
	n := 0
	for _, ev := range r.snapshot() {
		if strings.HasPrefix(ev.text, prefix) {
			n++
		}
	}
	return n
}

// TestDigestTellsWhetherRowsChanged checks the digest: equal for equal rows, different after
// the row changes, zero for no rows.
func TestDigestTellsWhetherRowsChanged(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE taskmeta (task_id text PRIMARY KEY, status text); INSERT INTO taskmeta VALUES ('a', 'PENDING'); GRANT ALL ON taskmeta TO scram_user`)
	ctx := context.Background()
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	poll := func(id string) {
		var s string
		err := conn.QueryRow(ctx, "SELECT status FROM taskmeta WHERE task_id = $1", id).Scan(&s)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
	}
	poll("a")
	poll("a")
	if _, err := conn.Exec(ctx, "UPDATE taskmeta SET status = 'SUCCESS' WHERE task_id = 'a'"); err != nil {
		t.Fatal(err)
	}
	poll("a")
	poll("missing")
	waitFor(t, "4 polls", func() bool { return countEvents(p.obs, "SELECT status FROM taskmeta") == 4 })
	var d []uint64
	for _, ev := range p.obs.snapshot() {
		if strings.HasPrefix(ev.text, "SELECT status FROM taskmeta") {
			d = append(d, ev.digest)
		}
	}
	if d[0] == 0 || d[0] != d[1] || d[2] == d[1] || d[3] != 0 {
		t.Fatalf("digests %v: want equal, equal, different, zero", d)
	}
	// The events carry the row description and the start of the first row (the status).
	var statuses []string
	for _, ev := range p.obs.snapshot() {
		if strings.HasPrefix(ev.text, "SELECT status FROM taskmeta") {
			if ev.columns != 1 {
				t.Fatalf("event without its RowDescription: %+v", ev)
			}
			statuses = append(statuses, ev.firstRow)
		}
	}
	if !strings.Contains(statuses[0], "PENDING") || !strings.Contains(statuses[2], "SUCCESS") || statuses[3] != "" {
		t.Fatalf("first rows %q", statuses)
	}
}

// TestPipelineAndBatch sends many statements before one Sync, including one that fails, and
// checks results match a direct connection and the proxy pairs every answer correctly.
func TestPipelineAndBatch(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	ctx := context.Background()
	run := func(dsn string) string {
		conn := connect(t, dsn)
		var out strings.Builder
		b := &pgx.Batch{}
		for i := 0; i < 20; i++ {
			b.Queue("SELECT $1::int * 2", i)
		}
		br := conn.SendBatch(ctx, b)
		for i := 0; i < 20; i++ {
			var n int
			if err := br.QueryRow().Scan(&n); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "%d ", n)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}

		// Low-level pipeline: an error in the middle skips to the Sync.
		pc := conn.PgConn()
		pl := pc.StartPipeline(ctx)
		pl.SendQueryParams("SELECT 1", nil, nil, nil, nil)
		pl.SendQueryParams("SELECT 1/0", nil, nil, nil, nil)
		pl.SendQueryParams("SELECT 3", nil, nil, nil, nil)
		pl.SendPipelineSync()
		pl.SendQueryParams("SELECT 4", nil, nil, nil, nil)
		pl.SendPipelineSync()
		if err := pl.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			res, err := pl.GetResults()
			if err != nil {
				fmt.Fprintf(&out, "err:%v ", sqlstate(err))
				continue
			}
			if res == nil {
				break
			}
			switch r := res.(type) {
			case *pgconn.ResultReader:
				rr := r.Read()
				fmt.Fprintf(&out, "rows:%v err:%v ", rr.Rows, sqlstate(rr.Err))
			case *pgconn.PipelineSync:
				out.WriteString("sync ")
			}
		}
		if err := pl.Close(); err != nil {
			fmt.Fprintf(&out, "close:%v", sqlstate(err))
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
			t.Fatalf("connection unusable after pipeline: %v", err)
		}
		return out.String()
	}
	direct := run(directString(t, pgtest.ScramUser, db))
	proxied := run(p.connString(pgtest.ScramUser, db))
	if direct != proxied {
		t.Fatalf("through proxy:\n%s\ndirect:\n%s", proxied, direct)
	}
	waitFor(t, "the failed statement's event", func() bool {
		for _, ev := range p.obs.snapshot() {
			if ev.text == "SELECT 1/0" && ev.failed && ev.sqlstate == "22012" {
				return true
			}
		}
		return false
	})
	for _, ev := range p.obs.snapshot() {
		if ev.text == "SELECT 3" {
			t.Fatalf("statement skipped by the server after an error was reported as run: %+v", ev)
		}
	}
	if n := countEvents(p.obs, "SELECT $1::int * 2"); n != 20 {
		t.Fatalf("batch: %d events, want 20", n)
	}
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestCopyFromAndTo moves rows both ways with COPY through the proxy.
func TestCopyFromAndTo(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE c (id int, payload text); GRANT ALL ON c TO scram_user`)
	ctx := context.Background()
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	const n = 20000
	src := make([][]any, n)
	for i := range src {
		src[i] = []any{i, strings.Repeat("x", i%100)}
	}
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "payload"}, pgx.CopyFromRows(src))
	if err != nil || copied != n {
		t.Fatalf("CopyFrom: %d, %v", copied, err)
	}
	copyOut := func(dsn string) []byte {
		var buf bytes.Buffer
		c := connect(t, dsn)
		tag, err := c.PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM c ORDER BY id) TO STDOUT")
		if err != nil || tag.RowsAffected() != n {
			t.Fatalf("CopyTo: %v %v", tag, err)
		}
		return buf.Bytes()
	}
	if !bytes.Equal(copyOut(p.connString(pgtest.ScramUser, db)), copyOut(directString(t, pgtest.ScramUser, db))) {
		t.Fatal("COPY TO through the proxy differs from direct")
	}
	waitFor(t, "COPY events", func() bool {
		var in, out bool
		for _, ev := range p.obs.snapshot() {
			in = in || strings.HasPrefix(ev.tag, "COPY 20000") && strings.Contains(strings.ToUpper(ev.text), "FROM STDIN")
			out = out || strings.HasPrefix(ev.tag, "COPY 20000") && strings.Contains(ev.text, "TO STDOUT")
		}
		return in && out
	})
}

// TestListenNotifyWhileIdle checks that notifications reach an idle client through the proxy.
func TestListenNotifyWhileIdle(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	ctx := context.Background()
	listener := connect(t, p.connString(pgtest.ScramUser, db))
	if _, err := listener.Exec(ctx, "LISTEN jobs"); err != nil {
		t.Fatal(err)
	}
	notifier := connect(t, p.connString(pgtest.ScramUser, db))
	if _, err := notifier.Exec(ctx, "SELECT pg_notify('jobs', 'payload-1')"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil || n.Channel != "jobs" || n.Payload != "payload-1" {
		t.Fatalf("notification: %+v %v", n, err)
	}
	// A notice during a statement reaches the client too.
	var notices []string
	cfg, _ := pgconn.ParseConfig(p.connString(pgtest.ScramUser, db))
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	if _, err := pc.Exec(ctx, "DO $$ BEGIN RAISE NOTICE 'hello from the server'; END $$").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || notices[0] != "hello from the server" {
		t.Fatalf("notices %v", notices)
	}
}

// TestContextCancelReachesServer cancels a running statement with pgx's context: the proxy
// forwards the CancelRequest to the server that issued the key.
func TestContextCancelReachesServer(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.Exec(ctx, "SELECT pg_sleep(20)")
	if err == nil {
		t.Fatal("pg_sleep(20) finished despite the cancel")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	waitFor(t, "the canceled statement's event with 57014", func() bool {
		for _, ev := range p.obs.snapshot() {
			if ev.text == "SELECT pg_sleep(20)" && ev.sqlstate == "57014" {
				return true
			}
		}
		return false
	})
}

// TestCancelWithUnknownKeyIsDropped sends a CancelRequest whose key the proxy never handed out:
// it must not reach any backend, so a running statement keeps running.
func TestCancelWithUnknownKeyIsDropped(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	pid := conn.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(1.5)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	// The right process ID with a wrong secret: exactly what a forged cancel would try.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	binary.BigEndian.PutUint32(msg[8:], pid)
	c.Write(msg)
	var b [1]byte
	if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) {
		t.Fatalf("cancel connection: want a plain close, got %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("statement was canceled by a forged key: %v", err)
	}
}

// TestExecuteWithRowLimit fetches a portal in pieces (PortalSuspended) inside a transaction.
func TestExecuteWithRowLimit(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	ctx := context.Background()
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	pc := conn.PgConn()
	if _, err := pc.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		t.Fatal(err)
	}
	// Parse/Bind/Execute(max 3)/Execute(max 3)/Execute(0)/Sync by hand.
	fe := pc.Frontend()
	fe.Send(&pgproto3.Parse{Query: "SELECT g FROM generate_series(1, 8) g"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{MaxRows: 3})
	fe.Send(&pgproto3.Execute{MaxRows: 3})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var rows, suspended, complete int
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch msg.(type) {
		case *pgproto3.DataRow:
			rows++
		case *pgproto3.PortalSuspended:
			suspended++
		case *pgproto3.CommandComplete:
			complete++
		case *pgproto3.ReadyForQuery:
			goto done
		}
	}
done:
	if rows != 8 || suspended != 2 || complete != 1 {
		t.Fatalf("rows %d suspended %d complete %d", rows, suspended, complete)
	}
	if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 events for the portal", func() bool { return countEvents(p.obs, "SELECT g FROM generate_series(1, 8)") == 3 })
	var sus int
	var total int64
	for _, ev := range p.obs.snapshot() {
		if strings.HasPrefix(ev.text, "SELECT g FROM generate_series(1, 8)") {
			total += ev.rows
			if ev.suspended {
				sus++
			}
		}
	}
	if sus != 2 || total != 8 {
		t.Fatalf("events: %d suspended, %d rows", sus, total)
	}
}

// TestHugeRowStreams sends a 64 MiB bytea through the proxy both ways and checks it arrives
// intact. (That the proxy never holds the whole message is checked in the pump's unit test.)
func TestHugeRowStreams(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE blobs (id int, data bytea); GRANT ALL ON blobs TO scram_user`)
	ctx := context.Background()
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	blob := make([]byte, 64<<20)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	want := sha256.Sum256(blob)
	if _, err := conn.Exec(ctx, "INSERT INTO blobs VALUES (1, $1)", blob); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := conn.QueryRow(ctx, "SELECT data FROM blobs WHERE id = 1").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != want {
		t.Fatal("64 MiB row came back different")
	}
	var serverHash []byte
	if err := conn.QueryRow(ctx, "SELECT sha256(data) FROM blobs WHERE id = 1").Scan(&serverHash); err != nil || !bytes.Equal(serverHash, want[:]) {
		t.Fatalf("server stored a different blob: %v", err)
	}
}

// TestReplicationConnectionPassesThrough runs replication commands through the proxy.
func TestReplicationConnectionPassesThrough(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	ctx := context.Background()
	pc, err := pgconn.Connect(ctx, p.connString(pgtest.ScramUser, db, "replication=database"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	res, err := pc.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 4 || string(res[0].Rows[0][3]) != db {
		t.Fatalf("IDENTIFY_SYSTEM: %+v", res)
	}
	waitFor(t, "the replication connection to be recorded", func() bool {
		p.obs.mu.Lock()
		defer p.obs.mu.Unlock()
		for _, c := range p.obs.opened {
			if c.Replication {
				return true
			}
		}
		return false
	})
}
