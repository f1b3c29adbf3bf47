package analyzer

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

func bindBody(t testing.TB, formats []int16, params ...[]byte) proxy.BindMessage {
	b, err := (&pgproto3.Bind{ParameterFormatCodes: formats, Parameters: params}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return proxy.BindMessage(b[5:])
}

const celeryLookup = `SELECT celery_taskmeta.id AS celery_taskmeta_id, celery_taskmeta.task_id AS celery_taskmeta_task_id, celery_taskmeta.status AS celery_taskmeta_status, celery_taskmeta.result AS celery_taskmeta_result, celery_taskmeta.date_done AS celery_taskmeta_date_done, celery_taskmeta.traceback AS celery_taskmeta_traceback 
FROM celery_taskmeta 
WHERE celery_taskmeta.task_id = `

func simpleEvent(text string, at time.Time) proxy.Event {
	return proxy.Event{Protocol: proxy.Simple, Text: []byte(text), Start: at, Duration: 100 * time.Microsecond, Tag: []byte("SELECT 0")}
}

func TestKeysFromEveryShape(t *testing.T) {
	cases := []struct {
		name  string
		ev    func(t *testing.T) proxy.Event
		table string
		keys  []string
		write bool
	}{
		{"sqlalchemy literal", func(t *testing.T) proxy.Event {
			return simpleEvent(celeryLookup+"'b5517ae9-59ef-46e7-808b-1da17dab9721'", time.Now())
		}, "celery_taskmeta", []string{"b5517ae9-59ef-46e7-808b-1da17dab9721"}, false},
		{"E string and schema", func(t *testing.T) proxy.Event {
			return simpleEvent(`SELECT * FROM public.celery_taskmeta WHERE task_id = E'a\'b'`, time.Now())
		}, "celery_taskmeta", []string{"a'b"}, false},
		{"django quoted", func(t *testing.T) proxy.Event {
			return simpleEvent(`SELECT "django_celery_results_taskresult"."id", "django_celery_results_taskresult"."status" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'abc' LIMIT 21`, time.Now())
		}, "django_celery_results_taskresult", []string{"abc"}, false},
		{"psycopg3 param with cast", func(t *testing.T) proxy.Event {
			ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(`SELECT status FROM celery_taskmeta WHERE celery_taskmeta.task_id = $1::VARCHAR`), Start: time.Now()}
			ev.Bind = bindBody(t, nil, []byte("k1"))
			return ev
		}, "celery_taskmeta", []string{"k1"}, false},
		{"binary uuid param", func(t *testing.T) proxy.Event {
			ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(`SELECT status FROM celery_taskmeta t WHERE t.task_id = $1`), Start: time.Now()}
			ev.Bind = bindBody(t, []int16{1}, []byte{0xb5, 0x51, 0x7a, 0xe9, 0x59, 0xef, 0x46, 0xe7, 0x80, 0x8b, 0x1d, 0xa1, 0x7d, 0xab, 0x97, 0x21})
			return ev
		}, "celery_taskmeta", []string{"b5517ae9-59ef-46e7-808b-1da17dab9721"}, false},
		{"IN list", func(t *testing.T) proxy.Event {
			return simpleEvent(`SELECT * FROM celery_taskmeta WHERE task_id IN ('a', 'b', 'c')`, time.Now())
		}, "celery_taskmeta", []string{"a", "b", "c"}, false},
		{"ANY array param", func(t *testing.T) proxy.Event {
			ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(`SELECT * FROM celery_taskmeta WHERE task_id = ANY($1)`), Start: time.Now()}
			ev.Bind = bindBody(t, nil, []byte(`{x,"y z"}`))
			return ev
		}, "celery_taskmeta", []string{"x", "y z"}, false},
		{"group result", func(t *testing.T) proxy.Event {
			return simpleEvent(`SELECT * FROM django_celery_results_groupresult WHERE group_id = 'g1'`, time.Now())
		}, "django_celery_results_groupresult", []string{"g1"}, false},
		{"insert", func(t *testing.T) proxy.Event {
			return simpleEvent(`INSERT INTO celery_taskmeta (id, task_id, status) VALUES (nextval('task_id_sequence'), 'w1', 'PENDING')`, time.Now())
		}, "celery_taskmeta", []string{"w1"}, true},
		{"update", func(t *testing.T) proxy.Event {
			return simpleEvent(`UPDATE celery_taskmeta SET status='SUCCESS' WHERE celery_taskmeta.id = 5 AND celery_taskmeta.task_id = 'w2'`, time.Now())
		}, "celery_taskmeta", []string{"w2"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := New(Config{})
			info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000", User: "u", Database: "d"}
			a.ConnOpened(info)
			ev := c.ev(t)
			a.Statements(info, []proxy.Event{ev})
			s := a.Snapshot()
			var got []string
			for _, k := range s.Keys {
				if k.Table != c.table {
					t.Fatalf("key %q in table %s", k.Key, k.Table)
				}
				got = append(got, k.Key)
				if c.write != (k.Writes > 0) || !c.write && k.Polls != 1 {
					t.Fatalf("key %+v", k)
				}
			}
			if strings.Join(sortedCopy(got), ",") != strings.Join(sortedCopy(c.keys), ",") {
				t.Fatalf("keys %q, want %q", got, c.keys)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestParseWatch(t *testing.T) {
	for in, want := range map[string]string{"jobs.id": "jobs.id", "App.Jobs.Id": "app.jobs.id", `"Jobs"."Key"`: "Jobs.Key"} {
		w, err := ParseWatch(in)
		if err != nil || w.Name() != want {
			t.Fatalf("%s: %v %v", in, w.Name(), err)
		}
	}
	for _, bad := range []string{"jobs", "a.b.c.d", "jobs.", "1.2"} {
		if _, err := ParseWatch(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// TestStormAndSpin feeds a spinning key, a key polled every 500 ms and a storm of distinct
// one-off reads, and checks only the spinning key storms.
func TestStormAndSpin(t *testing.T) {
	var notices []Notice
	a := New(Config{OnNotice: func(n Notice) { notices = append(notices, n) }})
	info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
	a.ConnOpened(info)
	base := a.epoch
	for ms := 0; ms < 8000; ms += 5 { // spin: every 5 ms
		a.Statements(info, []proxy.Event{simpleEvent(celeryLookup+"'spin'", base.Add(time.Duration(ms)*time.Millisecond))})
		if ms%500 == 0 {
			a.Statements(info, []proxy.Event{simpleEvent(celeryLookup+"'slow'", base.Add(time.Duration(ms)*time.Millisecond))})
		}
		if ms%1000 == 0 {
			a.Tick(base.Add(time.Duration(ms) * time.Millisecond))
		}
	}
	a.Tick(base.Add(8 * time.Second))
	s := a.Snapshot()
	byKey := map[string]KeyStat{}
	for _, k := range s.Keys {
		byKey[k.Key] = k
	}
	if !byKey["spin"].Storming || !byKey["spin"].Spinning {
		t.Fatalf("spin key: %+v", byKey["spin"])
	}
	if byKey["slow"].Storming || byKey["slow"].MedianIntervalMs != 500 {
		t.Fatalf("slow key: %+v", byKey["slow"])
	}
	if len(notices) == 0 || notices[0].Kind != "storm-start" || !strings.Contains(notices[0].Message, "spin") {
		t.Fatalf("notices %+v", notices)
	}
	var spinFinding bool
	for _, f := range a.findings(s) {
		spinFinding = spinFinding || f.Kind == "spin-poll" && strings.Contains(f.Fix, "chord")
	}
	if !spinFinding {
		t.Fatal("no spin-poll finding")
	}
	// The storm ends when the polling stops for a window.
	a.Tick(base.Add(20 * time.Second))
	a.Tick(base.Add(30 * time.Second))
	for _, st := range a.Snapshot().Storms {
		if st.Active {
			t.Fatalf("storm still active: %+v", st)
		}
	}
}

// TestMemoryBoundedWithHeavyKeysExact streams many distinct keys through a small table: the
// table stays at its bound and the heavy keys' counts stay exact.
func TestMemoryBoundedWithHeavyKeysExact(t *testing.T) {
	a := New(Config{MaxKeys: 1000})
	info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
	a.ConnOpened(info)
	now := time.Now()
	heavy := map[string]int{}
	for i := 0; i < 200_000; i++ {
		key := fmt.Sprintf("tail-%d", i)
		if i%20 == 0 {
			key = fmt.Sprintf("heavy-%d", i%200)
			heavy[key]++
		}
		a.Statements(info, []proxy.Event{simpleEvent(celeryLookup+"'"+key+"'", now)})
	}
	s := a.Snapshot()
	if s.Totals.KeysTracked > 1000+shards {
		t.Fatalf("%d keys tracked", s.Totals.KeysTracked)
	}
	got := map[string]int64{}
	for _, k := range s.Keys {
		got[k.Key] = k.Polls
	}
	for k, n := range heavy {
		if got[k] != int64(n) {
			t.Fatalf("heavy key %s: %d polls, want %d", k, got[k], n)
		}
	}
}

// BenchmarkIngest is the analyzer's per-event cost on the storm's statement shapes.
func BenchmarkIngest(b *testing.B) {
	// extended and simple: a Celery poll; tagged: the same with a sqlcommenter comment whose
	// traceparent changes with every statement (the tag is parsed every time); queue: an
	// idle worker's fetch of a job queue that finds nothing.
	for _, mode := range []string{"extended", "simple", "tagged", "queue"} {
		b.Run(mode, func(b *testing.B) {
			a := New(Config{})
			info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
			a.ConnOpened(info)
			now := time.Now()
			var evs []proxy.Event
			for i := 0; i < 10; i++ {
				key := fmt.Sprintf("b5517ae9-59ef-46e7-808b-1da17dab972%d", i)
				switch mode {
				case "simple":
					evs = append(evs, simpleEvent(celeryLookup+"'"+key+"'", now))
				case "tagged":
					text := fmt.Sprintf("%s$1 /*action='poll',controller='results',framework='django%%3A4.2',traceparent='00-%032x-c532cb4098ac3dd2-01'*/", celeryLookup, i)
					ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(text), Start: now, Duration: time.Millisecond}
					ev.Bind = bindBody(b, nil, []byte(key))
					evs = append(evs, ev)
				case "queue":
					evs = append(evs, proxy.Event{Protocol: proxy.Extended, Text: []byte(`WITH locked_jobs AS (SELECT * FROM river_job WHERE state = 'available' AND queue = $1 AND scheduled_at <= now() ORDER BY priority ASC, scheduled_at ASC, id ASC LIMIT $2 FOR UPDATE SKIP LOCKED) UPDATE river_job SET state = 'running', attempt = river_job.attempt + 1 FROM locked_jobs WHERE river_job.id = locked_jobs.id RETURNING river_job.*`),
						Start: now, Duration: time.Millisecond, Tag: []byte("UPDATE 0")})
				default:
					ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(celeryLookup + "$1"), Start: now, Duration: time.Millisecond}
					ev.Bind = bindBody(b, nil, []byte(key))
					evs = append(evs, ev)
				}
			}
			a.Statements(info, evs) // create the keys
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a.Statements(info, evs[i%10:i%10+1])
			}
		})
	}
}

// BenchmarkStreamDistinctKeys streams 10 million distinct task_ids, each polled twice, among
// 200 heavy keys polled all along, through an analyzer with the default bound of 100,000 keys.
// It reports the heap in use afterwards and fails if a heavy key's count is not exact.
// Run: go test -run '^$' -bench StreamDistinctKeys -benchtime 1x ./analyzer/
func BenchmarkStreamDistinctKeys(b *testing.B) {
	const distinct, heavyKeys = 10_000_000, 200
	for i := 0; i < b.N; i++ {
		a := New(Config{})
		info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
		a.ConnOpened(info)
		ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(celeryLookup + "$1"), Start: time.Now(), Duration: time.Millisecond}
		batch := []proxy.Event{ev}
		keyBuf := make([]byte, 0, 64)
		bind := func(key []byte) proxy.BindMessage { return bindBody(b, nil, key) }
		heavy := make([]int64, heavyKeys)
		for n := 0; n < distinct; n++ {
			keyBuf = fmt.Appendf(keyBuf[:0], "task-%08d", n)
			batch[0].Bind = bind(keyBuf)
			a.Statements(info, batch)
			a.Statements(info, batch)
			if n%50 == 0 {
				h := n / 50 % heavyKeys
				batch[0].Bind = bind(fmt.Appendf(keyBuf[:0], "heavy-%03d", h))
				a.Statements(info, batch)
				heavy[h]++
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(residentKiB(b))/(1<<10), "rss-MiB") // the whole test process: an upper bound
		s := a.Snapshot()
		b.ReportMetric(float64(s.Totals.KeysTracked), "keys-tracked")
		got := map[string]int64{}
		for _, k := range s.Keys {
			got[k.Key] = k.Polls
		}
		for h, n := range heavy {
			if k := fmt.Sprintf("heavy-%03d", h); got[k] != n {
				b.Fatalf("%s: %d polls counted, %d sent", k, got[k], n)
			}
		}
	}
}

// BenchmarkSnapshot takes a snapshot of an analyzer holding 100,000 keys, 1,000 fingerprints
// and 100 clients: the TUI takes up to 4 a second and the budget is 10 a second.
func BenchmarkSnapshot(b *testing.B) {
	a := New(Config{MaxKeys: 150_000}) // per-shard bounds: room for all 100,000
	now := time.Now()
	for c := 0; c < 100; c++ {
		info := &proxy.ConnInfo{ClientAddr: fmt.Sprintf("10.0.%d.%d:5000", c/250, c%250), ApplicationName: "app"}
		a.ConnOpened(info)
		for k := 0; k < 1000; k++ {
			ev := proxy.Event{Protocol: proxy.Extended, Text: []byte(celeryLookup + "$1"), Start: now, Duration: time.Millisecond}
			ev.Bind = bindBody(b, nil, []byte(fmt.Sprintf("task-%d-%d", c, k)))
			a.Statements(info, []proxy.Event{ev})
			if k < 10 {
				a.Statements(info, []proxy.Event{simpleEvent(fmt.Sprintf("SELECT * FROM t%d WHERE id = 1", c*10+k), now)})
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s := a.Snapshot(); s.Totals.KeysTracked != 100_000 {
			b.Fatalf("%d keys", s.Totals.KeysTracked)
		}
	}
}

// TestINListIsOnePollStatement: a lookup of three keys is one watched statement in the totals,
// the timeline and the client, and one poll for each key.
func TestINListIsOnePollStatement(t *testing.T) {
	epoch := time.Now()
	now := epoch
	a := New(Config{Epoch: epoch, Now: func() time.Time { return now }})
	info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
	a.ConnOpened(info)
	at := epoch.Add(100 * time.Millisecond)
	a.Statements(info, []proxy.Event{simpleEvent(`SELECT * FROM celery_taskmeta WHERE task_id IN ('a', 'b', 'c')`, at)})
	now = epoch.Add(1100 * time.Millisecond) // the timeline shows complete seconds
	s := a.Snapshot()
	var watched uint32
	for _, sec := range s.Timeline {
		watched += sec.Watched
	}
	if s.Totals.WatchedLookups != 1 || watched != 1 || s.Clients[0].Polls != 1 || len(s.Keys) != 3 {
		t.Fatalf("lookups %d, timeline %d, client %d, keys %d", s.Totals.WatchedLookups, watched, s.Clients[0].Polls, len(s.Keys))
	}
	for _, k := range s.Keys {
		if k.Polls != 1 {
			t.Fatalf("key %s: %d polls", k.Key, k.Polls)
		}
	}
}

// TestReportLiterals: only with ReportLiterals does a snapshot hold a literal that is not a
// watched key (one example statement per fingerprint).
func TestReportLiterals(t *testing.T) {
	const secret = "s3cr3t-literal"
	for _, keep := range []bool{false, true} {
		a := New(Config{ReportLiterals: keep})
		info := &proxy.ConnInfo{ClientAddr: "127.0.0.1:5000"}
		a.ConnOpened(info)
		a.Statements(info, []proxy.Event{simpleEvent(`SELECT * FROM accounts WHERE api_key = '`+secret+`'`, a.epoch)})
		js, err := json.Marshal(a.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(js), secret); got != keep {
			t.Fatalf("ReportLiterals %v: the literal is in the snapshot: %v", keep, got)
		}
	}
}

// residentKiB is the process's resident set size (VmRSS), from /proc/self/status.
func residentKiB(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb); err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
