// Command campaign runs pgpollwatch's fault campaign at full length (scripts/chaos builds the
// proxy and runs it): each case against a PostgreSQL cluster of its own, then one Markdown
// table of what was done, what was measured and the verdicts on stdout. Progress goes to
// stderr. It exits 1 when a case failed, 2 on bad usage or when it cannot start.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/chaos"
	"github.com/pgpollwatch/pgpollwatch/internal/pgcluster"
)

var caseNames = []string{"restart", "freeze", "slow-reader", "fd-limit", "vanish", "soak"}

func main() { os.Exit(run()) }

func run() int {
	var (
		bin          = flag.String("bin", "", "the pgpollwatch binary to test (scripts/chaos builds it)")
		only         = flag.String("only", "", "comma-separated cases to run: "+strings.Join(caseNames, ", ")+" (default all)")
		soakMinutes  = flag.Float64("soak-minutes", 30, "how long the soak runs")
		clients      = flag.Int("clients", 2000, "vanish: clients in all, half of them vanishing")
		vanishMin    = flag.Float64("vanish-minutes", 5, "vanish: over how many minutes the clients arrive")
		slowSeconds  = flag.Int("slow-seconds", 60, "slow-reader: how long the client reads")
		slowRate     = flag.Int64("slow-rate", 100_000, "slow-reader: bytes per second the client reads")
		answerMB     = flag.Int64("answer-mb", 400, "slow-reader: the size of the answer, in MB")
		freezeSecs   = flag.Int("freeze-seconds", 5, "freeze: how long the server is stopped")
		fdClients    = flag.Int("fd-clients", 200, "fd-limit: clients connecting at once")
		nofile       = flag.Int("nofile", 64, "fd-limit: the proxy's ulimit -n")
		restartConns = flag.Int("restart-clients", 20, "restart: application clients polling through the proxy")
		cmdline      = flag.String("cmdline", "", "the command line to print above the table")
		rev          = flag.String("rev", "unknown", "the revision tested, printed above the table")
	)
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "campaign: --bin is required (scripts/chaos builds the binary)")
		return 2
	}
	want := caseNames
	if *only != "" {
		want = strings.Split(*only, ",")
		for _, c := range want {
			if !slices.Contains(caseNames, c) {
				fmt.Fprintf(os.Stderr, "campaign: unknown case %q (cases: %s)\n", c, strings.Join(caseNames, ", "))
				return 2
			}
		}
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s chaos: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp("", "chaos-campaign-")
	if err != nil {
		logf("%v", err)
		return 2
	}
	keepLogs := false
	defer func() {
		if keepLogs {
			logf("the proxies' logs are kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	cases := map[string]func(context.Context, *chaos.Env) *chaos.Result{
		"restart": func(ctx context.Context, e *chaos.Env) *chaos.Result {
			return chaos.Restart(ctx, e, chaos.RestartParams{Modes: []string{"fast", "immediate"}, Clients: *restartConns,
				Between: 20 * time.Second, TTL: 30 * time.Second})
		},
		"freeze": func(ctx context.Context, e *chaos.Env) *chaos.Result {
			return chaos.Freeze(ctx, e, chaos.FreezeParams{Freeze: time.Duration(*freezeSecs) * time.Second,
				ConnectTimeout: 2 * time.Second, NewClients: 20, Held: 5})
		},
		"slow-reader": func(ctx context.Context, e *chaos.Env) *chaos.Result {
			return chaos.SlowReader(ctx, e, chaos.SlowReaderParams{AnswerBytes: *answerMB * 1_000_000, Rate: *slowRate,
				For: time.Duration(*slowSeconds) * time.Second, RSSLimit: 64 << 20})
		},
		"fd-limit": func(ctx context.Context, e *chaos.Env) *chaos.Result {
			return chaos.FDLimit(ctx, e, chaos.FDLimitParams{NoFile: *nofile, Clients: *fdClients, Hold: 5 * time.Second, Wait: 10 * time.Second})
		},
		"vanish": func(ctx context.Context, e *chaos.Env) *chaos.Result {
			return chaos.Vanish(ctx, e, chaos.VanishParams{Clients: *clients, Over: time.Duration(*vanishMin * float64(time.Minute)), Life: 2 * time.Second})
		},
		"soak": func(ctx context.Context, e *chaos.Env) *chaos.Result {
			d := time.Duration(*soakMinutes * float64(time.Minute))
			window, warmup := 5*time.Minute, time.Minute
			if d < 12*time.Minute { // a short soak: windows of a quarter of it
				window, warmup = d/4, d/10
			}
			return chaos.Soak(ctx, e, chaos.SoakParams{Duration: d, Warmup: warmup, Window: window, Every: 10 * time.Second,
				Tolerance: 0.10, Churn: 4})
		},
	}

	started := time.Now()
	var results []*chaos.Result
	for _, name := range want {
		if ctx.Err() != nil {
			break
		}
		logf("%s: starting a PostgreSQL cluster", name)
		pg, err := pgcluster.Start()
		if err != nil {
			logf("cannot start PostgreSQL: %v (install it with: %s)", err, pgcluster.InstallCommand)
			return 2
		}
		e := &chaos.Env{PG: pg, Bin: *bin, Dir: dir, Progress: logf}
		logf("%s: running", name)
		r := cases[name](ctx, e)
		e.Close()
		pg.Stop()
		if ctx.Err() != nil {
			r.Check(false, "interrupted")
		}
		logf("%s", r)
		results = append(results, r)
	}

	pgVersion := "?"
	if b, err := pgcluster.FindBinDir(); err == nil {
		if out, err := exec.Command(b+"/postgres", "--version").Output(); err == nil {
			pgVersion = strings.TrimSpace(string(out))
		}
	}
	fmt.Printf("## pgpollwatch fault campaign\n\n")
	if *cmdline != "" {
		fmt.Printf("- command: `%s`\n", *cmdline)
	}
	fmt.Printf("- date: %s to %s\n", started.UTC().Format("2006-01-02 15:04 UTC"), time.Now().UTC().Format("15:04 UTC"))
	fmt.Printf("- machine: %d CPUs, %s; git %s; %s; %s\n\n", runtime.NumCPU(), cpuModel(), *rev, pgVersion, runtime.Version())
	fmt.Print(chaos.Table(results))
	failed := 0
	for _, r := range results {
		if !r.Passed() {
			failed++
		}
	}
	fmt.Printf("\n%d of %d cases passed.\n", len(results)-failed, len(results))
	keepLogs = failed > 0
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
