package report

import (
	"bytes"
	"encoding/json"
	"fmt"
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
			var hb, mb bytes.Buffer
			if err := WriteHTML(&hb, c.r); err != nil {
				t.Fatal(err)
			}
			if err := WriteMarkdown(&mb, c.r); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(&hb)
			if err != nil {
				t.Fatal(err)
			}
			section := func(id string) *html.Node {
				return find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Section && attr(n, "id") == id })
			}
			md := mb.String()

			cs := section("coalescing")
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

			ws := section("what-if")
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
			var hb, mb bytes.Buffer
			if err := WriteHTML(&hb, c.r); err != nil {
				t.Fatal(err)
			}
			if err := WriteMarkdown(&mb, c.r); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(&hb)
			if err != nil {
				t.Fatal(err)
			}
			sec := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Section && attr(n, "id") == "reuse" })
			md := mb.String()
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
