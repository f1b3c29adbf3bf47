package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// VanishParams scale the vanishing-clients case.
type VanishParams struct {
	Clients int           // clients in all, started evenly over Over
	Over    time.Duration // how long clients keep arriving
	Life    time.Duration // each client lives a random time up to this
	Modes   []string      // how vanishing clients vanish (default all of vanishModes)
}

// vanishModes are the ways a client leaves without saying goodbye.
var vanishModes = []string{
	"close",       // FIN between statements, no Terminate
	"rst",         // RST (SO_LINGER 0) between statements
	"after-query", // sends SELECT pg_sleep(60) and closes at once: its FIN follows the query
	"mid-result",  // asks for 1 GB, reads 64 KB of it, closes
}

// Vanish has clients arrive over a period, half of them leaving cleanly and half vanishing at
// a random moment of their life in one of vanishModes. Checked against the server: once the
// last client is gone no backend of theirs is left (the pg_sleep(60) of an after-query client
// would be); and the proxy's goroutines and descriptors are back to their baseline.
func Vanish(ctx context.Context, e *Env, p VanishParams) *Result {
	r := &Result{Case: "vanishing clients"}
	if len(p.Modes) == 0 {
		p.Modes = vanishModes
	}
	start := time.Now()
	defer func() { r.Elapsed = time.Since(start) }()
	r.Did = fmt.Sprintf("%d clients arriving evenly over %v, each living up to %v running SELECT pg_sleep(0.02) in a loop; half leave cleanly (pgx Close), half vanish at a random moment: %s (equally often)",
		p.Clients, p.Over, p.Life, strings.Join(p.Modes, ", "))
	px, err := e.StartProxy(ctx, "vanish", ProxyOpts{})
	if !r.Check(err == nil, "starting the proxy: %v", err) {
		return r
	}
	defer px.Stop()
	base, err := px.Sample(ctx)
	if !r.Check(err == nil, "baseline: %v", err) {
		return r
	}

	var live atomic.Int64
	var outcomes tally // what the clients' own statements saw before they left
	var modes tally
	var wg sync.WaitGroup
	var maxExcess, maxLive, maxBackends atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var swg sync.WaitGroup
	var peak Sample
	swg.Go(func() {
		for sleep(sampleCtx, time.Second) {
			l := live.Load()
			if bs, err := e.Backends(sampleCtx); err == nil {
				// Backends end a moment after their client: compare with the live count
				// before the query, which can only have been higher.
				maxExcess.Store(max(maxExcess.Load(), int64(len(bs))-l))
				maxBackends.Store(max(maxBackends.Load(), int64(len(bs))))
			}
			maxLive.Store(max(maxLive.Load(), l))
			if s, err := px.Sample(sampleCtx); err == nil {
				peak.FDs, peak.Goroutines, peak.RSS = max(peak.FDs, s.FDs), max(peak.Goroutines, s.Goroutines), max(peak.RSS, s.RSS)
			}
		}
	})
	every := p.Over / time.Duration(p.Clients)
	for i := range p.Clients {
		if !sleep(ctx, time.Until(start.Add(time.Duration(i)*every))) {
			break
		}
		life := time.Duration(rand.Int64N(int64(p.Life)) + 1)
		mode := "clean"
		if rand.IntN(2) == 0 {
			mode = p.Modes[rand.IntN(len(p.Modes))]
		}
		modes.add(mode, "")
		wg.Go(func() {
			if mode == "clean" {
				cleanClient(ctx, px, life, &live, &outcomes)
			} else {
				vanishingClient(ctx, px, mode, life, &live, &outcomes)
			}
		})
	}
	wg.Wait()
	stopSampling()
	swg.Wait()
	e.progress("vanish: all %d clients gone; waiting for the server's backends", p.Clients)
	left, took, err := e.waitBackends(ctx, 0, 15*time.Second)
	r.Check(err == nil, "pg_stat_activity: %v", err)
	after, err := px.Settle(ctx, base, 2, 0, 30*time.Second)
	r.Check(err == nil, "sampling: %v", err)

	r.Figure("clients: %s; their statements: %s", modes.String(), outcomes.format(true))
	r.Figure("during the run (1 s samples): at most %d live clients, %d server backends, %d backends more than live clients; proxy peak %d goroutines, %d fds, RSS %s",
		maxLive.Load(), maxBackends.Load(), maxExcess.Load(), peak.Goroutines, peak.FDs, mib(peak.RSS))
	r.Figure("after the last client left: %d server backends left (after %v); proxy before %s, after %s", len(left), took.Round(100*time.Millisecond), base, after)
	var leftQ []string
	for _, b := range left {
		leftQ = append(leftQ, fmt.Sprintf("pid %d %s %q", b.PID, b.State, b.Query))
	}
	r.Check(len(left) == 0, "%d server backends left 15 s after the last client vanished: %s", len(left), strings.Join(leftQ, ", "))
	r.Check(after.Goroutines <= base.Goroutines+2, "goroutines %d → %d", base.Goroutines, after.Goroutines)
	r.Check(after.FDs <= base.FDs, "descriptors %d → %d", base.FDs, after.FDs)
	r.Check(px.Alive(), "the proxy exited")
	return r
}

// cleanClient runs statements for life and leaves with Terminate.
func cleanClient(ctx context.Context, px *Proxy, life time.Duration, live *atomic.Int64, outcomes *tally) {
	c, err := pgx.Connect(ctx, px.DSN("connect_timeout=10"))
	if err != nil {
		outcomes.add(Classify(err), "connect: "+errText(err))
		return
	}
	live.Add(1)
	defer live.Add(-1)
	defer c.Close(context.Background())
	end := time.Now().Add(life)
	for time.Now().Before(end) && ctx.Err() == nil {
		if _, err := c.Exec(ctx, "SELECT pg_sleep(0.02)"); err != nil {
			outcomes.add(Classify(err), "SELECT pg_sleep(0.02): "+errText(err))
			return
		}
	}
	outcomes.add("ok", "")
}

// vanishingClient runs statements until its moment comes, then vanishes as mode says.
func vanishingClient(ctx context.Context, px *Proxy, mode string, life time.Duration, live *atomic.Int64, outcomes *tally) {
	c, err := dialRaw(ctx, px.Addr, 10*time.Second)
	if err != nil {
		outcomes.add(Classify(err), "startup: "+errText(err))
		return
	}
	live.Add(1)
	defer live.Add(-1)
	end := time.Now().Add(life)
	for time.Now().Before(end) && ctx.Err() == nil {
		if err := c.query("SELECT pg_sleep(0.02)", 10*time.Second); err != nil {
			outcomes.add(Classify(err), "SELECT pg_sleep(0.02): "+errText(err))
			break
		}
	}
	switch mode {
	case "close":
		c.conn.Close()
	case "rst":
		c.reset()
	case "after-query":
		c.send("SELECT pg_sleep(60)")
		c.conn.Close()
	case "mid-result":
		c.send("SELECT repeat('x', 1000) FROM generate_series(1, 1000000)")
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.CopyN(io.Discard, c.conn, 64<<10)
		c.conn.Close()
	}
}
