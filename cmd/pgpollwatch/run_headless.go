package main

// The headless run: no terminal UI; the proxy logs its storms, findings and headline numbers.

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// runHeadless logs the headline every --log-interval and waits for a signal or the end of the
// demo's time. It returns why the proxy is to stop, or "" with Serve's error when the server
// stopped by itself.
func (a *app) runHeadless(ctx context.Context, sigs <-chan os.Signal, timeUp <-chan time.Time, served <-chan error) (string, error) {
	go logHeadlines(ctx, a.log, a.an, a.o.logInterval)
	select {
	case err := <-served:
		a.srv.Close()
		return "", err
	case sig := <-sigs:
		return sig.String(), nil
	case <-timeUp:
		return "time up", nil
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
