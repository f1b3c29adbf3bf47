package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// nastyKeys need escaping in HTML and Markdown.
var nastyKeys = []keySpec{
	{key: `<script>alert("k")</script>`, perSec: 40, storming: true},
	{key: "a|b", perSec: 30, storming: true},
	{key: "ключ-ü-✓", perSec: 20},
	{key: "`tick` & *star* _u_", perSec: 10},
}

func htmlCases(t *testing.T) []struct {
	name string
	r    *Report
} {
	s, src := secretSnapshot(t)
	story := FromSnapshot(storySnapshot(t0, 600, incidentKeys(), "app-1"), Source{Listen: "127.0.0.1:6543", Upstream: "db:5432", Host: "app-1"})
	var many []keySpec
	for i := range 40 {
		many = append(many, keySpec{key: fmt.Sprintf("task-%02d", i), perSec: uint32(i + 1)})
	}
	other := FromSnapshot(storySnapshot(t0.Add(3*time.Second), 600, incidentKeys()[:4], "app-2"), Source{Host: "app-2"})
	merged, err := Merge(story, other)
	if err != nil {
		t.Fatal(err)
	}
	oneSecond := FromSnapshot(storySnapshot(t0, 1, incidentKeys()[:1], "h"), Source{})
	noTimeline := FromSnapshot(storySnapshot(t0, 0, nil, "h"), Source{})
	return []struct {
		name string
		r    *Report
	}{
		{"story", story},
		{"real analyzer, empty timeline", FromSnapshot(s, src)},
		{"nasty keys", FromSnapshot(storySnapshot(t0, 90, nastyKeys, "h"), Source{Host: `<b>host</b>`})},
		{"40 keys", FromSnapshot(storySnapshot(t0, 45, many, "h"), Source{})},
		{"one second", oneSecond},
		{"nothing", noTimeline},
		{"merged", merged},
	}
}

