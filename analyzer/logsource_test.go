package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/event"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// logRun feeds statements as a server log gives them (no answers: no rows, no tag, no digest)
// to an analyzer on its own clock, one connection, each statement at ms from the start; tick
// runs the ticker for every second up to the last statement plus extra.
func logRun(t *testing.T, cfg Config, stmts []step, extra time.Duration) *Analyzer {
	t.Helper()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return now }
	cfg.Epoch = now
	a := New(cfg)
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.7:5000", User: "app", Database: "app", OpenedAt: now}
	a.ConnOpened(info)
	base := now.Add(time.Second)
	nextTick := now.Add(time.Second)
	advance := func(to time.Time) {
		for !nextTick.After(to) {
			now = nextTick
			a.Tick(nextTick)
			nextTick = nextTick.Add(time.Second)
		}
		now = to
	}
	for _, s := range stmts {
		at := base.Add(time.Duration(s.ms) * time.Millisecond)
		advance(at)
		text := s.sql
		if text == "" {
			text = celeryLookup + "'" + s.key + "'"
		}
		a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Text: []byte(text), Start: at}})
	}
	advance(now.Add(extra))
	return a
}

func keyOf(t *testing.T, s *Snapshot, key string) KeyStat {
	t.Helper()
	for _, k := range s.Keys {
		if k.Key == key {
			return k
		}
	}
	t.Fatalf("key %q not in the snapshot", key)
	return KeyStat{}
}

// A source without answers must say it does not know, never 0; with answers the same
// statements give counts.
func TestNoAnswersSaysUnknown(t *testing.T) {
	stmts := append(polls("k1", 40, 20), step{ms: 900, sql: "SELECT * FROM accounts WHERE id = 7"},
		step{ms: 950, sql: "SELECT * FROM accounts WHERE id = 7"}, step{ms: 990, sql: "SELECT * FROM accounts WHERE id = 7"})
	for _, noAnswers := range []bool{false, true} {
		s := logRun(t, Config{NoAnswers: noAnswers}, stmts, 0).Snapshot()
		k := keyOf(t, s, "k1")
		want := int64(39) // every poll after the first returned what the previous one did (no rows)
		if noAnswers {
			want = -1
		}
		if k.UnchangedPolls != want || (k.Rows == -1) != noAnswers || s.NoAnswers != noAnswers || (k.LastStatus == "") != noAnswers {
			t.Errorf("NoAnswers=%v: unchanged %d (want %d), rows %d, status %q, snapshot says %v", noAnswers, k.UnchangedPolls, want, k.Rows, k.LastStatus, s.NoAnswers)
		}
		if len(s.Repeats) == 0 || (s.Repeats[0].Unchanged == -1) != noAnswers {
			t.Errorf("NoAnswers=%v: repeats %+v", noAnswers, s.Repeats)
		}
		for _, f := range s.Fingerprints {
			if (f.Rows == -1) != noAnswers {
				t.Errorf("NoAnswers=%v: fingerprint %s rows %d", noAnswers, f.Query, f.Rows)
			}
		}
	}
}

// Without answers, a key's result is known from the write that stored a terminal state: by
// key, or by id right after the session read or inserted the row by key (Celery's worker).
func TestResultFromTheWrite(t *testing.T) {
	const update = "UPDATE celery_taskmeta SET status='SUCCESS', result='\\x80054b2a2e'::bytea, traceback=NULL WHERE celery_taskmeta.id = 12"
	cases := []struct {
		name       string
		write      []step
		ttrMs      float64 // -1: no result known
		pollsAfter int64
	}{
		{"by key", []step{{ms: 1000, sql: "UPDATE celery_taskmeta SET status='SUCCESS' WHERE celery_taskmeta.task_id = 'k1'"}}, 1000, 25},
		{"by id after a read by key", []step{{ms: 1000, key: "k1"}, {ms: 1001, sql: update}}, 1001, 25},
		{"by id after an insert by key", []step{
			{ms: 1000, sql: "INSERT INTO celery_taskmeta (id, task_id, status) VALUES (nextval('task_id_sequence'), 'k1', 'PENDING') RETURNING celery_taskmeta.id"},
			{ms: 1001, sql: update}}, 1001, 25},
		{"a state that is not final", []step{{ms: 1000, sql: "UPDATE celery_taskmeta SET status='STARTED' WHERE celery_taskmeta.task_id = 'k1'"}}, -1, 0},
		{"by id after another table", []step{{ms: 1000, key: "k1"}, {ms: 1001, sql: "SELECT * FROM accounts WHERE id = 1"},
			{ms: 1002, sql: "SELECT 1 FROM celery_taskmeta WHERE status = 'x' AND task_id IN ('a', 'b')"}, {ms: 1003, sql: update}}, -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stmts := append(polls("k1", 25, 40), c.write...) // polls at 0..960 ms
			for i := range 25 {
				stmts = append(stmts, step{ms: 1100 + 40*i, key: "k1"})
			}
			k := keyOf(t, logRun(t, Config{NoAnswers: true}, stmts, 0).Snapshot(), "k1")
			if k.TimeToResultMs != c.ttrMs || k.PollsAfterTerminal != c.pollsAfter {
				t.Errorf("time to result %.1f ms, %d polls after it; want %.1f ms, %d", k.TimeToResultMs, k.PollsAfterTerminal, c.ttrMs, c.pollsAfter)
			}
		})
	}
}

