// Package metrics serves the analyzer's numbers to Prometheus, and the proxy's health checks
// (/healthz, /readyz). Values are read from a snapshot at scrape time, so the hot path pays
// nothing for metrics. Labels are bounded: per-table for watched lookups, per-fingerprint only
// for the top fingerprints, per job queue (the presets' and --watch-queue's), per attribution
// tag only for the top tags, per TTL for the what-if estimate, per quantile for the cache's
// served age; never a task_id or a client.
package metrics

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TopFingerprints is how many fingerprints get their own series.
const TopFingerprints = 20

// TopTags is how many attribution tags get their own series: those with the most polls.
const TopTags = 20

// Source gives the snapshot to export; analyzer.Analyzer implements it.
type Source interface{ Snapshot() *analyzer.Snapshot }

var (
	descQueries    = prometheus.NewDesc("pgpollwatch_queries_total", "Statements completed through the proxy.", nil, nil)
	descFailed     = prometheus.NewDesc("pgpollwatch_failed_queries_total", "Statements the server answered with an error.", nil, nil)
	descWatched    = prometheus.NewDesc("pgpollwatch_watched_lookups_total", "Lookups of watched keys (polls), per watched table.", []string{"table", "column"}, nil)
	descWrites     = prometheus.NewDesc("pgpollwatch_watched_writes_total", "Writes to watched tables, per table.", []string{"table", "column"}, nil)
	descFPCalls    = prometheus.NewDesc("pgpollwatch_fingerprint_calls_total", "Calls of the busiest statement fingerprints (top "+strconv.Itoa(TopFingerprints)+" only).", []string{"fingerprint", "command", "watched"}, nil)
	descStorms     = prometheus.NewDesc("pgpollwatch_storms_active", "Keys, pollers and repeated reads currently storming.", nil, nil)
	descSpins      = prometheus.NewDesc("pgpollwatch_spin_loops_active", "Storming keys and pollers whose poller does not wait between polls of a key (spin loops), by kind.", []string{"kind"}, nil)
	descPollers    = prometheus.NewDesc("pgpollwatch_pollers_storming", "Client identities currently polling watched keys, over several keys, at or above the sweep rate (--sweep-qps).", nil, nil)
	descConns      = prometheus.NewDesc("pgpollwatch_connections_total", "Client connections opened.", nil, nil)
	descOpen       = prometheus.NewDesc("pgpollwatch_connections_open", "Client connections open now.", nil, nil)
	descAuthFailed = prometheus.NewDesc("pgpollwatch_auth_failures_total", "Client logins the server refused.", nil, nil)
	descKeys       = prometheus.NewDesc("pgpollwatch_keys_tracked", "Watched keys held in memory.", nil, nil)
	descEvicted    = prometheus.NewDesc("pgpollwatch_keys_evicted_total", "Watched keys forgotten to stay within --max-keys.", nil, nil)
	descCached     = prometheus.NewDesc("pgpollwatch_cached_answers_total", "Statements answered by the coalescing cache.", nil, nil)
	descQPS        = prometheus.NewDesc("pgpollwatch_queries_per_second", "Queries per second over the last 10 s.", nil, nil)
	descWatchedQPS = prometheus.NewDesc("pgpollwatch_watched_lookups_per_second", "Watched polls per second over the last 10 s.", nil, nil)

	// The coalescing cache, when the proxy has one (--coalesce).
	descCacheHits      = prometheus.NewDesc("pgpollwatch_cache_hits_total", "Eligible reads answered from the coalescing cache.", nil, nil)
	descCacheMisses    = prometheus.NewDesc("pgpollwatch_cache_misses_total", "Eligible reads the coalescing cache sent to the server.", nil, nil)
	descCacheFills     = prometheus.NewDesc("pgpollwatch_cache_fills_total", "Cache entries stored from a server's answer.", nil, nil)
	descCacheInval     = prometheus.NewDesc("pgpollwatch_cache_invalidations_total", "Cache entries ended by a write through the proxy.", nil, nil)
	descCacheDiscarded = prometheus.NewDesc("pgpollwatch_cache_discarded_fills_total", "Answers not cached because a write raced with them.", nil, nil)
	descCacheBypassed  = prometheus.NewDesc("pgpollwatch_cache_bypassed_total", "Reads of watched keys forwarded because the session's state forbade a cached answer.", nil, nil)
	descCacheSaved     = prometheus.NewDesc("pgpollwatch_cache_saved_queries_total", "Upstream queries the coalescing cache saved.", nil, nil)
	descCacheEntries   = prometheus.NewDesc("pgpollwatch_cache_entries", "Entries in the coalescing cache.", nil, nil)
	descCacheBytes     = prometheus.NewDesc("pgpollwatch_cache_bytes", "Bytes held by the coalescing cache.", nil, nil)
	descCacheEnabled   = prometheus.NewDesc("pgpollwatch_cache_enabled", "1 while the coalescing cache answers, 0 while it is switched off.", nil, nil)
	descCacheTTL       = prometheus.NewDesc("pgpollwatch_cache_ttl_seconds", "The coalescing cache's TTL.", nil, nil)
	descCacheAge       = prometheus.NewDesc("pgpollwatch_cache_served_age_seconds", "Age of the cache entries served, when served: median (quantile 0.5) and largest (quantile 1).", []string{"quantile"}, nil)

	// The what-if estimate.
	descWhatIfSaved = prometheus.NewDesc("pgpollwatch_whatif_saved_queries_total", "Watched polls a coalescing cache with this TTL would have answered (estimated from the traffic seen).", []string{"ttl"}, nil)
	descWhatIfPolls = prometheus.NewDesc("pgpollwatch_whatif_polls_total", "Watched key polls the what-if estimate considered.", nil, nil)
)

