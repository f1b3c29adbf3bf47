package tui

import (
	"fmt"
	"sync"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// Scripted snapshots, with fixed times so every golden file is stable. The story is the seed's:
// a Celery parent task spin-waits on ten subtasks, and 597 of the server's 683 queries per
// second are SELECTs on celery_taskmeta for the same ten task ids.

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// fakeSource hands out its snapshots in turn, then keeps giving the last one.
type fakeSource struct {
	mu    sync.Mutex
	snaps []*analyzer.Snapshot
	calls int
}

func (f *fakeSource) Snapshot() *analyzer.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snaps[min(f.calls, len(f.snaps)-1)]
	f.calls++
	return s
}

func (f *fakeSource) set(s ...*analyzer.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps, f.calls = s, 0
}

func (f *fakeSource) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

const pollSQL = "SELECT celery_taskmeta.id, celery_taskmeta.task_id, celery_taskmeta.status, celery_taskmeta.result, " +
	"celery_taskmeta.date_done, celery_taskmeta.traceback FROM celery_taskmeta WHERE celery_taskmeta.task_id = $1"

// taskID makes a deterministic UUID-shaped Celery task id.
func taskID(i int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", 0x3f0c2d4e+i*0x1111, 0x1a2b+i, 0x100+i, 0x200+i*3, 0x5e6f7a8b9c0d+i*0x10101)
}

func history(from int, base, jitter uint32) []uint32 {
	h := make([]uint32, 60)
	for i := from; i < 60; i++ {
		h[i] = base + uint32(i*7)%(jitter+1)
	}
	return h
}

