package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

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
	sw, err := newLogSwitch(w, level, format)
	if err != nil {
		return nil, err
	}
	return slog.New(sw), nil
}

// logSwitch is a slog.Handler whose level and format a reload (SIGHUP) changes while loggers
// made from it are in use: the level is a slog.LevelVar, the format's handler swapped whole.
type logSwitch struct {
	w     io.Writer
	level *slog.LevelVar
	h     *atomic.Pointer[slog.Handler]
	attrs []slog.Attr // of loggers derived with With; applied to whichever handler is current
	group string
}

func newLogSwitch(w io.Writer, level, format string) (*logSwitch, error) {
	sw := &logSwitch{w: w, level: new(slog.LevelVar), h: new(atomic.Pointer[slog.Handler])}
	return sw, sw.set(level, format)
}

// set checks and applies a level and a format.
func (s *logSwitch) set(level, format string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: s.level}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "text":
		h = slog.NewTextHandler(s.w, opts)
	case "json":
		h = slog.NewJSONHandler(s.w, opts)
	default:
		return fmt.Errorf("--log-format: %q is not text or json", format)
	}
	s.level.Set(lv)
	s.h.Store(&h)
	return nil
}

func (s *logSwitch) Enabled(_ context.Context, l slog.Level) bool { return l >= s.level.Level() }

func (s *logSwitch) Handle(ctx context.Context, r slog.Record) error {
	h := *s.h.Load()
	if s.group != "" {
		h = h.WithGroup(s.group)
	}
	if len(s.attrs) > 0 {
		h = h.WithAttrs(s.attrs)
	}
	return h.Handle(ctx, r)
}

func (s *logSwitch) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *s
	c.attrs = append(append([]slog.Attr(nil), s.attrs...), attrs...)
	return &c
}

func (s *logSwitch) WithGroup(name string) slog.Handler {
	c := *s
	c.group = name // one level is all pgpollwatch uses
	return &c
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