// Job queues polled for work, and the attribution tags of statements' comments.
var (
	descQueuePolls    = prometheus.NewDesc("pgpollwatch_queue_polls_total", "Statements that polled a job queue for work, per queue.", []string{"queue"}, nil)
	descQueueEmpty    = prometheus.NewDesc("pgpollwatch_queue_empty_polls_total", "Polls of a job queue that found no job, per queue; absent when the answers are not seen (a server log).", []string{"queue"}, nil)
	descQueueEnqueued = prometheus.NewDesc("pgpollwatch_queue_enqueued_total", "Jobs enqueued into a job queue, per queue.", []string{"queue"}, nil)
	descTagPolls      = prometheus.NewDesc("pgpollwatch_tag_polls_total", "Polls (watched lookups and job queue polls) whose statement carried an attribution tag in its comment (sqlcommenter, marginalia), per tag (top "+strconv.Itoa(TopTags)+" by polls only).", []string{"tag"}, nil)
)

// The configuration in force, which a reload (SIGHUP) may change.
var (
	descStormQPS    = prometheus.NewDesc("pgpollwatch_storm_threshold_qps", "Polls per second of one key at or above which it storms (--storm-qps).", nil, nil)
	descSweepQPS    = prometheus.NewDesc("pgpollwatch_sweep_threshold_qps", "Watched polls per second of one client over several keys at or above which it storms as a poller (--sweep-qps).", nil, nil)
	descStormWindow = prometheus.NewDesc("pgpollwatch_storm_window_seconds", "How long a storm's rate must hold to start it, and stay below to end it (--storm-window).", nil, nil)
	descReloads     = prometheus.NewDesc("pgpollwatch_config_reloads_total", "Configuration reloads (SIGHUP), by result: success, or failure (the running configuration stayed).", []string{"result"}, nil)
	descReloadOK    = prometheus.NewDesc("pgpollwatch_config_last_reload_successful", "1 if the last configuration reload took (or none was tried), 0 if it was refused.", nil, nil)
	descReloadTime  = prometheus.NewDesc("pgpollwatch_config_last_reload_timestamp_seconds", "When the last configuration reload was tried, in seconds since the epoch; 0 before any.", nil, nil)
)

