package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// logOutput is where the proxy's logs go: --log-file, or standard error; with the TUI, which
// owns the terminal, nowhere unless --log-file is given. done closes the file.
func logOutput(logFile string, useTUI bool) (w io.Writer, done func(), err error) {
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	if useTUI {
		return io.Discard, func() {}, nil
	}
	return os.Stderr, func() {}, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

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
