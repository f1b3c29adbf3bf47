package tui

import (
	"cmp"
	"slices"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// view is one of the five tabs.
type view int

const (
	viewTasks view = iota
	viewQueries
	viewClients
	viewFindings
	viewQueues
	numViews
)

var viewNames = [numViews]string{"Tasks", "Queries", "Clients", "Findings", "Queues"}

// sortSpec is one way to order a view's rows.
type sortSpec struct {
	name string // shown on the tab line
	col  string // id of the column whose title carries the arrow
	desc bool   // natural direction; r flips it
	cmp  func(s *analyzer.Snapshot, i, j int) int
}

func by[T cmp.Ordered](f func(s *analyzer.Snapshot, i int) T) func(s *analyzer.Snapshot, i, j int) int {
	return func(s *analyzer.Snapshot, i, j int) int { return cmp.Compare(f(s, i), f(s, j)) }
}

// gapKey orders median intervals with "unknown" (-1) last.
func gapKey(ms float64) float64 {
	if ms < 0 {
		return 1e18
	}
	return ms
}

var sorts = [numViews][]sortSpec{
	viewTasks: {
		{name: "rank", cmp: func(_ *analyzer.Snapshot, i, j int) int { return cmp.Compare(i, j) }},
		{name: "q/s", col: "qps", desc: true, cmp: func(s *analyzer.Snapshot, i, j int) int {
			a, b := &s.Keys[i], &s.Keys[j]
			return cmp.Or(cmp.Compare(a.QPS1, b.QPS1), cmp.Compare(a.QPS10, b.QPS10))
		}},
		{name: "polls", col: "polls", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) int64 { return s.Keys[i].Polls })},
		{name: "gap", col: "gap", cmp: by(func(s *analyzer.Snapshot, i int) float64 { return gapKey(s.Keys[i].MedianIntervalMs) })},
		{name: "unchanged", col: "same", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 {
			return ratio(s.Keys[i].UnchangedPolls, s.Keys[i].Polls)
		})},
		{name: "clients", col: "cli", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) int { return s.Keys[i].Clients })},
		{name: "status", col: "status", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Keys[i].LastStatus })},
		{name: "key", col: "key", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Keys[i].Key })},
	},
	viewQueries: {
		{name: "calls", col: "calls", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) int64 { return s.Fingerprints[i].Calls })},
		{name: "q/s", col: "qps", desc: true, cmp: func(s *analyzer.Snapshot, i, j int) int {
			a, b := &s.Fingerprints[i], &s.Fingerprints[j]
			return cmp.Or(cmp.Compare(a.QPS1, b.QPS1), cmp.Compare(a.QPS10, b.QPS10))
		}},
		{name: "mean", col: "mean", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Fingerprints[i].MeanMs })},
		{name: "p99", col: "p99", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Fingerprints[i].P99Ms })},
		{name: "total time", col: "total", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Fingerprints[i].TotalMs })},
		{name: "query", col: "query", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Fingerprints[i].Query })},
	},
	viewClients: {
		{name: "q/s", col: "qps", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Clients[i].QPS10 })},
		{name: "conn/s", col: "conns", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Clients[i].ConnsPerSec10 })},
		{name: "poll share", col: "share", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Clients[i].PollShare })},
		{name: "queries", col: "queries", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) int64 { return s.Clients[i].Queries })},
		{name: "address", col: "addr", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Clients[i].Address })},
		{name: "application", col: "app", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Clients[i].ApplicationName })},
	},
	viewQueues: {
		{name: "polls/s", col: "pps", desc: true, cmp: func(s *analyzer.Snapshot, i, j int) int {
			a, b := &s.Queues[i], &s.Queues[j]
			return cmp.Or(cmp.Compare(a.PollsPerSec10, b.PollsPerSec10), cmp.Compare(a.PollsPerSec, b.PollsPerSec))
		}},
		{name: "polls", col: "polls", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) int64 { return s.Queues[i].Polls })},
		{name: "empty", col: "empty", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Queues[i].EmptyPct })},
		{name: "enqueued/s", col: "eps", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) float64 { return s.Queues[i].EnqueuedPerSec })},
		{name: "interval", col: "gap", cmp: by(func(s *analyzer.Snapshot, i int) float64 { return gapKey(s.Queues[i].IntervalP50Ms) })},
		{name: "queue", col: "queue", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Queues[i].Queue })},
	},
	viewFindings: {
		{name: "severity", desc: true, cmp: by(func(s *analyzer.Snapshot, i int) int { return severityWeight(s.Findings[i].Severity) })},
		{name: "as found", cmp: func(_ *analyzer.Snapshot, i, j int) int { return cmp.Compare(i, j) }},
		{name: "kind", cmp: by(func(s *analyzer.Snapshot, i int) string { return s.Findings[i].Kind })},
	},
}