// Server connection reuse, when on (--reuse-server-connections).
var (
	descReused        = prometheus.NewDesc("pgpollwatch_server_connections_reused_total", "Clients served by a kept server connection instead of a new one.", nil, nil)
	descKept          = prometheus.NewDesc("pgpollwatch_server_connections_kept_total", "Server connections reset and kept after their client left.", nil, nil)
	descKeptDiscarded = prometheus.NewDesc("pgpollwatch_server_connections_discarded_total", "Kept server connections closed: expired, closed by the server, reset failed, or no room.", nil, nil)
	descKeptIdle      = prometheus.NewDesc("pgpollwatch_server_connections_idle", "Kept server connections waiting for a client now.", nil, nil)
)

// Collector exports a Source's snapshot.
type Collector struct{ src Source }

// NewCollector returns a collector over src.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueries, descFailed, descWatched, descWrites, descFPCalls, descStorms, descSpins, descPollers,
		descConns, descOpen, descAuthFailed, descKeys, descEvicted, descCached, descQPS, descWatchedQPS,
		descCacheHits, descCacheMisses, descCacheFills, descCacheInval, descCacheDiscarded, descCacheBypassed, descCacheSaved,
		descCacheEntries, descCacheBytes, descCacheEnabled, descCacheTTL, descCacheAge, descWhatIfSaved, descWhatIfPolls,
		descReused, descKept, descKeptDiscarded, descKeptIdle,
		descQueuePolls, descQueueEmpty, descQueueEnqueued, descTagPolls,
		descStormQPS, descSweepQPS, descStormWindow, descReloads, descReloadOK, descReloadTime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	t := s.Totals
	counter(descQueries, float64(t.Queries))
	counter(descFailed, float64(t.Failed))
	counter(descConns, float64(t.Connections))
	counter(descAuthFailed, float64(t.AuthFailures))
	counter(descEvicted, float64(t.KeysEvicted))
	counter(descCached, float64(t.CachedAnswers))
	gauge(descOpen, float64(t.OpenConnections))
	gauge(descStorms, float64(t.StormsActive))
	var spinKeys, spinPollers, pollers float64
	for _, k := range s.Keys { // storming keys rank first: all of them are among those listed
		if k.Storming && k.Spinning {
			spinKeys++
		}
	}
	for _, p := range s.Pollers {
		if p.Storming {
			pollers++
			if p.Spinning {
				spinPollers++
			}
		}
	}
	gauge(descSpins, spinKeys, "key")
	gauge(descSpins, spinPollers, "poller")
	gauge(descPollers, pollers)
	gauge(descKeys, float64(t.KeysTracked))
	gauge(descQPS, s.Rates.QPS10)
	gauge(descWatchedQPS, s.Rates.WatchedQPS10)
	for _, w := range s.Watches {
		counter(descWatched, float64(w.Lookups), w.Table, w.Column)
		counter(descWrites, float64(w.Writes), w.Table, w.Column)
	}
	for i, f := range s.Fingerprints { // sorted by calls, busiest first
		if i == TopFingerprints {
			break
		}
		counter(descFPCalls, float64(f.Calls), f.Fingerprint, f.Command, strconv.FormatBool(f.Watched))
	}
	for _, q := range s.Queues { // one per configured queue
		counter(descQueuePolls, float64(q.Polls), q.Queue)
		if q.EmptyPolls >= 0 {
			counter(descQueueEmpty, float64(q.EmptyPolls), q.Queue)
		}
		counter(descQueueEnqueued, float64(q.Enqueued), q.Queue)
	}
	for _, t := range topTags(s.Tags) {
		counter(descTagPolls, float64(t.Polls), t.Tag)
	}
	if cs := s.Coalesce; cs != nil {
		counter(descCacheHits, float64(cs.Hits))
		counter(descCacheMisses, float64(cs.Misses))
		counter(descCacheFills, float64(cs.Fills))
		counter(descCacheInval, float64(cs.Invalidations))
		counter(descCacheDiscarded, float64(cs.DiscardedFills))
		counter(descCacheBypassed, float64(cs.Bypassed))
		counter(descCacheSaved, float64(cs.Saved))
		gauge(descCacheEntries, float64(cs.Entries))
		gauge(descCacheBytes, float64(cs.Bytes))
		enabled := 0.0
		if cs.Enabled {
			enabled = 1
		}
		gauge(descCacheEnabled, enabled)
		gauge(descCacheTTL, cs.TTL.Seconds())
		gauge(descCacheAge, cs.AgeP50.Seconds(), "0.5")
		gauge(descCacheAge, cs.AgeMax.Seconds(), "1")
	}
	gauge(descStormQPS, s.Thresholds.StormQPS)
	gauge(descSweepQPS, s.Thresholds.SweepQPS)
	gauge(descStormWindow, s.Thresholds.StormWindow.Seconds())
	if c := s.Config; c != nil {
		counter(descReloads, float64(c.Reloads), "success")
		counter(descReloads, float64(c.ReloadFailures), "failure")
		ok := 0.0
		if c.LastOK {
			ok = 1
		}
		gauge(descReloadOK, ok)
		at := 0.0
		if !c.LastReload.IsZero() {
			at = float64(c.LastReload.UnixNano()) / 1e9
		}
		gauge(descReloadTime, at)
	}
	if r := s.Reuse; r != nil {
		counter(descReused, float64(r.Reused))
		counter(descKept, float64(r.Kept))
		counter(descKeptDiscarded, float64(r.Discarded))
		gauge(descKeptIdle, float64(r.Idle))
	}
	for i, w := range s.WhatIf {
		if i == 0 {
			counter(descWhatIfPolls, float64(w.Polls))
		}
		counter(descWhatIfSaved, float64(w.Saved), ttlLabel(w.TTL))
	}
}

