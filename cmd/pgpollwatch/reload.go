package main

// Reloading the configuration on SIGHUP, as PgBouncer does: nobody is disconnected; what can
// change while sessions run changes, the rest is said to need a restart.

import (
	"flag"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// liveSettings are the flags a reload applies while the proxy runs. Every other flag that
// differs is logged as needing a restart: the listen address and TLS files (the listener and
// its certificate are made once), the upstream, the limits sessions were started with, reuse
// switched on or off, and the rest. Watched lookups can be added, not removed: keys and counts
// refer to the watch they were counted under.
var liveSettings = []string{ // coalescing and reuse only when on at start: see app.live
	"watch", // added watches only: removing one needs a restart
	"storm-qps", "sweep-qps", "storm-window",
	"coalesce", "coalesce-ttl",
	"reuse-idle-timeout", "reuse-max-age", "reuse-max-idle",
	"log-level", "log-format",
}

// reloader holds what a reload compares with and counts what became of the reloads.
type reloader struct {
	mu      sync.Mutex
	current *loadedOptions
	stats   analyzer.ConfigStats
}

func newReloader(l *loadedOptions) *reloader {
	return &reloader{current: l, stats: analyzer.ConfigStats{LastOK: true}}
}

// configStats is the analyzer's SetConfigStats source.
func (r *reloader) configStats() analyzer.ConfigStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// reload reads the command line, the environment and the configuration file again and applies
// what may change live. A configuration that does not load (a bad value, an unknown key, a
// file gone) leaves everything as it was, and says why.
func (a *app) reload() {
	r := a.reloader
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.LastReload = time.Now()
	next, err := loadProxyOptions(r.current.o.args, os.Environ())
	var keptWatches []string
	if err == nil {
		keptWatches, err = a.applyLive(&next.o)
	}
	if err != nil {
		r.stats.ReloadFailures++
		r.stats.LastOK = false
		a.log.Error("configuration reload refused; the running configuration stays", "err", err)
		return
	}
	var applied, restart []string
	next.fs.VisitAll(func(f *flag.Flag) {
		if f.Value.String() == r.current.fs.Lookup(f.Name).Value.String() {
			return
		}
		switch {
		case f.Name == "watch" && len(keptWatches) > 0:
			// Added watches apply; removed ones stay until a restart, and every reload says so.
			applied = append(applied, f.Name)
			restart = append(restart, "watch (to stop watching "+strings.Join(keptWatches, ", ")+")")
		case a.live(f.Name):
			applied = append(applied, f.Name)
		default:
			restart = append(restart, f.Name)
		}
	})
	// What needs a restart keeps its running value: the next reload compares with that.
	for _, name := range restart {
		if f := r.current.fs.Lookup(name); f != nil {
			_ = next.fs.Set(name, f.Value.String())
		}
	}
	next.o.args = r.current.o.args
	r.current = next
	r.stats.Reloads++
	r.stats.LastOK = true
	attrs := []any{"applied", applied}
	if len(restart) > 0 {
		attrs = append(attrs, "need_restart", restart)
		a.log.Warn("configuration reloaded; some changes need a restart to take effect", attrs...)
		return
	}
	a.log.Info("configuration reloaded", attrs...)
}

// live says whether a reload applies the flag name while the proxy runs: coalescing only when
// the proxy started with its cache (--coalesce, or the TUI), reuse limits only when it reuses
// server connections.
func (a *app) live(name string) bool {
	switch {
	case !slices.Contains(liveSettings, name):
		return false
	case strings.HasPrefix(name, "coalesce"):
		return a.cache != nil
	case strings.HasPrefix(name, "reuse-"):
		return a.o.reuse
	}
	return true
}

// applyLive applies the settings of o that may change while the proxy runs; it checks them all
// before it changes anything.
func (a *app) applyLive(o *proxyOptions) (keptWatches []string, err error) {
	th := analyzer.Thresholds{StormQPS: o.stormQPS, SweepQPS: o.sweepQPS, StormWindow: o.stormWindow}
	sw, _ := a.log.Handler().(*logSwitch)
	if sw != nil {
		if _, err := newLogSwitch(os.Stderr, o.logLevel, o.logFormat); err != nil {
			return nil, err
		}
	}
	if err := a.an.SetThresholds(th); err != nil {
		return nil, err
	}
	added, kept := a.an.SetWatches(append(append([]analyzer.Watch(nil), analyzer.Presets...), o.watches...))
	if len(added) > 0 && a.cache != nil {
		// The cache's eligible tables and their invalidation counters are fixed at its start.
		a.log.Info("new watches are analysed from now on; the coalescing cache answers them after a restart", "added", (*watchList)(&added).String())
	}
	if sw != nil {
		_ = sw.set(o.logLevel, o.logFormat)
	}
	if a.cache != nil {
		if o.coalesceTTL != a.cache.TTL() {
			a.cache.SetTTL(o.coalesceTTL)
		}
		if o.coalesce != a.cache.Enabled() {
			a.cache.SetEnabled(o.coalesce)
		}
	}
	a.srv.SetReuseLimits(o.reuseIdleTimeout, o.reuseMaxAge, o.reuseMaxIdle)
	return kept, nil
}
