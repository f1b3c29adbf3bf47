package report

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// The SQL Celery's database backend sends for AsyncResult.state, minus the key.
const celeryLookup = `SELECT celery_taskmeta.id AS celery_taskmeta_id, celery_taskmeta.task_id AS celery_taskmeta_task_id, celery_taskmeta.status AS celery_taskmeta_status, celery_taskmeta.result AS celery_taskmeta_result FROM celery_taskmeta WHERE celery_taskmeta.task_id = `

// secrets are the literals, parameters, result values and startup values fed to the analyzer
// in secretSnapshot that no report may contain.
var secrets = []string{
	"RESULT-SECRET-beef", // result data in the polled rows
	"alice@secret.example",
	"pw-SECRET-hash",
	"apikey-SECRET", // a bound parameter of a repeated read
	"hunter2-SECRET",
	"31415.926535", // a numeric literal
	"payload-SECRET",
	"failed-SECRET",
	"set-SECRET",
	"opt-SECRET",      // a startup parameter
	"upstream-SECRET", // the upstream DSN's password
}

// watchedKeys are the keys secretSnapshot polls or writes: they must be in every report.
var watchedKeys = []string{"spin-key-1", "spin-key-2", "k-ext-1", "w-key-1"}

func encodeBody(t testing.TB, m interface{ Encode([]byte) ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b[5:] // type byte and length
}

// secretSnapshot runs a real analyzer over statements full of secrets: spin-polled Celery
// keys whose rows carry result data, literal and parameterized repeated reads, writes, a
// failure and a multi-statement query. Two keys spin, so there are storms and findings.
func secretSnapshot(t testing.TB) (*analyzer.Snapshot, Source) {
	t.Helper()
	a := analyzer.New(analyzer.Config{})
	info := &proxy.ConnInfo{ClientAddr: "10.1.2.3:40000", User: "app", Database: "prod", ApplicationName: "celery-worker",
		Params: map[string]string{"user": "app", "options": "-c my.secret=opt-SECRET"}}
	a.ConnOpened(info)
	a.ConnAuthenticated(info, true, "")

	cols := encodeBody(t, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("celery_taskmeta_id")}, {Name: []byte("celery_taskmeta_task_id")},
		{Name: []byte("celery_taskmeta_status")}, {Name: []byte("celery_taskmeta_result")}}})
	row := func(key string) []byte {
		return encodeBody(t, &pgproto3.DataRow{Values: [][]byte{[]byte("1"), []byte(key), []byte("PENDING"), []byte("RESULT-SECRET-beef")}})
	}
	bind := func(params ...string) proxy.BindMessage {
		var ps [][]byte
		for _, p := range params {
			ps = append(ps, []byte(p))
		}
		return proxy.BindMessage(encodeBody(t, &pgproto3.Bind{Parameters: ps}))
	}
	simple := func(text string, at time.Time) proxy.Event {
		return proxy.Event{Protocol: proxy.Simple, Text: []byte(text), Start: at, Duration: 200 * time.Microsecond, Tag: []byte("SELECT 1"), Rows: 1, Digest: 42}
	}

	base := time.Now()
	for ms := 0; ms < 8000; ms += 5 {
		at := base.Add(time.Duration(ms) * time.Millisecond)
		var evs []proxy.Event
		for _, key := range []string{"spin-key-1", "spin-key-2"} {
			ev := simple(celeryLookup+"'"+key+"'", at)
			ev.Columns, ev.FirstRow = cols, row(key)
			evs = append(evs, ev)
		}
		if ms%20 == 0 {
			ext := proxy.Event{Protocol: proxy.Extended, Text: []byte(celeryLookup + "$1"), Start: at, Duration: time.Millisecond,
				Bind: bind("k-ext-1"), Columns: cols, FirstRow: row("k-ext-1"), Tag: []byte("SELECT 1"), Rows: 1, Digest: 7}
			evs = append(evs, ext)
			evs = append(evs, simple(`SELECT * FROM users WHERE email = 'alice@secret.example' AND password_hash = 'pw-SECRET-hash' AND score > 31415.926535`, at))
			evs = append(evs, proxy.Event{Protocol: proxy.Extended, Text: []byte(`SELECT id FROM accounts WHERE api_key = $1`), Start: at,
				Duration: time.Millisecond, Bind: bind("apikey-SECRET"), Tag: []byte("SELECT 1"), Rows: 1, Digest: 9})
		}
		if ms%1000 == 0 {
			evs = append(evs,
				simple(`UPDATE users SET password = 'hunter2-SECRET' WHERE id = 7`, at),
				simple(`INSERT INTO celery_taskmeta (task_id, status, result) VALUES ('w-key-1', 'SUCCESS', 'payload-SECRET')`, at),
				proxy.Event{Protocol: proxy.Simple, Text: []byte(`SELECT 'failed-SECRET'::int`), Start: at, Failed: true, SQLState: [5]byte{'2', '2', 'P', '0', '2'}},
				proxy.Event{Protocol: proxy.Simple, Text: []byte(`SET my.x = 'set-SECRET'; SELECT 1`), Start: at, Index: 0, Tag: []byte("SET")},
				proxy.Event{Protocol: proxy.Simple, Text: []byte(`SET my.x = 'set-SECRET'; SELECT 1`), Start: at, Index: 1, Tag: []byte("SELECT 1"), Rows: 1},
			)
			a.Tick(at)
		}
		a.Statements(info, evs)
	}
	a.Tick(base.Add(8 * time.Second))
	a.SetCoalesceStats(func() analyzer.CoalesceStats { return coalesceStats })
	a.SetReuseStats(func() analyzer.ReuseStats { return reuseStats })
	s := a.Snapshot()
	if len(s.Storms) == 0 || len(s.Findings) == 0 || len(s.Keys) < len(watchedKeys) {
		t.Fatalf("the analyzer found too little to test with: %d storms, %d findings, %d keys", len(s.Storms), len(s.Findings), len(s.Keys))
	}
	return s, Source{Listen: "127.0.0.1:6543", Upstream: "postgres://app:upstream-SECRET@db.internal:5432/app?sslmode=require",
		Host: "app-1", Version: "v0.0.0-test"}
}

