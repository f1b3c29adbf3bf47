package deploy

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"go.yaml.in/yaml/v3"
)

var record = flag.Bool("record", false, "record a spinning storm through the proxy into "+recordingPath+" (scripts/record-storm-series)")

const recordingPath = "prometheus/tests/storm_recorded.test.yml"

// The recording: quiet, then a spinning storm long enough for the slowest of the storm alerts'
// for: and a minute more, then quiet again until the storms have ended. One scrape a second.
const (
	recordEvery       = time.Second
	recordQuietBefore = 20 * time.Second
	recordQuietAfter  = 40 * time.Second
	recordMargin      = time.Minute
	recordEvalEvery   = 15 * time.Second // Prometheus' usual evaluation_interval
	recordJob         = "pgpollwatch"
	recordInstance    = "recorded:9187" // a target's instance label: its host:port
)

// The storm: one parent spinning on ten subtasks that never finish during the recording, with
// a 5 ms sleep between its rounds, which keeps every gap between polls of a key under the
// analyzer's 20 ms spin interval (a spin loop, still) while leaving the machine's cores to the
// other tests.
var recordStormArgs = []string{"--pattern", "spin", "--tasks", "10", "--round-pause", "5ms", "--subtask-duration", "1h"}

// The proxy runs with every option that adds metrics the rules read, so that the recording
// holds them all: the cache's alert is then tested on a real storm too.
var recordProxyArgs = []string{"--coalesce", "--reuse-server-connections"}

// The alerts a spinning storm must fire; every other alert must stay quiet on it.
var stormAlerts = []string{"PgpollwatchPollingStorm", "PgpollwatchSpinLoop"}

// TestStormRecording checks the committed recording of a real storm against the rules: it holds
// every series the rules read (a rule reading a new metric needs it recorded again), labelled
// with bounded labels only, and expects every alert, the storm alerts firing and the others
// quiet; promtool runs it in TestPromtool. With -record it first records the storm anew through
// the binary (about 8 minutes; scripts/record-storm-series).
func TestStormRecording(t *testing.T) {
	if *record {
		recordStorm(t)
	}
	var f ruleTestFile
	readYAML(t, recordingPath, &f)
	b, err := os.ReadFile(recordingPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("# A spinning storm recorded through the real proxy")) {
		t.Errorf("%s does not begin by saying how it was made", recordingPath)
	}
	if len(f.Tests) != 1 {
		t.Fatalf("%s: %d tests, want the one recording", recordingPath, len(f.Tests))
	}
	read, _ := ruleInputs(t)
	recorded := map[string]bool{}
	for _, s := range f.Tests[0].InputSeries {
		names, labels, err := promqlSelectors(s.Series)
		if err != nil || len(names) != 1 {
			t.Errorf("series %q: %v", s.Series, err)
			continue
		}
		recorded[names[0]] = true
		for _, l := range labels {
			if !boundedLabels[l] {
				t.Errorf("series %s: label %s is not a bounded one", s.Series, l)
			}
		}
	}
	for _, m := range read {
		if !recorded[m] {
			t.Errorf("the rules read %s, which %s lacks: record it again (scripts/record-storm-series)", m, recordingPath)
		}
	}
	expected := map[string]bool{}
	firing := map[string]bool{}
	for _, a := range f.Tests[0].AlertRuleTest {
		expected[a.Alertname] = true
		firing[a.Alertname] = firing[a.Alertname] || len(a.ExpAlerts) > 0
	}
	for _, r := range readRules(t) {
		if r.Alert != "" && !expected[r.Alert] {
			t.Errorf("%s expects nothing of alert %s: record it again (scripts/record-storm-series)", recordingPath, r.Alert)
		}
	}
	for _, a := range stormAlerts {
		if !firing[a] {
			t.Errorf("%s does not expect %s to fire", recordingPath, a)
		}
	}
}

