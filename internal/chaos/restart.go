package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/storm"
)

// RestartParams scale the restart case.
type RestartParams struct {
	Modes   []string      // pg_ctl shutdown modes, one restart each (e.g. fast, immediate)
	Clients int           // application clients polling through the proxy
	Between time.Duration // storm before the first restart, between restarts and after the last
	TTL     time.Duration // --coalesce-ttl: far longer than a restart takes, so a kept entry shows
}

// restartKey is the watched task_id whose status each restart changes behind the proxy's back.
const restartKey = "chaos-restart"

// clientEvent is one thing an application client saw.
type clientEvent struct {
	at      time.Time // when the statement or connection attempt was sent
	outcome string    // Classify of its error
	msg     string
	status  string // for a successful poll of restartKey: the status it returned
}

type restartWindow struct {
	mode            string
	stop, restarted time.Time
	before, after   string // the key's status before and after
}

// Restart restarts PostgreSQL (once per mode) in the middle of a storm through a proxy with
// --coalesce and --reuse-server-connections. While the server is down, postgres --single
// changes the status of a polled key, so that a cached answer kept across the restart would be
// one the server no longer gives. Checked: clients see only connection-lost errors, reconnect
// and carry on; no poll sent after the restart returns the status from before it; server
// connections kept from before the restart are replaced (none of their backends serves again).
func Restart(ctx context.Context, e *Env, p RestartParams) *Result {
	r := &Result{Case: "restart (" + strings.Join(p.Modes, ", ") + ")"}
	start := time.Now()
	defer func() { r.Elapsed = time.Since(start) }()
	r.Did = fmt.Sprintf("PostgreSQL restarted with pg_ctl stop -m %s, %v apart, during a storm (1 spinning parent on a persistent connection, 1 on a new connection per poll) and %d clients polling a watched key and running SELECT 1 every 20 ms, through pgpollwatch --coalesce --coalesce-ttl %v --reuse-server-connections; while the server was down postgres --single changed the key's status",
		strings.Join(p.Modes, " then "), p.Between, p.Clients, p.TTL)
	if err := e.Setup(ctx); err != nil {
		r.Check(false, "setup: %v", err)
		return r
	}
	err := e.exec(ctx, `DELETE FROM celery_taskmeta WHERE task_id = $1`, restartKey)
	if err == nil {
		err = e.exec(ctx, `INSERT INTO celery_taskmeta (id, task_id, status) VALUES (-1, $1, 'epoch-0')`, restartKey)
	}
	if !r.Check(err == nil, "setup: %v", err) {
		return r
	}
	px, err := e.StartProxy(ctx, "restart", ProxyOpts{Args: []string{"--coalesce", "--coalesce-ttl", p.TTL.String(),
		"--reuse-server-connections", "--connect-timeout", "2s"}})
	if !r.Check(err == nil, "starting the proxy: %v", err) {
		return r
	}
	defer px.Stop()

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	// The storm: its pollers retry on their own; its counts say whether it carried on.
	stormStats := make([]storm.Stats, 2)
	stormErrs := make([]error, 2)
	for i, conn := range []string{storm.ConnPersistent, storm.ConnPerPoll} {
		wg.Go(func() {
			stormStats[i], stormErrs[i] = storm.Run(runCtx, storm.Config{DSN: px.DSN(""), Pattern: storm.PatternSpin,
				RoundPause: 10 * time.Millisecond, Conn: conn, SubtaskDuration: storm.Dist{Min: time.Second, Max: 3 * time.Second}}, nil)
		})
	}
	events := make([][]clientEvent, p.Clients)
	for i := range p.Clients {
		wg.Go(func() { events[i] = pollClient(runCtx, px) })
	}

	// Backends of server connections the proxy keeps between clients: a client connecting and
	// leaving over and over should run on the same one or two.
	keptPIDs := func() ([]int, int) {
		var pids []int
		fails := 0
		for range 10 {
			c, err := pgx.Connect(ctx, px.DSN("connect_timeout=5"))
			if err != nil {
				fails++
				continue
			}
			var pid int
			if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				fails++
			} else if !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
			c.Close(ctx)
		}
		return pids, fails
	}

	var windows []restartWindow
	allKept := map[int]bool{}
	for i, mode := range p.Modes {
		if !sleep(ctx, p.Between) {
			break
		}
		kept, _ := keptPIDs()
		for _, pid := range kept {
			allKept[pid] = true
		}
		w := restartWindow{mode: mode, before: fmt.Sprintf("epoch-%d", i), after: fmt.Sprintf("epoch-%d", i+1)}
		e.progress("restart: pg_ctl stop -m %s (kept backends before: %v)", mode, kept)
		w.stop = time.Now()
		err := e.PG.StopServer(mode)
		if err == nil {
			err = e.PG.SingleUser("", fmt.Sprintf("UPDATE celery_taskmeta SET status = '%s' WHERE task_id = '%s'", w.after, restartKey))
		}
		if err2 := e.PG.StartServer(); err == nil {
			err = err2
		}
		w.restarted = time.Now()
		if !r.Check(err == nil, "restart %s: %v", mode, err) {
			break
		}
		e.progress("restart: server back after %v", w.restarted.Sub(w.stop).Round(time.Millisecond))
		windows = append(windows, w)
	}
	sleep(ctx, p.Between)
	after, afterFails := keptPIDs()
	stopRun()
	wg.Wait()

	// Clients: what they saw around each restart, and whether they carried on.
	var unexpected tally
	staleTotal := 0
	for wi, w := range windows {
		end := time.Now()
		if wi+1 < len(windows) {
			end = windows[wi+1].stop
		}
		var lost tally
		sawLost, carriedOn, stale, fresh := 0, 0, 0, 0
		var lastStale time.Duration
		for _, evs := range events {
			lostHere, okAfter := false, false
			for _, ev := range evs {
				if ev.at.Before(w.stop.Add(-time.Second)) || !ev.at.Before(end) {
					continue
				}
				switch {
				case ev.outcome == "ok":
					if ev.at.After(w.restarted) {
						okAfter = true
						if ev.status == w.before {
							stale++
							lastStale = max(lastStale, ev.at.Sub(w.restarted))
						} else if ev.status == w.after {
							fresh++
						}
					}
				case connectionLost(ev.outcome):
					lostHere = true
					lost.add(ev.outcome, ev.msg)
				}
			}
			if lostHere {
				sawLost++
			}
			if okAfter {
				carriedOn++
			}
		}
		staleTotal += stale
		r.Figure("%s: server down %v; %d of %d clients saw the connection lost (%s); %d carried on after it; polls sent after the restart: %d with the new status, %d with the status from before (last %v after the restart)",
			w.mode, w.restarted.Sub(w.stop).Round(time.Millisecond), sawLost, p.Clients, lost.format(true), carriedOn, fresh, stale, lastStale.Round(time.Millisecond))
		r.Check(sawLost > 0, "%s: no client noticed the restart", w.mode)
		r.Check(carriedOn == p.Clients, "%s: only %d of %d clients ran a statement after the restart", w.mode, carriedOn, p.Clients)
		r.Check(stale == 0, "%s: %d polls sent after the restart got the cached status %q, which the server no longer gives (the last %v after the restart)",
			w.mode, stale, w.before, lastStale.Round(time.Millisecond))
		r.Check(fresh > 0, "%s: no poll after the restart returned the new status", w.mode)
	}
	for _, evs := range events {
		for _, ev := range evs {
			if ev.outcome != "ok" && !connectionLost(ev.outcome) {
				unexpected.add(ev.outcome, ev.msg)
				r.Note("a client's %s, sent %s, ended in %s: %s", strings.SplitN(ev.msg, ":", 2)[0], sinceRestart(ev.at, windows), ev.outcome, ev.msg)
			}
		}
	}
	r.Check(unexpected.total() == 0, "clients saw errors other than a lost connection: %s", unexpected.format(true))
	for i, s := range stormStats {
		r.Figure("storm parent %d: %d polls, %d failed attempts retried (last: %s)", i+1, s.Polls, s.Errors, truncate(s.LastError, 80))
		r.Check(stormErrs[i] == nil, "storm %d stopped: %v", i+1, stormErrs[i])
	}
	reused := []int{}
	for _, pid := range after {
		if allKept[pid] {
			reused = append(reused, pid)
		}
	}
	r.Figure("kept server connections: backends before the restarts %v, after %v (10 connect-query-leave clients, %d failed)",
		sortedKeys(allKept), after, afterFails)
	r.Check(afterFails == 0, "%d of 10 clients connecting after the restarts failed (a dead kept connection handed out?)", afterFails)
	r.Check(len(reused) == 0, "backends from before a restart serve clients after it: %v", reused)
	r.Check(len(after) > 0 && len(after) < 10, "after the restarts 10 clients in a row used %d server connections: none was reused", len(after))
	if m, err := px.Metrics(ctx); err == nil {
		r.Figure("proxy: %.0f cache hits, %.0f server connections reused, %.0f discarded", m["pgpollwatch_cache_hits_total"],
			m["pgpollwatch_server_connections_reused_total"], m["pgpollwatch_server_connections_discarded_total"])
	}
	r.Check(px.Alive(), "the proxy exited")
	return r
}