// coalesceStats is what secretSnapshot's cache reports.
var coalesceStats = analyzer.CoalesceStats{Enabled: true, TTL: 500 * time.Millisecond, Scope: "read-committed",
	Hits: 9_876, Misses: 124, Fills: 120, Invalidations: 7, DiscardedFills: 2, Bypassed: 31, Entries: 3, Bytes: 1536,
	MaxEntries: 10_000, MaxBytes: 64 << 20, AgeP50: 250 * time.Millisecond, AgeMax: 499 * time.Millisecond, Saved: 9_901}

// reuseStats is what secretSnapshot's proxy reports of server connection reuse.
var reuseStats = analyzer.ReuseStats{Reused: 4_117, Kept: 4_120, Discarded: 2, Idle: 1}

// keySpec describes a key of a hand-made snapshot.
type keySpec struct {
	key      string
	perSec   uint32 // polls per second over the last 60 s
	storming bool
}

// storySnapshot is the incident by hand: a Celery parent spin-waits on ten subtasks; 683
// queries/s, 597 of them polls, over the given number of seconds starting at start.
func storySnapshot(start time.Time, seconds int, keys []keySpec, host string) *analyzer.Snapshot {
	end := start.Add(time.Duration(seconds) * time.Second)
	s := &analyzer.Snapshot{StartedAt: start, TakenAt: end.Add(300 * time.Millisecond), Uptime: end.Sub(start)}
	var watchedPerSec uint32
	for _, k := range keys {
		watchedPerSec += k.perSec
	}
	for i := range seconds {
		ramp := min(uint32(i+1)*10, 100) // percent: the storm builds up over 10 s
		s.Timeline = append(s.Timeline, analyzer.Second{Time: start.Add(time.Duration(i) * time.Second),
			Queries: 86 + watchedPerSec*ramp/100, Watched: watchedPerSec * ramp / 100, Connections: uint32(i % 3)})
	}
	var polls int64
	for i, k := range keys {
		h := make([]uint32, 60)
		for j := range h {
			if j >= 60-seconds {
				h[j] = k.perSec
			}
		}
		n := int64(k.perSec) * int64(seconds)
		polls += n
		ks := analyzer.KeyStat{Table: "celery_taskmeta", Column: "task_id", Key: k.key, Polls: n, UnchangedPolls: n - 1,
			Rows: n, QPS1: float64(k.perSec), QPS10: float64(k.perSec), QPS60: float64(k.perSec), PeakQPS: float64(k.perSec),
			MedianIntervalMs: 1000 / float64(max(k.perSec, 1)), P10IntervalMs: 800 / float64(max(k.perSec, 1)),
			FirstSeen: start.Add(time.Duration(i) * time.Millisecond), LastSeen: end.Add(-time.Duration(i) * time.Millisecond),
			LastStatus: "PENDING", TimeToResultMs: -1, Clients: 1, Storming: k.storming, Spinning: k.storming && k.perSec >= 50, History: h}
		s.Keys = append(s.Keys, ks)
		if k.storming {
			s.Storms = append(s.Storms, analyzer.Storm{Kind: "key", Table: "celery_taskmeta", Column: "task_id", Key: k.key,
				StartedAt: start.Add(5 * time.Second), Active: true, Polls: n, PeakQPS: float64(k.perSec), Spin: ks.Spinning,
				MedianIntervalMs: ks.MedianIntervalMs})
		}
	}
	// What a cache would save: per key and second, a fill every TTL (at least one per key).
	for _, ttl := range analyzer.WhatIfTTLs {
		var fills int64
		for _, k := range keys {
			if k.perSec > 0 {
				fills += max(1, int64(seconds)*int64(time.Second)/int64(ttl))
			}
		}
		w := analyzer.WhatIf{TTL: ttl, Polls: polls, Saved: max(0, polls-fills)}
		if polls > 0 {
			w.SavedShare = float64(w.Saved) / float64(polls)
		}
		s.WhatIf = append(s.WhatIf, w)
	}
	s.Totals = analyzer.Totals{Queries: polls + 86*int64(seconds), WatchedLookups: polls, Connections: 12, OpenConnections: 4,
		KeysTracked: len(keys), FingerprintsSeen: 3, StormsActive: len(s.Storms)}
	s.Rates = analyzer.Rates{QPS: float64(86 + watchedPerSec), QPS10: float64(86 + watchedPerSec), WatchedQPS10: float64(watchedPerSec),
		ConnsPerSec10: 1, KeysPolled10: len(keys)}
	s.Headline = fmt.Sprintf("%d of %d queries/s are polls of %d watched keys (last 10 s); %d storming",
		watchedPerSec, 86+watchedPerSec, len(keys), len(s.Storms))
	flat := func(v uint32) []uint32 { return slices.Repeat([]uint32{v}, 60) }
	s.Fingerprints = []analyzer.FingerprintStat{
		{Fingerprint: "a1b2c3d4e5f60718", Query: celeryLookup + "$1", Command: "Select", Calls: polls, Rows: polls,
			QPS1: float64(watchedPerSec), QPS10: float64(watchedPerSec), TotalMs: float64(polls) * 0.21, MeanMs: 0.21, P99Ms: 0.9,
			Watched: true, Table: "celery_taskmeta", FirstSeen: start, LastSeen: end, History: flat(watchedPerSec)},
		{Fingerprint: "0f0e0d0c0b0a0908", Query: "SELECT id, name FROM products WHERE id = $1 AND tag | $2 = $3", Command: "Select",
			Calls: 80 * int64(seconds), Rows: 80 * int64(seconds), QPS10: 80, TotalMs: 1.5 * 80 * float64(seconds), MeanMs: 1.5, P99Ms: 7.25,
			FirstSeen: start, LastSeen: end, History: flat(80)},
		{Fingerprint: "1111222233334444", Query: "UPDATE celery_taskmeta SET status = $1, result = $2 WHERE task_id = $3", Command: "Update",
			Calls: 6 * int64(seconds), QPS10: 6, TotalMs: 2.5 * 6 * float64(seconds), MeanMs: 2.5, P99Ms: 11, Write: true,
			Table: "celery_taskmeta", FirstSeen: start, LastSeen: end, History: flat(6)},
	}
	s.Clients = []analyzer.ClientStat{
		{Address: "10.0.3.17", ApplicationName: "celery@" + host, User: "app", Database: "prod", Queries: polls + 6*int64(seconds),
			Polls: polls, Connections: 4, OpenConnections: 4, QPS10: float64(watchedPerSec + 6), PollShare: 1,
			QueriesPerConn: float64(polls+6*int64(seconds)) / 4},
		{Address: "10.0.3.22", ApplicationName: "gunicorn", User: "web", Database: "prod", Queries: 80 * int64(seconds),
			Connections: 8, QPS10: 80, ConnsPerSec10: 1, QueriesPerConn: 10 * float64(seconds)},
	}
	if polls > 0 {
		// The incident's parent as a poller: its loop over the subtasks never waits.
		storming := len(s.Storms) > 0
		s.Pollers = []analyzer.PollerStat{{Address: "10.0.3.17", ApplicationName: "celery@" + host, User: "app", Database: "prod",
			Table: "celery_taskmeta", Column: "task_id", Polls: polls, PollQPS10: float64(watchedPerSec), PeakQPS: float64(watchedPerSec),
			QueryShare: float64(watchedPerSec) / float64(86+watchedPerSec), Keys: len(keys), KeyGapMs: 16.7, WaitsPct: 0,
			Storming: storming, Spinning: storming}}
		if storming {
			s.Storms = append(s.Storms, analyzer.Storm{Kind: "poller", Table: "celery_taskmeta", Column: "task_id",
				Address: "10.0.3.17", ApplicationName: "celery@" + host, User: "app", Database: "prod", Keys: len(keys),
				QueryShare: s.Pollers[0].QueryShare, StartedAt: start.Add(5 * time.Second), Active: true, Polls: polls,
				PeakQPS: float64(watchedPerSec), Spin: true, MedianIntervalMs: 16.7})
		}
	}
	s.Watches = []analyzer.WatchStat{{Table: "celery_taskmeta", Column: "task_id", Origin: "celery", Lookups: polls, Writes: 6 * int64(seconds)}}
	if seconds > 0 {
		queueStory(s, int64(seconds), host)
	}
	if len(s.Storms) > 0 {
		s.Findings = []analyzer.Finding{{ID: "poll:celery_taskmeta.task_id|spin", Kind: "spin-poll", Severity: "high",
			Summary:  fmt.Sprintf("Spin loop: %d celery_taskmeta.task_id value(s) polled %d times/s in total, a poll every 16.7 ms (median)", len(s.Storms), watchedPerSec),
			Evidence: []string{fmt.Sprintf("%d of %d queries/s in the last 10 s are watched polls", watchedPerSec, 86+watchedPerSec), "100% of these polls returned exactly what the previous poll returned"},
			Fix:      "Stop busy-waiting on results. Chain the work with a chord or a callback (group(...) | callback.s()) instead of looping on AsyncResult.ready()."}}
	}
	return s
}

