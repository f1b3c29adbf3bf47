package tui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// The golden files under testdata/ are the screens at a fixed size; regenerate them with
//
//	go test ./tui/ -update

func TestMain(m *testing.M) {
	// Colourless everywhere, so the golden files hold text only.
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

var sizes = []struct{ w, h int }{{80, 24}, {120, 40}}

func sizeName(w, h int) string { return fmt.Sprintf("%dx%d", w, h) }

// newTestModel is the real model at w×h, colourless, fed its first snapshot the way Run does.
func newTestModel(t *testing.T, src *fakeSource, opts Options, w, h int) model {
	t.Helper()
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	opts.Source = src
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:6432"
	}
	if opts.Upstream == "" {
		opts.Upstream = "db.internal:5432"
	}
	m := newModel(opts, r)
	m = send(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	m = send(t, m, m.Init()()) // the first snapshot
	return m
}

func send(t *testing.T, m model, msg tea.Msg) model {
	t.Helper()
	m2, _ := sendCmd(t, m, msg)
	return m2
}

func sendCmd(t *testing.T, m model, msg tea.Msg) (model, tea.Cmd) {
	t.Helper()
	tm, cmd := m.Update(msg)
	m2, ok := tm.(model)
	if !ok {
		t.Fatalf("Update returned %T", tm)
	}
	return m2, cmd
}

func keyMsg(k string) tea.KeyMsg {
	types := map[string]tea.KeyType{
		"enter": tea.KeyEnter, "esc": tea.KeyEscape, "tab": tea.KeyTab, "shift+tab": tea.KeyShiftTab,
		"up": tea.KeyUp, "down": tea.KeyDown, "pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown,
		"home": tea.KeyHome, "end": tea.KeyEnd, "backspace": tea.KeyBackspace, "ctrl+c": tea.KeyCtrlC,
	}
	if t, ok := types[k]; ok {
		return tea.KeyMsg{Type: t}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// press sends each key; a string of several characters that is not a key name is typed.
func press(t *testing.T, m model, keys ...string) model {
	t.Helper()
	for _, k := range keys {
		m = send(t, m, keyMsg(k))
	}
	return m
}

func typeText(t *testing.T, m model, s string) model {
	t.Helper()
	for _, r := range s {
		m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	return m
}

// checkScreen asserts the screen is exactly h lines of at most w cells: nothing can wrap.
func checkScreen(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("screen has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, n, w, l)
		}
	}
}

func requireGolden(t *testing.T, m model) {
	t.Helper()
	v := m.View()
	checkScreen(t, v, m.width, m.height)
	golden.RequireEqual(t, []byte(v+"\n"))
}

func eachSize(t *testing.T, fn func(t *testing.T, w, h int)) {
	for _, sz := range sizes {
		t.Run(sizeName(sz.w, sz.h), func(t *testing.T) { fn(t, sz.w, sz.h) })
	}
}

func storm() *fakeSource { return &fakeSource{snaps: []*analyzer.Snapshot{stormSnapshot()}} }

func TestTasksView(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := newTestModel(t, storm(), Options{}, w, h)
		v := m.View()
		for _, want := range []string{"SPIN LOOP", "597 of 683 queries/s (87%)", "SPIN", "STORM", taskID(0)[:20], "PENDING"} {
			if !strings.Contains(v, want) {
				t.Errorf("Tasks view lacks %q", want)
			}
		}
		requireGolden(t, m)
	})
}

func TestQueriesView(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, storm(), Options{}, w, h), "2")
		if m.view != viewQueries {
			t.Fatalf("view %v after 2", m.view)
		}
		requireGolden(t, m)
	})
}

func TestClientsView(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, storm(), Options{}, w, h), "tab", "tab")
		if m.view != viewClients {
			t.Fatalf("view %v after tab tab", m.view)
		}
		requireGolden(t, m)
	})
}

func TestFindingsView(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, storm(), Options{}, w, h), "shift+tab", "shift+tab")
		if m.view != viewFindings {
			t.Fatalf("view %v after shift+tab twice", m.view)
		}
		v := m.View()
		for _, want := range []string{"HIGH", "Poll storm:", "fix: Stop busy-waiting on results."} {
			if !strings.Contains(v, want) {
				t.Errorf("Findings view lacks %q", want)
			}
		}
		requireGolden(t, m)
	})
}

