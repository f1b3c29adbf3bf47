package chaos

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// FreezeParams scale the freeze case.
type FreezeParams struct {
	Freeze         time.Duration // how long the server stays stopped (SIGSTOP)
	ConnectTimeout time.Duration // the proxies' --connect-timeout
	NewClients     int           // clients connecting during the freeze, per proxy, spread over it
	Held           int           // clients holding a connection through the freeze, per proxy
}

// Freeze stops the postmaster and its backends with SIGSTOP for a while, then SIGCONT. Two
// proxies stand in front of it: one reaching the server with sslmode=disable, one with
// sslmode=prefer (whose TLS negotiation waits for the server's first byte). Checked: a client
// connecting during the freeze is answered (08006, or a working connection) within
// --connect-timeout and a little; /healthz answers throughout; held clients resume after the
// thaw; afterwards goroutines, descriptors and RSS are back to their baseline and no server
// backend is left.
func Freeze(ctx context.Context, e *Env, p FreezeParams) *Result {
	r := &Result{Case: "freeze"}
	start := time.Now()
	defer func() { r.Elapsed = time.Since(start) }()
	r.Did = fmt.Sprintf("SIGSTOP to the postmaster and every backend for %v, then SIGCONT; pgpollwatch --connect-timeout %v in front of it twice (upstream sslmode=disable and sslmode=prefer); per proxy %d clients holding a connection (SELECT 1 every 100 ms) and %d new clients connecting during the freeze, /healthz every 100 ms",
		p.Freeze, p.ConnectTimeout, p.Held, p.NewClients)
	slack := 1500 * time.Millisecond // scheduling, and the client's own connect
	type proxyRun struct {
		name string
		px   *Proxy
		base Sample
	}
	var runs []*proxyRun
	for _, ssl := range []string{"disable", "prefer"} {
		px, err := e.StartProxy(ctx, "freeze-"+ssl, ProxyOpts{
			Upstream: fmt.Sprintf("host=127.0.0.1 port=%d sslmode=%s", e.PG.Port, ssl),
			Args:     []string{"--connect-timeout", p.ConnectTimeout.String()}})
		if !r.Check(err == nil, "starting the proxy: %v", err) {
			return r
		}
		defer px.Stop()
		runs = append(runs, &proxyRun{name: "sslmode=" + ssl, px: px})
	}
	// Baseline after a few clients came and went, so that the runtime's first allocations are in.
	for _, run := range runs {
		for range 10 {
			if c, err := pgx.Connect(ctx, run.px.DSN("connect_timeout=5")); err == nil {
				c.Exec(ctx, "SELECT 1")
				c.Close(ctx)
			}
		}
	}
	sleep(ctx, 500*time.Millisecond)
	for _, run := range runs {
		var err error
		run.base, err = run.px.Sample(ctx)
		if !r.Check(err == nil, "baseline: %v", err) {
			return r
		}
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	type held struct {
		okAfterThaw bool
		errs        tally
	}
	helds := make([][]*held, len(runs))
	var thawed time.Time
	var thawMu sync.Mutex
	thawedAt := func() time.Time { thawMu.Lock(); defer thawMu.Unlock(); return thawed }
	for i, run := range runs {
		for range p.Held {
			h := &held{}
			helds[i] = append(helds[i], h)
			wg.Go(func() {
				c, err := pgx.Connect(runCtx, run.px.DSN("connect_timeout=5"))
				if err != nil {
					h.errs.add(Classify(err), errText(err))
					return
				}
				defer c.Close(context.Background())
				for runCtx.Err() == nil {
					at := time.Now()
					_, err := c.Exec(runCtx, "SELECT 1")
					if runCtx.Err() != nil {
						return
					}
					if err != nil {
						h.errs.add(Classify(err), errText(err))
						return
					}
					if t := thawedAt(); !t.IsZero() && at.After(t) {
						h.okAfterThaw = true
					}
					sleep(runCtx, 100*time.Millisecond)
				}
			})
		}
	}
	// /healthz throughout.
	var hMu sync.Mutex
	hMax := make([]time.Duration, len(runs))
	hFails := make([]int, len(runs))
	hCount := make([]int, len(runs))
	for i, run := range runs {
		wg.Go(func() {
			for runCtx.Err() == nil {
				d, err := run.px.Healthz(runCtx)
				if runCtx.Err() != nil {
					return
				}
				hMu.Lock()
				hCount[i]++
				hMax[i] = max(hMax[i], d)
				if err != nil {
					hFails[i]++
				}
				hMu.Unlock()
				sleep(runCtx, 100*time.Millisecond)
			}
		})
	}
	sleep(ctx, time.Second)

	e.progress("freeze: SIGSTOP the server for %v", p.Freeze)
	if err := e.PG.Signal(syscall.SIGSTOP); !r.Check(err == nil, "SIGSTOP: %v", err) {
		return r
	}
	frozen := time.Now()
	thawOnce := sync.OnceFunc(func() {
		if err := e.PG.Signal(syscall.SIGCONT); err != nil {
			r.Check(false, "SIGCONT: %v", err)
		}
		thawMu.Lock()
		thawed = time.Now()
		thawMu.Unlock()
	})
	defer thawOnce()

	// New clients, spread over the freeze.
	type newClient struct {
		at, answered time.Time
		outcome, msg string
	}
	news := make([][]*newClient, len(runs))
	var cwg sync.WaitGroup
	for k := range p.NewClients {
		for i, run := range runs {
			nc := &newClient{}
			news[i] = append(news[i], nc)
			cwg.Go(func() {
				sleep(ctx, time.Duration(k)*p.Freeze/time.Duration(p.NewClients))
				nc.at = time.Now()
				cctx, cancel := context.WithTimeout(ctx, p.Freeze+p.ConnectTimeout+10*time.Second)
				defer cancel()
				c, err := pgx.Connect(cctx, run.px.DSN(""))
				nc.answered = time.Now()
				nc.outcome = Classify(err)
				if err != nil {
					nc.msg = errText(err)
				} else {
					c.Close(context.Background())
				}
			})
		}
	}
	sleep(ctx, time.Until(frozen.Add(p.Freeze)))
	thawOnce()
	e.progress("freeze: SIGCONT")
	cwg.Wait()
	sleep(ctx, 2*time.Second) // the held clients run statements after the thaw
	stopRun()
	wg.Wait()

	for i, run := range runs {
		var outcomes tally
		late, slowest := 0, time.Duration(0)
		for _, nc := range news[i] {
			d := nc.answered.Sub(nc.at)
			slowest = max(slowest, d)
			outcomes.add(nc.outcome, nc.msg)
			// A startup answered by the thawed server is fine; one left unanswered longer than
			// the connect timeout while the server was frozen is not.
			if d > p.ConnectTimeout+slack && nc.at.Add(p.ConnectTimeout+slack).Before(thawedAt()) {
				late++
			}
		}
		resumed := 0
		var heldErrs tally
		for _, h := range helds[i] {
			if h.okAfterThaw {
				resumed++
			}
			for _, o := range h.errs.outcomes(nil) {
				heldErrs.add(o, "")
			}
		}
		r.Figure("%s: new clients during the freeze: %s; slowest answer %v; %d unanswered past --connect-timeout+%v while frozen; /healthz %d answers, %d failed, slowest %v; held clients resumed after the thaw: %d of %d (errors: %s)",
			run.name, outcomes.format(true), slowest.Round(time.Millisecond), late, slack, hCount[i], hFails[i], hMax[i].Round(time.Millisecond), resumed, p.Held, heldErrs.String())
		r.Check(late == 0, "%s: %d of %d new clients were not answered within --connect-timeout (%v) + %v while the server was frozen (slowest %v)",
			run.name, late, p.NewClients, p.ConnectTimeout, slack, slowest.Round(time.Millisecond))
		for _, o := range outcomes.outcomes(nil) {
			r.Check(o == "ok" || o == "08006", "%s: %d new clients got %s, not 08006 or a connection", run.name, outcomes.get(o), o)
		}
		r.Check(hFails[i] == 0 && hMax[i] < 2*time.Second, "%s: /healthz failed %d times, slowest %v", run.name, hFails[i], hMax[i])
		r.Check(resumed == p.Held, "%s: %d of %d held clients ran a statement after the thaw", run.name, resumed, p.Held)
	}

	// Afterwards: nothing grew, nothing left on the server.
	left, took, err := e.waitBackends(ctx, 0, 15*time.Second)
	r.Check(err == nil, "pg_stat_activity: %v", err)
	r.Figure("server backends of the clients left after they all closed: %d (after %v)", len(left), took.Round(100*time.Millisecond))
	r.Check(len(left) == 0, "%d server backends left after every client closed: %v", len(left), left)
	for _, run := range runs {
		after, err := run.px.Settle(ctx, run.base, 2, 0, 20*time.Second)
		r.Check(err == nil, "%s: sampling: %v", run.name, err)
		r.Figure("%s: before %s; after %s", run.name, run.base, after)
		r.Check(after.Goroutines <= run.base.Goroutines+2, "%s: goroutines %d → %d", run.name, run.base.Goroutines, after.Goroutines)
		r.Check(after.FDs <= run.base.FDs, "%s: descriptors %d → %d", run.name, run.base.FDs, after.FDs)
		r.Check(after.RSS <= run.base.RSS+16<<20, "%s: RSS %s → %s (more than 16 MiB up)", run.name, mib(run.base.RSS), mib(after.RSS))
		r.Check(run.px.Alive(), "%s: the proxy exited", run.name)
	}
	return r
}