// stormSnapshot is five minutes into the storm's run: ten spinning task ids, a storming group,
// a task polled after its result, an ordinary key.
func stormSnapshot() *analyzer.Snapshot {
	taken := t0
	started := taken.Add(-5*time.Minute - 7*time.Second)
	s := &analyzer.Snapshot{
		StartedAt: started,
		TakenAt:   taken,
		Uptime:    taken.Sub(started),
		Watches: []analyzer.WatchStat{
			{Table: "celery_taskmeta", Column: "task_id", Origin: "preset", Lookups: 163_412, Writes: 20},
			{Table: "celery_groupmeta", Column: "taskset_id", Origin: "preset", Lookups: 2_880, Writes: 1},
		},
		Totals: analyzer.Totals{
			Queries: 187_654, WatchedLookups: 166_292, WatchedWrites: 21, Failed: 3,
			Connections: 412, OpenConnections: 9, KeysTracked: 13, FingerprintsSeen: 7, StormsActive: 11,
		},
		Rates: analyzer.Rates{QPS: 683, QPS10: 683, WatchedQPS10: 597, ConnsPerSec10: 2.4, KeysPolled10: 12},
	}
	for i := range 60 {
		sec := analyzer.Second{Time: taken.Add(time.Duration(i-60) * time.Second), Queries: 86, Watched: 2, Connections: 2}
		if i >= 22 {
			sec.Queries, sec.Watched = 680+uint32(i*7)%7, 594+uint32(i*5)%7
		} else if i >= 18 {
			sec.Queries, sec.Watched = 86+uint32(i-17)*140, uint32(i-17)*130
		}
		s.Timeline = append(s.Timeline, sec)
	}
	for i := range 10 {
		h := history(22, 58, 4)
		s.Keys = append(s.Keys, analyzer.KeyStat{
			Table: "celery_taskmeta", Column: "task_id", Key: taskID(i),
			Polls: 16_341 - int64(i*37), UnchangedPolls: 16_339 - int64(i*37), Rows: 16_341 - int64(i*37),
			QPS1: float64(h[59]), QPS10: 59.7 - float64(i)/10, QPS60: 38.2, PeakQPS: 63,
			MedianIntervalMs: 1.6 + float64(i)/10, P10IntervalMs: 1.1, WaitsPct: 0,
			FirstSeen: taken.Add(-38 * time.Second), LastSeen: taken.Add(-2 * time.Millisecond),
			LastStatus: "PENDING", TimeToResultMs: -1, Clients: 1,
			Storming: true, Spinning: true, History: h,
		})
	}
	s.Keys = append(s.Keys,
		analyzer.KeyStat{
			Table: "celery_groupmeta", Column: "taskset_id", Key: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
			Polls: 2_880, UnchangedPolls: 2_871, Rows: 0,
			QPS1: 12, QPS10: 12, QPS60: 9.1, PeakQPS: 14, MedianIntervalMs: 83, P10IntervalMs: 80, WaitsPct: 100,
			FirstSeen: taken.Add(-4 * time.Minute), LastSeen: taken.Add(-40 * time.Millisecond),
			LastStatus: "", TimeToResultMs: -1, Clients: 2, Storming: true, History: history(0, 11, 3),
		},
		analyzer.KeyStat{
			Table: "celery_taskmeta", Column: "task_id", Key: "c0ffee00-0000-4000-8000-000000000001",
			Polls: 412, UnchangedPolls: 380, Rows: 412, Writes: 3,
			QPS1: 1, QPS10: 0.9, QPS60: 1, PeakQPS: 2, MedianIntervalMs: 1000, P10IntervalMs: 990, WaitsPct: 100,
			FirstSeen: taken.Add(-5 * time.Minute), LastSeen: taken.Add(-700 * time.Millisecond),
			LastStatus: "SUCCESS", TimeToResultMs: 2_300, PollsAfterTerminal: 37, Clients: 1, History: history(0, 1, 0),
		},
		analyzer.KeyStat{
			Table: "celery_taskmeta", Column: "task_id", Key: "d15ea5e0-0000-4000-8000-000000000002",
			Polls: 7, UnchangedPolls: 5, Rows: 7,
			QPS1: 0, QPS10: 0.2, QPS60: 0.1, PeakQPS: 1, MedianIntervalMs: 5_000, P10IntervalMs: 5_000, WaitsPct: 100,
			FirstSeen: taken.Add(-40 * time.Second), LastSeen: taken.Add(-4 * time.Second),
			LastStatus: "STARTED", TimeToResultMs: -1, Clients: 1, History: make([]uint32, 60),
		},
	)
	s.Fingerprints = []analyzer.FingerprintStat{
		{Fingerprint: "8f3a1c5e2b7d9046", Query: pollSQL, Command: "SELECT", Calls: 163_412, Rows: 163_412,
			QPS1: 597, QPS10: 597, TotalMs: 34_316, MeanMs: 0.21, P99Ms: 0.9, Watched: true, Table: "celery_taskmeta",
			FirstSeen: started, LastSeen: taken, History: history(22, 594, 6)},
		{Fingerprint: "0b44e8a9c1d2f370", Query: "SELECT 1", Command: "SELECT", Calls: 12_600,
			QPS1: 41, QPS10: 40.6, TotalMs: 630, MeanMs: 0.05, P99Ms: 0.2, FirstSeen: started, LastSeen: taken, History: history(0, 40, 2)},
		{Fingerprint: "51c2d3e4f5a6b7c8", Query: "SELECT orders.id, orders.customer_id, orders.total, orders.created_at FROM orders\n\tWHERE orders.customer_id = $1 ORDER BY orders.created_at DESC LIMIT $2",
			Command: "SELECT", Calls: 5_210, Rows: 41_680, QPS1: 17, QPS10: 16.9, TotalMs: 18_235, MeanMs: 3.5, P99Ms: 41,
			FirstSeen: started, LastSeen: taken, History: history(0, 16, 3)},
		{Fingerprint: "a1b2c3d4e5f60718", Query: "SELECT celery_groupmeta.id, celery_groupmeta.taskset_id, celery_groupmeta.result FROM celery_groupmeta WHERE celery_groupmeta.taskset_id = $1",
			Command: "SELECT", Calls: 2_880, QPS1: 12, QPS10: 12, TotalMs: 460, MeanMs: 0.16, P99Ms: 0.6, Watched: true, Table: "celery_groupmeta",
			FirstSeen: started, LastSeen: taken, History: history(0, 11, 3)},
		{Fingerprint: "77e1f00dcafe1234", Query: "INSERT INTO orders (customer_id, total, created_at) VALUES ($1, $2, $3) RETURNING orders.id",
			Command: "INSERT", Calls: 1_204, Failed: 3, Rows: 1_201, QPS1: 4, QPS10: 3.9, TotalMs: 2_890, MeanMs: 2.4, P99Ms: 12,
			FirstSeen: started, LastSeen: taken, History: history(0, 4, 1)},
		{Fingerprint: "c3d4e5f6a7b80912", Query: "UPDATE celery_taskmeta SET status = $1, result = $2, date_done = $3 WHERE celery_taskmeta.task_id = $4",
			Command: "UPDATE", Calls: 20, Rows: 20, QPS1: 0, QPS10: 0.1, TotalMs: 31, MeanMs: 1.55, P99Ms: 3.1, Write: true, Table: "celery_taskmeta",
			FirstSeen: started, LastSeen: taken.Add(-9 * time.Second), History: make([]uint32, 60)},
	}
	s.Clients = []analyzer.ClientStat{
		{Address: "10.0.3.17", ApplicationName: "celery-worker@batch-1", User: "app", Database: "shop",
			Queries: 166_900, Polls: 163_420, Connections: 4, OpenConnections: 3, QPS10: 612, ConnsPerSec10: 0,
			PollShare: 0.983, QueriesPerConn: 41_725},
		{Address: "10.0.3.22", ApplicationName: "gunicorn", User: "app", Database: "shop",
			Queries: 19_400, Polls: 2_880, Connections: 6, OpenConnections: 6, QPS10: 64.3, ConnsPerSec10: 0,
			PollShare: 0.017, QueriesPerConn: 3_233},
		{Address: "10.0.3.30", ApplicationName: "celery-beat", User: "app", Database: "shop",
			Queries: 1_354, Polls: 0, Connections: 402, OpenConnections: 0, QPS10: 6.8, ConnsPerSec10: 2.4,
			PollShare: 0, QueriesPerConn: 3.4},
	}
	s.Storms = []analyzer.Storm{{Kind: "key", Table: "celery_taskmeta", Column: "task_id", Key: taskID(0),
		StartedAt: taken.Add(-38 * time.Second), Active: true, Polls: 2_240, PeakQPS: 63, Spin: true, MedianIntervalMs: 1.6, WaitsPct: 0}}
	s.Findings = []analyzer.Finding{
		{ID: "poll:celery_groupmeta.taskset_id", Kind: "poll-storm", Severity: "high",
			Summary: "Poll storm: 1 celery_groupmeta.taskset_id value(s) polled 12 times/s in total",
			Evidence: []string{
				"597 of 683 queries/s in the last 10 s are watched polls",
				"100% of these polls returned exactly what the previous poll returned",
				`9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d: 12/s, 2880 polls, median gap 83.0 ms, status "", 2 client(s)`,
			},
			Fix: "Stop busy-waiting on results. Chain the work with a chord or a callback (group(...) | callback.s()) " +
				"instead of looping on AsyncResult.ready() / GroupResult.completed_count() / join(); where you must wait, " +
				"use result.get(interval=1.0) or at least time.sleep() between checks. Each check is one query per task."},
		{ID: "poll:celery_taskmeta.task_id|spin", Kind: "spin-poll", Severity: "high",
			Summary: "Spin loop: 10 celery_taskmeta.task_id value(s) polled 592 times/s in total, a poll every 2.1 ms (median)",
			Evidence: []string{
				"597 of 683 queries/s in the last 10 s are watched polls",
				"100% of these polls returned exactly what the previous poll returned",
				taskID(0) + `: 60/s, 16341 polls, median gap 1.6 ms, status "PENDING", 1 client(s)`,
				taskID(1) + `: 60/s, 16304 polls, median gap 1.7 ms, status "PENDING", 1 client(s)`,
				taskID(2) + `: 60/s, 16267 polls, median gap 1.8 ms, status "PENDING", 1 client(s)`,
				taskID(3) + `: 59/s, 16230 polls, median gap 1.9 ms, status "PENDING", 1 client(s)`,
				taskID(4) + `: 59/s, 16193 polls, median gap 2.0 ms, status "PENDING", 1 client(s)`,
				"… and 5 more keys",
			},
			Fix: "Stop busy-waiting on results. Chain the work with a chord or a callback (group(...) | callback.s()) " +
				"instead of looping on AsyncResult.ready() / GroupResult.completed_count() / join(); where you must wait, " +
				"use result.get(interval=1.0) or at least time.sleep() between checks. Each check is one query per task."},
		{ID: "polls-after-result", Kind: "polls-after-result", Severity: "medium",
			Summary:  "1 key(s) kept being polled after reaching a final state",
			Evidence: []string{"c0ffee00-0000-4000-8000-000000000001: 37 polls after SUCCESS"},
			Fix: "The result was already final when these polls ran: stop polling a task once its state is " +
				"SUCCESS, FAILURE or REVOKED (forget() the result or drop it from the set being watched)."},
		{ID: "churn:10.0.3.30|celery-beat|app|shop", Kind: "connection-churn", Severity: "high",
			Summary: "Connection churn: 10.0.3.30 (celery-beat) opens 2.4 connections/s and runs 3.4 queries on each",
			Evidence: []string{
				"402 connections, 1354 queries, 0 watched polls from 10.0.3.30 as app@shop",
				"every connection costs a backend fork and authentication on the server",
			},
			Fix: "Reuse connections: put a pooler (PgBouncer) in front, or keep a persistent engine/pool in the polling " +
				"process (SQLAlchemy's default QueuePool instead of NullPool; Celery's database backend opens a new connection " +
				"per poll outside forked workers)."},
	}
	s.Headline = "597 of 683 queries/s are polls of 12 watched keys (last 10 s); 11 storming"
	return s
}