// ruleInputs returns the metrics the rules read (not their own recording rules) and the rules.
func ruleInputs(t *testing.T) ([]string, []rule) {
	t.Helper()
	rules := readRules(t)
	records := map[string]bool{}
	for _, r := range rules {
		records[r.Record] = true
	}
	set := map[string]bool{}
	for _, r := range rules {
		metrics, _, err := promqlSelectors(r.Expr)
		if err != nil {
			t.Fatalf("%s: %v", r.Record+r.Alert, err)
		}
		for _, m := range metrics {
			if !records[m] {
				set[m] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set)), rules
}

// recordStorm runs the binary in front of the package's server, scrapes it every second while a
// spinning storm goes through it, and writes the samples of the series the rules read as a
// promtool test, with the alerts expected at three moments: a minute into the storm (none yet),
// at its last sample (the storm alerts, valued as the samples say) and at the end (none).
func recordStorm(t *testing.T) {
	read, rules := ruleInputs(t)
	keep := map[string]bool{}
	forOf := map[string]time.Duration{}
	for _, m := range read {
		keep[m] = true
	}
	var alerts []rule
	for _, r := range rules {
		if r.Alert != "" {
			alerts = append(alerts, r)
			d, err := time.ParseDuration(r.For)
			if err != nil {
				t.Fatalf("alert %s: for: %v", r.Alert, err)
			}
			forOf[r.Alert] = d
		}
	}
	stormFor := recordMargin
	for _, a := range stormAlerts {
		stormFor = max(stormFor, forOf[a]+recordMargin)
	}
	ticks := int((recordQuietBefore + stormFor + recordQuietAfter) / recordEvery)

	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	p := startProxy(t, recordProxyArgs...)
	// A job queue's moves before the storm, so that its series are recorded too (flat: too few
	// polls for its alert, which must stay quiet through a storm of another kind).
	pollQueue(t, p.dsn(db))
	stormArgs := append(slices.Clone(recordStormArgs), "--duration", stormFor.String())
	var waitStorm func()
	values := map[string][]string{} // series → one value per tick; "_" where it was not scraped
	begin := time.Now()
	for tick := 0; tick < ticks; tick++ {
		time.Sleep(time.Until(begin.Add(time.Duration(tick) * recordEvery)))
		if tick == int(recordQuietBefore/recordEvery) {
			waitStorm = p.storm(t, db, stormArgs...)
		}
		samples, err := p.scrape()
		up := "1"
		if err != nil {
			t.Logf("scrape %d: %v", tick, err)
			up = "0"
		}
		add := func(series, value string) {
			if values[series] == nil {
				values[series] = slices.Repeat([]string{"_"}, tick)
			}
			values[series] = append(values[series], value)
		}
		add(targetSeries("up", ""), up)
		for _, s := range samples {
			if keep[s.name] {
				add(targetSeries(s.name, s.labels), s.value)
			}
		}
		for series, v := range values {
			if len(v) == tick { // absent from this scrape
				values[series] = append(v, "_")
			}
		}
	}
	waitStorm()

	sum := func(name string, at int) (total float64) {
		for series, v := range values {
			if strings.HasPrefix(series, name+"{") && v[at] != "_" {
				f, err := strconv.ParseFloat(v[at], 64)
				if err != nil {
					t.Fatalf("%s: %v", series, err)
				}
				total += f
			}
		}
		return total
	}
	// The moments to expect alerts at: evaluation times, each at a sample.
	evalTick := func(tick int) int {
		every := int(recordEvalEvery / recordEvery)
		return tick / every * every
	}
	first, last := -1, -1
	for tick := range ticks {
		if sum("pgpollwatch_storms_active", tick) > 0 && sum("pgpollwatch_spin_loops_active", tick) > 0 {
			if first < 0 {
				first = tick
			}
			last = tick
		}
	}
	if first < 0 || time.Duration(last-first)*recordEvery < stormFor-recordMargin {
		t.Fatalf("the storm stormed and spun from sample %d to %d, too short for its alerts' for:\n%s", first, last, p.log.String())
	}
	early, peak, end := evalTick(first+int(recordMargin/recordEvery)), evalTick(last), evalTick(ticks-1)
	stormValue := map[string]float64{
		"PgpollwatchPollingStorm": sum("pgpollwatch_storms_active", peak),
		"PgpollwatchSpinLoop":     sum("pgpollwatch_spin_loops_active", peak),
	}
	var expect []alertRuleTest
	for _, at := range []int{early, peak, end} {
		for _, a := range alerts {
			exp := alertRuleTest{EvalTime: (time.Duration(at) * recordEvery).String(), Alertname: a.Alert, ExpAlerts: []expAlert{}}
			if v, ok := stormValue[a.Alert]; ok && at == peak {
				labels := map[string]string{"job": recordJob, "instance": recordInstance}
				exp.ExpAlerts = []expAlert{{ExpLabels: labels, ExpAnnotations: expandAnnotations(t, a, labels, v)}}
				maps.Copy(exp.ExpAlerts[0].ExpLabels, a.Labels)
			}
			expect = append(expect, exp)
		}
	}

	var serverVersion string
	conn, err := pgx.Connect(context.Background(), pg.ConnString(pgtest.TrustUser, db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SHOW server_version").Scan(&serverVersion); err != nil {
		t.Fatal(err)
	}
	commit, _ := exec.Command("git", "describe", "--always", "--dirty").Output()

	names := slices.Sorted(maps.Keys(values))
	series := make([]inputSeries, len(names))
	for i, name := range names {
		series[i] = inputSeries{Series: name, Values: compress(values[name])}
	}
	out := ruleTestFile{
		RuleFiles:          []string{"../pgpollwatch.rules.yml"},
		EvaluationInterval: recordEvalEvery.String(),
		GroupEvalOrder:     ruleGroupOrder(t),
		Tests: []ruleTest{{
			Name:          "a spinning storm recorded through the proxy fires the storm alerts, and only them",
			Interval:      recordEvery.String(),
			InputSeries:   series,
			AlertRuleTest: expect,
		}},
	}
	var body bytes.Buffer
	enc := yaml.NewEncoder(&body)
	enc.SetIndent(2) // as the hand-written tests beside it
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	header := fmt.Sprintf(`# A spinning storm recorded through the real proxy, as Prometheus would have scraped it, and the
# alerts it must fire. Generated: do not edit; scripts/record-storm-series makes it again
# (go test ./deploy -run '^TestStormRecording$' -record).
#
# How: the binary in front of a throwaway PostgreSQL,
#   pgpollwatch --no-tui --listen 127.0.0.1:0 --upstream <the server> --metrics-listen 127.0.0.1:0 %s
# its /metrics scraped every %v for %v: %v quiet, then through it
#   pgpollwatch storm --dsn <the proxy> --setup %s --duration %v
# then %v quiet. Kept: up (1 for each scrape that answered) and the series the rules read,
# labelled job=%q and instance=%q as Prometheus labels a target's; "vxN" is the
# value v and N more of it, "_" a sample not scraped. It stormed and spun from %v to %v.
# Recorded %s with PostgreSQL %s, %s, at %s.
`, strings.Join(recordProxyArgs, " "), recordEvery, time.Duration(ticks)*recordEvery, recordQuietBefore,
		strings.Join(recordStormArgs, " "), stormFor, recordQuietAfter, recordJob, recordInstance,
		time.Duration(first)*recordEvery, time.Duration(last)*recordEvery,
		time.Now().UTC().Format("2006-01-02"), serverVersion, runtime.Version(), strings.TrimSpace(string(commit)))
	if err := os.WriteFile(recordingPath, append([]byte(header), body.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d series, %d samples each; storming %v to %v", recordingPath, len(series), ticks,
		time.Duration(first)*recordEvery, time.Duration(last)*recordEvery)
}

// targetSeries writes a scraped sample's series as promtool input, with the labels Prometheus
// adds to a target's series. The exposition format escapes label values as PromQL does.
func targetSeries(name, labels string) string {
	target := fmt.Sprintf("instance=%q,job=%q}", recordInstance, recordJob)
	if labels == "" {
		return name + "{" + target
	}
	return name + strings.TrimSuffix(labels, "}") + "," + target
}

// compress writes values in promtool's notation, a run of one value as vxN (v, then N more).
func compress(values []string) string {
	var parts []string
	for i := 0; i < len(values); {
		j := i + 1
		for j < len(values) && values[j] == values[i] && values[i] != "_" { // "_xN" means N, not N+1
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%sx%d", values[i], j-i-1))
		} else {
			parts = append(parts, values[i])
		}
		i = j
	}
	return strings.Join(parts, " ")
}

// expandAnnotations expands an alert's annotations as Prometheus does: Go templates with
// $labels and $value defined.
func expandAnnotations(t *testing.T, a rule, labels map[string]string, value float64) map[string]string {
	t.Helper()
	const defs = "{{$labels := .Labels}}{{$value := .Value}}"
	out := map[string]string{}
	for k, text := range a.Annotations {
		tmpl, err := template.New(k).Option("missingkey=zero").Parse(defs + text)
		if err != nil {
			t.Fatalf("alert %s annotation %s: %v", a.Alert, k, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, struct {
			Labels map[string]string
			Value  float64
		}{labels, value}); err != nil {
			t.Fatalf("alert %s annotation %s: %v", a.Alert, k, err)
		}
		out[k] = b.String()
	}
	return out
}
