package analyzer

import "time"

// ReuseStats is server connection reuse's state (--reuse-server-connections), as the proxy
// reports it: the analyzer only carries it into snapshots (SetReuseStats), as it carries the
// coalescing cache's, so the TUI, reports and /metrics read one consistent view and need
// nothing from the proxy.
type ReuseStats struct {
	Reused    int64 `json:"reused"`    // clients served by a kept server connection instead of a new one
	Kept      int64 `json:"kept"`      // server connections reset and kept after their client left
	Discarded int64 `json:"discarded"` // kept connections closed: expired, found closed or busy, reset failed, pool full
	Idle      int   `json:"idle"`      // kept connections waiting for a client now
}

// SetReuseStats makes every snapshot carry fn's answer as Snapshot.Reuse; without it
// Snapshot.Reuse is nil (server connection reuse is off). Call it once, before or while the
// analyzer runs; fn is called once per snapshot, from the goroutine taking it, so it must be
// safe for concurrent use and cheap. A nil fn removes it again.
func (a *Analyzer) SetReuseStats(fn func() ReuseStats) {
	if fn == nil {
		a.reuseStats.Store(nil)
		return
	}
	a.reuseStats.Store(&fn)
}

func (a *Analyzer) snapReuse(s *Snapshot) {
	if fn := a.reuseStats.Load(); fn != nil {
		st := (*fn)()
		s.Reuse = &st
	}
}

// ConfigStats is the proxy's configuration reloads (SIGHUP), carried into snapshots as the
// reuse counters are, so that /metrics can say whether the last reload took.
type ConfigStats struct {
	Reloads        int64     `json:"reloads"`         // reloads that took
	ReloadFailures int64     `json:"reload_failures"` // reloads refused: the running configuration stayed
	LastOK         bool      `json:"last_ok"`         // the last reload took (true before any)
	LastReload     time.Time `json:"last_reload"`     // when the last reload was tried; zero before any
}

// SetConfigStats makes every snapshot carry fn's answer as Snapshot.Config; fn must be safe for
// concurrent use and cheap.
func (a *Analyzer) SetConfigStats(fn func() ConfigStats) {
	a.configStats.Store(&fn)
}