func TestFindingsScroll(t *testing.T) {
	m := press(t, newTestModel(t, storm(), Options{}, 80, 24), "4", "down")
	if m.tabs[viewFindings].cursor != 1 {
		t.Fatalf("cursor %d after down, want 1", m.tabs[viewFindings].cursor)
	}
	v := m.View()
	if !strings.Contains(v, "> HIGH   Spin loop") {
		t.Errorf("the selected spin finding is not on the screen:\n%s", v)
	}
	requireGolden(t, m)
	m = press(t, m, "end")
	if !strings.Contains(m.View(), "Connection churn") {
		t.Errorf("end does not show the last finding:\n%s", m.View())
	}
	m = press(t, m, "home")
	if m.tabs[viewFindings].offset != 0 || m.tabs[viewFindings].cursor != 0 {
		t.Errorf("home: offset %d cursor %d", m.tabs[viewFindings].offset, m.tabs[viewFindings].cursor)
	}
	for range 10 {
		m = press(t, m, "pgdown")
		checkScreen(t, m.View(), 80, 24)
	}
	if !strings.Contains(m.View(), "Connection churn") {
		t.Errorf("pgdown never reaches the end:\n%s", m.View())
	}
}

// keysShown lists the task keys in the order the Tasks view shows them.
func keysShown(m model) []string {
	var out []string
	for _, i := range m.rows {
		out = append(out, m.snap.Keys[i].Key)
	}
	return out
}

func TestSortAndReverse(t *testing.T) {
	m := newTestModel(t, storm(), Options{}, 80, 24)
	if got := keysShown(m)[0]; got != taskID(0) {
		t.Fatalf("rank order starts with %s", got)
	}
	m = press(t, m, "s") // q/s
	if name := sorts[viewTasks][m.tabs[viewTasks].sort].name; name != "q/s" {
		t.Fatalf("sort after s is %q", name)
	}
	t.Run("sort", func(t *testing.T) { requireGolden(t, m) })
	m = press(t, m, "s") // polls
	if got := keysShown(m)[0]; got != taskID(0) {
		t.Errorf("most polls first: got %s", got)
	}
	m = press(t, m, "r")
	got := keysShown(m)
	if got[0] != "d15ea5e0-0000-4000-8000-000000000002" || got[len(got)-1] != taskID(0) {
		t.Errorf("reversed polls order: %v", got)
	}
	t.Run("reverse", func(t *testing.T) { requireGolden(t, m) })
	// s cycles back to the first sort after the last one.
	for range len(sorts[viewTasks]) - 2 {
		m = press(t, m, "s")
	}
	if m.tabs[viewTasks].sort != 0 || m.tabs[viewTasks].reverse {
		t.Errorf("sort %d reverse %v after a full cycle", m.tabs[viewTasks].sort, m.tabs[viewTasks].reverse)
	}
}

func TestFilter(t *testing.T) {
	m := press(t, newTestModel(t, storm(), Options{}, 80, 24), "/")
	if !m.filtering {
		t.Fatal("/ does not open the filter")
	}
	m = typeText(t, m, "c0ffee")
	t.Run("typing", func(t *testing.T) { requireGolden(t, m) })
	if len(m.rows) != 13 {
		t.Errorf("the filter applies before enter: %d rows", len(m.rows))
	}
	m = press(t, m, "enter")
	if m.filtering || len(m.rows) != 1 || m.snap.Keys[m.rows[0]].Key != "c0ffee00-0000-4000-8000-000000000001" {
		t.Fatalf("after enter: filtering %v, rows %v", m.filtering, keysShown(m))
	}
	t.Run("applied", func(t *testing.T) { requireGolden(t, m) })
	// The filter is per view and survives a new snapshot.
	m = send(t, m, snapshotMsg{stormSnapshot()})
	if len(m.rows) != 1 {
		t.Errorf("filter lost on refresh: %d rows", len(m.rows))
	}
	m = press(t, m, "2")
	if len(m.rows) != 6 {
		t.Errorf("Queries view filtered too: %d rows", len(m.rows))
	}
	m = press(t, m, "1", "esc")
	if len(m.rows) != 13 {
		t.Errorf("esc does not clear the filter: %d rows", len(m.rows))
	}
	// esc in the input clears too, and q is text there, not quit.
	m = press(t, m, "/")
	m, cmd := sendCmd(t, m, keyMsg("q"))
	if cmd != nil || m.input.Value() != "q" {
		t.Errorf("q in the filter input: value %q, cmd %v", m.input.Value(), cmd != nil)
	}
	m = press(t, m, "esc")
	if m.filtering || m.tabs[viewTasks].filter != "" || len(m.rows) != 13 {
		t.Errorf("esc in the input: filtering %v filter %q rows %d", m.filtering, m.tabs[viewTasks].filter, len(m.rows))
	}
	// No match.
	m = press(t, m, "/")
	m = press(t, typeText(t, m, "nothing-like-this"), "enter")
	if !strings.Contains(m.View(), `no rows match "nothing-like-this"`) {
		t.Errorf("no-match message missing:\n%s", m.View())
	}
}

