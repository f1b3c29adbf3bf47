// Package deploy holds what runs and watches pgpollwatch in production beside the code, and no
// code of its own: the systemd unit (systemd/), the container build (container/), the
// Kubernetes sidecar example (kubernetes/), Prometheus recording and alert rules with their
// promtool unit tests (prometheus/), and the Grafana dashboard (grafana/). Each directory's
// README.md is for operators.
//
// Its tests hold these files to the binary they start: systemd-analyze verifies the unit and
// rates its exposure; the container's build line makes a static binary; every setting the
// examples give is a flag the binary takes; promtool passes the rules' unit tests, among them
// one on a storm recorded through the real proxy (prometheus/tests/storm_recorded.test.yml,
// made again by scripts/record-storm-series); every alert is tested firing and not firing and
// is named, labelled and annotated alike; and every metric the dashboard and the rules query is
// one a running proxy exports after traffic, recording rules resolved to their own expressions.
package deploy
