package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// logNotice writes one line per storm start/end and per new finding.
func logNotice(log *slog.Logger, n analyzer.Notice) {
	switch {
	case n.Storm != nil:
		st := n.Storm
		log.Warn(n.Message, "event", n.Kind, "table", st.Table, "key", st.Key, "peak_qps", st.PeakQPS, "spin", st.Spin, "median_interval_ms", round1(st.MedianIntervalMs))
	case n.Finding != nil:
		log.Warn(n.Message, "event", "finding", "kind", n.Finding.Kind, "fix", n.Finding.Fix)
	default:
		log.Info(n.Message, "event", n.Kind)
	}
}

// logHeadlines writes the headline numbers every interval while there is traffic.
func logHeadlines(ctx context.Context, log *slog.Logger, an *analyzer.Analyzer, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastQueries int64 = -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := an.Snapshot()
		if s.Totals.Queries == lastQueries {
			continue // idle: say nothing rather than repeat zeros
		}
		lastQueries = s.Totals.Queries
		log.Info(s.Headline,
			"qps", round1(s.Rates.QPS10), "watched_qps", round1(s.Rates.WatchedQPS10),
			"keys_polled", s.Rates.KeysPolled10, "storms", s.Totals.StormsActive,
			"conns_per_sec", round1(s.Rates.ConnsPerSec10), "open_connections", s.Totals.OpenConnections,
			"queries", s.Totals.Queries)
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
