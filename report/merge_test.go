package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// history60 is a 60-second history whose last n seconds hold v.
func history60(n int, v uint32) []uint32 {
	h := make([]uint32, 60)
	for i := 60 - n; i < 60; i++ {
		h[i] = v
	}
	return h
}

func timeline(from, n int, q, w uint32) []analyzer.Second {
	var tl []analyzer.Second
	for i := range n {
		tl = append(tl, analyzer.Second{Time: at(from + i), Queries: q, Watched: w, Connections: 1})
	}
	return tl
}

// mergeInputs are two proxies' snapshots: A from second 0 to 10, B from second 3 to 13, with a
// key, a statement and a client in common and one finding id in both.
func mergeInputs() (a, b *Report) {
	sa := &analyzer.Snapshot{StartedAt: at(0), TakenAt: at(10),
		Totals:   analyzer.Totals{Queries: 100, WatchedLookups: 107, Connections: 2, OpenConnections: 1, KeysTracked: 2, FingerprintsSeen: 2, StormsActive: 1},
		Rates:    analyzer.Rates{QPS: 10, QPS10: 10, WatchedQPS10: 5, ConnsPerSec10: 0.2, KeysPolled10: 1},
		Headline: "5 of 10 queries/s are polls of 1 watched keys (last 10 s); 1 storming",
		Timeline: timeline(0, 10, 10, 5),
		Keys: []analyzer.KeyStat{
			{Table: "celery_taskmeta", Column: "task_id", Key: "shared", Polls: 100, UnchangedPolls: 90, Rows: 100, Writes: 1,
				QPS10: 5, PeakQPS: 10, MedianIntervalMs: 100, P10IntervalMs: 50, FirstSeen: at(1), LastSeen: at(9),
				LastStatus: "PENDING", TimeToResultMs: -1, Clients: 1, History: history60(10, 5), WhatIfSaved500ms: 80},
			{Table: "celery_taskmeta", Column: "task_id", Key: "only-a", Polls: 7, MedianIntervalMs: 1000, P10IntervalMs: 900,
				FirstSeen: at(2), LastSeen: at(8), LastStatus: "SUCCESS", TimeToResultMs: 0, PollsAfterTerminal: 6, Clients: 1, History: history60(0, 0)},
		},
		Fingerprints: []analyzer.FingerprintStat{
			{Fingerprint: "00000000000000f1", Query: "SELECT * FROM celery_taskmeta WHERE task_id = $1", Calls: 100, TotalMs: 50, MeanMs: 0.5, P99Ms: 2,
				Watched: true, Table: "celery_taskmeta", FirstSeen: at(0), LastSeen: at(9), History: history60(10, 5)},
			{Fingerprint: "00000000000000f2", Query: "SELECT $1", Calls: 3, TotalMs: 3, MeanMs: 1, FirstSeen: at(0), LastSeen: at(1), History: history60(0, 0)},
		},
		Clients: []analyzer.ClientStat{{Address: "10.0.0.1", ApplicationName: "celery", User: "u", Database: "d", Queries: 200, Polls: 107, Connections: 2, QPS10: 10}},
		Storms:  []analyzer.Storm{{Kind: "key", Table: "celery_taskmeta", Column: "task_id", Key: "shared", StartedAt: at(5), Active: true, Polls: 30}},
		Findings: []analyzer.Finding{
			{ID: "poll:celery_taskmeta.task_id|spin", Kind: "spin-poll", Severity: "medium", Summary: "Spin loop: A", Evidence: []string{"e1", "e2"}, Fix: "fix"},
			{ID: "churn:10.0.0.1|celery|u|d", Kind: "connection-churn", Severity: "high", Summary: "churn", Evidence: []string{"c"}, Fix: "pool"},
		},
		Watches: []analyzer.WatchStat{{Table: "celery_taskmeta", Column: "task_id", Origin: "celery", Lookups: 107}},
		Coalesce: &analyzer.CoalesceStats{Enabled: true, TTL: 500 * time.Millisecond, Scope: "read-committed", Hits: 90, Misses: 10,
			Fills: 9, Invalidations: 2, DiscardedFills: 1, Bypassed: 4, Entries: 2, Bytes: 1000, MaxEntries: 100, MaxBytes: 1 << 20,
			AgeP50: 200 * time.Millisecond, AgeMax: 450 * time.Millisecond, Saved: 92},
		Reuse: &analyzer.ReuseStats{Reused: 40, Kept: 42, Discarded: 1, Idle: 1},
		WhatIf: []analyzer.WhatIf{{TTL: 100 * time.Millisecond, Polls: 107, Saved: 50, SavedShare: 50.0 / 107},
			{TTL: 500 * time.Millisecond, Polls: 107, Saved: 90, SavedShare: 90.0 / 107}},
	}
	sb := &analyzer.Snapshot{StartedAt: at(3), TakenAt: at(13),
		Totals:   analyzer.Totals{Queries: 200, WatchedLookups: 303, Connections: 3, KeysTracked: 2, FingerprintsSeen: 1, StormsActive: 1},
		Rates:    analyzer.Rates{QPS: 20, QPS10: 20, WatchedQPS10: 8, ConnsPerSec10: 0.3, KeysPolled10: 1},
		Timeline: timeline(3, 10, 20, 8),
		Keys: []analyzer.KeyStat{
			{Table: "celery_taskmeta", Column: "task_id", Key: "shared", Polls: 300, UnchangedPolls: 200, Rows: 300, Writes: 2,
				QPS10: 8, PeakQPS: 12, MedianIntervalMs: 20, P10IntervalMs: 10, FirstSeen: at(4), LastSeen: at(12),
				LastStatus: "SUCCESS", TimeToResultMs: 5000, Clients: 2, Storming: true, Spinning: true, History: history60(10, 8), WhatIfSaved500ms: 250},
			{Table: "celery_taskmeta", Column: "task_id", Key: "only-b", Polls: 3, MedianIntervalMs: -1, P10IntervalMs: -1,
				FirstSeen: at(5), LastSeen: at(5), TimeToResultMs: -1, Clients: 1, History: history60(0, 0)},
		},
		Fingerprints: []analyzer.FingerprintStat{
			{Fingerprint: "00000000000000f1", Query: "SELECT * FROM celery_taskmeta WHERE task_id = $1", Calls: 300, TotalMs: 300, MeanMs: 1, P99Ms: 5,
				Watched: true, Table: "celery_taskmeta", FirstSeen: at(3), LastSeen: at(12), History: history60(10, 8)},
		},
		Clients: []analyzer.ClientStat{
			{Address: "10.0.0.1", ApplicationName: "celery", User: "u", Database: "d", Queries: 100, Polls: 300, Connections: 3, QPS10: 20},
			{Address: "10.0.0.1", ApplicationName: "other", User: "u", Database: "d", Queries: 10, Polls: 3, Connections: 1},
		},
		Storms: []analyzer.Storm{{Kind: "key", Table: "celery_taskmeta", Column: "task_id", Key: "shared", StartedAt: at(4), Active: true, Polls: 80, Spin: true}},
		Findings: []analyzer.Finding{
			{ID: "poll:celery_taskmeta.task_id|spin", Kind: "spin-poll", Severity: "high", Summary: "Spin loop: B", Evidence: []string{"e2", "e3"}, Fix: "fix"},
			{ID: "repeat:ab#cd", Kind: "repeated-read", Severity: "medium", Summary: "repeat", Evidence: []string{"r"}, Fix: "cache"},
		},
		Watches: []analyzer.WatchStat{{Table: "celery_taskmeta", Column: "task_id", Origin: "celery", Lookups: 303}},
		Coalesce: &analyzer.CoalesceStats{Enabled: false, TTL: time.Second, Scope: "idle", Hits: 10, Misses: 30,
			Fills: 30, Invalidations: 3, Entries: 1, Bytes: 24, MaxEntries: 50, MaxBytes: 1 << 10,
			AgeP50: 300 * time.Millisecond, AgeMax: 400 * time.Millisecond, Saved: 11},
		Reuse: &analyzer.ReuseStats{Reused: 7, Kept: 9, Discarded: 0, Idle: 2},
		// B knows a TTL A does not, and lists them in another order.
		WhatIf: []analyzer.WhatIf{{TTL: 500 * time.Millisecond, Polls: 303, Saved: 290, SavedShare: 290.0 / 303},
			{TTL: 100 * time.Millisecond, Polls: 303, Saved: 200, SavedShare: 200.0 / 303},
			{TTL: 5 * time.Second, Polls: 303, Saved: 300, SavedShare: 300.0 / 303}},
	}
	return FromSnapshot(sa, Source{Listen: ":6543", Host: "host-a", Version: "v1"}),
		FromSnapshot(sb, Source{Listen: ":6543", Host: "host-b", Version: "v1"})
}

