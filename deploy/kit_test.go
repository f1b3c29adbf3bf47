package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The kit's files, from this package's directory (where go test runs).
const (
	rulesPath     = "prometheus/pgpollwatch.rules.yml"
	ruleTestsGlob = "prometheus/tests/*.yml"
	dashboardPath = "grafana/pgpollwatch.json"
)

// A Prometheus rule file, as much of it as the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// A promtool unit test file, as much of it as the tests read and the recorder writes.
type ruleTestFile struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	// GroupEvalOrder is the order promtool evaluates the rule groups in at each evaluation
	// time; it is undefined for groups left out. An alert on a recording rule sees the value
	// recorded at the same time only if its group comes after the recording rules' (ruleGroupOrder).
	GroupEvalOrder []string   `yaml:"group_eval_order"`
	Tests          []ruleTest `yaml:"tests"`
}

type ruleTest struct {
	Name           string          `yaml:"name"`
	Interval       string          `yaml:"interval"`
	InputSeries    []inputSeries   `yaml:"input_series"`
	AlertRuleTest  []alertRuleTest `yaml:"alert_rule_test"`
	PromqlExprTest []struct {
		Expr string `yaml:"expr"`
	} `yaml:"promql_expr_test,omitempty"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertRuleTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// The dashboard, as much of it as the tests read.
type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"` // a string, or {"query": ...} in Grafana 10+
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(false) // promtool's files have fields the tests do not read
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	readYAML(t, rulesPath, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s holds no rule", rulesPath)
	}
	return rules
}

func readRuleTests(t *testing.T) map[string]*ruleTestFile {
	t.Helper()
	paths, err := filepath.Glob(ruleTestsGlob)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no promtool tests match %s: %v", ruleTestsGlob, err)
	}
	files := map[string]*ruleTestFile{}
	for _, p := range paths {
		var f ruleTestFile
		readYAML(t, p, &f)
		files[p] = &f
	}
	return files
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return &d
}

// allPanels is every panel, those inside collapsed rows too.
func (d *dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// query is a PromQL expression of the kit and where it stands, for messages.
type query struct{ where, expr string }

// kitQueries returns every expression of the rules and the dashboard, and the dashboard's
// variable queries (label_values(...)) apart.
func kitQueries(t *testing.T) (exprs, variables []query) {
	t.Helper()
	for _, r := range readRules(t) {
		exprs = append(exprs, query{rulesPath + ": " + r.Record + r.Alert, r.Expr})
	}
	d := readDashboard(t)
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			exprs = append(exprs, query{dashboardPath + ": panel " + p.Title + " " + tg.RefID, tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("%s: variable %s: query is neither a string nor {\"query\": ...}", dashboardPath, v.Name)
			}
		}
		variables = append(variables, query{dashboardPath + ": variable $" + v.Name, q.Query})
	}
	return exprs, variables
}

// ruleGroupOrder is the rule file's groups in its order: the recording rules, then the alerts
// that read them. Every promtool test file must give it as group_eval_order (TestPromtool).
func ruleGroupOrder(t *testing.T) []string {
	t.Helper()
	var f ruleFile
	readYAML(t, rulesPath, &f)
	var names []string
	for _, g := range f.Groups {
		names = append(names, g.Name)
	}
	return names
}