func TestKeyDetail(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := newTestModel(t, storm(), Options{}, w, h)
		list := m.View()
		m = press(t, m, "enter")
		if !m.detail.open || m.detail.key.Key != taskID(0) {
			t.Fatalf("enter: detail %+v", m.detail.open)
		}
		v := m.View()
		for _, want := range []string{"polls per second, last 60 s", "median gap", "PENDING", "█"} {
			if !strings.Contains(v, want) {
				t.Errorf("key detail lacks %q", want)
			}
		}
		requireGolden(t, m)
		// The detail follows its key into the next snapshot.
		m = send(t, m, snapshotMsg{calmSnapshot()})
		if m.detail.stale || m.detail.key.Storming {
			t.Errorf("detail not refreshed: stale %v storming %v", m.detail.stale, m.detail.key.Storming)
		}
		m = send(t, m, snapshotMsg{stormSnapshot()})
		if back := press(t, m, "esc").View(); back != list {
			t.Errorf("esc does not go back to the list:\n%s", back)
		}
		if back := press(t, m, "backspace").View(); back != list {
			t.Errorf("backspace does not go back to the list")
		}
	})
}

// A key's detail names the code that polls it, from its polls' attribution tags.
func TestKeyDetailTags(t *testing.T) {
	s := stormSnapshot()
	s.Keys[0].Tags = []analyzer.TagCount{{Tag: "application=App,job=PollJob", Count: 1200}, {Tag: "controller=jobs,action=show", Count: 14}}
	m := press(t, newTestModel(t, &fakeSource{snaps: []*analyzer.Snapshot{s}}, Options{}, 120, 40), "enter")
	v := m.View()
	if !strings.Contains(v, "polled by application=App,job=PollJob (1200), controller=jobs,action=show (14)") {
		t.Errorf("key detail does not say who polls it:\n%s", v)
	}
	if lines := strings.Split(v, "\n"); len(lines) > 40 {
		t.Errorf("key detail with tags is %d lines high, the screen 40", len(lines))
	}
}

func TestQueryAndClientDetail(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, storm(), Options{}, w, h), "2", "enter")
		if !strings.Contains(m.View(), "calls per second, last 60 s") {
			t.Errorf("query detail:\n%s", m.View())
		}
		t.Run("query", func(t *testing.T) { requireGolden(t, m) })
		m = press(t, m, "esc", "3", "end", "enter")
		if !strings.Contains(m.View(), "connection churn") {
			t.Errorf("client detail of celery-beat:\n%s", m.View())
		}
		t.Run("client", func(t *testing.T) { requireGolden(t, m) })
	})
}

func TestHelpOverlay(t *testing.T) {
	eachSize(t, func(t *testing.T, w, h int) {
		m := press(t, newTestModel(t, storm(), Options{}, w, h), "?")
		v := m.View()
		for _, b := range m.keys.FullHelp() {
			for _, k := range b {
				if !strings.Contains(v, k.Help().Desc) {
					t.Errorf("help lacks %q", k.Help().Desc)
				}
			}
		}
		requireGolden(t, m)
		if m = press(t, m, "x"); m.showHelp {
			t.Error("a key does not close the help")
		}
	})
}