// calmSnapshot is a later snapshot once the parent task was fixed: no storm, different numbers.
func calmSnapshot() *analyzer.Snapshot {
	s := stormSnapshot()
	s.TakenAt = s.TakenAt.Add(2 * time.Minute)
	s.Uptime += 2 * time.Minute
	s.Rates = analyzer.Rates{QPS: 91, QPS10: 88, WatchedQPS10: 1.2, ConnsPerSec10: 0.1, KeysPolled10: 2}
	s.Totals.StormsActive = 0
	s.Totals.CachedAnswers = 4_321
	keys := s.Keys[:0]
	for _, k := range s.Keys {
		k.Storming, k.Spinning, k.QPS1, k.QPS10 = false, false, 0, 0
		keys = append(keys, k)
	}
	s.Keys = keys
	s.Findings = nil
	s.Storms[0].Active = false
	s.Headline = "1 of 88 queries/s are polls of 2 watched keys (last 10 s); 0 storming"
	return s
}

// whatIf is the storm's estimate: ten keys spinning for five minutes leave a 500 ms cache about
// two fills per key and second.
func whatIf() []analyzer.WhatIf {
	const polls = 166_292
	var out []analyzer.WhatIf
	for _, w := range []struct {
		ttl   time.Duration
		saved int64
	}{{100 * time.Millisecond, 136_292}, {500 * time.Millisecond, 160_132}, {time.Second, 163_212}, {5 * time.Second, 165_676}} {
		out = append(out, analyzer.WhatIf{TTL: w.ttl, Polls: polls, Saved: w.saved, SavedShare: float64(w.saved) / polls})
	}
	return out
}

