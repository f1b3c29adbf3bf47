package replay_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/fixtures"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/pglog"
	"github.com/pgpollwatch/pgpollwatch/replay"
)

func TestMain(m *testing.M) { pgtest.MainWith(m, pgtest.Options{Conf: pgtest.LogEverything}) }

const poll = "SELECT task_id, status, result FROM celery_taskmeta WHERE task_id = "

// TestReplayMatchesTheServersLog drives pollers straight at PostgreSQL, no proxy in the path:
// a spin loop on one key and a polite poller (pgx, bound parameters, one connection each), and
// a loop over five keys (the simple protocol, keys as literals), and a client opening a
// connection for every query. Each of the server's three log formats, replayed, must give every
// key exactly the polls the test counts in the log itself, the sessions the log holds, and the
// verdicts: the spinning key storms and spins, the polite one does not spin, the round robin's
// keys spin.
func TestReplayMatchesTheServersLog(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	ddl, err := fixtures.DDL(fixtures.Celery)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"k-spin", "k-polite", "k-rr-0", "k-rr-1", "k-rr-2", "k-rr-3", "k-rr-4"}
	pg.Exec(t, db, ddl+"; INSERT INTO celery_taskmeta (id, task_id, status) SELECT nextval('task_id_sequence'), k, 'PENDING' FROM unnest(ARRAY['"+
		strings.Join(keys, "','")+"']) k")

	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Second)
	defer cancel()
	connect := func(app string, simple bool) *pgx.Conn {
		cfg, err := pgx.ParseConfig(pg.ConnString(pgtest.SuperUser, db) + "&application_name=" + app)
		if err != nil {
			t.Fatal(err)
		}
		if simple {
			cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		}
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	query := func(conn *pgx.Conn, key string) bool {
		var id, status string
		var result []byte
		err := conn.QueryRow(ctx, poll+"$1", key).Scan(&id, &status, &result)
		if err != nil && ctx.Err() == nil {
			t.Errorf("poll %s: %v", key, err)
		}
		return err == nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { // a spin loop on one key
		conn := connect("spinner", false)
		defer conn.Close(context.Background())
		for ctx.Err() == nil && query(conn, "k-spin") {
		}
	})
	wg.Go(func() { // polite: 60 ms between polls
		conn := connect("polite", false)
		defer conn.Close(context.Background())
		for ctx.Err() == nil && query(conn, "k-polite") {
			time.Sleep(60 * time.Millisecond)
		}
	})
	wg.Go(func() { // five keys in turn, no sleep
		conn := connect("round-robin", true)
		defer conn.Close(context.Background())
		for i := 0; ctx.Err() == nil && query(conn, fmt.Sprintf("k-rr-%d", i%5)); i++ {
		}
	})
	wg.Go(func() { // connection churn: a connection for each query
		for ctx.Err() == nil {
			conn := connect("churn", true)
			conn.Exec(ctx, "SELECT 1")
			conn.Close(context.Background())
		}
	})
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // the collector writes the last lines

	logDir := filepath.Join(pg.DataDir, "log")
	stderr, err := os.ReadFile(filepath.Join(logDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The truth, from the log's text: each execution logs its key once, after a space, as a
	// literal in the statement (simple protocol) or in the DETAIL line of its parameters
	// (extended); the INSERT above holds the keys in an array, after '[' or ','.
	want := map[string]int64{}
	for _, k := range keys {
		want[k] = int64(strings.Count(string(stderr), " '"+k+"'"))
	}
	t.Logf("polls by the server's log: %v", want)

	for _, file := range []string{"postgresql.log", "postgresql.csv", "postgresql.json"} {
		t.Run(file, func(t *testing.T) {
			r, err := pglog.Open([]string{filepath.Join(logDir, file)}, pglog.Options{Database: db})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			an, err := replay.Run(r, analyzer.Config{})
			if err != nil {
				t.Fatal(err)
			}
			st := r.Stats()
			t.Logf("%s: %d lines, %d records, %d bad lines", file, st.Lines, st.Records, st.BadLines)
			s := an.Snapshot()
			byKey := map[string]analyzer.KeyStat{}
			for _, k := range s.Keys {
				byKey[k.Key] = k
			}
			for _, k := range keys {
				got := byKey[k]
				if got.Polls != want[k] || want[k] < 10 {
					t.Errorf("%s: %d polls replayed, the log holds %d", k, got.Polls, want[k])
				}
				t.Logf("%-9s %5d polls, median gap %6.1f ms, waits %3.0f%%, storming %v, spinning %v", k, got.Polls, got.MedianIntervalMs, got.WaitsPct, got.Storming, got.Spinning)
			}
			if k := byKey["k-spin"]; !k.Storming || !k.Spinning {
				t.Errorf("k-spin: storming %v, spinning %v; want both", k.Storming, k.Spinning)
			}
			if k := byKey["k-polite"]; k.Spinning || k.WaitsPct < 90 {
				t.Errorf("k-polite: spinning %v, waits %.0f%%; want no spin, a wait in nearly every gap", k.Spinning, k.WaitsPct)
			}
			for i := range 5 {
				if k := byKey[fmt.Sprintf("k-rr-%d", i)]; !k.Spinning {
					t.Errorf("k-rr-%d: not spinning (waits %.0f%%)", i, k.WaitsPct)
				}
			}
			if n := int64(len(regexp.MustCompile(`connection authorized: user=\S+ database=`+db+`\b`).FindAllIndex(stderr, -1))); s.Totals.Connections != n || n < 20 {
				t.Errorf("%d connections replayed, the log authorized %d", s.Totals.Connections, n)
			}
		})
	}
}