// queueStory adds to a story an Oban queue polled 50 times a second by two workers, 98% of
// the polls in vain, while a job comes once a second; the statements' comments name the code.
func queueStory(s *analyzer.Snapshot, seconds int64, host string) {
	s.Queues = []analyzer.QueueStat{{Queue: "oban", Library: "Oban", Tables: "oban_jobs",
		Polls: 50 * seconds, EmptyPolls: 49 * seconds, EmptyPct: 98, Enqueued: seconds,
		PollsPerSec10: 50, PollsPerSec: 50, EnqueuedPerSec: 1, IntervalP50Ms: 40,
		Clients: []analyzer.QueueClient{
			{Address: "10.0.4.1", ApplicationName: "oban@" + host, User: "app", Database: "prod", Polls: 30 * seconds,
				EmptyPolls: 29 * seconds, PollsPerSec10: 30, IntervalP50Ms: 33},
			{Address: "10.0.4.2", ApplicationName: "oban@" + host, User: "app", Database: "prod", Polls: 20 * seconds,
				EmptyPolls: 20 * seconds, PollsPerSec10: 20, IntervalP50Ms: 50},
		},
		Tags: []analyzer.TagCount{{Tag: "job=PollJob", Count: 30 * seconds, PerSec10: 30}, {Tag: "controller=jobs,action=show", Count: 20 * seconds, PerSec10: 20}},
	}}
	s.Tags = []analyzer.TagStat{
		{Tag: "job=PollJob", Queries: 31 * seconds, Polls: 30 * seconds, QPS10: 31, PollsPerSec10: 30},
		{Tag: "controller=jobs,action=show", Queries: 25 * seconds, Polls: 20 * seconds, QPS10: 25, PollsPerSec10: 20},
	}
	for i := range s.Storms {
		s.Storms[i].Tags = []analyzer.TagCount{{Tag: "task=wait_for_group", Count: s.Storms[i].Polls, PerSec10: s.Storms[i].PeakQPS}}
	}
}

// incidentKeys are the ten subtasks of the story, ~60 polls/s each (597 in total).
func incidentKeys() []keySpec {
	var ks []keySpec
	for i := range 10 {
		per := uint32(60)
		if i >= 7 {
			per = 59
		}
		ks = append(ks, keySpec{key: fmt.Sprintf("b5517ae9-59ef-46e7-808b-1da17dab97%02d", i), perSec: per, storming: true})
	}
	return ks
}

// writeTemp writes r as JSON into a temporary directory and returns the path.
func writeTemp(t *testing.T, name string, r *Report) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := Write(p, r); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
