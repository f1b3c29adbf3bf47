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
		if st.Kind == "poller" {
			log.Warn(n.Message, "event", n.Kind, "storm", st.Kind, "table", st.Table, "client", st.Address, "application_name", st.ApplicationName,
				"user", st.User, "database", st.Database, "keys", st.Keys, "peak_qps", st.PeakQPS, "spin", st.Spin,
				"median_key_gap_ms", round1(st.MedianIntervalMs), "waits_pct", round1(st.WaitsPct), "overlap_pct", round1(st.OverlapPct))
			return
		}
		log.Warn(n.Message, "event", n.Kind, "table", st.Table, "key", st.Key, "peak_qps", st.PeakQPS, "spin", st.Spin, "median_interval_ms", round1(st.MedianIntervalMs), "waits_pct", round1(st.WaitsPct))
	case n.Finding != nil:
		log.Warn(n.Message, "event", "finding", "kind", n.Finding.Kind, "fix", n.Finding.Fix)
	default:
		log.Info(n.Message, "event", n.Kind)
	}
}

// logHeadlines writes the headline numbers every interval while there is traffic.
// With server connection reuse on (the snapshot carries its counters), it adds what it did.
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
		attrs := []any{"qps", round1(s.Rates.QPS10), "watched_qps", round1(s.Rates.WatchedQPS10),
			"keys_polled", s.Rates.KeysPolled10, "storms", s.Totals.StormsActive,
			"conns_per_sec", round1(s.Rates.ConnsPerSec10), "open_connections", s.Totals.OpenConnections,
			"queries", s.Totals.Queries}
		if r := s.Reuse; r != nil {
			attrs = append(attrs, "server_conns_reused", r.Reused, "server_conns_kept", r.Kept,
				"server_conns_discarded", r.Discarded, "server_conns_idle", r.Idle)
		}
		log.Info(s.Headline, attrs...)
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
