package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
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

	srv := httptest.NewServer(Handler(a))
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
