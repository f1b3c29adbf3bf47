package tui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

func queues() *fakeSource { return &fakeSource{snaps: []*analyzer.Snapshot{queueSnapshot()}} }

// queuesShown lists the queues (their row ids) in the order the Queues view shows them.
func queuesShown(m model) []string {
	out := make([]string, len(m.rows))
	for n, i := range m.rows {
		out[n] = rowID(m.snap, viewQueues, i)
	}
	return out
}

func TestQueuesView(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, queues(), Options{}, w, h), "5")
		if m.view != viewQueues {
			t.Fatalf("view %v after 5", m.view)
		}
		if got := press(t, newTestModel(t, queues(), Options{}, w, h), "shift+tab").view; got != viewQueues {
			t.Fatalf("view %v after shift+tab from Tasks, want Queues (the last tab)", got)
		}
		v := m.View()
		want := []string{"[5 Queues 2]", "polls/s ▼", "POLL/S▼", "oban", "Oban", "14736", "99%", "0.5", "62ms", "solid_queue", "94%", "1.0s"}
		if w >= 120 {
			want = append(want, "sort: polls/s ▼", "oban_jobs", "solid_queue_ready_executions")
		}
		for _, want := range want {
			if !strings.Contains(v, want) {
				t.Errorf("Queues view lacks %q:\n%s", want, v)
			}
		}
		requireGolden(t, m)
	})
	// Without queues the tab says so, and the view says where queues come from.
	m := press(t, newTestModel(t, storm(), Options{}, 120, 40), "5")
	if v := m.View(); !strings.Contains(v, "[5 Queues 0]") || !strings.Contains(v, "no job queue polled yet") {
		t.Errorf("empty Queues view:\n%s", v)
	}
}

func TestQueuesSortAndFilter(t *testing.T) {
	m := press(t, newTestModel(t, queues(), Options{}, 120, 40), "5")
	if got := queuesShown(m); got[0] != "oban" {
		t.Fatalf("polls/s order: %v", got)
	}
	for _, c := range []struct {
		name  string
		first string
	}{{"polls", "oban"}, {"empty", "oban"}, {"enqueued/s", "oban"}, {"interval", "oban"}, {"queue", "oban"}} {
		m = press(t, m, "s")
		if spec := sorts[viewQueues][m.tabs[viewQueues].sort]; spec.name != c.name || queuesShown(m)[0] != c.first {
			t.Errorf("sort %q (want %q): %v", spec.name, c.name, queuesShown(m))
		}
	}
	m = press(t, m, "r") // by name, reversed
	if got := queuesShown(m); got[0] != "solid_queue" || !strings.Contains(m.View(), "QUEUE▼") {
		t.Errorf("reversed name order %v:\n%s", got, m.View())
	}
	m = press(t, m, "s") // back to polls/s
	if m.tabs[viewQueues].sort != 0 || m.tabs[viewQueues].reverse {
		t.Errorf("sort %d reverse %v after a full cycle", m.tabs[viewQueues].sort, m.tabs[viewQueues].reverse)
	}
	// The filter reads the queue, its library and tables, who polls it and which code.
	for _, c := range []struct{ text, want string }{
		{"solid", "solid_queue"}, {"oban_jobs", "oban"}, {"worker-2", "oban"}, {"10.0.3.22", "solid_queue"}, {"Oban.Stager", "oban"},
	} {
		m = press(t, m, "/")
		m = press(t, typeText(t, m, c.text), "enter")
		if got := queuesShown(m); len(got) != 1 || got[0] != c.want {
			t.Errorf("filter %q: %v, want [%s]", c.text, got, c.want)
		}
		m = press(t, m, "esc")
	}
}

