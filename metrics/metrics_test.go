package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// TestMetricsFromRealAnalyzer feeds an analyzer polls and a write, then scrapes /metrics.
func TestMetricsFromRealAnalyzer(t *testing.T) {
	a := analyzer.New(analyzer.Config{})
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.1:5000", User: "u", Database: "d"}
	a.ConnOpened(info)
	now := time.Now()
	for i := 0; i < 7; i++ {
		a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Start: now, Text: []byte("SELECT status FROM celery_taskmeta WHERE task_id = 'secret-task-" + string(rune('a'+i%2)) + "'")}})
	}
	a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Start: now, Text: []byte("UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'secret-task-a'")}})
	a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Start: now, Text: []byte("SELECT 1")}})

	srv := httptest.NewServer(Handler(a, nil))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	text := string(body)
	for _, want := range []string{
		"pgpollwatch_queries_total 9",
		`pgpollwatch_watched_lookups_total{column="task_id",table="celery_taskmeta"} 7`,
		`pgpollwatch_watched_writes_total{column="task_id",table="celery_taskmeta"} 1`,
		"pgpollwatch_connections_total 1",
		"pgpollwatch_connections_open 1",
		"pgpollwatch_keys_tracked 2",
		`pgpollwatch_fingerprint_calls_total{command="Select",fingerprint=`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "secret-task") {
		t.Error("/metrics exposes a task_id")
	}
	res, err = srv.Client().Get(srv.URL + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", res, err)
	}
}

// TestCacheMetrics: the cache's numbers when the analyzer carries them, the what-if estimate
// always, and no task_id in either.
func TestCacheMetrics(t *testing.T) {
	a := analyzer.New(analyzer.Config{})
	info := &proxy.ConnInfo{ClientAddr: "10.0.0.1:5000", User: "u", Database: "d"}
	a.ConnOpened(info)
	base := time.Now()
	// 100 polls of one key, 10 ms apart (a fill per TTL window), then a write and one more poll.
	for i := 0; i < 100; i++ {
		a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Start: base.Add(time.Duration(i) * 10 * time.Millisecond),
			Text: []byte("SELECT status FROM celery_taskmeta WHERE task_id = 'secret-task-x'")}})
	}
	a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Start: base.Add(995 * time.Millisecond),
		Text: []byte("UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'secret-task-x'")}})
	a.Statements(info, []proxy.Event{{Protocol: proxy.Simple, Start: base.Add(1000 * time.Millisecond),
		Text: []byte("SELECT status FROM celery_taskmeta WHERE task_id = 'secret-task-x'")}})

	scrape := func() string {
		t.Helper()
		srv := httptest.NewServer(Handler(a, nil))
		defer srv.Close()
		res, err := srv.Client().Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	// 101 polls: fills at 0, 100, ..., 900 ms and after the write (100 ms: 11 fills); at 0, 500
	// ms and after the write (500 ms: 3); at 0 and after the write (1 s, 5 s: 2).
	whatIf := []string{
		"pgpollwatch_whatif_polls_total 101",
		`pgpollwatch_whatif_saved_queries_total{ttl="0.1s"} 90`,
		`pgpollwatch_whatif_saved_queries_total{ttl="0.5s"} 98`,
		`pgpollwatch_whatif_saved_queries_total{ttl="1s"} 99`,
		`pgpollwatch_whatif_saved_queries_total{ttl="5s"} 99`,
	}
	text := scrape()
	for _, want := range whatIf {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "pgpollwatch_cache_") {
		t.Error("cache metrics without a cache")
	}

	a.SetCoalesceStats(func() analyzer.CoalesceStats {
		return analyzer.CoalesceStats{Enabled: true, TTL: 500 * time.Millisecond, Scope: "read-committed", Hits: 950, Misses: 50,
			Fills: 48, Invalidations: 4, DiscardedFills: 2, Bypassed: 7, Entries: 10, Bytes: 4096, MaxEntries: 10000, MaxBytes: 1 << 26,
			AgeP50: 250 * time.Millisecond, AgeMax: 499 * time.Millisecond, Saved: 960}
	})
	text = scrape()
	for _, want := range append([]string{
		"# TYPE pgpollwatch_cache_hits_total counter",
		"pgpollwatch_cache_hits_total 950",
		"pgpollwatch_cache_misses_total 50",
		"pgpollwatch_cache_fills_total 48",
		"pgpollwatch_cache_invalidations_total 4",
		"pgpollwatch_cache_discarded_fills_total 2",
		"pgpollwatch_cache_bypassed_total 7",
		"pgpollwatch_cache_saved_queries_total 960",
		"# TYPE pgpollwatch_cache_entries gauge",
		"pgpollwatch_cache_entries 10",
		"pgpollwatch_cache_bytes 4096",
		"pgpollwatch_cache_enabled 1",
		"pgpollwatch_cache_ttl_seconds 0.5",
		`pgpollwatch_cache_served_age_seconds{quantile="0.5"} 0.25`,
		`pgpollwatch_cache_served_age_seconds{quantile="1"} 0.499`,
		"# TYPE pgpollwatch_whatif_saved_queries_total counter",
	}, whatIf...) {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, "secret-task") {
		t.Error("/metrics exposes a task_id")
	}
	a.SetCoalesceStats(func() analyzer.CoalesceStats { return analyzer.CoalesceStats{TTL: time.Second} })
	if text = scrape(); !strings.Contains(text, "pgpollwatch_cache_enabled 0\n") {
		t.Error("a cache switched off is not enabled 0")
	}
}

