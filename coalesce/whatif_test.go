package coalesce_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
)

// pollPlan is recorded traffic: per key, polls at fixed offsets, and writes through the proxy.
type pollPlan struct {
	key      string
	every    time.Duration // a poll this often
	writeGap time.Duration // and a write this often (0: none)
}

// The plan keeps every gap clear of the TTL (500 ms) by at least 100 ms, so timer jitter on a
// loaded machine cannot move a poll across the boundary.
var whatIfPlan = []pollPlan{
	{key: "spin", every: time.Millisecond},                                          // the storm: a fill per TTL
	{key: "every-300ms", every: 300 * time.Millisecond},                             // every other poll saved
	{key: "written", every: 5 * time.Millisecond, writeGap: 250 * time.Millisecond}, // writes force fills
	{key: "every-700ms", every: 700 * time.Millisecond},                             // never saved
}

// replay runs the plan for d through the proxy, each key on its own persistent connection.
func (e *env) replay(t *testing.T, d time.Duration) (polls int64) {
	t.Helper()
	// Polls stop at the deadline but none is cut short, so every poll sent is one the client
	// counts and the server answered.
	deadline := time.Now().Add(d)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range whatIfPlan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.rawConnect(true, pgx.QueryExecModeCacheStatement)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close(context.Background())
			start := time.Now()
			nextWrite := p.writeGap
			for n := 0; ; n++ {
				at := start.Add(time.Duration(n) * p.every)
				if time.Until(at) > 0 {
					time.Sleep(time.Until(at))
				}
				if time.Now().After(deadline) {
					return
				}
				if p.writeGap > 0 && time.Since(start) >= nextWrite {
					nextWrite += p.writeGap
					if _, err := c.Exec(ctx, `UPDATE celery_taskmeta SET status = 'PENDING' WHERE task_id = $1`, p.key); err != nil {
						t.Error(err)
					}
				}
				var status string
				var result []byte
				if err := c.QueryRow(ctx, pollSQL, p.key).Scan(&status, &result); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				polls++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return polls
}

// TestWhatIfEstimateMatchesActualCoalescing: the analyzer's estimate of what a 500 ms cache
// would save, made while coalescing is off, against what the cache saves over the same
// traffic replayed with coalescing on (checked against the server's own count).
func TestWhatIfEstimateMatchesActualCoalescing(t *testing.T) {
	const d = 4 * time.Second
	setup := func() *env {
		e := newEnv(t, coalesce.Config{TTL: 500 * time.Millisecond})
		for i, p := range whatIfPlan {
			e.super(fmt.Sprintf("INSERT INTO celery_taskmeta (id, task_id, status) VALUES (%d, '%s', 'PENDING')", i+1, p.key))
		}
		return e
	}

	off := setup()
	off.cache.SetEnabled(false)
	offPolls := off.replay(t, d)
	snap := off.an.Snapshot()
	// The proxy tells the analyzer about a poll after it answered it, and about a closed
	// connection after its last poll: wait for the clients' connections to be closed there.
	waitFor(t, func() bool { snap = off.an.Snapshot(); return snap.Totals.OpenConnections == 0 })
	var est int64 = -1
	for _, w := range snap.WhatIf {
		if w.TTL == 500*time.Millisecond {
			est = w.Saved
			if w.Polls != offPolls {
				t.Fatalf("the estimate considered %d polls, the clients sent %d", w.Polls, offPolls)
			}
		}
	}
	if st := off.cache.Stats(); st.Hits != 0 || off.serverCalls("celery_taskmeta WHERE task_id") != offPolls {
		t.Fatalf("coalescing off: %d hits, server ran %d of %d polls", st.Hits, off.serverCalls("celery_taskmeta WHERE task_id"), offPolls)
	}

	on := setup()
	onPolls := on.replay(t, d)
	waitFor(t, func() bool { return on.an.Snapshot().Totals.OpenConnections == 0 })
	server := on.serverCalls("celery_taskmeta WHERE task_id")
	actual := onPolls - server
	if hits := on.cache.Stats().Hits; hits != actual {
		t.Fatalf("cache counted %d hits, the server saw %d of %d polls (%d saved)", hits, server, onPolls, actual)
	}
	// Same plan, same duration: compare shares, since each run's poll count differs slightly.
	estShare, actShare := float64(est)/float64(offPolls), float64(actual)/float64(onPolls)
	t.Logf("estimate (coalescing off): %d of %d polls saved (%.2f%%); actual (coalescing on): %d of %d (%.2f%%)",
		est, offPolls, 100*estShare, actual, onPolls, 100*actShare)
	if diff := estShare - actShare; diff > 0.02 || diff < -0.02 {
		t.Fatalf("the estimate (%.2f%%) is more than 2 points from the actual saving (%.2f%%)", 100*estShare, 100*actShare)
	}
	// Key by key too: the spin dominates the totals, the other keys test the rules (a poll
	// every 300 ms saves every other one, a write forces a fill, 700 ms gaps save nothing).
	estKeys, actKeys := map[string][2]int64{}, map[string][2]int64{}
	for _, k := range snap.Keys {
		estKeys[k.Key] = [2]int64{k.WhatIfSaved500ms, k.Polls}
	}
	for _, k := range on.an.Snapshot().Keys {
		actKeys[k.Key] = [2]int64{k.CachedPolls, k.Polls}
	}
	for _, p := range whatIfPlan {
		est, act := estKeys[p.key], actKeys[p.key]
		es, as := float64(est[0])/float64(max(est[1], 1)), float64(act[0])/float64(max(act[1], 1))
		t.Logf("%-12s estimate %4d of %4d saved (%.1f%%), actual %4d of %4d (%.1f%%)", p.key, est[0], est[1], 100*es, act[0], act[1], 100*as)
		// A poll delayed by a loaded machine can cross the TTL boundary in one run and not the
		// other: allow two polls of difference on the sparse keys.
		tol := max(0.05, 2/float64(max(min(est[1], act[1]), 1)))
		if d := es - as; d > tol || d < -tol || p.key == "every-700ms" && (act[0] > 1 || est[0] > 1) {
			t.Errorf("%s: estimate %.1f%% against actual %.1f%%", p.key, 100*es, 100*as)
		}
	}
}