func TestHTML(t *testing.T) {
	for _, c := range htmlCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteHTML(&buf, c.r); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			text := textOf(doc)

			// Self-contained: nothing runs, nothing is fetched.
			for n := range doc.Descendants() {
				if n.Type != html.ElementNode {
					continue
				}
				if n.DataAtom == atom.Script || n.DataAtom == atom.Link || n.DataAtom == atom.Iframe || n.DataAtom == atom.Img {
					t.Fatalf("<%s> element in the page", n.Data)
				}
				for _, a := range n.Attr {
					if a.Key == "src" || a.Key == "href" || strings.HasPrefix(a.Key, "on") {
						t.Fatalf("<%s %s=%q>", n.Data, a.Key, a.Val)
					}
				}
				if n.DataAtom == atom.Style && (strings.Contains(textOf(n), "url(") || strings.Contains(textOf(n), "@import")) {
					t.Fatal("the stylesheet loads something")
				}
			}

			// The headline, big.
			h1 := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.H1 })
			if h1 == nil || len(textOf(h1)) < 10 {
				t.Fatal("no headline")
			}
			if c.r.Rates.QPS10 > 0 && textOf(h1) != c.r.Headline {
				t.Fatalf("headline %q, want %q", textOf(h1), c.r.Headline)
			}

			// Every key of the JSON's keys[] is on the page.
			var js struct {
				Keys []struct {
					Key string `json:"key"`
				} `json:"keys"`
			}
			var jb bytes.Buffer
			WriteJSON(&jb, c.r)
			if err := json.Unmarshal(jb.Bytes(), &js); err != nil {
				t.Fatal(err)
			}
			for _, k := range js.Keys {
				if !strings.Contains(text, k.Key) {
					t.Errorf("key %q not on the page", k.Key)
				}
			}
			// Every poller in the Pollers section, with its badges.
			if pollers := find(doc, func(n *html.Node) bool { return attr(n, "id") == "pollers" }); len(c.r.Pollers) > 0 {
				if pollers == nil {
					t.Fatal("no Pollers section")
				}
				pt := textOf(pollers)
				for _, p := range c.r.Pollers {
					if !strings.Contains(pt, p.ApplicationName) || p.Spinning && !strings.Contains(pt, "SPIN") {
						t.Errorf("poller %s (spinning %v) not in the Pollers section: %q", p.ApplicationName, p.Spinning, pt)
					}
				}
			} else if pollers != nil {
				t.Error("a Pollers section without pollers")
			}
			// Findings with their evidence and fix.
			for _, f := range c.r.Findings {
				for _, want := range append([]string{f.Summary, f.Fix}, f.Evidence...) {
					if !strings.Contains(text, want) {
						t.Errorf("finding text %q not on the page", want)
					}
				}
			}
			// Fingerprints' normalized statements in <code>.
			for _, f := range c.r.Fingerprints {
				if find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Code && textOf(n) == f.Query }) == nil {
					t.Errorf("statement %q not in a <code>", f.Query)
				}
			}

			// The chart: a path per series, one series per top key.
			svg := find(doc, func(n *html.Node) bool {
				return n.Data == "svg" && strings.HasPrefix(attr(n, "aria-label"), "queries per second")
			})
			if len(c.r.Timeline) == 0 {
				if svg != nil {
					t.Fatal("a chart of an empty timeline")
				}
				if !strings.Contains(text, "nothing to chart") {
					t.Fatal("no word about the empty chart")
				}
				return
			}
			if svg == nil {
				t.Fatal("no chart")
			}
			series := map[string]string{} // title -> d
			for n := range svg.Descendants() {
				if (n.Data == "path" || n.Data == "polyline") && attr(n, "fill") == "none" {
					title := find(n, func(n *html.Node) bool { return n.Data == "title" })
					if title == nil {
						t.Fatal("a series without a title")
					}
					d := attr(n, "d") + attr(n, "points")
					if !strings.Contains(d, "L") && attr(n, "points") == "" {
						t.Errorf("series %q draws nothing: d=%q", textOf(title), d)
					}
					series[textOf(title)] = d
				}
			}
			want := []string{"all queries/s", "watched polls/s"}
			for _, k := range topKeys(c.r.Keys, chartKeys) {
				want = append(want, k.Table+"."+k.Column+" = "+k.Key)
			}
			if len(series) != len(want) {
				t.Errorf("%d series drawn, want %d: %v", len(series), len(want), keysOf(series))
			}
			for _, w := range want {
				found := false
				for title := range series {
					found = found || strings.HasPrefix(title, w+" (max ")
				}
				if !found {
					t.Errorf("no series %q among %v", w, keysOf(series))
				}
			}
			// Axes carry labels.
			var labels int
			for n := range svg.Descendants() {
				if n.Type == html.ElementNode && n.Data == "text" {
					labels++
				}
			}
			if labels < 4 {
				t.Errorf("%d labels on the chart", labels)
			}
		})
	}
}

// TestHTMLEscapes checks that keys and hosts are text, never markup.
func TestHTMLEscapes(t *testing.T) {
	r := FromSnapshot(storySnapshot(t0, 90, nastyKeys, "h"), Source{Host: `<b>host</b>`})
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `<script>alert`) || strings.Contains(buf.String(), "<b>host</b>") {
		t.Fatal("unescaped markup from the data")
	}
	doc, _ := html.Parse(&buf)
	if find(doc, func(n *html.Node) bool { return n.DataAtom == atom.B && textOf(n) == "host" }) != nil {
		t.Fatal("the host name became an element")
	}
}

