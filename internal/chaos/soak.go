package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/storm"
)

// SoakParams scale the soak.
type SoakParams struct {
	Duration  time.Duration // the whole run
	Warmup    time.Duration // left out of the first window
	Window    time.Duration // the first window (after Warmup) is compared with the last one
	Every     time.Duration // sampling interval
	Tolerance float64       // the last window's mean may exceed the first's by this share
	Churn     int           // goroutines connecting, querying and leaving in a loop
}

// Soak runs a storm, connection churn and the freshness checker's writers and readers through
// one proxy with --coalesce and --reuse-server-connections for a long time, sampling the
// proxy. Checked: mean RSS and goroutines of the last window within Tolerance of the first
// (after the warm-up); zero freshness violations; no statement left running on the server.
func Soak(ctx context.Context, e *Env, p SoakParams) *Result {
	r := &Result{Case: "soak"}
	start := time.Now()
	defer func() { r.Elapsed = time.Since(start) }()
	r.Did = fmt.Sprintf("%v through pgpollwatch --coalesce --reuse-server-connections: a storm (2 spinning parents on persistent connections with 20 background queries/s, 1 parent polling every 50 ms on a new connection per poll), %d goroutines connecting, running 3 statements and leaving (1 in 10 by RST), 5 writers bumping a version per key and 4 readers checking it; sampled every %v; windows %v, the first after a %v warm-up",
		p.Duration, p.Churn, p.Every, p.Window, p.Warmup)
	if err := e.Setup(ctx); !r.Check(err == nil, "setup: %v", err) {
		return r
	}
	if err := setupFreshness(ctx, e); !r.Check(err == nil, "setup: %v", err) {
		return r
	}
	px, err := e.StartProxy(ctx, "soak", ProxyOpts{Args: []string{"--coalesce", "--reuse-server-connections"}})
	if !r.Check(err == nil, "starting the proxy: %v", err) {
		return r
	}
	defer px.Stop()

	loadStart := time.Now()
	runCtx, stopRun := context.WithTimeout(ctx, p.Duration)
	defer stopRun()
	var wg sync.WaitGroup
	var stormStats [2]storm.Stats
	var stormErrs [2]error
	wg.Go(func() {
		stormStats[0], stormErrs[0] = storm.Run(runCtx, storm.Config{DSN: px.DSN(""), Parents: 2, Pattern: storm.PatternSpin,
			RoundPause: 5 * time.Millisecond, Background: 20}, nil)
	})
	wg.Go(func() {
		stormStats[1], stormErrs[1] = storm.Run(runCtx, storm.Config{DSN: px.DSN(""), Pattern: storm.PatternInterval,
			PollInterval: 50 * time.Millisecond, Conn: storm.ConnPerPoll, Protocol: storm.ProtocolExtended}, nil)
	})
	var churn tally
	for i := range p.Churn {
		wg.Go(func() {
			for n := 0; runCtx.Err() == nil; n++ {
				if (n+i)%10 == 9 {
					c, err := dialRaw(runCtx, px.Addr, 10*time.Second)
					if err == nil {
						err = c.query("SELECT 1", 10*time.Second)
						c.reset()
					}
					if runCtx.Err() == nil {
						churn.add(Classify(err), errText(err))
					}
				} else {
					c, err := pgx.Connect(runCtx, px.DSN("connect_timeout=10"))
					if err == nil {
						for range 3 {
							if _, err = c.Exec(runCtx, "SELECT 1"); err != nil {
								break
							}
						}
						c.Close(context.Background())
					}
					if runCtx.Err() == nil {
						churn.add(Classify(err), errText(err))
					}
				}
				sleep(runCtx, time.Duration(10+rand.IntN(20))*time.Millisecond)
			}
		})
	}
	fresh := &freshness{}
	wg.Go(func() { fresh.run(runCtx, px) })

	var samples []Sample
	var sampleErrs tally
	lastProgress := time.Now()
	for sleep(runCtx, p.Every) {
		s, err := px.Sample(runCtx)
		if err != nil {
			if runCtx.Err() == nil {
				sampleErrs.add("sample", err.Error())
			}
			continue
		}
		samples = append(samples, s)
		if time.Since(lastProgress) >= time.Minute {
			lastProgress = time.Now()
			e.progress("soak: %v: %s; %d reads, %d writes, %d freshness violations",
				time.Since(loadStart).Round(time.Second), s, fresh.reads.Load(), fresh.writes.Load(), fresh.violations)
		}
	}
	stopRun()
	wg.Wait()
	end := time.Now()

	// Means over a window: RSS, goroutines, fds, Go heap in use, keys tracked, cached bytes
	// and entries.
	mean := func(from, to time.Time) (v [7]float64, n int) {
		for _, s := range samples {
			if !s.At.Before(from) && !s.At.After(to) {
				for i, x := range []float64{float64(s.RSS), float64(s.Goroutines), float64(s.FDs), s.HeapInuse, s.KeysTracked, s.CacheBytes, s.CacheEntries} {
					v[i] += x
				}
				n++
			}
		}
		for i := range v {
			v[i] /= float64(max(n, 1))
		}
		return
	}
	firstFrom := loadStart.Add(p.Warmup)
	w1, n1 := mean(firstFrom, firstFrom.Add(p.Window))
	w2, n2 := mean(end.Add(-p.Window), end)
	r1, g1, f1, r2, g2, f2 := w1[0], w1[1], w1[2], w2[0], w2[1], w2[2]
	var peak Sample
	for _, s := range samples {
		peak.RSS, peak.Goroutines, peak.FDs = max(peak.RSS, s.RSS), max(peak.Goroutines, s.Goroutines), max(peak.FDs, s.FDs)
	}
	r.Figure("mean RSS %s (first window, %d samples) → %s (last, %d samples), %+.1f%%; peak %s", mib(int64(r1)), n1, mib(int64(r2)), n2, 100*(r2/r1-1), mib(peak.RSS))
	r.Figure("mean goroutines %.1f → %.1f (%+.1f%%), peak %d; mean fds %.1f → %.1f, peak %d", g1, g2, 100*(g2/g1-1), peak.Goroutines, f1, f2, peak.FDs)
	r.Figure("what fills the memory (means, first → last window): Go heap in use %s → %s, watched keys tracked %.0f → %.0f (bounded by --max-keys), cached answers %.0f → %.0f holding %s → %s by pgpollwatch_cache_bytes",
		mib(int64(w1[3])), mib(int64(w2[3])), w1[4], w2[4], w1[6], w2[6], mib(int64(w1[5])), mib(int64(w2[5])))
	// The cache's byte count is what its --coalesce-max-bytes budget is checked against: per
	// answer held it must stay what it was, however many times the answers were refilled.
	perAnswer1, perAnswer2 := w1[5]/max(w1[6], 1), w2[5]/max(w2[6], 1)
	r.Check(perAnswer2 <= perAnswer1*(1+p.Tolerance)+16<<10,
		"pgpollwatch_cache_bytes per cached answer grew from %.0f to %.0f bytes (%.0f → %.0f answers held)", perAnswer1, perAnswer2, w1[6], w2[6])
	fresh.mu.Lock()
	violations, first := fresh.violations, fresh.first
	fresh.mu.Unlock()
	r.Figure("freshness: %d reads, %d writes through the proxy, %d violations; errors seen: %s", fresh.reads.Load(), fresh.writes.Load(), violations, fresh.errors.format(true))
	for i, s := range stormStats {
		r.Figure("storm %d: %d polls, %d connections, %d writes, %d background statements, %d failed attempts", i+1, s.Polls, s.Connections, s.Writes, s.Background, s.Errors)
		r.Check(stormErrs[i] == nil, "storm %d stopped: %v", i+1, stormErrs[i])
	}
	r.Figure("churn: %s", churn.format(true))
	if m, err := px.Metrics(ctx); err == nil {
		r.Figure("proxy: %.0f cache hits, %.0f invalidations, %.0f server connections reused", m["pgpollwatch_cache_hits_total"],
			m["pgpollwatch_cache_invalidations_total"], m["pgpollwatch_server_connections_reused_total"])
		r.Check(m["pgpollwatch_cache_hits_total"] > 0 && m["pgpollwatch_cache_invalidations_total"] > 0,
			"the cache answered %.0f reads with %.0f invalidations: nothing to check freshness against", m["pgpollwatch_cache_hits_total"], m["pgpollwatch_cache_invalidations_total"])
	}
	r.Check(n1 > 0 && n2 > 0, "too few samples (%d, %d)", n1, n2)
	r.Check(r2 <= r1*(1+p.Tolerance), "RSS grew from %s to %s (over %.0f%%)", mib(int64(r1)), mib(int64(r2)), 100*p.Tolerance)
	r.Check(g2 <= g1*(1+p.Tolerance)+5, "goroutines grew from %.1f to %.1f (over %.0f%% + 5)", g1, g2, 100*p.Tolerance)
	r.Check(violations == 0, "%d reads older than an acknowledged write; first: %s", violations, first)
	r.Check(fresh.reads.Load() > 0 && fresh.writes.Load() > 0, "the freshness checker did not run")
	r.Check(sampleErrs.total() == 0, "sampling the proxy failed: %s", sampleErrs.format(true))
	// Only kept idle server connections may stay once the load is gone.
	var busy []Backend
	for range 50 {
		bs, err := e.Backends(ctx)
		busy = busy[:0]
		for _, b := range bs {
			if b.State != "idle" {
				busy = append(busy, b)
			}
		}
		if err != nil || len(busy) == 0 {
			break
		}
		sleep(ctx, 200*time.Millisecond)
	}
	r.Check(len(busy) == 0, "server backends still busy 10 s after the load stopped: %v", busy)
	r.Check(px.Alive(), "the proxy exited")
	return r
}