func TestResize(t *testing.T) {
	m := newTestModel(t, storm(), Options{}, 120, 40)
	m = press(t, m, "end") // the last row, which must stay visible in a smaller window
	m = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	if !strings.Contains(m.View(), "> ") {
		t.Errorf("the selection is off the screen after the resize")
	}
	requireGolden(t, m)

	// No size breaks the screen, in any view or overlay.
	for _, snap := range []func() *analyzer.Snapshot{stormSnapshot, func() *analyzer.Snapshot { return cacheSnapshot(true) },
		func() *analyzer.Snapshot { return cacheSnapshot(false) }, noCacheSnapshot, queueSnapshot} {
		for _, keys := range [][]string{nil, {"2"}, {"3"}, {"4"}, {"5"}, {"enter"}, {"2", "enter"}, {"3", "enter"}, {"5", "enter"}, {"?"}, {"/"}} {
			for _, sz := range []struct{ w, h int }{{20, 5}, {40, 10}, {60, 16}, {80, 24}, {100, 30}, {132, 43}, {200, 60}} {
				src := &fakeSource{snaps: []*analyzer.Snapshot{snap()}}
				mm := press(t, newTestModel(t, src, Options{}, 120, 40), keys...)
				mm = send(t, mm, tea.WindowSizeMsg{Width: sz.w, Height: sz.h})
				checkScreen(t, mm.View(), sz.w, sz.h)
			}
		}
	}
}

func TestPause(t *testing.T) {
	src := storm()
	m := newTestModel(t, src, Options{Refresh: time.Millisecond}, 80, 24)
	m = press(t, m, "p")
	if !m.paused {
		t.Fatal("p does not pause")
	}
	requireGolden(t, m)
	frozen := m.View()

	src.set(calmSnapshot())
	m, cmd := sendCmd(t, m, tickMsg{})
	if msg := cmd(); msg != (tickMsg{}) {
		t.Fatalf("a tick while paused produced %T, want only the next tick", msg)
	}
	if src.count() != 0 {
		t.Errorf("a snapshot was taken while paused")
	}
	// A snapshot that was under way when p was pressed is not shown either.
	m = send(t, m, snapshotMsg{calmSnapshot()})
	if m.View() != frozen {
		t.Errorf("the paused display changed:\n%s", m.View())
	}

	m = press(t, m, "p")
	m, cmd = sendCmd(t, m, tickMsg{})
	m = send(t, m, cmd())
	if v := m.View(); strings.Contains(v, "PAUSED") || !strings.Contains(v, "no storm") || !strings.Contains(v, "cache hits 4321") {
		t.Errorf("after resuming the new snapshot is not shown:\n%s", v)
	}
}

func TestExport(t *testing.T) {
	calls := 0
	export := func() (string, error) {
		calls++
		if calls > 1 {
			return "", errors.New("disk full")
		}
		return "/var/tmp/pgpollwatch-report-20250314-092653.json", nil
	}
	m := newTestModel(t, storm(), Options{Export: export}, 80, 24)
	m, cmd := sendCmd(t, m, keyMsg("e"))
	if !strings.Contains(m.View(), "writing the report") {
		t.Errorf("no progress status")
	}
	m = send(t, m, cmd())
	if calls != 1 {
		t.Fatalf("Export called %d times", calls)
	}
	requireGolden(t, m)

	m, cmd = sendCmd(t, m, keyMsg("e"))
	m = send(t, m, cmd())
	if !strings.Contains(m.View(), "export failed: disk full") {
		t.Errorf("export error not shown:\n%s", m.View())
	}

	// The status goes away after a while, but not a newer one.
	seq := m.statusSeq
	m = send(t, m, clearStatusMsg{seq - 1})
	if m.status == "" {
		t.Errorf("an old clear removed the newer status")
	}
	m = send(t, m, clearStatusMsg{seq})
	if m.status != "" {
		t.Errorf("status not cleared")
	}

	m = press(t, newTestModel(t, storm(), Options{}, 80, 24), "e")
	if !strings.Contains(m.View(), "no report file configured") {
		t.Errorf("nil Export:\n%s", m.View())
	}
}