// TestChartAlignsKeysToTimelineEnd checks the geometry: a key's history ends where the
// timeline ends, and its per-second values map to the same y as the timeline's.
func TestChartAlignsKeysToTimelineEnd(t *testing.T) {
	r := &Report{Timeline: []Second{}, Keys: []Key{{Table: "t", Column: "c", Key: "k", Polls: 5, History: []uint32{0, 0, 0, 5}}}}
	for i := range 120 {
		r.Timeline = append(r.Timeline, Second{Time: t0.Add(time.Duration(i) * time.Second), Queries: 10, Watched: 5})
	}
	c := buildChart(r)
	if len(c.Series) != 3 {
		t.Fatalf("%d series", len(c.Series))
	}
	watched, key := c.Series[1].D, c.Series[2].D
	lastW := watched[strings.LastIndex(watched, "L")+1:]
	lastK := key[strings.LastIndex(key, "L")+1:]
	if lastW != lastK {
		t.Fatalf("the key ends at %s, the watched line at %s", lastK, lastW)
	}
	if c.Series[2].Points != 4 || !c.HasKeyWindow || c.KeyWindowFrom <= c.X0 {
		t.Fatalf("key series %+v, window %v at %v", c.Series[2], c.HasKeyWindow, c.KeyWindowFrom)
	}
	// A gap in a merged timeline lifts the pen.
	r.Timeline = append(r.Timeline[:10], r.Timeline[20:]...)
	if d := buildChart(r).Series[0].D; strings.Count(d, "M") != 2 {
		t.Fatalf("path across a gap: %s", d)
	}
}

func TestNiceScale(t *testing.T) {
	cases := []struct{ top, max, step float64 }{
		{0, 1, 0.25}, {683, 800, 200}, {597, 600, 200}, {9, 10, 2}, {1, 1, 1}, {0.3, 0.3, 0.1}, {12345, 12500, 2500},
	}
	for _, c := range cases {
		m, s := niceScale(c.top, 5)
		if m < c.top || mathAbs(m-c.max) > 1e-9 || mathAbs(s-c.step) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.top, m, s, c.max, c.step)
		}
	}
}

