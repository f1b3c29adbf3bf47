package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgpollwatch/pgpollwatch/internal/fuzzseed"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// TestCaptureFuzzSeeds records the byte streams of real psql, pgx, pgbench and psycopg2 sessions through a
// tee in front of the server and writes them as seed corpus files of the fuzz targets (in the
// directory PGPOLLWATCH_CAPTURE_SEEDS names, normally proxy/testdata/fuzz). It only runs when
// asked:
//
//	PGPOLLWATCH_CAPTURE_SEEDS=$PWD/proxy/testdata/fuzz go test -run TestCaptureFuzzSeeds ./proxy/
//
// The sessions log in as the trust user, so no authentication exchange is ever stored.
func TestCaptureFuzzSeeds(t *testing.T) {
	pg := pgtest.Shared(t)
	// Without the variable the capture still runs, into a scratch directory: it then checks that
	// real psql, pgx and pgbench sessions pass through the capturing proxy.
	dir := os.Getenv("PGPOLLWATCH_CAPTURE_SEEDS")
	if dir == "" {
		dir = t.TempDir()
	}
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, status text, payload bytea); GRANT ALL ON items TO trust_user`)
	tee := startTee(t)
	ctx := context.Background()

	// psql: simple protocol, multi-statement strings, errors, transactions, COPY both ways.
	env := cliEnv(t, cliTarget{"127.0.0.1", portOf(tee.addr)}, pgtest.TrustUser, db)
	script := `
SELECT 1 AS one, 'two' AS two;
SELECT 1; SELECT 2; SELECT 1/0;
BEGIN;
INSERT INTO items VALUES (1, 'PENDING', '\x00ff'), (2, 'SUCCESS', NULL);
SELECT * FROM items ORDER BY id;
SAVEPOINT a; SELECT nope; ROLLBACK TO a;
COMMIT;
COPY items (id, status) FROM STDIN;
10	PENDING
11	STARTED
\.
COPY (SELECT * FROM items ORDER BY id) TO STDOUT;
;
LISTEN chan; NOTIFY chan, 'hello';
SELECT repeat('x', 300), g FROM generate_series(1, 20) g;
`
	if r := psql(t, env, []byte(script)); r.code != 0 {
		t.Fatalf("psql: %s", r)
	}
	tee.save(t, dir, "psql")

	// pgx: extended protocol with a statement cache, a batch, a pipeline with an error and two
	// Syncs, COPY FROM and TO, row-limited portals.
	conn := connect(t, "host=127.0.0.1 port="+portOf(tee.addr)+" user="+pgtest.TrustUser+" dbname="+db+" sslmode=disable")
	for i := 0; i < 3; i++ {
		var s string
		if err := conn.QueryRow(ctx, "SELECT status FROM items WHERE id = $1", 1).Scan(&s); err != nil {
			t.Fatal(err)
		}
	}
	b := &pgx.Batch{}
	for i := 0; i < 5; i++ {
		b.Queue("SELECT $1::int * 2, $2::text", i, strings.Repeat("p", i))
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	pl := conn.PgConn().StartPipeline(ctx)
	pl.SendQueryParams("SELECT 1", nil, nil, nil, nil)
	pl.SendQueryParams("SELECT 1/0", nil, nil, nil, nil)
	pl.SendPipelineSync()
	pl.SendPrepare("named", "SELECT $1::int", nil)
	pl.SendQueryPrepared("named", [][]byte{[]byte("7")}, nil, nil)
	pl.SendPipelineSync()
	if err := pl.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := pl.GetResults()
		if err != nil {
			continue
		}
		if res == nil {
			break
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			rr.Read()
		}
	}
	_ = pl.Close()
	rows := make([][]any, 50)
	for i := range rows {
		rows[i] = []any{100 + i, "PENDING", []byte{byte(i)}}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id", "status", "payload"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT id, status FROM items ORDER BY id) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DECLARE cur CURSOR FOR SELECT id FROM items ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "FETCH 5 FROM cur"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	conn.Close(ctx)
	tee.save(t, dir, "pgx")

	// pgbench: prepared statements and a pipeline, a few transactions.
	bench := filepath.Join(t.TempDir(), "seed.pgbench")
	os.WriteFile(bench, []byte(`\set id random(1, 2)
SELECT status FROM items WHERE id = :id;
\startpipeline
SELECT :id + 1;
UPDATE items SET status = 'SUCCESS' WHERE id = :id;
\endpipeline
`), 0o600)
	if r := runCLI(t, 30*time.Second, env, nil, "pgbench", "-n", "-M", "prepared", "-t", "3", "-f", bench); r.code != 0 {
		t.Fatalf("pgbench: %s", r)
	}
	tee.save(t, dir, "pgbench")

	// psycopg2 (Debian's, run by /usr/bin/python3): SQLAlchemy-style BEGIN/SELECT/ROLLBACK polls
	// with literals inlined client-side, a committed UPDATE, a server-side (named) cursor, an
	// error and its rollback.
	py := `import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
for i in range(3):
    cur.execute("SELECT status, payload FROM items WHERE id = %s", (1,))
    cur.fetchall()
    conn.rollback()
cur.execute("UPDATE items SET status = %s WHERE id = %s", ("SUCCESS", 2))
conn.commit()
named = conn.cursor(name="c")
named.execute("SELECT id FROM items ORDER BY id")
named.fetchmany(5)
named.close()
conn.commit()
try:
    cur.execute("SELECT 1/0")
except psycopg2.Error:
    conn.rollback()
conn.close()
`
	cmd := exec.Command("/usr/bin/python3", "-c", py, "host=127.0.0.1 port="+portOf(tee.addr)+" user="+pgtest.TrustUser+" dbname="+db+" sslmode=disable")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psycopg2 session: %v\n%s\n(needs Debian's python3-psycopg2: apt-get install -y python3-psycopg2)", err, out)
	}
	tee.save(t, dir, "psycopg2")
}

// tee forwards connections to pg and keeps what went each way.
type tee struct {
	addr string
	mu   sync.Mutex
	wg   sync.WaitGroup
	c2s  []*bytes.Buffer
	s2c  []*bytes.Buffer
}

func startTee(t *testing.T) *tee {
	pg := pgtest.Shared(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tt := &tee{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", pg.Addr())
			if err != nil {
				c.Close()
				continue
			}
			up, down := &bytes.Buffer{}, &bytes.Buffer{}
			tt.mu.Lock()
			tt.c2s, tt.s2c = append(tt.c2s, up), append(tt.s2c, down)
			tt.mu.Unlock()
			tt.wg.Add(2)
			go func() { defer tt.wg.Done(); io.Copy(io.MultiWriter(s, up), c); s.(*net.TCPConn).CloseWrite() }()
			go func() { defer tt.wg.Done(); io.Copy(io.MultiWriter(c, down), s); c.Close() }()
		}
	}()
	return tt
}

// save waits for the recorded connections to end and writes the longest one as seeds.
func (tt *tee) save(t *testing.T, dir, name string) {
	tt.wg.Wait()
	tt.mu.Lock()
	defer tt.mu.Unlock()
	best := 0
	for i := range tt.c2s {
		if tt.c2s[i].Len()+tt.s2c[i].Len() > tt.c2s[best].Len()+tt.s2c[best].Len() {
			best = i
		}
	}
	client, server := tt.c2s[best].Bytes(), tt.s2c[best].Bytes()
	tt.c2s, tt.s2c = nil, nil
	binds, err := fuzzseed.Write(dir, name, client, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: client %d bytes, server %d bytes, %d Binds", name, len(client), len(server), binds)
}
