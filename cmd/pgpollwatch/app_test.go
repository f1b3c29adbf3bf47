package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// TestReuseJoinsSnapshot: with --reuse-server-connections the reuse counters reach the
// analyzer's snapshots, and so the TUI, /metrics and the reports; without it they are absent.
func TestReuseJoinsSnapshot(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		var o proxyOptions
		_ = proxyFlags(&o).Parse(nil)
		o.listen = "127.0.0.1:0"
		o.upstream = "host=127.0.0.1 port=1 sslmode=disable" // never dialled
		o.reuse = reuse
		o.report = filepath.Join(t.TempDir(), "r.json")
		a, err := newApp(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got := a.an.Snapshot().Reuse; (got != nil) != reuse || reuse && *got != (analyzer.ReuseStats{}) {
			t.Errorf("reuse %v: snapshot has %+v", reuse, got)
		}
		if _, err := a.writeReport(); err != nil {
			t.Fatal(err)
		}
		r, err := report.Read(o.report)
		if err != nil {
			t.Fatal(err)
		}
		if (r.Reuse != nil) != reuse {
			t.Errorf("reuse %v: report has %+v", reuse, r.Reuse)
		}
		a.ln.Close()
		a.srv.Close()
	}
}