// TestReuseMetrics: server connection reuse is exported when the snapshot has it (the proxy
// runs with --reuse-server-connections), and absent when it does not.
func TestReuseMetrics(t *testing.T) {
	a := analyzer.New(analyzer.Config{})
	scrape := func() string { return scrapeSource(t, a) }
	if text := scrape(); strings.Contains(text, "pgpollwatch_server_connections") {
		t.Error("/metrics has reuse series while reuse is off")
	}
	a.SetReuseStats(func() analyzer.ReuseStats { return analyzer.ReuseStats{Reused: 41, Kept: 43, Discarded: 2, Idle: 3} })
	text := scrape()
	for _, want := range []string{
		"# TYPE pgpollwatch_server_connections_reused_total counter\npgpollwatch_server_connections_reused_total 41\n",
		"# TYPE pgpollwatch_server_connections_kept_total counter\npgpollwatch_server_connections_kept_total 43\n",
		"# TYPE pgpollwatch_server_connections_discarded_total counter\npgpollwatch_server_connections_discarded_total 2\n",
		"# TYPE pgpollwatch_server_connections_idle gauge\npgpollwatch_server_connections_idle 3\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

type snapSource struct{ s *analyzer.Snapshot }

func (f snapSource) Snapshot() *analyzer.Snapshot { return f.s }

// scrapeSource is /metrics of a handler over src.
func scrapeSource(t *testing.T, src Source) string {
	t.Helper()
	srv := httptest.NewServer(Handler(src, nil))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	return string(body)
}

// TestSpinLoopMetrics: spin loops are counted by kind (a key's, a poller's over many keys),
// storming pollers too, and no client identity or key becomes a label.
func TestSpinLoopMetrics(t *testing.T) {
	s := &analyzer.Snapshot{
		Keys: []analyzer.KeyStat{
			{Key: "k1", Storming: true, Spinning: true}, {Key: "k2", Storming: true}, {Key: "k3", Spinning: true},
		},
		Pollers: []analyzer.PollerStat{
			{Address: "10.9.9.9", ApplicationName: "secret-app", Storming: true, Spinning: true},
			{Address: "10.9.9.8", Storming: true}, {Address: "10.9.9.7", Spinning: true},
		},
	}
	s.Totals.StormsActive = 4
	text := scrapeSource(t, snapSource{s})
	for _, want := range []string{
		`pgpollwatch_spin_loops_active{kind="key"} 1`,
		`pgpollwatch_spin_loops_active{kind="poller"} 1`,
		"pgpollwatch_pollers_storming 2",
		"pgpollwatch_storms_active 4",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, leak := range []string{"secret-app", "10.9.9", "k1"} {
		if strings.Contains(text, leak) {
			t.Errorf("/metrics exposes %q", leak)
		}
	}
}

// TestReadyz: /readyz serves the probe's verdict, 503 with the reason when it fails, and asks
// the probe at most once per ReadyCache however many requests come, also while it runs.
func TestReadyz(t *testing.T) {
	var calls atomic.Int32
	var fail atomic.Bool
	probe := func(ctx context.Context) error {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond) // requests arriving meanwhile wait for this verdict
		if fail.Load() {
			return errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}
		return nil
	}
	srv := httptest.NewServer(Handler(snapSource{&analyzer.Snapshot{}}, probe))
	defer srv.Close()
	get := func() (int, string) {
		res, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	burst := func() (codes map[int]int, body string) {
		codes = map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, b := get()
				mu.Lock()
				codes[code]++
				body = b
				mu.Unlock()
			}()
		}
		wg.Wait()
		return codes, body
	}
	if codes, body := burst(); codes[200] != 20 || body != "ready\n" {
		t.Errorf("upstream answering: %v %q, want 20 × 200 ready", codes, body)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("20 requests at once probed %d times, want 1", n)
	}
	fail.Store(true)
	if code, _ := get(); code != 200 {
		t.Errorf("within ReadyCache of the last verdict: %d, want the cached 200", code)
	}
	time.Sleep(ReadyCache)
	codes, body := burst()
	if codes[503] != 20 || !strings.Contains(body, "connection refused") {
		t.Errorf("upstream refusing: %v %q, want 20 × 503 with the reason", codes, body)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("probed %d times in all, want 2", n)
	}

	// Without a probe there is no /readyz to mislead anyone.
	plain := httptest.NewServer(Handler(snapSource{&analyzer.Snapshot{}}, nil))
	defer plain.Close()
	res, err := plain.Client().Get(plain.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("/readyz without a probe: %d, want 404", res.StatusCode)
	}
}

// TestQueueAndTagMetrics: every job queue's polls, empty polls (only when the answers were
// seen) and enqueued jobs, by queue; the polls of the TopTags tags with the most polls, by tag;
// never a client.
func TestQueueAndTagMetrics(t *testing.T) {
	s := &analyzer.Snapshot{
		Queues: []analyzer.QueueStat{
			{Queue: "oban", Library: "Oban", Polls: 14_736, EmptyPolls: 14_590, EmptyPct: 99, Enqueued: 154,
				Clients: []analyzer.QueueClient{{Address: "10.7.7.7", ApplicationName: "secret-worker", Polls: 14_736}}},
			{Queue: "solid_queue", Polls: 307, EmptyPolls: -1, EmptyPct: -1, Enqueued: 17}, // from a server log: answers unknown
		},
	}
	// 25 tags with polls (tag-00 has the fewest), one without: the 20 busiest by polls get a series.
	s.Tags = append(s.Tags, analyzer.TagStat{Tag: "controller=orders,action=create", Queries: 99_999, QPS10: 500})
	for i := range 25 {
		s.Tags = append(s.Tags, analyzer.TagStat{Tag: fmt.Sprintf("job=Job%02d", i), Queries: int64(1000 + i), Polls: int64(100 + i)})
	}
	text := scrapeSource(t, snapSource{s})
	for _, want := range []string{
		"# TYPE pgpollwatch_queue_polls_total counter\n",
		`pgpollwatch_queue_polls_total{queue="oban"} 14736` + "\n",
		`pgpollwatch_queue_polls_total{queue="solid_queue"} 307` + "\n",
		"# TYPE pgpollwatch_queue_empty_polls_total counter\n",
		`pgpollwatch_queue_empty_polls_total{queue="oban"} 14590` + "\n",
		"# TYPE pgpollwatch_queue_enqueued_total counter\n",
		`pgpollwatch_queue_enqueued_total{queue="oban"} 154` + "\n",
		`pgpollwatch_queue_enqueued_total{queue="solid_queue"} 17` + "\n",
		"# TYPE pgpollwatch_tag_polls_total counter\n",
		`pgpollwatch_tag_polls_total{tag="job=Job24"} 124` + "\n",
		`pgpollwatch_tag_polls_total{tag="job=Job05"} 105` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, absent := range []string{
		`pgpollwatch_queue_empty_polls_total{queue="solid_queue"}`, // unknown is no series, never 0
		`tag="job=Job04"`, `tag="job=Job00"`, // past the top 20
		`tag="controller=orders,action=create"`, // no polls
		"secret-worker", "10.7.7.7",
	} {
		if strings.Contains(text, absent) {
			t.Errorf("/metrics has %q", absent)
		}
	}
	if n := strings.Count(text, "\npgpollwatch_tag_polls_total{"); n != TopTags {
		t.Errorf("%d tag series, want %d", n, TopTags)
	}
}
