package analyzer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// step is one statement of a what-if scenario, at ms milliseconds from the start.
type step struct {
	ms     int
	sql    string // a full statement; empty: a poll of key
	key    string
	failed bool
}

func polls(key string, n, everyMs int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{ms: i * everyMs, key: key}
	}
	return out
}

// whatIfRun feeds the steps to a fresh analyzer, each statement completing exactly at its time.
func whatIfRun(t testing.TB, steps []step) (*Analyzer, *Snapshot) {
	a := New(Config{})
	info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
	a.ConnOpened(info)
	base := a.epoch.Add(time.Second)
	for _, s := range steps {
		text := s.sql
		if text == "" {
			text = celeryLookup + "'" + s.key + "'"
		}
		ev := proxy.Event{Protocol: proxy.Simple, Text: []byte(text), Start: base.Add(time.Duration(s.ms) * time.Millisecond),
			Tag: []byte("SELECT 1"), Rows: 1, Failed: s.failed}
		a.Statements(info, []proxy.Event{ev})
	}
	return a, a.Snapshot()
}

// saved lists the what-if savings for 100 ms, 500 ms, 1 s and 5 s.
func saved(s *Snapshot) [4]int64 {
	var out [4]int64
	for i, w := range s.WhatIf {
		out[i] = w.Saved
	}
	return out
}

func TestWhatIf(t *testing.T) {
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	shift := func(ms int, steps []step) []step {
		out := append([]step(nil), steps...)
		for i := range out {
			out[i].ms += ms
		}
		return out
	}
	cases := []struct {
		name  string
		steps []step
		polls int64
		saved [4]int64 // at 100 ms, 500 ms, 1 s, 5 s
	}{
		// 1000 polls 1 ms apart: a 500 ms cache fills at 0 and 500 ms and answers the rest.
		{"spin loop 1 ms", polls("spin", 1000, 1), 1000, [4]int64{990, 998, 999, 999}},
		// 600 ms apart: a 500 ms entry has always expired. A 1 s entry serves the poll 600 ms
		// after its fill and has expired at 1200 ms: an entry lives TTL from its fill, however
		// often it is read, so every other poll goes upstream.
		{"polls 600 ms apart", polls("slow", 10, 600), 10, [4]int64{0, 0, 5, 8}},
		{"polls 1 s apart", polls("slow", 6, 1000), 6, [4]int64{0, 0, 0, 4}},
		{"one poll", polls("once", 1, 1), 1, [4]int64{}},
		// A write to the key after a fill forces the next poll upstream.
		{"write between polls", cat(polls("k", 3, 10),
			[]step{{ms: 25, sql: `UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'k'`}},
			shift(30, polls("k", 2, 10))), 5, [4]int64{3, 3, 3, 3}},
		// The write's INSERT form, from Celery's backend storing the result.
		{"insert between polls", cat(polls("k", 3, 10),
			[]step{{ms: 25, sql: `INSERT INTO celery_taskmeta (task_id, status) VALUES ('k', 'SUCCESS')`}},
			shift(30, polls("k", 2, 10))), 5, [4]int64{3, 3, 3, 3}},
		// A write to another key invalidates nothing.
		{"write to another key", cat(polls("k", 3, 10),
			[]step{{ms: 25, sql: `UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'other'`}},
			shift(30, polls("k", 2, 10))), 5, [4]int64{4, 4, 4, 4}},
		// A write whose key cannot be told invalidates every key of the table.
		{"truncate between polls", cat(polls("k", 3, 10), polls("j", 3, 10),
			[]step{{ms: 25, sql: `TRUNCATE celery_taskmeta`}},
			shift(30, polls("k", 2, 10)), shift(30, polls("j", 2, 10))), 10, [4]int64{6, 6, 6, 6}},
		{"update by status between polls", cat(polls("k", 3, 10),
			[]step{{ms: 25, sql: `UPDATE celery_taskmeta SET status = 'REVOKED' WHERE status = 'PENDING'`}},
			shift(30, polls("k", 2, 10))), 5, [4]int64{3, 3, 3, 3}},
		// A write to another watched table leaves this one's keys alone.
		{"truncate another table", cat(polls("k", 3, 10),
			[]step{{ms: 25, sql: `TRUNCATE celery_tasksetmeta`}},
			shift(30, polls("k", 2, 10))), 5, [4]int64{4, 4, 4, 4}},
		// A failed write changed nothing; a failed poll is not a poll.
		{"failed write and poll", cat(polls("k", 3, 10),
			[]step{{ms: 25, sql: `UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'k'`, failed: true},
				{ms: 26, key: "k", failed: true}},
			shift(30, polls("k", 2, 10))), 5, [4]int64{4, 4, 4, 4}},
		// Keys have their own entries: two keys polled in turn each fill once.
		{"two keys interleaved", cat(polls("a", 100, 2), shift(1, polls("b", 100, 2))), 200, [4]int64{196, 198, 198, 198}},
		// An IN list polls each of its keys.
		{"IN list", []step{
			{ms: 0, sql: `SELECT * FROM celery_taskmeta WHERE task_id IN ('a', 'b', 'c')`},
			{ms: 50, sql: `SELECT * FROM celery_taskmeta WHERE task_id IN ('a', 'b', 'c')`},
			{ms: 200, sql: `SELECT * FROM celery_taskmeta WHERE task_id IN ('a', 'b')`},
		}, 8, [4]int64{3, 5, 5, 5}},
		// Reads that are not watched lookups are not polls.
		{"unwatched reads", []step{{ms: 0, sql: `SELECT 1`}, {ms: 1, sql: `SELECT 1`}, {ms: 2, sql: `SELECT * FROM users WHERE id = 3`}}, 0, [4]int64{}},
		// Out of order: a poll completing just before the fill it arrives after is within the
		// TTL of it.
		{"out of order", []step{{ms: 100, key: "k"}, {ms: 90, key: "k"}, {ms: 150, key: "k"}}, 3, [4]int64{2, 2, 2, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, s := whatIfRun(t, c.steps)
			if len(s.WhatIf) != len(WhatIfTTLs) {
				t.Fatalf("%d what-if entries", len(s.WhatIf))
			}
			for i, w := range s.WhatIf {
				if w.TTL != WhatIfTTLs[i] || w.Polls != c.polls {
					t.Fatalf("entry %d: %+v, want TTL %v and %d polls", i, w, WhatIfTTLs[i], c.polls)
				}
				want := 0.0
				if c.polls > 0 {
					want = float64(w.Saved) / float64(c.polls)
				}
				if w.SavedShare != want {
					t.Fatalf("entry %d: share %v, want %v", i, w.SavedShare, want)
				}
			}
			if got := saved(s); got != c.saved {
				t.Fatalf("saved %v, want %v (100 ms, 500 ms, 1 s, 5 s)", got, c.saved)
			}
			// Per key, at 500 ms: the keys' savings add up to the total.
			var perKey int64
			for _, k := range s.Keys {
				perKey += k.WhatIfSaved500ms
			}
			if perKey != c.saved[whatIf500] {
				t.Fatalf("keys' what_if_saved_500ms sum to %d, total %d", perKey, c.saved[whatIf500])
			}
		})
	}
}

