package coalesce_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestServerEndingSessionsDropsCachedAnswers: when the server ends the proxy's sessions (what a
// restart does to every one of them, with pg_terminate_backend standing in for it here), the
// data may have changed while it was down, or commits the cache saw may be lost: the next poll
// gets the server's answer, not one cached before, though the TTL (a minute) has far to run.
// The row changes straight on the server, where the proxy cannot see it, so only the end of the
// sessions can tell the cache. Checked for a session's own connection, and for a kept one that
// the server closed while it waited for its next client (--reuse-server-connections).
func TestServerEndingSessionsDropsCachedAnswers(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		name := "session"
		if reuse {
			name = "kept connection"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, coalesce.Config{TTL: time.Minute}, func(c *proxy.Config) { c.ReuseServerConnections = reuse })
			e.super(`INSERT INTO celery_taskmeta (id, task_id, status) VALUES (1, 'task-1', 'PENDING')`)
			ctx := context.Background()
			poll := func(c *pgx.Conn) (string, error) {
				var status string
				err := c.QueryRow(ctx, "SELECT status FROM celery_taskmeta WHERE task_id = $1", "task-1").Scan(&status)
				return status, err
			}
			c := e.connect(true, pgx.QueryExecModeExec)
			for range 3 {
				if s, err := poll(c); err != nil || s != "PENDING" {
					t.Fatalf("poll: %q %v", s, err)
				}
			}
			e.super(`UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'task-1'`)
			// Within the TTL, a write the proxy did not see is not seen yet: the cache serves.
			hits := e.cache.Stats().Hits
			if s, err := poll(c); err != nil || s != "PENDING" || e.cache.Stats().Hits != hits+1 {
				t.Fatalf("want the cached PENDING within the TTL, got %q %v (hits %d -> %d)", s, err, hits, e.cache.Stats().Hits)
			}
			if reuse {
				c.Close(ctx) // Terminate: the proxy keeps its server connection for the next client
				waitKept(t, e)
			}
			n := e.scalar(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND usename = $1`, pgtest.TrustUser)
			if n == 0 {
				t.Fatal("no backend of the proxy's to end")
			}
			for deadline := time.Now().Add(5 * time.Second); e.scalar(`SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND usename = $1`, pgtest.TrustUser) > 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the terminated backends are still there")
				}
			}
			if !reuse {
				if _, err := poll(c); err == nil {
					t.Fatal("the poll after the server ended the session succeeded")
				}
			}
			c2 := e.connect(true, pgx.QueryExecModeExec)
			if s, err := poll(c2); err != nil || s != "SUCCESS" {
				t.Fatalf("after the server ended the sessions: %q %v, want the server's SUCCESS", s, err)
			}
		})
	}
}

// waitKept waits until the proxy has kept a server connection.
func waitKept(t *testing.T, e *env) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); e.srv.ReuseStats().Idle == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the proxy kept no server connection")
		}
	}
}