func severityWeight(sev string) int {
	switch sev {
	case "high":
		return 3
	case "medium":
		return 2
	case "low":
		return 1
	}
	return 0
}

func rowCount(s *analyzer.Snapshot, v view) int {
	if s == nil {
		return 0
	}
	switch v {
	case viewTasks:
		return len(s.Keys)
	case viewQueries:
		return len(s.Fingerprints)
	case viewClients:
		return len(s.Clients)
	case viewFindings:
		return len(s.Findings)
	case viewQueues:
		return len(s.Queues)
	}
	return 0
}

// rowID names a row so the selection and the detail follow it from one snapshot to the next.
func rowID(s *analyzer.Snapshot, v view, i int) string {
	switch v {
	case viewTasks:
		k := &s.Keys[i]
		return k.Table + "." + k.Column + "=" + k.Key
	case viewQueries:
		return s.Fingerprints[i].Fingerprint
	case viewClients:
		return clientID(&s.Clients[i])
	case viewFindings:
		return s.Findings[i].ID
	case viewQueues:
		return s.Queues[i].Queue
	}
	return ""
}

func clientID(c *analyzer.ClientStat) string {
	return c.Address + "|" + c.ApplicationName + "|" + c.User + "|" + c.Database
}

// rowMatches reports whether row i of view v contains needle (already lower case).
func rowMatches(s *analyzer.Snapshot, v view, i int, needle string) bool {
	has := func(fields ...string) bool {
		for _, f := range fields {
			if strings.Contains(strings.ToLower(f), needle) {
				return true
			}
		}
		return false
	}
	switch v {
	case viewTasks:
		k := &s.Keys[i]
		return has(k.Key, k.Table, k.LastStatus, badgeText(k))
	case viewQueries:
		f := &s.Fingerprints[i]
		return has(f.Query, f.Fingerprint, f.Table, f.Command)
	case viewClients:
		c := &s.Clients[i]
		return has(c.Address, c.ApplicationName, c.User, c.Database)
	case viewFindings:
		f := &s.Findings[i]
		return has(append([]string{f.Kind, f.Severity, f.Summary, f.Fix}, f.Evidence...)...)
	case viewQueues:
		// Who polls it and which code, too: a filter on an application or a tag finds its queues.
		q := &s.Queues[i]
		fields := []string{q.Queue, q.Library, q.Tables}
		for _, c := range q.Clients {
			fields = append(fields, c.Address, c.ApplicationName)
		}
		for _, t := range q.Tags {
			fields = append(fields, t.Tag)
		}
		return has(fields...)
	}
	return false
}

// badgeText is the storm badge of a key: SPIN for a spin loop (its own storm's, or its poller's
// over many keys), STORM for a storm.
func badgeText(k *analyzer.KeyStat) string {
	switch {
	case k.Spinning:
		return "SPIN"
	case k.Storming:
		return "STORM"
	}
	return ""
}

// selectRows returns the indexes of view v's rows that match filter, in the order of sort
// spec (reversed if asked). It is the only work proportional to the number of rows, and the
// analyzer caps those at a few hundred.
func selectRows(s *analyzer.Snapshot, v view, filter string, sortIdx int, reverse bool, buf []int) []int {
	rows := buf[:0]
	n := rowCount(s, v)
	needle := strings.ToLower(strings.TrimSpace(filter))
	for i := range n {
		if needle == "" || rowMatches(s, v, i, needle) {
			rows = append(rows, i)
		}
	}
	spec := sorts[v][sortIdx%len(sorts[v])]
	desc := spec.desc != reverse
	slices.SortStableFunc(rows, func(i, j int) int {
		c := spec.cmp(s, i, j)
		if desc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(i, j)) // ties keep the analyzer's order
	})
	return rows
}