// TestWhatIfExtendedAndCached: keys come from bound parameters too, and polls the real cache
// answered count like any other (the clients' traffic is what the estimate models).
func TestWhatIfExtendedAndCached(t *testing.T) {
	a := New(Config{})
	info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
	a.ConnOpened(info)
	base := a.epoch.Add(time.Second)
	for i := range 20 {
		ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(celeryLookup + "$1"), Start: base.Add(time.Duration(i) * 10 * time.Millisecond),
			Bind: bindBody(t, nil, []byte("ext-key")), Cached: i%2 == 1}
		a.Statements(info, []proxy.Event{ev})
	}
	s := a.Snapshot()
	if got := saved(s); got != [4]int64{18, 19, 19, 19} || s.WhatIf[1].Polls != 20 {
		t.Fatalf("saved %v of %d", got, s.WhatIf[1].Polls)
	}
	if len(s.Keys) != 1 || s.Keys[0].Key != "ext-key" || s.Keys[0].WhatIfSaved500ms != 19 || s.Keys[0].CachedPolls != 10 {
		t.Fatalf("keys %+v", s.Keys)
	}
}

// TestWhatIfSurvivesEviction: the totals keep the savings of keys the table forgot.
func TestWhatIfSurvivesEviction(t *testing.T) {
	a := New(Config{MaxKeys: 16})
	info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
	a.ConnOpened(info)
	base := a.epoch.Add(time.Second)
	for k := range 500 {
		for i := range 3 {
			a.Statements(info, []proxy.Event{simpleEvent(celeryLookup+fmt.Sprintf("'key-%d'", k), base.Add(time.Duration(k*3+i)*time.Millisecond))})
		}
	}
	s := a.Snapshot()
	if s.Totals.KeysEvicted == 0 {
		t.Fatal("nothing evicted")
	}
	if s.WhatIf[1].Polls != 1500 || s.WhatIf[1].Saved != 1000 {
		t.Fatalf("500 ms: %+v, want 1000 of 1500", s.WhatIf[1])
	}
}

func TestSetCoalesceStats(t *testing.T) {
	a := New(Config{})
	s := a.Snapshot()
	if s.Coalesce != nil {
		t.Fatalf("coalesce %+v without SetCoalesceStats", s.Coalesce)
	}
	if len(s.WhatIf) != 4 || s.WhatIf[1].TTL != 500*time.Millisecond || s.WhatIf[1].Polls != 0 || s.WhatIf[1].SavedShare != 0 {
		t.Fatalf("what-if of an idle analyzer: %+v", s.WhatIf)
	}

	// Set while snapshots are being taken (the TUI's and /metrics' goroutines): -race checks it.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			a.Snapshot()
		}
	}()
	var mu sync.Mutex
	hits := int64(0)
	a.SetCoalesceStats(func() CoalesceStats {
		mu.Lock()
		defer mu.Unlock()
		hits++
		return CoalesceStats{Enabled: true, TTL: 500 * time.Millisecond, Scope: "read-committed", Hits: hits, Misses: 3,
			Fills: 3, Entries: 2, Bytes: 512, MaxEntries: 10000, MaxBytes: 64 << 20, AgeP50: 120 * time.Millisecond,
			AgeMax: 499 * time.Millisecond, Saved: hits}
	})
	time.Sleep(20 * time.Millisecond)
	cancel()
	wg.Wait()
	s = a.Snapshot()
	c := s.Coalesce
	if c == nil || !c.Enabled || c.TTL != 500*time.Millisecond || c.Scope != "read-committed" || c.Hits < 1 || c.Saved != c.Hits ||
		c.AgeMax != 499*time.Millisecond || c.MaxBytes != 64<<20 {
		t.Fatalf("coalesce %+v", c)
	}
	// Each snapshot asks again: the numbers are current.
	if s2 := a.Snapshot(); s2.Coalesce.Hits != c.Hits+1 {
		t.Fatalf("hits %d then %d", c.Hits, s2.Coalesce.Hits)
	}
	a.SetCoalesceStats(nil)
	if a.Snapshot().Coalesce != nil {
		t.Fatal("SetCoalesceStats(nil) left the stats in")
	}
}
