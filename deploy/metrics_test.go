package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// syntheticSeries are the series Prometheus adds to every scrape of a target itself: no
// exporter exposes them.
var syntheticSeries = map[string]bool{"up": true}

// unexported checks the metrics queries select against those a scrape exposed: a recording
// rule's name stands for its own expression, followed to the metrics under it. It returns one
// problem per query and metric missing, naming the chain of recording rules that led there.
func unexported(exprs, variables []query, records map[string]string, exposed map[string]bool) []string {
	var problems []string
	var follow func(where, name string, via []string)
	follow = func(where, name string, via []string) {
		chain := strings.Join(append(slices.Clone(via), name), " → ")
		switch expr, isRecord := records[name]; {
		case exposed[name] || syntheticSeries[name]:
		case isRecord && slices.Contains(via, name):
			problems = append(problems, fmt.Sprintf("%s: recording rules in a cycle: %s", where, chain))
		case isRecord:
			metrics, _, err := promqlSelectors(expr)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: recording rule %s: %v", where, name, err))
			}
			for _, m := range metrics {
				follow(where, m, append(via, name))
			}
		default:
			problems = append(problems, fmt.Sprintf("%s: %s is not a metric the proxy exports", where, chain))
		}
	}
	read := func(queries []query, selectors func(string) ([]string, []string, error)) {
		for _, q := range queries {
			metrics, _, err := selectors(q.expr)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", q.where, err))
			}
			for _, m := range metrics {
				follow(q.where, m, nil)
			}
		}
	}
	read(exprs, promqlSelectors)
	read(variables, variableSelectors)
	slices.Sort(problems)
	return slices.Compact(problems)
}

// TestKitQueriesExportedMetrics runs the binary as an operator would with every optional part
// that adds metrics (--coalesce, --reuse-server-connections), drives a short spinning storm
// through it, scrapes /metrics, and checks that every metric the dashboard and the rules query
// is among those exposed: a misspelt or renamed metric would leave a panel empty and an alert
// silent forever, and nothing else would say so.
func TestKitQueriesExportedMetrics(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.CreateDatabase(t)
	p := startProxy(t, "--coalesce", "--reuse-server-connections", "--storm-window", "1s")
	p.storm(t, db, "--pattern", "spin", "--tasks", "3", "--subtask-duration", "1s..2s", "--duration", "3s")()
	pollQueue(t, p.dsn(db))
	samples, err := p.scrape()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	var polls float64
	for _, s := range samples {
		exposed[s.name] = true
		if s.name == "pgpollwatch_watched_lookups_total" && strings.Contains(s.labels, `table="celery_taskmeta"`) {
			polls, _ = strconv.ParseFloat(s.value, 64)
		}
	}
	if polls == 0 {
		t.Fatalf("the proxy counted no poll of celery_taskmeta: the storm did not reach it\n%s", p.log.String())
	}

	exprs, variables := kitQueries(t)
	records := map[string]string{}
	for _, r := range readRules(t) {
		if r.Record != "" {
			records[r.Record] = r.Expr
		}
	}
	for _, problem := range unexported(exprs, variables, records, exposed) {
		t.Error(problem)
	}

	// The check can fail: a misspelt metric in a panel, and an alert on a recording rule that
	// rests on a misspelt one, are both named.
	typoRecords := maps.Clone(records)
	typoRecords["instance:pgpollwatch_typo:rate1m"] = "sum by (job, instance) (rate(pgpollwatch_conections_total[1m]))"
	got := unexported(append(slices.Clone(exprs),
		query{"a panel", `sum(rate(pgpollwatch_querys_total{job="$job"}[$__rate_interval]))`},
		query{"an alert", `instance:pgpollwatch_typo:rate1m > 20`}), variables, typoRecords, exposed)
	want := []string{
		"a panel: pgpollwatch_querys_total is not a metric the proxy exports",
		"an alert: instance:pgpollwatch_typo:rate1m → pgpollwatch_conections_total is not a metric the proxy exports",
	}
	if !slices.Equal(got, want) {
		t.Errorf("misspelt metrics: got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// pollQueue makes a River worker's moves through the proxy, so that the job queue metrics are
// exported: an enqueue and two fetches, one of which finds the job.
func pollQueue(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`CREATE TABLE river_job (id bigserial PRIMARY KEY, state text NOT NULL, queue text NOT NULL)`,
		`INSERT INTO river_job (state, queue) VALUES ('available', 'default')`,
		`SELECT id FROM river_job WHERE state = 'available' AND queue = 'default' LIMIT 1 FOR UPDATE SKIP LOCKED`,
		`SELECT id FROM river_job WHERE state = 'scheduled' AND queue = 'default' LIMIT 1 FOR UPDATE SKIP LOCKED`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}