func TestMerge(t *testing.T) {
	a, b := mergeInputs()
	before, _ := json.Marshal([]*Report{a, b})
	for _, order := range []string{"ab", "ba"} {
		t.Run(order, func(t *testing.T) {
			in := []*Report{a, b}
			if order == "ba" {
				in = []*Report{b, a}
			}
			m, err := Merge(in...)
			if err != nil {
				t.Fatal(err)
			}
			if m.SchemaVersion != 1 || !m.StartedAt.Equal(at(0)) || !m.EndedAt.Equal(at(13)) || len(m.Proxies) != 2 ||
				m.Proxies[0].Host != in[0].Proxies[0].Host || m.Proxies[1].Host != in[1].Proxies[0].Host {
				t.Fatalf("header: %d %v %v %+v", m.SchemaVersion, m.StartedAt, m.EndedAt, m.Proxies)
			}
			wantTotals := Totals{Queries: 300, WatchedLookups: 410, Connections: 5, OpenConnections: 1, KeysTracked: 4, FingerprintsSeen: 3, StormsActive: 2}
			if m.Totals != wantTotals {
				t.Fatalf("totals %+v, want %+v", m.Totals, wantTotals)
			}
			if m.Rates.QPS10 != 30 || m.Rates.WatchedQPS10 != 13 || m.Rates.KeysPolled10 != 2 || m.Rates.QPS != 30 {
				t.Fatalf("rates %+v", m.Rates)
			}
			if m.Headline != "13 of 30 queries/s are polls of 2 watched keys (last 10 s); 2 storming" {
				t.Fatalf("headline %q", m.Headline)
			}

			// Timeline: seconds 0..12; 0-2 from A only, 3-9 both, 10-12 B only.
			if len(m.Timeline) != 13 {
				t.Fatalf("timeline of %d seconds", len(m.Timeline))
			}
			for i, s := range m.Timeline {
				want := uint32(30)
				switch {
				case i < 3:
					want = 10
				case i >= 10:
					want = 20
				}
				if !s.Time.Equal(at(i)) || s.Queries != want {
					t.Fatalf("second %d: %v %d queries, want %v %d", i, s.Time, s.Queries, at(i), want)
				}
			}
			// The busiest 10 s: seconds 3..12, (7×13 + 3×8) / 10 watched, (7×30 + 3×20) / 10 queries.
			if p := m.Peak; p == nil || !p.From.Equal(at(3)) || !p.To.Equal(at(12)) || p.WatchedQPS != 11.5 || p.QPS != 27 {
				t.Fatalf("peak %+v", m.Peak)
			}

			keys := map[string]Key{}
			for _, k := range m.Keys {
				keys[k.Key] = k
			}
			if len(m.Keys) != 3 || m.Keys[0].Key != "shared" {
				t.Fatalf("keys %v (storming first)", keys)
			}
			sh := keys["shared"]
			if sh.Polls != 400 || sh.UnchangedPolls != 290 || sh.Rows != 400 || sh.Writes != 3 || sh.Clients != 3 || sh.QPS10 != 13 {
				t.Fatalf("shared sums: %+v", sh)
			}
			if sh.MedianIntervalMs != 40 || sh.P10IntervalMs != 20 { // (100×100 + 20×300) / 400, (50×100 + 10×300) / 400
				t.Fatalf("shared intervals %v %v", sh.MedianIntervalMs, sh.P10IntervalMs)
			}
			if sh.LastStatus != "SUCCESS" || !sh.FirstSeen.Equal(at(1)) || !sh.LastSeen.Equal(at(12)) || !sh.Storming || !sh.Spinning {
				t.Fatalf("shared: %+v", sh)
			}
			if sh.TimeToResultMs != 8000 { // B's result at second 9, first poll (A) at second 1
				t.Fatalf("time to result %v", sh.TimeToResultMs)
			}
			// History aligned on the merged end (second 12): 5 at 0-2, 13 at 3-9, 8 at 10-12.
			wantH := make([]uint32, 60)
			for s := 0; s <= 12; s++ {
				wantH[59-(12-s)] = map[bool]uint32{true: 13, false: 5}[s >= 3]
				if s >= 10 {
					wantH[59-(12-s)] = 8
				}
			}
			if !reflect.DeepEqual(sh.History, wantH) {
				t.Fatalf("history\n got %v\nwant %v", sh.History, wantH)
			}
			if sh.PeakQPS != 13 { // the summed history beats both peaks (10 and 12)
				t.Fatalf("peak %v", sh.PeakQPS)
			}
			if k := keys["only-b"]; k.Polls != 3 || k.MedianIntervalMs != -1 || k.TimeToResultMs != -1 {
				t.Fatalf("only-b %+v", k)
			}
			if k := keys["only-a"]; k.Polls != 7 || k.MedianIntervalMs != 1000 || k.TimeToResultMs != 0 || k.PollsAfterTerminal != 6 {
				t.Fatalf("only-a %+v", k)
			}

			if len(m.Fingerprints) != 2 || m.Fingerprints[0].Fingerprint != "00000000000000f1" {
				t.Fatalf("fingerprints %+v", m.Fingerprints)
			}
			if f := m.Fingerprints[0]; f.Calls != 400 || f.TotalMs != 350 || f.MeanMs != 0.875 || f.P99Ms != 5 || !f.Watched ||
				!f.FirstSeen.Equal(at(0)) || !f.LastSeen.Equal(at(12)) {
				t.Fatalf("fingerprint %+v", f)
			}

			if len(m.Clients) != 2 {
				t.Fatalf("clients %+v", m.Clients)
			}
			c := m.Clients[0]
			if c.ApplicationName != "celery" || c.Queries != 300 || c.Polls != 407 || c.Connections != 5 || c.QueriesPerConn != 60 ||
				c.PollShare != 407.0/410 || c.QPS10 != 30 {
				t.Fatalf("client %+v", c)
			}

			if len(m.Storms) != 2 || !m.Storms[0].StartedAt.Equal(at(4)) {
				t.Fatalf("storms %+v", m.Storms)
			}
			if len(m.Findings) != 3 {
				t.Fatalf("findings %+v", m.Findings)
			}
			var spin Finding
			for _, f := range m.Findings {
				if f.Kind == "spin-poll" {
					spin = f
				}
			}
			if spin.Severity != "high" || len(spin.Evidence) != 3 || spin.Evidence[0] != in[0].Findings[0].Evidence[0] {
				t.Fatalf("deduplicated finding %+v", spin)
			}
			if len(m.Watches) != 1 || m.Watches[0].Lookups != 410 {
				t.Fatalf("watches %+v", m.Watches)
			}
			if sh.WhatIfSaved500ms != 330 {
				t.Fatalf("shared what_if_saved_500ms %d", sh.WhatIfSaved500ms)
			}
			wantC := Coalesce{Enabled: true, TTLMs: 1000, Scope: "mixed", Hits: 100, Misses: 40, Fills: 39, Invalidations: 5,
				DiscardedFills: 1, Bypassed: 4, Entries: 3, Bytes: 1024, MaxEntries: 150, MaxBytes: 1<<20 + 1<<10,
				AgeP50Ms: 300, AgeMaxMs: 450, Saved: 103}
			if m.Coalesce == nil || *m.Coalesce != wantC {
				t.Fatalf("coalesce %+v, want %+v", m.Coalesce, wantC)
			}
			if want := (Reuse{Reused: 47, Kept: 51, Discarded: 1, Idle: 3}); m.Reuse == nil || *m.Reuse != want {
				t.Fatalf("reuse %+v, want %+v", m.Reuse, want)
			}
			wantW := []WhatIf{{TTLMs: 100, Polls: 410, Saved: 250, SavedShare: 250.0 / 410}, {TTLMs: 500, Polls: 410, Saved: 380, SavedShare: 380.0 / 410},
				{TTLMs: 5000, Polls: 303, Saved: 300, SavedShare: 300.0 / 303}}
			if !reflect.DeepEqual(m.WhatIf, wantW) {
				t.Fatalf("what_if %+v, want %+v", m.WhatIf, wantW)
			}
		})
	}
	after, _ := json.Marshal([]*Report{a, b})
	if string(before) != string(after) {
		t.Fatal("Merge modified its inputs")
	}
}