// pollClient is an application client: it polls restartKey and runs SELECT 1 every 20 ms on a
// persistent connection, reconnecting 100 ms after an error, until ctx ends.
func pollClient(ctx context.Context, px *Proxy) []clientEvent {
	var evs []clientEvent
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		at := time.Now()
		opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var status string
		var err error
		op := "connect"
		if c == nil {
			c, err = pgx.Connect(opCtx, px.DSN("connect_timeout=10"))
		}
		if err == nil {
			var result []byte
			op = "poll"
			err = c.QueryRow(opCtx, `SELECT status, result FROM celery_taskmeta WHERE task_id = '`+restartKey+`'`,
				pgx.QueryExecModeSimpleProtocol).Scan(&status, &result)
			if err == nil {
				op = "SELECT 1"
				_, err = c.Exec(opCtx, "SELECT 1", pgx.QueryExecModeSimpleProtocol)
			}
		}
		cancel()
		if ctx.Err() != nil {
			break // the run ended: what it cut short is not an outcome
		}
		ev := clientEvent{at: at, outcome: Classify(err), status: status}
		if err != nil {
			ev.msg = op + ": " + errText(err)
			if c != nil {
				c.Close(context.Background())
				c = nil
			}
			sleep(ctx, 100*time.Millisecond)
		} else {
			sleep(ctx, 20*time.Millisecond)
		}
		evs = append(evs, ev)
	}
	return evs
}

func sortedKeys(m map[int]bool) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// sinceRestart says when t was relative to the latest restart before it.
func sinceRestart(t time.Time, ws []restartWindow) string {
	for i := len(ws) - 1; i >= 0; i-- {
		if !t.Before(ws[i].stop) {
			if t.Before(ws[i].restarted) {
				return fmt.Sprintf("while the server was down (%v after the %s stop began)", t.Sub(ws[i].stop).Round(time.Millisecond), ws[i].mode)
			}
			return fmt.Sprintf("%v after the %s restart", t.Sub(ws[i].restarted).Round(time.Millisecond), ws[i].mode)
		}
	}
	return "before the first restart"
}
