package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

var t0 = time.Date(2026, 11, 24, 8, 15, 0, 0, time.UTC)

func TestJSONRoundTrip(t *testing.T) {
	s, src := secretSnapshot(t)
	a, b := mergeInputs()
	merged, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    *Report
	}{
		{"real analyzer", FromSnapshot(s, src)},
		{"merged", merged},
		{"story", FromSnapshot(storySnapshot(t0, 120, incidentKeys(), "app-1"), Source{Listen: ":6543", Host: "app-1"})},
		{"empty snapshot", FromSnapshot(&analyzer.Snapshot{}, Source{})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "r.json")
			if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := Write(p, c.r); err != nil {
				t.Fatal(err)
			}
			got, err := Read(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.r) {
				a, _ := json.Marshal(c.r)
				b, _ := json.Marshal(got)
				t.Fatalf("round trip differs:\nwrote %s\nread  %s", a, b)
			}
			// Replaced atomically: no temporary file is left behind, and the file is readable.
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("directory holds %d entries, want only r.json", len(entries))
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
				t.Fatalf("mode %v", fi.Mode())
			}
			// Every slice is [] in JSON, never null, so consumers can iterate without checks.
			if strings.Contains(readFile(t, p), "null") {
				t.Fatalf("null in JSON:\n%s", readFile(t, p))
			}
		})
	}
}

// TestStableFields walks the paths docs/report.md promises for schema_version 1.
func TestStableFields(t *testing.T) {
	s, src := secretSnapshot(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, FromSnapshot(s, src)); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	type kind int
	const (
		number kind = iota
		str
		timestamp
		boolean
		array
		object
	)
	paths := []struct {
		path string
		want kind
	}{
		{"schema_version", number}, {"started_at", timestamp}, {"ended_at", timestamp}, {"generator", str},
		{"proxies[].listen", str}, {"proxies[].upstream", str}, {"proxies[].host", str}, {"proxies[].started_at", timestamp}, {"proxies[].ended_at", timestamp},
		{"totals.queries", number}, {"totals.watched_lookups", number}, {"totals.connections", number},
		{"rates.qps_10s", number}, {"headline", str}, {"timeline", array},
		{"keys[].table", str}, {"keys[].column", str}, {"keys[].key", str}, {"keys[].polls", number},
		{"keys[].unchanged_polls", number}, {"keys[].last_status", str}, {"keys[].median_interval_ms", number},
		{"keys[].peak_qps", number}, {"keys[].clients", number}, {"keys[].history", array},
		{"fingerprints[].fingerprint", str}, {"fingerprints[].query", str}, {"fingerprints[].calls", number},
		{"fingerprints[].mean_ms", number}, {"fingerprints[].watched", boolean},
		{"clients[].address", str}, {"clients[].application_name", str}, {"clients[].queries", number}, {"clients[].connections", number},
		{"storms[].kind", str}, {"storms[].started_at", timestamp},
		{"findings[].kind", str}, {"findings[].summary", str}, {"findings[].evidence", array}, {"findings[].fix", str},
		{"watches[].table", str}, {"repeats", array},
		{"keys[].what_if_saved_500ms", number},
		{"what_if[].ttl_ms", number}, {"what_if[].polls", number}, {"what_if[].saved", number}, {"what_if[].saved_share", number},
		{"coalesce.enabled", boolean}, {"coalesce.ttl_ms", number}, {"coalesce.scope", str}, {"coalesce.hits", number},
		{"coalesce.misses", number}, {"coalesce.fills", number}, {"coalesce.invalidations", number},
		{"coalesce.discarded_fills", number}, {"coalesce.bypassed", number}, {"coalesce.entries", number},
		{"coalesce.bytes", number}, {"coalesce.max_entries", number}, {"coalesce.max_bytes", number},
		{"coalesce.age_p50_ms", number}, {"coalesce.age_max_ms", number}, {"coalesce.saved", number},
		{"reuse.reused", number}, {"reuse.kept", number}, {"reuse.discarded", number}, {"reuse.idle", number},
	}
	for _, p := range paths {
		t.Run(p.path, func(t *testing.T) {
			vals := walk(t, doc, strings.Split(p.path, "."))
			if len(vals) == 0 {
				t.Fatalf("%s: no value", p.path)
			}
			for _, v := range vals {
				var ok bool
				switch p.want {
				case number:
					_, ok = v.(float64)
				case str:
					_, ok = v.(string)
				case boolean:
					_, ok = v.(bool)
				case array:
					_, ok = v.([]any)
				case object:
					_, ok = v.(map[string]any)
				case timestamp:
					if s, isStr := v.(string); isStr {
						_, err := time.Parse(time.RFC3339Nano, s)
						ok = err == nil
					}
				}
				if !ok {
					t.Fatalf("%s = %#v (%T), wrong type", p.path, v, v)
				}
			}
		})
	}
	if doc["schema_version"] != float64(1) {
		t.Fatalf("schema_version %v", doc["schema_version"])
	}
}

