package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// TestCoalesceFlag runs the binary headless with --coalesce: repeated polls are answered from
// the cache (the server runs a handful, by its own pg_stat_statements), a write through the
// proxy shows on the next poll, and the exit report accounts for both.
func TestCoalesceFlag(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE jobs (id int PRIMARY KEY, state text); INSERT INTO jobs VALUES (7, 'queued'); GRANT ALL ON jobs TO scram_user`)
	reportFile := filepath.Join(t.TempDir(), "report.json")
	addr, cmd, stderr := startHeadless(t, "--watch", "jobs.id", "--coalesce", "--coalesce-ttl", "1m", "--report", reportFile)
	host, port, _ := net.SplitHostPort(addr)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
		host, port, pgtest.ScramUser, pgtest.Password, db))
	if err != nil {
		t.Fatal(err)
	}
	poll := func() string {
		var state string
		if err := conn.QueryRow(ctx, "SELECT state FROM jobs WHERE id = $1", 7).Scan(&state); err != nil {
			t.Fatal(err)
		}
		return state
	}
	const n = 300
	for i := 0; i < n; i++ {
		if s := poll(); s != "queued" {
			t.Fatalf("poll %d: %q", i, s)
		}
	}
	if _, err := conn.Exec(ctx, "UPDATE jobs SET state = 'done' WHERE id = $1", 7); err != nil {
		t.Fatal(err)
	}
	if s := poll(); s != "done" {
		t.Fatalf("after the update the poll says %q", s)
	}
	conn.Close(ctx)

	super, err := pgx.Connect(ctx, pg.ConnString(pgtest.SuperUser, db))
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(ctx)
	var server int64
	if err := super.QueryRow(ctx, `SELECT coalesce(sum(calls),0)::bigint FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = current_database() AND query LIKE 'SELECT state FROM jobs%'`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	r := readReport(t, reportFile)
	if r.Coalesce == nil || !r.Coalesce.Enabled {
		t.Fatalf("the report has no enabled cache: %+v", r.Coalesce)
	}
	t.Logf("%d polls, server ran %d; report: hits %d misses %d invalidations %d", n+1, server, r.Coalesce.Hits, r.Coalesce.Misses, r.Coalesce.Invalidations)
	if server > 3 || r.Coalesce.Hits != n+1-server || r.Coalesce.Invalidations == 0 {
		t.Fatalf("%d polls: server ran %d, the cache says %d hits, %d invalidations", n+1, server, r.Coalesce.Hits, r.Coalesce.Invalidations)
	}
	if got := polls(r, "7"); got != n+1 {
		t.Fatalf("the report counts %d polls of key 7, the client sent %d (cached ones are polls too)", got, n+1)
	}
}

// TestDemoCoalesce: the demo with --coalesce answers most of the spinning parent's polls from
// the cache, and still reports every poll and the storm.
func TestDemoCoalesce(t *testing.T) {
	reportFile := filepath.Join(t.TempDir(), "demo.json")
	out, err := exec.Command(bin, "demo", "--coalesce", "--duration", "6s", "--report", reportFile).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	r := readReport(t, reportFile)
	c := r.Coalesce
	if c == nil || !c.Enabled || c.Hits == 0 || c.Hits < 2*c.Misses { // ~97% on a quiet machine
		t.Fatalf("demo --coalesce: cache %+v\n%s", c, out)
	}
	var polls, cached int64
	for _, k := range r.Keys {
		polls += k.Polls
		cached += k.CachedPolls
	}
	if cached != c.Hits || polls <= cached {
		t.Fatalf("keys: %d polls, %d cached; the cache counted %d hits", polls, cached, c.Hits)
	}
}