func mathAbs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func find(n *html.Node, pred func(*html.Node) bool) *html.Node {
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && pred(d) {
			return d
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// rendered is a report as a person reads it: the HTML page, the Markdown and the text.
type rendered struct {
	doc      *html.Node
	md, text string
}

func render(t *testing.T, r *Report) rendered {
	t.Helper()
	var hb, mb, tb bytes.Buffer
	if err := WriteHTML(&hb, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&mb, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&tb, r); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&hb)
	if err != nil {
		t.Fatal(err)
	}
	return rendered{doc: doc, md: mb.String(), text: tb.String()}
}

// section is the page's section with that id; nil when it has none.
func (p rendered) section(id string) *html.Node {
	return find(p.doc, func(n *html.Node) bool { return n.DataAtom == atom.Section && attr(n, "id") == id })
}

// TestCoalescingSections: the cache's numbers and the what-if table, in HTML and Markdown,
// exactly when the report has them.
func TestCoalescingSections(t *testing.T) {
	s, src := secretSnapshot(t)
	withCache := FromSnapshot(s, src)
	story := FromSnapshot(storySnapshot(t0, 60, incidentKeys(), "h"), Source{})
	empty := FromSnapshot(analyzer.New(analyzer.Config{}).Snapshot(), Source{}) // an analyzer that saw nothing
	old := FromSnapshot(storySnapshot(t0, 60, incidentKeys(), "h"), Source{})
	old.WhatIf = nil // a report written before the estimate existed

	if withCache.WhatIf[1].Polls == 0 || withCache.WhatIf[1].Saved == 0 {
		t.Fatalf("the real analyzer estimated nothing: %+v", withCache.WhatIf)
	}
	cacheWants := []string{"Coalescing", "on", "500 ms", "read-committed", "9,876", "124", "99%", "9,901", "3 of 10,000",
		"1.5 KiB of 64 MiB", "250 ms", "499 ms", "discarded fills", "bypassed"}
	cases := []struct {
		name           string
		r              *Report
		cache, whatIf  bool
		nothingToSave  bool
		whatIfSentence string
	}{
		{"cache on, real analyzer", withCache, true, true, false, whatIfSentence(withCache.WhatIf)},
		{"no cache", story, false, true, false, "A 500 ms cache would have answered 34,620 of the 35,820 watched polls (97%) without asking the server."},
		{"no polls", empty, false, true, true, ""},
		{"no estimate", old, false, false, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page := render(t, c.r)
			md := page.md

			cs := page.section("coalescing")
			if (cs != nil) != c.cache || strings.Contains(md, "## Coalescing") != c.cache {
				t.Fatalf("coalescing section in HTML %v, in Markdown %v; want %v", cs != nil, strings.Contains(md, "## Coalescing"), c.cache)
			}
			if c.cache {
				text := textOf(cs)
				for _, w := range cacheWants {
					if !strings.Contains(text, w) || !strings.Contains(md, mdText(w)) {
						t.Errorf("coalescing section lacks %q", w)
					}
				}
			}

			ws := page.section("what-if")
			if (ws != nil) != c.whatIf || strings.Contains(md, "## What coalescing would save") != c.whatIf {
				t.Fatalf("what-if section in HTML %v, want %v", ws != nil, c.whatIf)
			}
			if !c.whatIf {
				return
			}
			text := textOf(ws)
			if c.nothingToSave {
				if !strings.Contains(text, "nothing a cache could have saved") || !strings.Contains(md, "nothing a cache could have saved") {
					t.Fatalf("no polls, but:\n%s", text)
				}
				return
			}
			if !strings.Contains(text, c.whatIfSentence) || !strings.Contains(md, mdText(c.whatIfSentence)) {
				t.Errorf("sentence %q missing:\n%s", c.whatIfSentence, text)
			}
			// One row per TTL, with its numbers, in both formats.
			var rows []*html.Node
			for n := range ws.Descendants() {
				if n.DataAtom == atom.Tr && n.Parent.DataAtom == atom.Tbody {
					rows = append(rows, n)
				}
			}
			if len(rows) != len(c.r.WhatIf) {
				t.Fatalf("%d rows, want %d", len(rows), len(c.r.WhatIf))
			}
			for i, w := range c.r.WhatIf {
				var cells []string
				for td := range rows[i].ChildNodes() {
					cells = append(cells, textOf(td))
				}
				want := []string{fmtMs(w.TTLMs), fmtInt(w.Polls), fmtInt(w.Saved), fmtPct(float64(w.Saved), float64(w.Polls)), fmtInt(w.Polls - w.Saved)}
				if strings.Join(cells, "|") != strings.Join(want, "|") {
					t.Errorf("row %d: %q, want %q", i, cells, want)
				}
				for j := range want {
					want[j] = mdText(want[j])
				}
				mdRow := "| " + strings.Join(want, " | ") + " |"
				if w.TTLMs == 500 {
					mdRow = "| **" + strings.Join(want, "** | **") + "** |"
				}
				if !strings.Contains(md, mdRow) {
					t.Errorf("Markdown lacks the row %q", mdRow)
				}
			}
		})
	}
}

// TestReuseSection: server connection reuse's numbers, in HTML and Markdown, exactly when the
// report has them.
func TestReuseSection(t *testing.T) {
	s, src := secretSnapshot(t)
	withReuse := FromSnapshot(s, src)
	without := FromSnapshot(s, src)
	without.Reuse = nil
	if withReuse.Reuse == nil || *withReuse.Reuse != (Reuse{Reused: 4_117, Kept: 4_120, Discarded: 2, Idle: 1}) {
		t.Fatalf("reuse %+v", withReuse.Reuse)
	}
	share := fmtPct(4_117, float64(withReuse.Totals.Connections))
	for _, c := range []struct {
		name string
		r    *Report
		want bool
	}{{"reuse on", withReuse, true}, {"reuse off", without, false}} {
		t.Run(c.name, func(t *testing.T) {
			page := render(t, c.r)
			sec, md := page.section("reuse"), page.md
			if (sec != nil) != c.want || strings.Contains(md, "## Server connection reuse") != c.want {
				t.Fatalf("reuse section in HTML %v, in Markdown %v; want %v", sec != nil, strings.Contains(md, "## Server connection reuse"), c.want)
			}
			if !c.want {
				return
			}
			text := textOf(sec)
			for _, w := range []string{"Server connection reuse", "4,117", "4,120", "kept", "discarded", "idle", share} {
				if !strings.Contains(text, w) || !strings.Contains(md, mdText(w)) {
					t.Errorf("reuse section lacks %q", w)
				}
			}
		})
	}
}