// walk follows a path like keys[].table, fanning out over arrays (which must not be empty).
func walk(t *testing.T, v any, path []string) []any {
	t.Helper()
	if len(path) == 0 {
		return []any{v}
	}
	name, each := strings.CutSuffix(path[0], "[]")
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("at %s: not an object: %#v", path[0], v)
	}
	child, ok := m[name]
	if !ok {
		t.Fatalf("field %q missing", name)
	}
	if !each {
		return walk(t, child, path[1:])
	}
	arr, ok := child.([]any)
	if !ok || len(arr) == 0 {
		t.Fatalf("%s: want a non-empty array, got %#v", name, child)
	}
	var out []any
	for _, e := range arr {
		out = append(out, walk(t, e, path[1:])...)
	}
	return out
}

// TestReportCoversSnapshot checks that every field the analyzer's snapshot serializes has a
// field of the same JSON name in the report: the report is "everything of the snapshot".
func TestReportCoversSnapshot(t *testing.T) {
	pairs := []struct{ snap, rep any }{
		{analyzer.Totals{}, Totals{}}, {analyzer.Rates{}, Rates{}}, {analyzer.Second{}, Second{}},
		{analyzer.KeyStat{}, Key{}}, {analyzer.FingerprintStat{}, Fingerprint{}}, {analyzer.ClientStat{}, Client{}},
		{analyzer.RepeatStat{}, Repeat{}}, {analyzer.Storm{}, Storm{}}, {analyzer.Finding{}, Finding{}},
		{analyzer.WatchStat{}, Watch{}}, {analyzer.CoalesceStats{}, Coalesce{}}, {analyzer.WhatIf{}, WhatIf{}},
		{analyzer.ReuseStats{}, Reuse{}},
		{analyzer.QueueStat{}, Queue{}}, {analyzer.QueueClient{}, QueueClient{}}, {analyzer.TagCount{}, TagCount{}}, {analyzer.TagStat{}, Tag{}},
		// The snapshot's own fields, but for taken_at/uptime_ns (ended_at and started_at here).
		{analyzer.Snapshot{}, Report{}},
	}
	for _, p := range pairs {
		have := jsonFields(reflect.TypeOf(p.rep))
		for f := range jsonFields(reflect.TypeOf(p.snap)) {
			if f == "taken_at" || f == "uptime_ns" {
				continue
			}
			// A snapshot's durations are nanoseconds (_ns); the report's are milliseconds (_ms).
			if base, ok := strings.CutSuffix(f, "_ns"); ok {
				f = base + "_ms"
			}
			if !have[f] {
				t.Errorf("analyzer.%s has JSON field %q that report.%s lacks", reflect.TypeOf(p.snap).Name(), f, reflect.TypeOf(p.rep).Name())
			}
		}
	}
}

func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

func TestFromSnapshotOwnsItsData(t *testing.T) {
	s := storySnapshot(t0, 30, incidentKeys()[:2], "h")
	r := FromSnapshot(s, Source{})
	s.Keys[0].History[59] = 12345
	s.Keys[0].Key = "changed"
	s.Findings[0].Evidence[0] = "changed"
	s.Timeline[0].Queries = 1
	s.Queues[0].Clients[0].Address = "changed"
	s.Queues[0].Tags[0].Tag = "changed"
	s.Storms[0].Tags[0].Tag = "changed"
	if r.Keys[0].History[59] == 12345 || r.Keys[0].Key == "changed" || r.Findings[0].Evidence[0] == "changed" || r.Timeline[0].Queries == 1 ||
		r.Queues[0].Clients[0].Address == "changed" || r.Queues[0].Tags[0].Tag == "changed" || r.Storms[0].Tags[0].Tag == "changed" {
		t.Fatal("the report shares memory with the snapshot")
	}
	if r.SchemaVersion != 1 || r.Generator != "pgpollwatch dev" || len(r.Proxies) != 1 {
		t.Fatalf("header %d %q %d", r.SchemaVersion, r.Generator, len(r.Proxies))
	}
	if !r.StartedAt.Equal(t0) || !r.EndedAt.Equal(s.TakenAt) || !r.Proxies[0].StartedAt.Equal(t0) {
		t.Fatalf("times %v %v", r.StartedAt, r.EndedAt)
	}
}