// A log's storm of an hour ago stays among the findings, with the last second it held; the
// live proxy's findings are those of now.
func TestKeepFindings(t *testing.T) {
	stmts := polls("k1", 400, 20) // 50 polls/s for 8 s, then nothing
	for _, keep := range []bool{false, true} {
		s := logRun(t, Config{KeepFindings: keep}, stmts, 30*time.Second).Snapshot()
		var found *Finding
		for i, f := range s.Findings {
			if strings.HasPrefix(f.ID, "poll:") {
				found = &s.Findings[i]
			}
		}
		switch {
		case keep && (found == nil || found.Until.IsZero() || !found.Until.Before(s.TakenAt.Add(-20*time.Second))):
			t.Errorf("KeepFindings: the storm's finding is %+v; want it kept with the second it last held", found)
		case !keep && found != nil:
			t.Errorf("without KeepFindings, a storm that ended 30 s ago is still a finding: %+v", found)
		}
	}
}

// A statement whose duration the source does not know (a log without durations) is no 0 ms
// statement: its fingerprint's total, mean and p99 are -1 until a timed call comes.
func TestUntimedStatements(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, NoAnswers: true})
	info := &event.ConnInfo{ClientAddr: "10.0.0.7:5000"}
	a.ConnOpened(info)
	q := func(text string, d time.Duration, untimed bool) {
		a.Statements(info, []event.Event{{Protocol: event.Simple, Text: []byte(text), Start: now, Duration: d, Untimed: untimed}})
	}
	q("SELECT 1 FROM accounts WHERE id = 1", 0, true)
	q("SELECT 2 FROM orders WHERE id = 1", 0, true)
	q("SELECT 2 FROM orders WHERE id = 2", 4*time.Millisecond, false)
	got := map[string]FingerprintStat{}
	for _, f := range a.Snapshot().Fingerprints {
		got[f.Query] = f
	}
	if f := got["SELECT $1 FROM accounts WHERE id = $2"]; f.Calls != 1 || f.MeanMs != -1 || f.TotalMs != -1 || f.P99Ms != -1 {
		t.Errorf("untimed only: %+v", f)
	}
	if f := got["SELECT $1 FROM orders WHERE id = $2"]; f.Calls != 2 || f.MeanMs != 4 || f.TotalMs != 4 {
		t.Errorf("one timed call of two: mean %.1f total %.1f; want 4 and 4 (the untimed one is no 0 ms)", f.MeanMs, f.TotalMs)
	}
}

