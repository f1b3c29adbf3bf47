package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// FDLimitParams scale the descriptor-exhaustion case.
type FDLimitParams struct {
	NoFile  int           // the proxy's RLIMIT_NOFILE
	Clients int           // clients connecting at once, each holding its connection for Hold
	Hold    time.Duration // how long each client that gets in keeps its connection (pg_sleep)
	Wait    time.Duration // how long a client waits for its connection (connect_timeout)
}

// FDLimit runs the proxy with a low RLIMIT_NOFILE and more clients at once than it has
// descriptors for. Checked: the proxy does not spin while refusing (its CPU time from
// /proc/PID/stat over the refusal window), every client either gets in or gets an answer
// (what each saw is counted and reported), and once the clients are gone the proxy serves
// fully again with its descriptors back to baseline.
func FDLimit(ctx context.Context, e *Env, p FDLimitParams) *Result {
	r := &Result{Case: "fd limit"}
	start := time.Now()
	defer func() { r.Elapsed = time.Since(start) }()
	r.Did = fmt.Sprintf("pgpollwatch under `ulimit -n %d`; %d clients (pgx, connect_timeout=%d) connected at once, each running SELECT pg_sleep(%g) when it got in; then 20 clients at once after they left",
		p.NoFile, p.Clients, int(p.Wait.Seconds()), p.Hold.Seconds())
	px, err := e.StartProxy(ctx, "fdlimit", ProxyOpts{NoFile: p.NoFile})
	if !r.Check(err == nil, "starting the proxy: %v", err) {
		return r
	}
	defer px.Stop()
	limit := px.NoFileLimit()
	base, err := px.Sample(ctx)
	if !r.Check(err == nil, "baseline: %v", err) {
		return r
	}
	r.Figure("proxy RLIMIT_NOFILE (soft/hard) %s, %d descriptors open at rest", limit, base.FDs)
	r.Check(limit == fmt.Sprintf("%d/%d", p.NoFile, p.NoFile), "the proxy's limit is %s, not %d", limit, p.NoFile)

	var outcomes tally
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	t0 := time.Now()
	cpu0, _ := px.CPU()
	for range p.Clients {
		wg.Go(func() {
			at := time.Now()
			cctx, cancel := context.WithTimeout(ctx, p.Wait+p.Hold+10*time.Second)
			defer cancel()
			c, err := pgx.Connect(cctx, px.DSN(fmt.Sprintf("connect_timeout=%d", int(p.Wait.Seconds()))))
			if err == nil {
				_, err = c.Exec(cctx, fmt.Sprintf("SELECT pg_sleep(%g)", p.Hold.Seconds()))
				c.Close(context.Background())
			}
			mu.Lock()
			slowest = max(slowest, time.Since(at))
			mu.Unlock()
			outcomes.add(Classify(err), errText(err))
		})
	}
	// The refusal window: the clients that got in hold their descriptors for Hold.
	sleep(ctx, p.Hold)
	cpu1, _ := px.CPU()
	refusing := time.Since(t0)
	fdsFull, _ := px.FDs()
	wg.Wait()
	cpuShare := float64(cpu1-cpu0) / float64(refusing)
	r.Figure("%d clients: %s; slowest %v", p.Clients, outcomes.format(true), slowest.Round(time.Millisecond))
	r.Figure("proxy CPU while refusing: %v in %v (%.0f%% of a core), %d descriptors open", (cpu1 - cpu0), refusing.Round(time.Millisecond), 100*cpuShare, fdsFull)
	if b, err := os.ReadFile(px.LogFile); err == nil {
		r.Figure("proxy log (warnings): %d \"accept failed\" (EMFILE on accept), %d \"out of file descriptors: client refused\", %d \"cannot connect to upstream\"",
			strings.Count(string(b), "accept failed"), strings.Count(string(b), "out of file descriptors: client refused"),
			strings.Count(string(b), "cannot connect to upstream"))
	}
	r.Check(cpuShare < 0.5, "the proxy used %.0f%% of a core while out of descriptors (a busy loop?)", 100*cpuShare)
	// Each client is served, or told why not: PostgreSQL's "too many clients" (53300), which the
	// proxy sends from a descriptor it holds in reserve.
	for _, o := range outcomes.outcomes(func(o string) bool { return o == "ok" || o == "53300" }) {
		r.Check(false, "%d clients saw %s, neither service nor 53300", outcomes.get(o), o)
	}
	r.Check(outcomes.get("ok") > 0, "no client got in at all")

	// Full service once the descriptors are free.
	sleep(ctx, time.Second)
	var after tally
	for range 20 {
		wg.Go(func() {
			c, err := pgx.Connect(ctx, px.DSN("connect_timeout=10"))
			if err == nil {
				_, err = c.Exec(ctx, "SELECT 1")
				c.Close(context.Background())
			}
			after.add(Classify(err), errText(err))
		})
	}
	wg.Wait()
	settled, err := px.Settle(ctx, base, 2, 0, 20*time.Second)
	r.Check(err == nil, "sampling: %v", err)
	r.Figure("afterwards 20 clients at once: %s; descriptors %d → %d, goroutines %d → %d",
		after.format(true), base.FDs, settled.FDs, base.Goroutines, settled.Goroutines)
	r.Check(after.get("ok") == 20, "after the storm only %d of 20 clients got service: %s", after.get("ok"), after.format(true))
	r.Check(settled.FDs <= base.FDs, "descriptors %d at rest before, %d after", base.FDs, settled.FDs)
	left, _, err := e.waitBackends(ctx, 0, 10*time.Second)
	r.Check(err == nil && len(left) == 0, "server backends left: %d (%v)", len(left), err)
	r.Check(px.Alive(), "the proxy exited")
	return r
}
