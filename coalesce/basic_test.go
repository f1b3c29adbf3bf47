package coalesce_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
)

const pollSQL = `SELECT status, result FROM celery_taskmeta WHERE task_id = $1`

// TestPollsAreServedFromCacheAndWritesShowAtOnce: each client protocol polls one task 200
// times within the TTL; the server runs the poll a handful of times (pg_stat_statements), and a
// write through the proxy shows on the very next poll.
func TestPollsAreServedFromCacheAndWritesShowAtOnce(t *testing.T) {
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"simple", pgx.QueryExecModeSimpleProtocol},
		{"prepared", pgx.QueryExecModeCacheStatement},
		{"unnamed", pgx.QueryExecModeExec},
		{"describe", pgx.QueryExecModeCacheDescribe},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, coalesce.Config{TTL: time.Minute})
			e.super(`INSERT INTO celery_taskmeta (id, task_id, status) VALUES (1, 'task-1', 'PENDING')`)
			c := e.connect(true, m.mode)
			ctx := context.Background()
			poll := func() string {
				var status string
				var result []byte
				if err := c.QueryRow(ctx, pollSQL, "task-1").Scan(&status, &result); err != nil {
					t.Fatal(err)
				}
				return status
			}
			for i := 0; i < 200; i++ {
				if s := poll(); s != "PENDING" {
					t.Fatalf("poll %d: %s", i, s)
				}
			}
			st := e.cache.Stats()
			calls := e.serverCalls("celery_taskmeta WHERE task_id")
			t.Logf("%s: server ran %d polls of 200; cache %+v", m.name, calls, st)
			if calls > 3 || st.Hits < 197 {
				t.Fatalf("server ran %d of 200 polls, cache hits %d", calls, st.Hits)
			}
			if _, err := c.Exec(ctx, `UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = $1`, "task-1"); err != nil {
				t.Fatal(err)
			}
			if s := poll(); s != "SUCCESS" {
				t.Fatalf("after the update the poll says %s", s)
			}
			// The proxy tells the analyzer about a poll after it answered it: the client may be
			// faster than that.
			var snap *analyzer.Snapshot
			waitFor(t, func() bool {
				snap = e.an.Snapshot()
				return len(snap.Keys) > 0 && snap.Keys[0].Polls >= 201
			})
			if snap.Totals.CachedAnswers != st.Hits {
				t.Fatalf("analyzer counted %d cached answers, cache %d hits", snap.Totals.CachedAnswers, st.Hits)
			}
			if len(snap.Keys) == 0 || snap.Keys[0].Polls != 201 {
				t.Fatalf("keys %s", fmt.Sprint(snap.Keys))
			}
		})
	}
}