// topTags are the TopTags tags with the most polls; a tag that carried none has no series.
func topTags(tags []analyzer.TagStat) []analyzer.TagStat {
	var out []analyzer.TagStat
	for _, t := range tags {
		if t.Polls > 0 {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b analyzer.TagStat) int { return cmp.Compare(b.Polls, a.Polls) })
	return out[:min(len(out), TopTags)]
}

// ttlLabel writes a TTL in seconds, as Prometheus writes durations: 0.1s, 0.5s, 1s, 5s.
func ttlLabel(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Probe says whether the upstream answers (proxy.Server.ProbeUpstream); /readyz serves its
// verdict. It bounds itself: /readyz waits for it.
type Probe func(ctx context.Context) error

// ReadyCache is how long /readyz reuses a verdict, so that probes (Kubernetes', a load
// balancer's, a person's curl loop) cannot make the proxy dial the server more often.
const ReadyCache = time.Second

// readiness runs the probe for /readyz at most once per ReadyCache; requests that come while
// it runs wait for its verdict instead of starting their own.
type readiness struct {
	probe Probe
	mu    sync.Mutex
	at    time.Time // when the last verdict was reached; zero: never
	err   error
}

func (r *readiness) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < ReadyCache {
		return r.err
	}
	// Not the request's context: a client that gives up must not leave its cancellation as
	// the verdict the next requests are served.
	r.err = r.probe(context.Background())
	r.at = time.Now()
	return r.err
}

// Handler serves /metrics for src, /healthz (the process answers) and, when ready is not nil,
// /readyz: 200 while ready finds the upstream answering, 503 with its reason otherwise.
func Handler(src Source, ready Probe) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src), prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	if ready != nil {
		r := &readiness{probe: ready}
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if err := r.check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "not ready: the upstream does not answer: %v\n", err)
				return
			}
			_, _ = w.Write([]byte("ready\n"))
		})
	}
	return mux
}