func TestCoalesce(t *testing.T) {
	m := press(t, newTestModel(t, storm(), Options{}, 80, 24), "c")
	if !strings.Contains(m.View(), "coalescing needs --coalesce") {
		t.Errorf("nil Coalesce:\n%s", m.View())
	}
	requireGolden(t, m)

	on := false
	toggle := func() (bool, error) { on = !on; return on, nil }
	m = newTestModel(t, storm(), Options{Coalesce: toggle}, 80, 24)
	m, cmd := sendCmd(t, m, keyMsg("c"))
	m = send(t, m, cmd())
	if !on || !strings.Contains(m.View(), "coalescing on") {
		t.Errorf("coalesce on:\n%s", m.View())
	}
	m, cmd = sendCmd(t, m, keyMsg("c"))
	m = send(t, m, cmd())
	if on || !strings.Contains(m.View(), "coalescing off") {
		t.Errorf("coalesce off:\n%s", m.View())
	}
}

// TestCacheHeader: the header's cache line, with the cache on, off, and without a cache.
func TestCacheHeader(t *testing.T) {
	cases := []struct {
		name  string
		snap  *analyzer.Snapshot
		want  string // the cache line, at 120 columns
		short string // what must survive at 80 columns
	}{
		{"on", cacheSnapshot(true), "cache on 500ms  hits 158907 (98%)  saved 159102  age p50 248ms", "cache on 500ms  hits 158907 (98%)  saved 159102"},
		{"off", cacheSnapshot(false), "cache off — c to enable; a 500ms cache would save 160132 (96%)", "a 500ms cache would save 160132 (96%)"},
		{"none", noCacheSnapshot(), "no cache (--coalesce): a 500ms cache would save 160132 (96%)", "a 500ms cache would save 160132 (96%)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachSize(t, func(t *testing.T, w, h int) {
				m := newTestModel(t, &fakeSource{snaps: []*analyzer.Snapshot{c.snap}}, Options{}, w, h)
				lines := strings.Split(m.View(), "\n")
				if got := strings.TrimRight(lines[4], " "); w >= 120 && got != c.want || !strings.Contains(got, c.short) {
					t.Errorf("cache line %q, want %q", got, c.want)
				}
				if !strings.HasPrefix(lines[5], "[1 Tasks]") && !strings.Contains(lines[5], "Tasks") {
					t.Errorf("the tab line is not under the cache line: %q", lines[5])
				}
				// The cache's hits are on its line, not also among the facts.
				if strings.Contains(lines[0], "cache hits") {
					t.Errorf("line 1 still has the hit count: %q", lines[0])
				}
				requireGolden(t, m)
			})
		})
	}
	// The list loses the line the header gained, and the cursor stays on the screen.
	m := press(t, newTestModel(t, storm(), Options{}, 80, 24), "end")
	before := m.listHeight()
	m = send(t, m, snapshotMsg{cacheSnapshot(true)})
	if m.listHeight() != before-1 || !strings.Contains(m.View(), "> ") {
		t.Errorf("list height %d then %d; selection shown %v", before, m.listHeight(), strings.Contains(m.View(), "> "))
	}
	checkScreen(t, m.View(), 80, 24)
	// No estimate yet and no cache: no cache line.
	if v := newTestModel(t, storm(), Options{}, 80, 24).View(); strings.Contains(v, "cache") {
		t.Errorf("a cache line without a cache or an estimate:\n%s", v)
	}
}

func TestQuit(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		_, cmd := sendCmd(t, newTestModel(t, storm(), Options{}, 80, 24), keyMsg(k))
		if cmd == nil || cmd() != tea.Quit() {
			t.Errorf("%s does not quit", k)
		}
	}
	// q quits from the help overlay too.
	m := press(t, newTestModel(t, storm(), Options{}, 80, 24), "?")
	if _, cmd := sendCmd(t, m, keyMsg("q")); cmd == nil || cmd() != tea.Quit() {
		t.Errorf("q does not quit from the help")
	}
}

var escapeSeq = regexp.MustCompile("\x1b\\[")