// cacheSnapshot is the storm with the proxy's cache: on (its numbers) or off (its estimate).
func cacheSnapshot(on bool) *analyzer.Snapshot {
	s := stormSnapshot()
	s.WhatIf = whatIf()
	s.Coalesce = &analyzer.CoalesceStats{Enabled: on, TTL: 500 * time.Millisecond, Scope: "read-committed",
		Hits: 158_907, Misses: 2_571, Fills: 2_566, Invalidations: 12, DiscardedFills: 1, Bypassed: 40,
		Entries: 11, Bytes: 9_216, MaxEntries: 10_000, MaxBytes: 64 << 20,
		AgeP50: 248 * time.Millisecond, AgeMax: 499 * time.Millisecond, Saved: 159_102}
	s.Totals.CachedAnswers = 158_907
	return s
}

// noCacheSnapshot is the storm through a proxy without --coalesce, with the estimate.
func noCacheSnapshot() *analyzer.Snapshot {
	s := stormSnapshot()
	s.WhatIf = whatIf()
	return s
}

// queueSnapshot is the storm with job queues: an Oban queue polled 48 times a second by three
// workers, 99% of the polls in vain while a job comes every two seconds, and a Solid Queue
// polled politely; the statements' comments say which code sent them.
func queueSnapshot() *analyzer.Snapshot {
	s := stormSnapshot()
	s.Queues = []analyzer.QueueStat{
		{Queue: "oban", Library: "Oban", Tables: "oban_jobs", Polls: 14_736, EmptyPolls: 14_590, EmptyPct: 99.0, Enqueued: 154,
			PollsPerSec10: 48, PollsPerSec: 47.9, EnqueuedPerSec: 0.5, IntervalP50Ms: 62,
			Clients: []analyzer.QueueClient{
				{Address: "10.0.5.11", ApplicationName: "oban-worker-1", User: "app", Database: "shop", Polls: 4_912, EmptyPolls: 4_863, PollsPerSec10: 16, IntervalP50Ms: 62},
				{Address: "10.0.5.12", ApplicationName: "oban-worker-2", User: "app", Database: "shop", Polls: 4_912, EmptyPolls: 4_864, PollsPerSec10: 16, IntervalP50Ms: 61},
				{Address: "10.0.5.13", ApplicationName: "oban-worker-3", User: "app", Database: "shop", Polls: 4_912, EmptyPolls: 4_863, PollsPerSec10: 16, IntervalP50Ms: 63},
			},
			Tags: []analyzer.TagCount{{Tag: "job=Oban.Stager", Count: 9_824, PerSec10: 32}, {Tag: "job=Oban.Producer", Count: 4_912, PerSec10: 16}}},
		{Queue: "solid_queue", Library: "Solid Queue", Tables: "solid_queue_ready_executions", Polls: 307, EmptyPolls: 290, EmptyPct: 94.5, Enqueued: 17,
			PollsPerSec10: 1, PollsPerSec: 1, EnqueuedPerSec: 0.06, IntervalP50Ms: 1_000,
			Clients: []analyzer.QueueClient{
				{Address: "10.0.3.22", ApplicationName: "solid-queue-worker", User: "app", Database: "shop", Polls: 307, EmptyPolls: 290, PollsPerSec10: 1, IntervalP50Ms: 1_000},
			}},
	}
	s.Tags = []analyzer.TagStat{
		{Tag: "controller=orders,action=status", Queries: 160_012, Polls: 160_012, QPS10: 590, PollsPerSec10: 590},
		{Tag: "job=Oban.Stager", Queries: 9_824, Polls: 9_824, QPS10: 32, PollsPerSec10: 32},
		{Tag: "job=Oban.Producer", Queries: 5_300, Polls: 4_912, QPS10: 17.5, PollsPerSec10: 16},
		{Tag: "controller=orders,action=create", Queries: 1_204, QPS10: 3.9},
		{Tag: "other", Queries: 310, Polls: 12, QPS10: 0.8, PollsPerSec10: 0.1},
	}
	s.Storms[0].Tags = []analyzer.TagCount{{Tag: "controller=orders,action=status", Count: 2_240, PerSec10: 60}}
	return s
}
