// Package deploy holds what runs and watches pgpollwatch in production beside the code, and
// no code of its own: Prometheus recording and alert rules with their promtool unit tests
// (prometheus/), and the Grafana dashboard (grafana/). Each directory's README.md is for
// operators.
//
// Its tests hold the kit to the binary: promtool passes the rules' unit tests, among them one on
// a storm recorded through the real proxy (prometheus/tests/storm_recorded.test.yml, made again
// by scripts/record-storm-series); every alert is tested firing and not firing and is named,
// labelled and annotated alike; and every metric the dashboard and the rules query is one a
// running proxy exports after traffic, recording rules resolved to their own expressions.
package deploy