// colourModel builds a model whose renderer claims a true-colour terminal.
func colourModel(t *testing.T, opts Options) model {
	t.Helper()
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	r.SetHasDarkBackground(true)
	opts.Source = &fakeSource{snaps: []*analyzer.Snapshot{queueSnapshot()}} // every view has rows, the Clients view its tags
	m := newModel(opts, r)
	m = send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	return send(t, m, m.Init()())
}

func TestColour(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	os.Unsetenv("NO_COLOR")
	if v := colourModel(t, Options{}).View(); !escapeSeq.MatchString(v) {
		t.Fatalf("a true-colour terminal gets no colour:\n%s", v)
	}
	screens := func(m model) []string {
		var out []string
		for _, keys := range [][]string{nil, {"2"}, {"3"}, {"4"}, {"5"}, {"enter"}, {"1", "enter"}, {"?"}, {"esc", "p", "/"}} {
			m = press(t, m, keys...)
			out = append(out, m.View())
		}
		return out
	}
	for _, v := range screens(colourModel(t, Options{NoColor: true})) {
		if escapeSeq.MatchString(v) {
			t.Fatalf("Options.NoColor output has escape sequences:\n%q", v)
		}
	}
}

func TestNoColorEnv(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	m := colourModel(t, Options{})
	for _, keys := range [][]string{nil, {"2"}, {"3"}, {"4"}, {"5"}, {"enter"}, {"1", "enter"}, {"?"}, {"esc", "p", "/"}} {
		m = press(t, m, keys...)
		if v := m.View(); strings.ContainsRune(v, '\x1b') {
			t.Fatalf("NO_COLOR output has escape sequences after %v:\n%q", keys, v)
		}
	}
}

func TestSelectionFollowsRow(t *testing.T) {
	m := press(t, newTestModel(t, storm(), Options{}, 120, 40), "down", "down")
	id := m.tabs[viewTasks].selID
	// The same snapshot with the rows in another order.
	s := stormSnapshot()
	s.Keys[0], s.Keys[5] = s.Keys[5], s.Keys[0]
	s.Keys[1], s.Keys[2] = s.Keys[2], s.Keys[1]
	m = send(t, m, snapshotMsg{s})
	if m.tabs[viewTasks].selID != id || m.tabs[viewTasks].cursor != 1 {
		t.Errorf("selection %q at %d, want %q at 1", m.tabs[viewTasks].selID, m.tabs[viewTasks].cursor, id)
	}
	// At the top the cursor stays at the top: the hottest row.
	m = press(t, m, "home")
	m = send(t, m, snapshotMsg{stormSnapshot()})
	if m.tabs[viewTasks].cursor != 0 {
		t.Errorf("cursor %d, want 0", m.tabs[viewTasks].cursor)
	}
}

func TestNavigation(t *testing.T) {
	m := newTestModel(t, storm(), Options{}, 80, 15) // 7 rows visible
	m = press(t, m, "pgdown")
	if c := m.tabs[viewTasks].cursor; c != m.listHeight() {
		t.Errorf("pgdown: cursor %d", c)
	}
	m = press(t, m, "end")
	if c := m.tabs[viewTasks].cursor; c != 12 {
		t.Errorf("end: cursor %d", c)
	}
	if !strings.Contains(m.View(), "d15ea5e0") {
		t.Errorf("the last row is not shown after end")
	}
	m = press(t, m, "down", "pgup", "up", "home")
	if c, o := m.tabs[viewTasks].cursor, m.tabs[viewTasks].offset; c != 0 || o != 0 {
		t.Errorf("home: cursor %d offset %d", c, o)
	}
}

func TestWaitingAndEmpty(t *testing.T) {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	m := newModel(Options{Source: storm()}, r)
	if v := m.View(); !strings.Contains(v, "starting") {
		t.Errorf("before the size is known: %q", v)
	}
	m = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	if v := m.View(); !strings.Contains(v, "waiting for the first snapshot") {
		t.Errorf("before the first snapshot:\n%s", v)
	}
	checkScreen(t, m.View(), 80, 24)
	m = send(t, m, snapshotMsg{&analyzer.Snapshot{TakenAt: t0, StartedAt: t0}})
	v := m.View()
	if !strings.Contains(v, "no watched keys polled yet") || !strings.Contains(v, "no queries in the last 10 s") {
		t.Errorf("empty snapshot:\n%s", v)
	}
	if v := press(t, m, "4").View(); !strings.Contains(v, "no findings") {
		t.Errorf("empty findings:\n%s", v)
	}
}

