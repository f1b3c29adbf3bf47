package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// boundedLabels are the only labels the kit may group, match or join on: the target's job and
// instance, and the proxy's own bounded labels (metrics/metrics.go). Anything else, a task_id
// above all, would be a series per key or per client.
var boundedLabels = map[string]bool{
	"job": true, "instance": true, // added by Prometheus to every series of a target
	"table": true, "column": true, // per watched table
	"kind": true, "quantile": true, "ttl": true, // a handful each
	"fingerprint": true, "command": true, "watched": true, // the top 20 fingerprints
	"queue": true, // one per job queue configured: the 11 presets and --watch-queue's
}

// promtool returns promtool's path, or fails the test with how to install it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool tests the Prometheus rules: apt-get install -y prometheus (make test installs it through scripts/install-test-deps)")
	}
	return path
}

// TestPromtool runs promtool on the kit: the rules pass its checks and every unit test in
// prometheus/tests (the recorded storm's among them), and every dashboard expression, with its
// Grafana variables filled in, is PromQL that promtool accepts.
func TestPromtool(t *testing.T) {
	pt := promtool(t)
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else if testing.Verbose() {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
	run("check", "rules", rulesPath)
	tests, _ := filepath.Glob(ruleTestsGlob)
	// Without group_eval_order promtool evaluates the groups in an undefined order: an alert on
	// a recording rule then sees the value of the evaluation before when its group comes first,
	// and a test of its for: fails now and then (PgpollwatchSpinLoop's did, 15 s late).
	order := ruleGroupOrder(t)
	for path, f := range readRuleTests(t) {
		if !slices.Equal(f.GroupEvalOrder, order) {
			t.Errorf("%s: group_eval_order %q, want the rule file's groups in order %q", path, f.GroupEvalOrder, order)
		}
	}
	run(append([]string{"test", "rules"}, tests...)...)

	// The dashboard's expressions as the recording rules of a scratch file: promtool parses them.
	exprs, _ := kitQueries(t)
	type scratchRule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var scratch []scratchRule
	for i, q := range exprs {
		if !strings.HasPrefix(q.where, dashboardPath) {
			continue
		}
		expr, err := fillVariables(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		scratch = append(scratch, scratchRule{Record: fmt.Sprintf("dashboard_expr_%d", i), Expr: expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": scratch}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", path)
}

// grafanaVariable is a variable in a dashboard expression: $name or ${name}.
var grafanaVariable = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// fillVariables gives the dashboard's variables values Grafana could give them.
func fillVariables(expr string) (string, error) {
	values := map[string]string{
		"__rate_interval": "1m", // Grafana's: four scrape intervals at least
		"job":             "pgpollwatch",
		"instance":        ".+", // the All value of a multi-value variable
	}
	var err error
	out := grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		m := grafanaVariable.FindStringSubmatch(v)
		name := m[1] + m[2]
		if val, ok := values[name]; ok {
			return val
		}
		err = fmt.Errorf("variable $%s is not one the dashboard defines", name)
		return v
	})
	return out, err
}

// recordName is Prometheus' level:metric:operations.
var recordName = regexp.MustCompile(`^[a-z][a-z_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$`)

// TestRulesConventions holds the rules to the postgres_exporter mixin's conventions and to this
// project's: alerts named Pgpollwatch*, each with for:, a severity and a summary and a
// description that gives the value and the instance; each tested firing and not firing, each
// recording rule evaluated by a test; recording rules named level:metric:operations; and no
// label but bounded ones grouped, matched or joined on, in the rules and in the dashboard.
func TestRulesConventions(t *testing.T) {
	rules := readRules(t)
	firing, quiet, evaluated := map[string]int{}, map[string]int{}, map[string]bool{}
	for _, f := range readRuleTests(t) {
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
			for _, e := range tc.PromqlExprTest {
				metrics, _, _ := promqlSelectors(e.Expr)
				for _, m := range metrics {
					evaluated[m] = true
				}
			}
		}
	}
	names := map[string]bool{}
	for _, r := range rules {
		name := r.Alert + r.Record
		if names[name] {
			t.Errorf("%s is defined twice", name)
		}
		names[name] = true
		if r.Record != "" {
			if !recordName.MatchString(r.Record) {
				t.Errorf("recording rule %s is not named level:metric:operations", r.Record)
			}
			if !evaluated[r.Record] {
				t.Errorf("recording rule %s: no promql_expr_test in %s evaluates it", r.Record, ruleTestsGlob)
			}
			continue
		}
		if !strings.HasPrefix(r.Alert, "Pgpollwatch") {
			t.Errorf("alert %s: not named Pgpollwatch*", r.Alert)
		}
		if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
			t.Errorf("alert %s: for: %q, want a duration", r.Alert, r.For)
		}
		if sev := r.Labels["severity"]; !slices.Contains([]string{"info", "warning", "critical"}, sev) {
			t.Errorf("alert %s: severity %q, want info, warning or critical", r.Alert, sev)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("alert %s: no summary", r.Alert)
		}
		if d := r.Annotations["description"]; !strings.Contains(d, "$value") || !strings.Contains(d, "{{ $labels.instance }}") {
			t.Errorf("alert %s: the description gives not both the value and the instance: %q", r.Alert, d)
		}
		if firing[r.Alert] == 0 || quiet[r.Alert] == 0 {
			t.Errorf("alert %s: tested firing %d times and not firing %d times in %s, want both", r.Alert, firing[r.Alert], quiet[r.Alert], ruleTestsGlob)
		}
	}
	for name := range firing {
		if !names[name] {
			t.Errorf("the tests expect alert %s, which the rules do not define", name)
		}
	}

	exprs, variables := kitQueries(t)
	for _, q := range append(exprs, variables...) {
		if strings.Contains(q.expr, "task_id") {
			t.Errorf("%s: names task_id: %s", q.where, q.expr)
		}
		var labels []string
		var err error
		if strings.Contains(q.where, ": variable ") {
			_, labels, err = variableSelectors(q.expr)
		} else {
			_, labels, err = promqlSelectors(q.expr)
		}
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
		for _, l := range labels {
			if !boundedLabels[l] {
				t.Errorf("%s: label %s is not one of the bounded labels: %s", q.where, l, q.expr)
			}
		}
	}
}

