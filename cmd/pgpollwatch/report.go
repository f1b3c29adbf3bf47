package main

// Reports of a running proxy: on exit, on SIGUSR1 and on the TUI's e key.

import (
	"errors"
	"os"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// report writes --report, if given; why says what asked for it.
func (a *app) report(why string) {
	if a.o.report == "" {
		if why == "SIGUSR1" {
			a.log.Warn("SIGUSR1: no report written: start with --report FILE (.json, .html or .md)")
		}
		return
	}
	if _, err := a.writeReport(); err != nil {
		a.log.Error("writing the report failed", "file", a.o.report, "err", err)
		return
	}
	a.log.Info("report written", "file", a.o.report, "why", why)
}

func (a *app) writeReport() (string, error) {
	a.reportMu.Lock()
	defer a.reportMu.Unlock()
	return a.o.report, report.Write(a.o.report, a.reportOf(a.an.Snapshot()))
}

// reportOf is the report of snapshot s of this proxy.
func (a *app) reportOf(s *analyzer.Snapshot) *report.Report {
	host, _ := os.Hostname()
	return report.FromSnapshot(s, report.Source{
		Listen: a.ln.Addr().String(), Upstream: a.up.String(), Host: host, Version: version(),
	})
}

// exportForTUI is the TUI's e key.
func (a *app) exportForTUI() (string, error) {
	if a.o.report == "" {
		return "", errors.New("no report file: start pgpollwatch with --report FILE (.json, .html or .md)")
	}
	return a.writeReport()
}