// TestKeysTogether: keys read in one go arrive as one message with several runes; each must
// still count as a key.
func TestKeysTogether(t *testing.T) {
	calls := 0
	export := func() (string, error) { calls++; return "/tmp/r.json", nil }
	m := newTestModel(t, storm(), Options{Export: export}, 80, 24)
	m, cmd := sendCmd(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("pe")})
	if !m.paused || cmd == nil {
		t.Fatalf("\"pe\": paused %v, cmd %v", m.paused, cmd != nil)
	}
	m = press(t, m, "p")
	m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("/c0ff")})
	if !m.filtering || m.input.Value() != "c0ff" {
		t.Fatalf("\"/c0ff\": filtering %v, input %q", m.filtering, m.input.Value())
	}
	// A paste goes to the filter whole, and is ignored outside it.
	m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("ee q"), Paste: true})
	if m.input.Value() != "c0ffee q" {
		t.Errorf("paste into the filter: %q", m.input.Value())
	}
	m = press(t, m, "esc")
	m, cmd = sendCmd(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("qq"), Paste: true})
	if cmd != nil || m.filtering {
		t.Errorf("a paste outside the filter did something")
	}
}

func TestLineInput(t *testing.T) {
	in := lineInput{limit: 10}
	for _, k := range []tea.KeyMsg{
		{Type: tea.KeyRunes, Runes: []rune("hello")}, {Type: tea.KeySpace}, {Type: tea.KeyRunes, Runes: []rune("world!")},
	} {
		in = in.Update(k)
	}
	if in.Value() != "hello worl" {
		t.Errorf("limit: %q", in.Value())
	}
	in = in.Update(tea.KeyMsg{Type: tea.KeyCtrlW})
	if in.Value() != "hello " {
		t.Errorf("ctrl+w: %q", in.Value())
	}
	in = in.Update(tea.KeyMsg{Type: tea.KeyHome})
	in = in.Update(tea.KeyMsg{Type: tea.KeyDelete})
	in = in.Update(tea.KeyMsg{Type: tea.KeyRight})
	in = in.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("L")})
	if in.Value() != "eLllo " {
		t.Errorf("editing: %q", in.Value())
	}
	old := in
	in = in.Update(tea.KeyMsg{Type: tea.KeyBackspace})
	if old.Value() != "eLllo " || in.Value() != "ello " {
		t.Errorf("backspace: %q, and the old value %q", in.Value(), old.Value())
	}
	in = in.Update(tea.KeyMsg{Type: tea.KeyEnd})
	in = in.Update(tea.KeyMsg{Type: tea.KeyCtrlU})
	if in.Value() != "" {
		t.Errorf("ctrl+u: %q", in.Value())
	}
}

func TestFilterOtherViews(t *testing.T) {
	m := newTestModel(t, storm(), Options{}, 100, 30)
	for _, c := range []struct {
		view, text string
		rows       int
		shown      string
	}{
		{"2", "orders", 2, "INSERT INTO orders"},
		{"2", "celery_taskmeta", 2, "UPDATE celery_taskmeta"},
		{"3", "BEAT", 1, "celery-beat"},
		{"4", "churn", 1, "Connection churn"},
		{"4", "SUCCESS", 1, "kept being polled"},
		{"1", "storm", 1, "9b1deb4d"},
	} {
		m = press(t, m, c.view, "/")
		m = press(t, typeText(t, m, c.text), "enter")
		if len(m.rows) != c.rows || !strings.Contains(m.View(), c.shown) {
			t.Errorf("view %s, filter %q: %d rows, want %d with %q:\n%s", c.view, c.text, len(m.rows), c.rows, c.shown, m.View())
		}
		m = press(t, m, "esc")
	}
}