// A statement whose answer a capture lost (Event.AnswerLost) is a poll, but neither an
// unchanged answer nor a new one, and the answer after it cannot be compared with it either.
func TestAnswerLostComparesNothing(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now})
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.7:5000", User: "app", Database: "app", OpenedAt: now}
	a.ConnOpened(info)
	for i, lost := range []bool{false, false, true, true, false, false, true} {
		at := now.Add(time.Duration(i+1) * 100 * time.Millisecond)
		// A watched poll, and a read nobody watches (counted as a repeated read).
		for _, text := range []string{celeryLookup + "'k1'", "SELECT * FROM accounts WHERE id = 7"} {
			ev := proxy.Event{Protocol: proxy.Simple, Text: []byte(text), Start: at, Rows: 1, Digest: 42}
			if lost {
				ev = proxy.Event{Protocol: proxy.Simple, Text: []byte(text), Start: at, AnswerLost: true}
			}
			a.Statements(info, []proxy.Event{ev})
		}
	}
	s := a.Snapshot()
	// Polls 2 and 6 repeat the answer before them; 4 is lost after a lost one (no answer is
	// no proof of the same answer), 5 follows a lost one.
	if k := keyOf(t, s, "k1"); k.Polls != 7 || k.UnchangedPolls != 2 {
		t.Errorf("polls %d, unchanged %d; want 7 and 2", k.Polls, k.UnchangedPolls)
	}
	// The repeated read is counted from its second sighting: read 6 alone repeats the one before.
	if len(s.Repeats) == 0 || s.Repeats[0].Unchanged != 1 {
		t.Errorf("repeats %+v: want one read repeated, 1 unchanged", s.Repeats)
	}
}

// SetThresholds changes the storm rule from the next tick on (a configuration reload): a key
// polled 5 times a second does not storm at 10/s, and storms once the rule is 3/s.
func TestSetThresholds(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, StormWindow: 2 * time.Second})
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.7:5000", User: "app", Database: "app", OpenedAt: now}
	a.ConnOpened(info)
	text := []byte(celeryLookup + "'k1'")
	storming := func(secs int) bool {
		for range secs {
			for range 5 {
				now = now.Add(200 * time.Millisecond)
				a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Text: text, Start: now, Rows: 1, Digest: 7}})
			}
			a.Tick(now)
		}
		return keyOf(t, a.Snapshot(), "k1").Storming
	}
	if storming(5) {
		t.Fatal("5 polls/s storm at the default 10/s")
	}
	if err := a.SetThresholds(Thresholds{StormQPS: 0, SweepQPS: 100, StormWindow: time.Second}); err == nil {
		t.Error("a rate of 0 was taken")
	}
	if err := a.SetThresholds(Thresholds{StormQPS: 3, SweepQPS: 100, StormWindow: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got := a.CurrentThresholds(); got.StormQPS != 3 {
		t.Errorf("current thresholds %+v", got)
	}
	if !storming(3) {
		t.Error("5 polls/s do not storm at 3/s")
	}
}

// SetWatches adds watched lookups while traffic flows (a reload): a statement seen before,
// unwatched, is a watched poll from the change on, on connections opened before it too, for
// literal and prepared texts alike; a watch no longer wanted stays and is said to.
func TestSetWatches(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, Watches: Presets})
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.7:5000", User: "app", Database: "app", OpenedAt: now}
	a.ConnOpened(info)
	literal := []byte("SELECT state FROM jobs WHERE id = 7")
	prepared := []byte("SELECT state FROM jobs WHERE id = $1")
	bind := []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 1, '8', 0, 0}
	poll := func() {
		now = now.Add(100 * time.Millisecond)
		a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Text: literal, Start: now, Rows: 1, Digest: 3},
			{Protocol: proxy.Extended, Text: prepared, Bind: proxy.BindMessage(bind), Start: now, Rows: 1, Digest: 3}})
	}
	for range 3 {
		poll()
	}
	jobs, err := ParseWatch("jobs.id")
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Snapshot(); s.Totals.WatchedLookups != 0 {
		t.Fatalf("%d watched lookups before jobs.id is watched", s.Totals.WatchedLookups)
	}
	added, kept := a.SetWatches(append(append([]Watch(nil), Presets...), jobs))
	if len(added) != 1 || added[0].Name() != "jobs.id" || len(kept) != 0 {
		t.Fatalf("added %v, kept %v", added, kept)
	}
	for range 4 {
		poll()
	}
	s := a.Snapshot()
	if k7, k8 := keyOf(t, s, "7"), keyOf(t, s, "8"); k7.Polls != 4 || k8.Polls != 4 || s.Totals.WatchedLookups != 8 {
		t.Errorf("after the watch: key 7 %d polls, key 8 %d, %d watched lookups; want 4, 4, 8", k7.Polls, k8.Polls, s.Totals.WatchedLookups)
	}
	if added, kept := a.SetWatches(Presets); len(added) != 0 || len(kept) != 1 || kept[0] != "jobs.id" {
		t.Errorf("removing jobs.id: added %v, kept %v; want it kept, and said", added, kept)
	}
}