func TestQueueDetail(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, queues(), Options{}, w, h), "5")
		list := m.View()
		m = press(t, m, "enter")
		if !m.detail.open || m.detail.queue.Queue != "oban" {
			t.Fatalf("enter: detail open %v of %q", m.detail.open, m.detail.queue.Queue)
		}
		v := m.View()
		for _, want := range []string{"oban", "oban_jobs", "14590 (99%)", "62ms", "ADDRESS", "oban-worker-1", "oban-worker-3", "10.0.5.12",
			"TAG", "job=Oban.Stager", "9824", "job=Oban.Producer"} {
			if !strings.Contains(v, want) {
				t.Errorf("queue detail lacks %q:\n%s", want, v)
			}
		}
		requireGolden(t, m)
		// The detail follows its queue into the next snapshot, and says when it is gone.
		next := queueSnapshot()
		next.Queues[0].Polls = 15_000
		if m = send(t, m, snapshotMsg{next}); m.detail.stale || m.detail.queue.Polls != 15_000 {
			t.Errorf("detail not refreshed: stale %v polls %d", m.detail.stale, m.detail.queue.Polls)
		}
		gone := queueSnapshot()
		gone.Queues = gone.Queues[1:]
		if m = send(t, m, snapshotMsg{gone}); !m.detail.stale || !strings.Contains(m.View(), "gone from the latest snapshot") {
			t.Errorf("a vanished queue's detail:\n%s", m.View())
		}
		m = send(t, m, snapshotMsg{queueSnapshot()})
		if back := press(t, m, "esc").View(); back != list {
			t.Errorf("esc does not go back to the list:\n%s", back)
		}
	})
}

// TestQueuesFromLog: a server log has no answers, so the empty polls are unknown: n/a in the
// table, "not in a log" in the detail, never 0%.
func TestQueuesFromLog(t *testing.T) {
	s := queueSnapshot()
	s.NoAnswers = true
	for i := range s.Queues {
		s.Queues[i].EmptyPolls, s.Queues[i].EmptyPct = -1, -1
		for j := range s.Queues[i].Clients {
			s.Queues[i].Clients[j].EmptyPolls = -1
		}
	}
	m := press(t, newTestModel(t, &fakeSource{snaps: []*analyzer.Snapshot{s}}, Options{}, 120, 40), "5")
	if v := m.View(); strings.Count(v, " n/a ") != 2 || strings.Contains(v, "0%") {
		t.Errorf("Queues view of a log:\n%s", v)
	}
	m = press(t, m, "enter")
	if v := m.View(); !strings.Contains(v, "empty polls  not in a log") || strings.Count(v, " n/a ") != 3 {
		t.Errorf("queue detail of a log:\n%s", v)
	}
}

// TestClientsTags: the Clients view shows every tag's rates under the clients; with more
// clients than fit, the tags keep their lines and the selection stays on the screen.
func TestClientsTags(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, queues(), Options{}, w, h), "3")
		v := m.View()
		for _, want := range []string{"TAGS", "TAG", "Q/S10", "POLL/S", "controller=orders,action=status", "590", "160012",
			"job=Oban.Producer", "17", "other"} {
			if !strings.Contains(v, want) {
				t.Errorf("Clients view lacks %q:\n%s", want, v)
			}
		}
		requireGolden(t, m)
	})
	s := queueSnapshot()
	for i := range 40 {
		s.Clients = append(s.Clients, analyzer.ClientStat{Address: fmt.Sprintf("10.9.0.%d", i), ApplicationName: fmt.Sprintf("web-%02d", i),
			User: "app", Database: "shop", Queries: 10, QPS10: 0.1})
	}
	m := press(t, newTestModel(t, &fakeSource{snaps: []*analyzer.Snapshot{s}}, Options{}, 80, 24), "3", "end")
	v := m.View()
	if !strings.Contains(v, "> 10.9.0.39") || !strings.Contains(v, "TAGS") || !strings.Contains(v, "controller=orders,action=status") {
		t.Errorf("the last client or the tags are off the screen:\n%s", v)
	}
	if !strings.Contains(v, "… and 4 more") {
		t.Errorf("the tags that do not fit are not counted:\n%s", v)
	}
	checkScreen(t, v, 80, 24)
	// A screen too small for both keeps the clients.
	if m = press(t, newTestModel(t, queues(), Options{}, 80, 12), "3"); strings.Contains(m.View(), "TAGS") || m.tagLines() != 0 {
		t.Errorf("tags on a small screen:\n%s", m.View())
	}
}