func TestDetailOfVanishedRow(t *testing.T) {
	m := press(t, newTestModel(t, storm(), Options{}, 80, 24), "end", "enter")
	s := stormSnapshot()
	s.Keys = s.Keys[:len(s.Keys)-1] // the last key is evicted
	m = send(t, m, snapshotMsg{s})
	v := m.View()
	if !m.detail.stale || !strings.Contains(v, "gone from the latest snapshot") || !strings.Contains(v, "d15ea5e0") {
		t.Errorf("vanished key:\n%s", v)
	}
	if m = press(t, m, "esc"); m.detail.open {
		t.Error("esc does not close a stale detail")
	}
	if m = press(t, m, "4", "enter"); m.detail.open {
		t.Error("findings have no detail screen")
	}
}

// TestReuseInHeader: with server connection reuse on (the snapshot carries its counters), the
// first line counts the reuses; without it, the word does not appear.
func TestReuseInHeader(t *testing.T) {
	withReuse := func() *fakeSource {
		s := stormSnapshot()
		s.Reuse = &analyzer.ReuseStats{Reused: 4117, Kept: 4120, Idle: 3}
		return &fakeSource{snaps: []*analyzer.Snapshot{s}}
	}
	m := newTestModel(t, withReuse(), Options{}, 120, 40)
	if line := strings.Split(m.View(), "\n")[0]; !strings.Contains(line, "reused 4117") {
		t.Errorf("header line %q lacks the reuse count", line)
	}
	checkScreen(t, newTestModel(t, withReuse(), Options{}, 80, 24).View(), 80, 24)
	if line := strings.Split(newTestModel(t, storm(), Options{}, 120, 40).View(), "\n")[0]; strings.Contains(line, "reused") {
		t.Errorf("header line %q mentions reuse while it is off", line)
	}
}

// TestSweepInTasksView: a parent spinning over a large group polls each key under the storm
// rate, so no row of the table storms; the poller's storm heads the Tasks view, and the
// header says SPIN LOOP.
func TestSweepInTasksView(t *testing.T) {
	s := stormSnapshot()
	for i := range s.Keys {
		s.Keys[i].Storming, s.Keys[i].Spinning = false, false
	}
	s.Pollers = []analyzer.PollerStat{
		{Address: "10.1.2.3", ApplicationName: "celery-parent", User: "app", Database: "results", Table: "celery_taskmeta", Column: "task_id",
			Polls: 90_000, PollQPS10: 4366, QueryShare: 0.27, Keys: 39570, KeyGapMs: 9100, WaitsPct: 0, Storming: true, Spinning: true},
		{Address: "10.1.2.4", ApplicationName: "reporter", User: "app", Database: "results", Table: "celery_taskmeta", Column: "task_id",
			Polls: 9_000, PollQPS10: 150, QueryShare: 0.01, Keys: 900, KeyGapMs: 6000, WaitsPct: 100, Storming: true},
		{Address: "10.1.2.5", ApplicationName: "quiet", Polls: 10, PollQPS10: 1, Keys: 3, WaitsPct: 100},
	}
	s.Totals.StormsActive = 2
	eachSize(t, func(t *testing.T, w, h int) {
		m := newTestModel(t, &fakeSource{snaps: []*analyzer.Snapshot{s}}, Options{}, w, h)
		v := m.View()
		if n := strings.Count(v, "[SPIN LOOP]"); n != 2 {
			t.Errorf("[SPIN LOOP] %d times, want 2 (the header and the spinning poller):\n%s", n, v)
		}
		want := []string{"[SPIN LOOP] celery-parent 10.1.2.3 app@results: 39570 keys, 4366 polls/s", "[POLLER] reporter 10.1.2.4"}
		if w >= 120 {
			want = append(want, "celery-parent 10.1.2.3 app@results: 39570 keys, 4366 polls/s (27% of queries), waited in 0% of key gaps")
		}
		for _, want := range want {
			if !strings.Contains(v, want) {
				t.Errorf("Tasks view lacks %q:\n%s", want, v)
			}
		}
		if strings.Contains(v, "quiet") {
			t.Errorf("a poller that does not storm is in the strip:\n%s", v)
		}
		checkScreen(t, v, w, h)
	})
}
