package chaos_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/chaos"
	"github.com/pgpollwatch/pgpollwatch/internal/pgcluster"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// bin is the pgpollwatch binary built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if pgtest.OnlyFuzzing() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := chaos.ModuleRoot()
	if err == nil {
		bin, err = chaos.Build(root, dir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: cannot build pgpollwatch: %v\n", err)
		return 1
	}
	return m.Run()
}

// newEnv starts a cluster of the test's own (the cases restart and freeze it) and the
// environment around it; both are stopped when the test ends. parallel: the test runs beside
// the other parallel ones; every threshold is on counts and server truth, or allows seconds.
func newEnv(t *testing.T, parallel bool) *chaos.Env {
	t.Helper()
	if parallel {
		t.Parallel()
	}
	pg, err := pgcluster.Start()
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v (install it with: %s)", err, pgcluster.InstallCommand)
	}
	t.Cleanup(pg.Stop)
	e := &chaos.Env{PG: pg, Bin: bin, Dir: t.TempDir(), Progress: t.Logf}
	t.Cleanup(e.Close)
	return e
}

func check(t *testing.T, r *chaos.Result) {
	t.Helper()
	t.Log(r)
	if !r.Passed() {
		t.Fatal(r.Verdict())
	}
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func TestRestartMidStorm(t *testing.T) {
	e := newEnv(t, true)
	check(t, chaos.Restart(ctx(t, 2*time.Minute), e, chaos.RestartParams{
		Modes: []string{"fast", "immediate"}, Clients: 4, Between: 2 * time.Second, TTL: 30 * time.Second}))
}

func TestFreeze(t *testing.T) {
	e := newEnv(t, true)
	check(t, chaos.Freeze(ctx(t, 2*time.Minute), e, chaos.FreezeParams{
		Freeze: 5 * time.Second, ConnectTimeout: 2 * time.Second, NewClients: 5, Held: 2}))
}

func TestSlowReader(t *testing.T) {
	e := newEnv(t, true)
	check(t, chaos.SlowReader(ctx(t, 2*time.Minute), e, chaos.SlowReaderParams{
		AnswerBytes: 400_000_000, Rate: 100_000, For: 6 * time.Second, RSSLimit: 64 << 20}))
}

func TestFDLimit(t *testing.T) {
	e := newEnv(t, true)
	check(t, chaos.FDLimit(ctx(t, 2*time.Minute), e, chaos.FDLimitParams{
		NoFile: 64, Clients: 200, Hold: 2 * time.Second, Wait: 10 * time.Second}))
}

func TestVanishingClients(t *testing.T) {
	e := newEnv(t, true)
	check(t, chaos.Vanish(ctx(t, 2*time.Minute), e, chaos.VanishParams{
		Clients: 200, Over: 8 * time.Second, Life: time.Second}))
}

func TestSoak(t *testing.T) {
	e := newEnv(t, false) // it loads both cores: it runs before the parallel tests
	check(t, chaos.Soak(ctx(t, 2*time.Minute), e, chaos.SoakParams{
		Duration: 15 * time.Second, Warmup: 3 * time.Second, Window: 4 * time.Second, Every: time.Second,
		Tolerance: 0.5, Churn: 2}))
}
