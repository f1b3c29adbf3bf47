package main

// Reports of a running proxy: on exit, on SIGUSR1 and on the TUI's e key.

import (
	"errors"
	"os"

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
	host, _ := os.Hostname()
	r := report.FromSnapshot(a.an.Snapshot(), report.Source{
		Listen: a.ln.Addr().String(), Upstream: a.up.String(), Host: host, Version: version(),
	})
	return a.o.report, report.Write(a.o.report, r)
}

// exportForTUI is the TUI's e key.
func (a *app) exportForTUI() (string, error) {
	if a.o.report == "" {
		return "", errors.New("no report file: start pgpollwatch with --report FILE (.json, .html or .md)")
	}
	return a.writeReport()
}