// TestDashboardShape: the dashboard imports into Grafana 10 and 11 and follows its data source:
// their schema version, a Prometheus data source variable every panel and query uses, job and
// instance variables, unique panel ids, and panels that fit the 24-column grid without overlap.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	// Grafana 10.0 writes schema 38, 11.x 39 to 41; each imports older versions and upgrades them.
	if d.SchemaVersion < 38 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want Grafana 10 or 11's (38 to 41)", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed to import and link it", d.UID, d.Title)
	}
	ds := datasource{Type: "prometheus", UID: "${datasource}"}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch {
		case v.Type == "datasource":
			if v.Name != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("data source variable %s of %s, want datasource of prometheus", v.Name, v.Query)
			}
		case v.Datasource == nil || *v.Datasource != ds:
			t.Errorf("variable %s: data source %+v, want %+v", v.Name, v.Datasource, ds)
		}
	}
	for _, want := range []string{"datasource", "job", "instance"} {
		if !vars[want] {
			t.Errorf("no $%s variable", want)
		}
	}
	ids := map[int]string{}
	var placed []panel
	for _, p := range d.allPanels() {
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d, taken by %q", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range placed {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || *p.Datasource != ds || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %+v and %d queries, want %+v and some", p.Title, p.Datasource, len(p.Targets), ds)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || *tg.Datasource != ds || tg.Expr == "" {
				t.Errorf("panel %q query %s: data source %+v, expr %q", p.Title, tg.RefID, tg.Datasource, tg.Expr)
			}
		}
	}
}
