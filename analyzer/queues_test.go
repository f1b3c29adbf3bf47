package analyzer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

var testQueues = []Queue{
	{Name: "jobs", Library: "Jobs", Tables: []string{"jobs"}},
	{Name: "boss", Library: "Boss", Schema: "boss", Tables: []string{"job"}, PollFunctions: []string{"fetch_job"}, EnqueueFunctions: []string{"add_job"}, HashedTablePrefix: "j"},
	{Name: "plain", Tables: []string{"plain_jobs"}, PlainPolls: true},
}

// classifyQueue runs the matcher the way lookupOf does.
func classifyQueue(queues []Queue, stmt string) (int, queueOp) {
	m := matcher{queues: queues}
	src := []byte(stmt)
	m.match(src)
	return m.matchQueue(src)
}

func TestMatchQueue(t *testing.T) {
	cases := []struct {
		stmt  string
		queue int
		op    queueOp
	}{
		{`SELECT id FROM jobs WHERE queue = $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, 0, queuePoll},
		{`WITH next AS (SELECT id FROM jobs WHERE state = 'ready' LIMIT 5 FOR UPDATE SKIP LOCKED) UPDATE jobs SET state = 'running' FROM next WHERE jobs.id = next.id RETURNING jobs.*`, 0, queuePoll},
		{`UPDATE "jobs" SET locked_at = now() WHERE id IN (SELECT id FROM "jobs" WHERE locked_at IS NULL LIMIT 1 FOR UPDATE) RETURNING *`, 0, queuePoll},
		{`UPDATE ONLY jobs SET state = 'running' WHERE id IN (SELECT id FROM jobs WHERE state = 'ready' LIMIT 10) RETURNING id`, 0, queuePoll},
		{`DELETE FROM jobs WHERE id = (SELECT id FROM jobs LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`, 0, queuePoll},
		{`SELECT j.* FROM queue_meta m JOIN jobs j ON j.queue = m.name LIMIT 1`, 0, queuePoll},
		{`SELECT DISTINCT queue FROM jobs WHERE state = 'available'`, 0, queuePoll},
		{`SELECT * FROM jobs WHERE queue = $1 AND NOT id = ANY($2) LIMIT 1`, 0, queuePoll}, // leaving out its own jobs
		{`SELECT * FROM jobs j WHERE j.ready AND pg_try_advisory_lock(j.id)`, 0, queuePoll},
		// Reads that take no work: no claim, by id, a count, a pruner, a rescuer.
		{`SELECT * FROM jobs WHERE state = 'ready'`, -1, queueNone},
		{`SELECT "jobs".* FROM "jobs" WHERE "jobs"."id" = $1 LIMIT $2`, -1, queueNone},
		{`SELECT * FROM jobs WHERE id IN (1, 2) FOR UPDATE`, -1, queueNone},
		{`UPDATE jobs SET state = 'done' WHERE id = ANY($1::bigint[]) RETURNING id`, -1, queueNone},
		{`SELECT count(*) FROM jobs WHERE state = 'ready' LIMIT 1`, -1, queueNone},
		{`DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state = 'done' LIMIT 1000)`, -1, queueNone},
		{`DELETE FROM jobs USING (SELECT id FROM jobs WHERE state = 'done' LIMIT 1000) s WHERE jobs.id = s.id RETURNING jobs.id`, -1, queueNone},
		{`UPDATE jobs SET state = 'ready' WHERE state = 'running' AND started_at < now() - interval '1 hour' RETURNING id`, -1, queueNone},
		{`INSERT INTO jobs (queue, args) VALUES ($1, $2)`, 0, queueEnqueue},
		{`INSERT INTO jobs (queue, args) SELECT q, a FROM jobs_staging`, 0, queueEnqueue},
		// An enqueue is one whatever else the statement does to the queue.
		{`WITH ins AS (INSERT INTO jobs (queue) VALUES ($1)) UPDATE jobs SET state = 'ready' WHERE state = 'waiting'`, 0, queueEnqueue},
		// Finishing or deleting one job reads nothing back: not a poll.
		{`UPDATE jobs SET state = 'done' WHERE id = $1`, -1, queueNone},
		{`DELETE FROM jobs WHERE id = $1`, -1, queueNone},
		// A schema-bound queue needs its schema: an unqualified "job" is anybody's table.
		{`SELECT * FROM job WHERE id = 1`, -1, queueNone},
		{`SELECT * FROM boss.job WHERE state = 'created' FOR UPDATE SKIP LOCKED`, 1, queuePoll},
		{`SELECT * FROM "boss"."job" LIMIT 1`, 1, queuePoll},
		{`SELECT * FROM boss.fetch_job($1, $2)`, 1, queuePoll},
		{`SELECT boss.add_job('q', '{}'::json)`, 1, queueEnqueue},
		{`SELECT fetch_job($1)`, -1, queueNone},
		// Names fold like PostgreSQL's: "Jobs" quoted is another table.
		{`SELECT * FROM JOBS LIMIT 1`, 0, queuePoll},
		{`SELECT * FROM "Jobs" LIMIT 1`, -1, queueNone},
		{`SELECT 1`, -1, queueNone},
		// A queue whose library reads with no claim (and --watch-queue's).
		{`SELECT * FROM plain_jobs WHERE state = 'ready'`, 2, queuePoll},
		{`SELECT count(*) FROM plain_jobs`, -1, queueNone},
		// pg-boss's per-queue tables.
		{`SELECT id FROM boss.j0123456789abcdef0123456789abcdef0123456789abcdef01234567 LIMIT 1 FOR UPDATE SKIP LOCKED`, 1, queuePoll},
		{`SELECT id FROM boss.j0123 LIMIT 1 FOR UPDATE SKIP LOCKED`, -1, queueNone},
	}
	for _, c := range cases {
		q, op := classifyQueue(testQueues, c.stmt)
		if q != c.queue || op != c.op {
			t.Errorf("%s: queue %d op %d, want %d %d", c.stmt, q, op, c.queue, c.op)
		}
	}
}

// Polls, empty polls, enqueued rows, intervals per client, the finding and its fix.
func TestQueueStats(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, Queues: testQueues})
	conn := func(addr string) *proxy.ConnInfo {
		c := &proxy.ConnInfo{ClientAddr: addr, User: "u", Database: "d", ApplicationName: "worker"}
		a.ConnOpened(c)
		a.ConnAuthenticated(c, true, "")
		return c
	}
	w1, w2, producer := conn("10.0.0.1:1"), conn("10.0.0.2:1"), conn("10.0.0.3:1")
	poll := func(c *proxy.ConnInfo, rows int64) {
		ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(`SELECT id FROM jobs WHERE queue = $1 LIMIT 1 FOR UPDATE SKIP LOCKED /*application:W,job:Fetch*/`),
			Start: now, Duration: time.Millisecond, Rows: rows, Tag: []byte(fmt.Sprintf("SELECT %d", rows))}
		a.Statements(c, []proxy.Event{ev})
	}
	// 20 s: w1 polls every 100 ms, w2 every 200 ms; a job arrives every 5 s and w1 takes it.
	for i := 1; i <= 200; i++ {
		now = now.Add(100 * time.Millisecond)
		rows := int64(0)
		if i%50 == 0 {
			a.Statements(producer, []proxy.Event{{Protocol: proxy.Simple, Text: []byte(`INSERT INTO jobs (queue) VALUES ('a'), ('b')`), Start: now, Tag: []byte("INSERT 0 2")}})
			rows = 1
		}
		poll(w1, rows)
		if i%2 == 0 {
			poll(w2, 0)
		}
		// A failed poll counts for nothing.
		a.Statements(w2, []proxy.Event{{Protocol: proxy.Simple, Text: []byte(`SELECT * FROM jobs FOR UPDATE SKIP LOCKED`), Start: now, Failed: true}})
	}
	s := a.Snapshot()
	if len(s.Queues) != 1 {
		t.Fatalf("queues: %+v", s.Queues)
	}
	q := s.Queues[0]
	if q.Queue != "jobs" || q.Polls != 300 || q.EmptyPolls != 296 || q.Enqueued != 8 {
		t.Errorf("queue: %+v; want 300 polls, 296 empty, 8 enqueued", q)
	}
	if q.EmptyPct < 98.6 || q.EmptyPct > 98.7 || q.PollsPerSec < 15 || q.PollsPerSec > 15.1 || q.EnqueuedPerSec < 0.40 || q.EnqueuedPerSec > 0.41 {
		t.Errorf("rates: empty %.2f%%, %.2f polls/s, %.3f jobs/s", q.EmptyPct, q.PollsPerSec, q.EnqueuedPerSec)
	}
	if len(q.Clients) != 2 || q.Clients[0].Address != "10.0.0.1" || q.Clients[0].IntervalP50Ms != 100 || q.Clients[1].IntervalP50Ms != 200 ||
		q.Clients[0].Polls != 200 || q.Clients[0].EmptyPolls != 196 || q.Clients[1].EmptyPolls != 100 {
		t.Errorf("clients: %+v", q.Clients)
	}
	if len(q.Tags) != 1 || q.Tags[0] != (TagCount{Tag: "application=W,job=Fetch", Count: 300}) {
		t.Errorf("tags: %+v", q.Tags)
	}
	var f *Finding
	for i := range s.Findings {
		if s.Findings[i].Kind == "queue-poll" {
			f = &s.Findings[i]
		}
	}
	if f == nil || f.Severity != "high" || !strings.Contains(f.Summary, "99% of polls found nothing") ||
		!strings.Contains(strings.Join(f.Evidence, "\n"), "polled by application=W,job=Fetch (100%)") {
		t.Fatalf("finding: %+v", f)
	}
	// The queue's reads are not repeated reads of their own.
	for _, r := range s.Repeats {
		if strings.Contains(r.Query, "jobs") {
			t.Errorf("queue poll counted as a repeated read: %+v", r)
		}
	}
}

// From a log (no answers) empty polls are unknown, never 0; the finding then compares polls
// with enqueues.
func TestQueueStatsWithoutAnswers(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, Queues: testQueues, NoAnswers: true})
	c := &proxy.ConnInfo{ClientAddr: "10.0.0.1:1", User: "u", Database: "d"}
	a.ConnOpened(c)
	for i := 0; i < 100; i++ {
		now = now.Add(500 * time.Millisecond)
		a.Statements(c, []proxy.Event{{Protocol: proxy.Simple, Text: []byte(`SELECT * FROM boss.fetch_job('q', 1)`), Start: now}})
	}
	a.Statements(c, []proxy.Event{{Protocol: proxy.Simple, Text: []byte(`SELECT boss.add_job('q', '{}')`), Start: now}})
	s := a.Snapshot()
	q := s.Queues[0]
	if q.Queue != "boss" || q.Polls != 100 || q.EmptyPolls != -1 || q.EmptyPct != -1 || q.Enqueued != 1 || q.Clients[0].EmptyPolls != -1 {
		t.Fatalf("%+v", q)
	}
	var f *Finding
	for i := range s.Findings {
		if s.Findings[i].Kind == "queue-poll" {
			f = &s.Findings[i]
		}
	}
	if f == nil || f.Severity != "medium" || !strings.Contains(f.Summary, "jobs/s were enqueued") || !strings.Contains(f.Fix, "poll") {
		t.Fatalf("finding: %+v", f)
	}
}

func TestParseQueue(t *testing.T) {
	for in, want := range map[string]Queue{
		"jobs":         {Name: "jobs", Library: "--watch-queue", Tables: []string{"jobs"}},
		"App.Jobs":     {Name: "App.Jobs", Library: "--watch-queue", Schema: "app", Tables: []string{"jobs"}},
		`"App"."Jobs"`: {Name: `"App"."Jobs"`, Library: "--watch-queue", Schema: "App", Tables: []string{"Jobs"}},
	} {
		got, err := ParseQueue(in)
		if err != nil || got.Schema != want.Schema || got.Tables[0] != want.Tables[0] || got.Name != want.Name {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a.b.c", "a b", "a.", "'x'"} {
		if _, err := ParseQueue(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// A fetch function that returns its composite type gives one row of NULLs when there is no
// job (Procrastinate's procrastinate_fetch_job): an empty poll, as is no row at all.
func TestQueueEmptyPollOfNulls(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Epoch: now, Queues: testQueues})
	c := &proxy.ConnInfo{ClientAddr: "10.0.0.1:1", User: "u", Database: "d"}
	a.ConnOpened(c)
	nulls := []byte{0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	job := []byte{0, 3, 0, 0, 0, 1, '7', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, row := range [][]byte{nulls, job, nulls, nil} {
		rows := int64(1)
		if row == nil {
			rows = 0
		}
		now = now.Add(time.Second)
		a.Statements(c, []proxy.Event{{Protocol: proxy.Extended, Text: []byte(`SELECT * FROM boss.fetch_job($1)`), Start: now, Rows: rows, FirstRow: row,
			Tag: []byte(fmt.Sprintf("SELECT %d", rows))}})
	}
	if q := a.Snapshot().Queues[0]; q.Polls != 4 || q.EmptyPolls != 3 {
		t.Fatalf("%+v; want 4 polls, 3 empty", q)
	}
}
