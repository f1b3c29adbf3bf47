package main

// Wiring: the analyzer, the coalescing cache, the proxy server and its listener made from the
// flags, and what the views are handed of them.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// app is a running proxy with its analyzer, and the ways it can be stopped and reported.
type app struct {
	o     proxyOptions
	log   *slog.Logger
	an    *analyzer.Analyzer
	cache *coalesce.Cache // nil: coalescing not available
	up    *proxy.Upstream
	srv   *proxy.Server
	ln    net.Listener

	reportMu sync.Mutex
	reloader *reloader // the configuration, read again on SIGHUP
}

// newApp makes the proxy the flags describe, listening but not yet serving.
func newApp(o proxyOptions, log *slog.Logger) (*app, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	up, err := proxy.ParseUpstream(o.upstream)
	if err != nil {
		return nil, err
	}
	tlsConf, err := loadTLS(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, err
	}
	if o.report != "" {
		if err := checkReportPath(o.report); err != nil {
			return nil, fmt.Errorf("--report: %w", err)
		}
	}
	a := &app{o: o, log: log, up: up}
	watches := append(append([]analyzer.Watch(nil), analyzer.Presets...), o.watches...)
	a.an = analyzer.New(analyzer.Config{
		Watches:        watches,
		Queues:         o.watchQueues.queues(),
		ReportLiterals: o.reportLiterals,
		MaxKeys:        o.maxKeys,
		StormQPS:       o.stormQPS,
		SweepQPS:       o.sweepQPS,
		StormWindow:    o.stormWindow,
		OnNotice:       func(n analyzer.Notice) { logNotice(log, n) },
		KeepFindings:   o.keepFindings,
	})
	var observer proxy.Observer = a.an
	if !o.analyze {
		observer = proxy.NopObserver{}
	}
	var cache proxy.Cache // a nil interface, not a nil *coalesce.Cache: no coalescing work at all
	if a.cache, err = newCache(o, watches, a.an); err != nil {
		return nil, err
	} else if a.cache != nil {
		cache = a.cache
	}
	a.srv, err = proxy.NewServer(proxy.Config{
		Upstream:       up,
		TLS:            tlsConf,
		Observer:       observer,
		Cache:          cache,
		Logger:         log,
		MaxConnections: o.maxConnections,
		MaxMessageSize: int(o.maxMessageSize),
		StartupTimeout: o.startupTimeout,
		ConnectTimeout: o.connectTimeout,

		ReuseServerConnections: o.reuse,
		ReuseIdleTimeout:       o.reuseIdleTimeout,
		ReuseMaxAge:            o.reuseMaxAge,
		ReuseMaxIdle:           o.reuseMaxIdle,
	})
	if err != nil {
		return nil, err
	}
	if o.reuse { // the counters join the snapshot, as the cache's do, and so reach every view
		a.an.SetReuseStats(reuseStats(a.srv))
	}
	a.ln, err = proxy.Listen(o.listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen: %w", err)
	}
	if tlsConf == nil && !isLoopback(a.ln.Addr()) {
		log.Warn("listening on a non-loopback address without TLS: clients' passwords and data cross the network in clear; give --tls-cert and --tls-key")
	}
	log.Info("pgpollwatch listening", "listen", a.ln.Addr().String(), "upstream", up.String(), "version", version())
	return a, nil
}

// reuseStats reads srv's server connection reuse counters for the analyzer's snapshots.
func reuseStats(srv *proxy.Server) func() analyzer.ReuseStats {
	return func() analyzer.ReuseStats {
		r := srv.ReuseStats()
		return analyzer.ReuseStats{Reused: r.Reused, Kept: r.Kept, Discarded: r.Discarded, Idle: r.Idle}
	}
}

// newCache makes the coalescing cache when it may be used: --coalesce, or the TUI (whose c key
// starts it). Headless without --coalesce the sessions do no coalescing work at all.
func newCache(o proxyOptions, watches []analyzer.Watch, an *analyzer.Analyzer) (*coalesce.Cache, error) {
	var scope proxy.CacheScope
	switch o.coalesceScope {
	case "read-committed":
		scope = proxy.ScopeReadCommitted
	case "idle":
		scope = proxy.ScopeIdle
	default:
		return nil, fmt.Errorf("--coalesce-scope: %q is not read-committed or idle", o.coalesceScope)
	}
	if o.coalesceTTL <= 0 {
		return nil, errors.New("--coalesce-ttl must be positive")
	}
	if !o.coalesce && !o.useTUI {
		return nil, nil
	}
	c := coalesce.New(coalesce.Config{
		TTL: o.coalesceTTL, MaxEntries: o.coalesceMaxEntries, MaxBytes: int64(o.coalesceMaxBytes),
		Scope: scope, Watches: watches, Enabled: o.coalesce,
	})
	an.SetCoalesceStats(c.Stats)
	return c, nil
}

// toggleCoalesce is the TUI's c key; nil when there is no cache.
func (a *app) toggleCoalesce() func() (bool, error) {
	if a.cache == nil {
		return nil
	}
	return func() (bool, error) {
		on, err := a.cache.Toggle()
		a.log.Info("coalescing switched", "on", on, "ttl", a.cache.TTL())
		return on, err
	}
}
