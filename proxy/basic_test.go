package proxy_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

func TestSimpleAndExtendedQueriesThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	conn := connect(t, p.connString(pgtest.ScramUser, db))
	ctx := context.Background()

	var n int
	if err := conn.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("extended: got %d, %v", n, err)
	}
	rows, err := conn.Query(ctx, "SELECT g FROM generate_series(1, 100) g", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for rows.Next() {
		var g int
		rows.Scan(&g)
		sum += g
	}
	if rows.Err() != nil || sum != 5050 {
		t.Fatalf("simple: sum %d, %v", sum, rows.Err())
	}
	waitFor(t, "two statement events", func() bool { return len(p.obs.snapshot()) >= 2 })
	evs := p.obs.snapshot()
	t.Logf("%+v", evs)
}