func TestReadRefuses(t *testing.T) {
	cases := []struct {
		name, data, want string
	}{
		{"not json", "<html></html>", "not a pgpollwatch JSON report"},
		{"no version", `{"totals":{"queries":1}}`, "no schema_version"},
		{"newer", `{"schema_version":2,"totals":{}}`, "newer than this pgpollwatch reads (1): upgrade"},
		{"zero", `{"schema_version":0}`, "unknown schema_version 0"},
		{"wrong type", `{"schema_version":1,"keys":{}}`, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "in.json")
			os.WriteFile(p, []byte(c.data), 0o644)
			_, err := Read(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err %v, want it to name the file and say %q", err, c.want)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.json")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
	// A newer minor revision of version 1 (an unknown field) still reads.
	p := filepath.Join(t.TempDir(), "in.json")
	os.WriteFile(p, []byte(`{"schema_version":1,"some_new_field":{"x":1},"totals":{"queries":5}}`), 0o644)
	if r, err := Read(p); err != nil || r.Totals.Queries != 5 {
		t.Fatalf("%v %+v", err, r)
	}
}

// TestReadWithoutWaits reads a report written before pgpollwatch measured waits: waits_pct is
// unknown (-1), not "never waited", and a merge with a newer report takes the newer's value.
func TestReadWithoutWaits(t *testing.T) {
	old := `{"schema_version":1,"keys":[{"table":"celery_taskmeta","column":"task_id","key":"k","polls":10,"median_interval_ms":5}],` +
		`"storms":[{"kind":"key","key":"k","spin":true,"median_interval_ms":5}]}`
	r, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if r.Keys[0].WaitsPct != -1 || r.Storms[0].WaitsPct != -1 || r.Keys[0].MedianIntervalMs != 5 || !r.Storms[0].Spin {
		t.Fatalf("key %+v, storm %+v", r.Keys[0], r.Storms[0])
	}
	if r, err = Decode([]byte(strings.Replace(old, `"polls":10,`, `"polls":10,"waits_pct":0,`, 1))); err != nil || r.Keys[0].WaitsPct != 0 {
		t.Fatalf("a present waits_pct of 0: %v %+v", err, r.Keys)
	}
	newer := *r
	newer.Keys = []Key{r.Keys[0]}
	newer.Keys[0].WaitsPct = 40
	older, _ := Decode([]byte(old))
	m, err := Merge(older, &newer)
	if err != nil {
		t.Fatal(err)
	}
	if m.Keys[0].WaitsPct != 40 {
		t.Fatalf("merged waits_pct %v, want the one report's 40", m.Keys[0].WaitsPct)
	}
}

// TestReadWithoutQueues: a report written before queues and tags were reported converts to one
// with empty lists of them, not null ones, and renders without their sections.
func TestReadWithoutQueues(t *testing.T) {
	r, err := Decode([]byte(`{"schema_version":1,"keys":[],"storms":[{"kind":"key","key":"k"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	js := buf.String()
	if !strings.Contains(js, `"queues": []`) || !strings.Contains(js, `"tags": []`) || strings.Contains(js, `"tags": null`) {
		t.Fatalf("old report written again:\n%s", js)
	}
	if page := render(t, r); page.section("queues") != nil || page.section("tags") != nil || strings.Contains(page.text, "Job queues") {
		t.Fatal("an old report renders queue or tag sections")
	}
}

func TestWriteFormats(t *testing.T) {
	r := FromSnapshot(storySnapshot(t0, 20, incidentKeys()[:3], "h"), Source{})
	cases := []struct {
		name, prefix, err string
	}{
		{"r.json", "{\n  \"schema_version\": 1,", ""},
		{"R.JSON", "{", ""},
		{"r.html", "<!DOCTYPE html>", ""},
		{"r.md", "# pgpollwatch report", ""},
		{"r.markdown", "# pgpollwatch report", ""},
		{"r.pdf", "", `unknown report format ".pdf": use .json, .html, .md or .markdown`},
		{"report", "", "no file extension: name the report file with .json, .html, .md or .markdown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, c.name)
			err := Write(p, r)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Fatalf("%d files written", len(entries))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, p); !strings.HasPrefix(got, c.prefix) {
				t.Fatalf("starts with %.60q, want %q", got, c.prefix)
			}
		})
	}
	// A directory that does not exist: an error naming the file, nothing left behind.
	if err := Write(filepath.Join(t.TempDir(), "no", "such", "r.json"), r); err == nil || !strings.Contains(err.Error(), "r.json") {
		t.Fatalf("err %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"":                                       "",
		"db.internal:5432":                       "db.internal:5432",
		"postgres://app:s3cr3t@db:5432/app":      "postgres://app:xxxxx@db:5432/app",
		"postgres://db:5432/app?password=s3cr3t": "postgres://db:5432/app?password=xxxxx",
		"postgresql://app@db/app?sslmode=verify-full": "postgresql://app@db/app?sslmode=verify-full",
		"host=db port=5432 password=s3cr3t user=app":  "host=db port=5432 password=xxxxx user=app",
		"host=db password = 's3 cr\\'et' user=app":    "host=db password = xxxxx user=app",
		"host=db PASSWORD=s3cr3t":                     "host=db PASSWORD=xxxxx",
	}
	for in, want := range cases {
		got := RedactDSN(in)
		if got != want || strings.Contains(got, "s3") {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPeak(t *testing.T) {
	sec := func(i int, q, w uint32) Second {
		return Second{Time: t0.Add(time.Duration(i) * time.Second), Queries: q, Watched: w}
	}
	cases := []struct {
		name       string
		tl         []Second
		from, to   int
		qps, watch float64
	}{
		{"one second", []Second{sec(0, 50, 40)}, 0, 0, 50, 40},
		{"burst in the middle", func() []Second {
			var tl []Second
			for i := range 40 {
				w := uint32(0)
				if i >= 15 && i < 25 {
					w = 100
				}
				tl = append(tl, sec(i, 10+w, w))
			}
			return tl
		}(), 15, 24, 110, 100},
		{"gap counts as zero", []Second{sec(0, 100, 100), sec(30, 60, 60), sec(31, 70, 70)}, 30, 31, 13, 13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := peak(c.tl)
			if !p.From.Equal(t0.Add(time.Duration(c.from)*time.Second)) || !p.To.Equal(t0.Add(time.Duration(c.to)*time.Second)) ||
				p.QPS != c.qps || p.WatchedQPS != c.watch {
				t.Fatalf("peak %+v, want %d..%d %v/%v", p, c.from, c.to, c.qps, c.watch)
			}
		})
	}
	if peak(nil) != nil {
		t.Fatal("peak of an empty timeline")
	}
}

// TestSecretsAbsent is the report's privacy promise: a real analyzer fed with statements whose
// literals, parameters and rows hold secrets yields reports with the watched keys and none of
// the secrets, in every format.
func TestSecretsAbsent(t *testing.T) {
	s, src := secretSnapshot(t)
	r := FromSnapshot(s, src)
	merged, err := Merge(r, FromSnapshot(storySnapshot(t0, 30, incidentKeys()[:2], "h2"), Source{Host: "h2"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range []struct {
		name string
		r    *Report
	}{{"single", r}, {"merged", merged}} {
		for _, f := range []Format{JSON, HTML, Markdown} {
			t.Run(rep.name+"/"+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				if err := Encode(&buf, f, rep.r); err != nil {
					t.Fatal(err)
				}
				out := buf.String()
				for _, sec := range secrets {
					if i := strings.Index(out, sec); i >= 0 {
						t.Errorf("secret %q in the %s report: …%s…", sec, f, out[max(0, i-80):min(len(out), i+40)])
					}
				}
				for _, k := range watchedKeys {
					if !strings.Contains(out, k) {
						t.Errorf("watched key %q missing from the %s report", k, f)
					}
				}
			})
		}
	}
}