func TestMergeRefuses(t *testing.T) {
	a, b := mergeInputs()
	newer := *b
	newer.SchemaVersion = 2
	bothOld1, bothOld2 := *a, *b
	bothOld1.SchemaVersion, bothOld2.SchemaVersion = 0, 0
	cases := []struct {
		name string
		in   []*Report
		want string
	}{
		{"different versions", []*Report{a, &newer}, "report 2 has schema_version 2 but report 1 has 1: cannot merge reports of different schema versions"},
		{"unknown version", []*Report{&bothOld1, &bothOld2}, "this pgpollwatch merges schema_version 1"},
		{"none", nil, "no reports"},
		{"nil", []*Report{a, nil}, "report 2 is nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Merge(c.in...)
			if err == nil || !strings.Contains(err.Error(), c.want) || m != nil {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

// TestMergeOne is the identity but for the recomputed parts.
func TestMergeOne(t *testing.T) {
	a, _ := mergeInputs()
	m, err := Merge(a)
	if err != nil {
		t.Fatal(err)
	}
	if m.Totals != a.Totals || len(m.Keys) != len(a.Keys) || !reflect.DeepEqual(m.Timeline, a.Timeline) ||
		!reflect.DeepEqual(m.Findings, a.Findings) || m.Headline != a.Headline ||
		!reflect.DeepEqual(m.Coalesce, a.Coalesce) || !reflect.DeepEqual(m.WhatIf, a.WhatIf) || !reflect.DeepEqual(m.Reuse, a.Reuse) {
		t.Fatalf("merge of one report changed it:\n%+v\n%+v", m, a)
	}
	for i := range a.Keys {
		if !reflect.DeepEqual(m.Keys[i], a.Keys[i]) {
			t.Fatalf("key %d:\n%+v\n%+v", i, m.Keys[i], a.Keys[i])
		}
	}
}

// TestMergeWithoutCoalescing: reports of proxies without a cache merge to a report without
// one, and reports without a what-if estimate (older writers) to an empty list.
func TestMergeWithoutCoalescing(t *testing.T) {
	a, b := mergeInputs()
	a.Coalesce, b.Coalesce = nil, nil
	a.WhatIf, b.WhatIf = nil, nil
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Coalesce != nil || m.WhatIf == nil || len(m.WhatIf) != 0 {
		t.Fatalf("coalesce %+v, what_if %#v", m.Coalesce, m.WhatIf)
	}
	// One proxy with a cache: the merged report has its numbers.
	a2, _ := mergeInputs()
	m, err = Merge(a2, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Coalesce == nil || *m.Coalesce != *a2.Coalesce {
		t.Fatalf("coalesce %+v, want %+v", m.Coalesce, a2.Coalesce)
	}
}

// TestMergeWithoutReuse: reports of proxies without server connection reuse (or from before it
// was reported) merge to a report without it; with one that has it, to its numbers.
func TestMergeWithoutReuse(t *testing.T) {
	a, b := mergeInputs()
	a.Reuse, b.Reuse = nil, nil
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Reuse != nil {
		t.Fatalf("reuse %+v from reports without it", m.Reuse)
	}
	if js, _ := json.Marshal(m); strings.Contains(string(js), `"reuse"`) {
		t.Fatal("a merged report without reuse has a reuse field")
	}
	a2, _ := mergeInputs()
	if m, err = Merge(b, a2); err != nil {
		t.Fatal(err)
	}
	if m.Reuse == nil || *m.Reuse != *a2.Reuse {
		t.Fatalf("reuse %+v, want %+v", m.Reuse, a2.Reuse)
	}
}

// TestMergePollers: one identity seen through two proxies is one poller: polls and rates
// summed, waits weighted by polls, spinning if it spun anywhere; others stay apart.
func TestMergePollers(t *testing.T) {
	a := &Report{SchemaVersion: SchemaVersion, Rates: Rates{QPS10: 300}, Pollers: []Poller{
		{Address: "10.0.0.1", ApplicationName: "parent", Polls: 300, PollQPS10: 100, Keys: 10, WaitsPct: 0, KeyGapMs: 10, Storming: true, Spinning: true},
		{Address: "10.0.0.2", ApplicationName: "web", Polls: 10, PollQPS10: 1, Keys: 1, WaitsPct: -1, KeyGapMs: -1},
	}}
	b := &Report{SchemaVersion: SchemaVersion, Rates: Rates{QPS10: 100}, Pollers: []Poller{
		{Address: "10.0.0.1", ApplicationName: "parent", Polls: 100, PollQPS10: 50, Keys: 5, WaitsPct: 100, KeyGapMs: 50, OverlapPct: 3},
	}}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Pollers) != 2 {
		t.Fatalf("%d pollers, want 2: %+v", len(m.Pollers), m.Pollers)
	}
	p := m.Pollers[0]
	if p.ApplicationName != "parent" || p.Polls != 400 || p.PollQPS10 != 150 || p.Keys != 15 || p.WaitsPct != 25 || p.KeyGapMs != 20 ||
		p.OverlapPct != 3 || !p.Storming || !p.Spinning || p.QueryShare != 150.0/400 {
		t.Errorf("merged poller %+v", p)
	}
	if w := m.Pollers[1]; w.WaitsPct != -1 || w.KeyGapMs != -1 {
		t.Errorf("a poller without gaps got waits %v, key gap %v", w.WaitsPct, w.KeyGapMs)
	}
}

// TestMergeQueues: one queue seen by two proxies and a server log is one queue: counts and rates
// summed, the empty share of the polls whose answers were seen (the log's polls leave it alone),
// the interval weighted by polls; clients and tags united. A queue only the log saw keeps its
// empty polls unknown.
func TestMergeQueues(t *testing.T) {
	client := func(addr string, polls, empty int64, perSec, interval float64) QueueClient {
		return QueueClient{Address: addr, ApplicationName: "worker", User: "app", Database: "prod",
			Polls: polls, EmptyPolls: empty, PollsPerSec10: perSec, IntervalP50Ms: interval}
	}
	proxyA := &Report{SchemaVersion: SchemaVersion,
		Queues: []Queue{{Queue: "oban", Library: "Oban", Tables: "oban_jobs", Polls: 100, EmptyPolls: 90, EmptyPct: 90, Enqueued: 10,
			PollsPerSec10: 10, PollsPerSec: 9, EnqueuedPerSec: 1, IntervalP50Ms: 100,
			Clients: []QueueClient{client("10.0.0.1", 100, 90, 10, 100)},
			Tags:    []TagCount{{Tag: "job=PollJob", Count: 100, PerSec10: 10}}}},
		Tags:   []Tag{{Tag: "job=PollJob", Queries: 110, Polls: 100, QPS10: 11, PollsPerSec10: 10}},
		Storms: []Storm{{Kind: "key", Key: "k", Tags: []TagCount{{Tag: "job=PollJob", Count: 50, PerSec10: 5}}}},
	}
	proxyB := &Report{SchemaVersion: SchemaVersion,
		Queues: []Queue{{Queue: "oban", Library: "Oban", Tables: "oban_jobs", Polls: 300, EmptyPolls: 150, EmptyPct: 50, Enqueued: 30,
			PollsPerSec10: 30, PollsPerSec: 25, EnqueuedPerSec: 3, IntervalP50Ms: 20,
			Clients: []QueueClient{client("10.0.0.2", 200, 100, 20, 10), client("10.0.0.1", 100, 50, 10, 40)},
			Tags:    []TagCount{{Tag: "job=PollJob", Count: 200, PerSec10: 20}, {Tag: "other", Count: 100, PerSec10: 10}}}},
		Tags: []Tag{{Tag: "other", Queries: 500, Polls: 100, QPS10: 50, PollsPerSec10: 10}, {Tag: "job=PollJob", Queries: 220, Polls: 200, QPS10: 22, PollsPerSec10: 20}},
	}
	serverLog := &Report{SchemaVersion: SchemaVersion, NoAnswers: true,
		Queues: []Queue{
			{Queue: "oban", Polls: 600, EmptyPolls: -1, EmptyPct: -1, Enqueued: 60, PollsPerSec10: 0, PollsPerSec: 60, EnqueuedPerSec: 6,
				IntervalP50Ms: 50, Clients: []QueueClient{client("10.0.0.1", 600, -1, 0, 50)}, Tags: []TagCount{}},
			{Queue: "solid_queue", Library: "Solid Queue", Tables: "solid_queue_ready_executions", Polls: 40, EmptyPolls: -1, EmptyPct: -1,
				IntervalP50Ms: -1, Clients: []QueueClient{client("10.0.0.3", 40, -1, 0, -1)}, Tags: []TagCount{}},
		},
	}
	before, _ := json.Marshal([]*Report{proxyA, proxyB, serverLog})
	m, err := Merge(proxyA, proxyB, serverLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Queues) != 2 || m.Queues[0].Queue != "oban" {
		t.Fatalf("queues %+v", m.Queues)
	}
	q := m.Queues[0]
	// Empty share: (90 + 150) / (100 + 300) polls whose answers were seen, not / 1000.
	// Interval: (100×100 + 20×300 + 50×600) / 1000.
	if q.Library != "Oban" || q.Tables != "oban_jobs" || q.Polls != 1000 || q.EmptyPolls != 240 || q.EmptyPct != 60 ||
		q.Enqueued != 100 || q.PollsPerSec10 != 40 || q.PollsPerSec != 94 || q.EnqueuedPerSec != 10 || q.IntervalP50Ms != 46 {
		t.Errorf("merged queue %+v", q)
	}
	// 10.0.0.1 through all three: polls 800, empty polls known from the proxies only (90 + 50),
	// interval (100×100 + 40×100 + 50×600) / 800.
	wantClients := []QueueClient{client("10.0.0.1", 800, 140, 20, 55), client("10.0.0.2", 200, 100, 20, 10)}
	if !reflect.DeepEqual(q.Clients, wantClients) {
		t.Errorf("queue clients\n got %+v\nwant %+v", q.Clients, wantClients)
	}
	if want := []TagCount{{Tag: "job=PollJob", Count: 300, PerSec10: 30}, {Tag: "other", Count: 100, PerSec10: 10}}; !reflect.DeepEqual(q.Tags, want) {
		t.Errorf("queue tags %+v, want %+v", q.Tags, want)
	}
	if sq := m.Queues[1]; sq.Queue != "solid_queue" || sq.Polls != 40 || sq.EmptyPolls != -1 || sq.EmptyPct != -1 || sq.IntervalP50Ms != -1 ||
		sq.Clients[0].EmptyPolls != -1 || sq.Tags == nil {
		t.Errorf("a queue only the log saw: %+v", sq)
	}
	wantTags := []Tag{{Tag: "other", Queries: 500, Polls: 100, QPS10: 50, PollsPerSec10: 10}, {Tag: "job=PollJob", Queries: 330, Polls: 300, QPS10: 33, PollsPerSec10: 30}}
	if !reflect.DeepEqual(m.Tags, wantTags) {
		t.Errorf("tags\n got %+v\nwant %+v", m.Tags, wantTags)
	}
	if len(m.Storms) != 1 || !reflect.DeepEqual(m.Storms[0].Tags, proxyA.Storms[0].Tags) {
		t.Fatalf("storms %+v", m.Storms)
	}
	m.Storms[0].Tags[0].Count = 0
	m.Queues[0].Clients[0].Polls = 0
	if after, _ := json.Marshal([]*Report{proxyA, proxyB, serverLog}); string(before) != string(after) {
		t.Fatal("Merge modified its inputs, or shares their storms' tags or queue clients")
	}

	// One report merges to itself.
	one, err := Merge(proxyB)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one.Queues, proxyB.Queues) || !reflect.DeepEqual(one.Tags, proxyB.Tags) {
		t.Errorf("a merge of one report changed its queues or tags:\n%+v\n%+v", one.Queues, one.Tags)
	}
	// Reports without queues or tags (older writers) merge to empty lists, never null.
	none, err := Merge(&Report{SchemaVersion: SchemaVersion})
	if err != nil {
		t.Fatal(err)
	}
	if none.Queues == nil || none.Tags == nil {
		t.Errorf("queues %#v, tags %#v", none.Queues, none.Tags)
	}
}

// A key's and a poller's tags from several proxies add up, and the three most counted stay.
func TestMergeKeyAndPollerTags(t *testing.T) {
	a, b := mergeInputs()
	a, b = cloneReport(t, a), cloneReport(t, b)
	a.Keys[0].Tags = []TagCount{{Tag: "job=A", Count: 5}, {Tag: "job=B", Count: 4}, {Tag: "job=C", Count: 1}}
	b.Keys = append(b.Keys, a.Keys[0])
	b.Keys[len(b.Keys)-1].Tags = []TagCount{{Tag: "job=D", Count: 3}, {Tag: "job=B", Count: 2}}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range m.Keys {
		if k.Key == a.Keys[0].Key && k.Table == a.Keys[0].Table {
			want := []TagCount{{Tag: "job=B", Count: 6}, {Tag: "job=A", Count: 5}, {Tag: "job=D", Count: 3}}
			if !reflect.DeepEqual(k.Tags, want) {
				t.Fatalf("merged key tags %+v, want %+v", k.Tags, want)
			}
			return
		}
	}
	t.Fatal("key missing from the merge")
}

func cloneReport(t *testing.T, r *Report) *Report {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