// TestQueuesAndTags: the job queues and attribution tags of a snapshot, in the HTML page, the
// Markdown and the text summary, exactly when the report has them; a server log's unknown
// empty polls are "not in a log", never 0%.
func TestQueuesAndTags(t *testing.T) {
	proxy := FromSnapshot(storySnapshot(t0, 60, incidentKeys()[:2], "app-1"), Source{Host: "app-1"})
	fromLog := FromSnapshot(storySnapshot(t0, 60, incidentKeys()[:2], "app-1"), Source{Input: "server log: pg.log"})
	fromLog.NoAnswers = true
	fromLog.Queues[0].EmptyPolls, fromLog.Queues[0].EmptyPct = -1, -1
	without := FromSnapshot(storySnapshot(t0, 60, incidentKeys()[:2], "app-1"), Source{})
	without.Queues, without.Tags = []Queue{}, []Tag{}
	for i := range without.Storms {
		without.Storms[i].Tags = nil
	}

	// The queue's row, cell by cell, as the page shows it; Markdown has the same cells.
	row := []string{"Obanoban", "oban_jobs", "3,000", "50", "50", "98%", "60", "1", "40 ms",
		"oban@app-1 10.0.4.1: 1,800 polls, 30/soban@app-1 10.0.4.2: 1,200 polls, 20/s", "job=PollJob (1,800)controller=jobs,action=show (1,200)"}
	mdRow := "| Oban | oban | `oban_jobs` | 3,000 | 50 | 50 | 98% | 60 | 1 | 40 ms | oban@app-1 10.0.4.1: 1,800 polls, 30/s; oban@app-1 10.0.4.2: 1,200 polls, 20/s | " +
		mdText("job=PollJob (1,800); controller=jobs,action=show (1,200)") + " |"
	textLine := "  Oban on oban_jobs: 3,000 polls, 50/s (avg 50/s), 98% empty, 60 enqueued (1/s), median interval 40 ms; " +
		"clients: oban@app-1 10.0.4.1: 1,800 polls, 30/s; oban@app-1 10.0.4.2: 1,200 polls, 20/s; tags: job=PollJob (1,800); controller=jobs,action=show (1,200)\n"
	tagRows := [][]string{{"job=PollJob", "1,860", "31", "1,800", "30"}, {"controller=jobs,action=show", "1,500", "25", "1,200", "20"}}
	stormTags := "tags: task=wait_for_group (3,600)"

	for _, c := range []struct {
		name  string
		r     *Report
		empty string // the empty cell; "" when there is no queue
		text  string // the same in the text
	}{{"proxy", proxy, "98%", "98% empty"}, {"server log", fromLog, notInLog, "empty polls not in a log"}, {"without", without, "", ""}} {
		t.Run(c.name, func(t *testing.T) {
			page := render(t, c.r)
			bodyRows := func(n *html.Node) [][]string {
				var out [][]string
				for tr := range n.Descendants() {
					if tr.DataAtom == atom.Tr && tr.Parent.DataAtom == atom.Tbody {
						var cells []string
						for td := range tr.ChildNodes() {
							cells = append(cells, textOf(td))
						}
						out = append(out, cells)
					}
				}
				return out
			}
			md, text := page.md, page.text
			qs, ts := page.section("queues"), page.section("tags")
			if c.empty == "" {
				if qs != nil || ts != nil || strings.Contains(md, "## Job queues") || strings.Contains(md, "## Attribution tags") ||
					strings.Contains(text, "Job queues") || strings.Contains(text, "Attribution tags") || strings.Contains(textOf(page.doc)+md+text, "tags: ") {
					t.Fatal("queues or tags rendered for a report without them")
				}
				return
			}
			if qs == nil || ts == nil {
				t.Fatalf("queues section %v, tags section %v", qs != nil, ts != nil)
			}
			wantRow := slices.Clone(row)
			wantRow[5] = c.empty
			if got := bodyRows(qs); len(got) != 1 || !slices.Equal(got[0], wantRow) {
				t.Errorf("queue row\n got %q\nwant %q", got, wantRow)
			}
			if want := strings.Replace(mdRow, "| 98% |", "| "+mdText(c.empty)+" |", 1); !strings.Contains(md, want) {
				t.Errorf("Markdown lacks the queue row %q:\n%s", want, md)
			}
			if want := strings.Replace(textLine, "98% empty", c.text, 1); !strings.Contains(text, "Job queues (1)\n"+want) {
				t.Errorf("text lacks %q:\n%s", want, text)
			}
			if got := bodyRows(ts); !reflect.DeepEqual(got, tagRows) {
				t.Errorf("tag rows %q, want %q", got, tagRows)
			}
			for _, r := range tagRows {
				if want := "| " + mdCode(r[0]) + " | " + strings.Join(r[1:], " | ") + " |"; !strings.Contains(md, want) {
					t.Errorf("Markdown lacks the tag row %q", want)
				}
				if want := fmt.Sprintf("  %s: %s queries (%s/s), %s polls (%s/s)\n", r[0], r[1], r[2], r[3], r[4]); !strings.Contains(text, want) {
					t.Errorf("text lacks the tag line %q", want)
				}
			}
			// Each storm names the tags its polls carried, in every format.
			storms := page.section("storms")
			for _, st := range c.r.Storms {
				want := "tags: " + joinItems(tagItems(st.Tags))
				if !strings.Contains(textOf(storms), want) || !strings.Contains(md, mdText(want)) || !strings.Contains(text, want) {
					t.Errorf("storm of %s%s lacks %q", st.Key, st.Address, want)
				}
			}
			if !strings.Contains(textOf(storms), stormTags) {
				t.Errorf("storms lack %q", stormTags)
			}
		})
	}

	// The JSON carries every field, the unknown as -1.
	var jb bytes.Buffer
	if err := WriteJSON(&jb, fromLog); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(jb.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"queues[].queue": "oban", "queues[].library": "Oban", "queues[].tables": "oban_jobs", "queues[].polls": 3000.0,
		"queues[].empty_polls": -1.0, "queues[].empty_pct": -1.0, "queues[].enqueued": 60.0, "queues[].polls_per_sec_10s": 50.0,
		"queues[].polls_per_sec": 50.0, "queues[].enqueued_per_sec": 1.0, "queues[].interval_p50_ms": 40.0,
		"queues[].clients[].address": "10.0.4.1", "queues[].clients[].empty_polls": 29.0 * 60, "queues[].clients[].polls_per_sec_10s": 30.0,
		"queues[].clients[].interval_p50_ms": 33.0, "queues[].tags[].tag": "job=PollJob", "queues[].tags[].count": 1800.0, "queues[].tags[].per_sec_10s": 30.0,
		"tags[].tag": "job=PollJob", "tags[].queries": 1860.0, "tags[].polls": 1800.0, "tags[].qps_10s": 31.0, "tags[].polls_per_sec_10s": 30.0,
		"storms[].tags[].tag": "task=wait_for_group",
	} {
		if got := walk(t, doc, strings.Split(path, ".")); got[0] != want {
			t.Errorf("%s = %v, want %v", path, got[0], want)
		}
	}
}
