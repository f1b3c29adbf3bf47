package coalesce_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// BenchmarkStorm is the coalescing benchmark: persistent pollers spin on 10 pending task_ids
// at full speed, straight to PostgreSQL, through pgpollwatch, and through pgpollwatch
// --coalesce (TTL 500 ms), in interleaved rounds. It reports polls served per second, the client-observed
// latency of a poll, and how many polls the server ran (pg_stat_statements), and prints a
// Markdown table of medians. Run it with
//
//	go test -run '^$' -bench Storm -benchtime 1x ./coalesce/
//
// PGPOLLWATCH_STORM_SECONDS (default 5), _ROUNDS (3) and _POLLERS (8) change the shape.
func BenchmarkStorm(b *testing.B) {
	pg := pgtest.Shared(b)
	for _, proto := range []struct {
		name string
		mode pgx.QueryExecMode
	}{{"prepared", pgx.QueryExecModeCacheStatement}, {"simple", pgx.QueryExecModeSimpleProtocol}} {
		b.Run(proto.name, func(b *testing.B) {
			e := newEnv(b, coalesce.Config{TTL: 500 * time.Millisecond})
			for i := 0; i < 10; i++ {
				e.super(fmt.Sprintf("INSERT INTO celery_taskmeta (id, task_id, status) VALUES (%d, 'storm-%d', 'PENDING')", i+1, i))
			}
			secs, rounds, pollers := envInt(b, "SECONDS", 5), envInt(b, "ROUNDS", 3), envInt(b, "POLLERS", 8)
			targets := []string{"direct", "proxy, coalescing off", "proxy, coalescing on"}
			// The proxies are the real binary in processes of their own, as deployed (one thread
			// each, the default), not goroutines competing with the pollers for this process's CPU.
			addrs := map[string]string{
				"direct":                pg.Addr(),
				"proxy, coalescing off": startBinary(b, e),
				"proxy, coalescing on":  startBinary(b, e, "--coalesce", "--coalesce-ttl", "500ms", "--procs", strconv.Itoa(envInt(b, "PROCS", 1)), "--cpuprofile", os.Getenv("PGPOLLWATCH_STORM_PROFILE")),
			}
			results := map[string][]stormResult{}
			for r := 0; r < rounds; r++ {
				for i := range targets {
					tg := targets[(i+r)%len(targets)] // rotate the order every round
					results[tg] = append(results[tg], e.storm(b, addrs[tg], proto.mode, pollers, time.Duration(secs)*time.Second))
				}
			}
			fmt.Fprintf(os.Stdout, "\n%s protocol, %d persistent pollers on 10 task_ids, %d s x %d rounds (medians):\n\n", proto.name, pollers, secs, rounds)
			fmt.Fprintln(os.Stdout, "| target | polls/s | p50 µs | p99 µs | server ran | server share |")
			fmt.Fprintln(os.Stdout, "|---|--:|--:|--:|--:|--:|")
			for _, tg := range targets {
				m := medianResult(results[tg])
				fmt.Fprintf(os.Stdout, "| %s | %.0f | %.0f | %.0f | %d of %d | %.2f%% |\n", tg, m.qps, m.p50, m.p99, m.server, m.polls, 100*float64(m.server)/float64(max(m.polls, 1)))
			}
			on, direct := medianResult(results["proxy, coalescing on"]), medianResult(results["direct"])
			b.ReportMetric(on.qps/direct.qps, "x-direct-polls/s")
			b.ReportMetric(100*(1-float64(on.server)/float64(max(on.polls, 1))), "%-upstream-saved")
			b.ReportMetric(on.p50, "p50-µs-cached")
			b.ReportMetric(direct.p50, "p50-µs-direct")
		})
	}
}

type stormResult struct {
	polls, server int64
	qps, p50, p99 float64
}

func medianResult(rs []stormResult) stormResult {
	med := func(f func(stormResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return stormResult{
		polls:  int64(med(func(r stormResult) float64 { return float64(r.polls) })),
		server: int64(med(func(r stormResult) float64 { return float64(r.server) })),
		qps:    med(func(r stormResult) float64 { return r.qps }),
		p50:    med(func(r stormResult) float64 { return r.p50 }),
		p99:    med(func(r stormResult) float64 { return r.p99 }),
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv("PGPOLLWATCH_STORM_" + name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("PGPOLLWATCH_STORM_%s=%q: want a positive number", name, s)
	}
	return n
}

// startBinary runs pgpollwatch headless in front of pg for the benchmark and returns its address.
func startBinary(b *testing.B, e *env, flags ...string) string {
	pg := pgtest.Shared(b)
	bin := filepath.Join(b.TempDir(), "pgpollwatch")
	build := exec.Command("go", "build", "-o", bin, "./cmd/pgpollwatch")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"--no-tui", "--shutdown-grace", "1s", "--listen", addr, "--log-level", "warn",
		"--upstream", "host=127.0.0.1 port=" + portOf(pg.Addr()) + " sslmode=disable"}, flags...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { // SIGTERM, so a --cpuprofile is written
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("pgpollwatch %v does not listen on %s", flags, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storm runs pollers spinning over the 10 task_ids at addr for d and measures them.
func (e *env) storm(b *testing.B, addr string, mode pgx.QueryExecMode, pollers int, d time.Duration) stormResult {
	conns := make([]*pgx.Conn, pollers)
	for i := range conns {
		cfg, err := pgx.ParseConfig("postgres://" + pgtest.TrustUser + "@" + addr + "/" + e.db + "?sslmode=disable")
		if err != nil {
			b.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(context.Background())
		conns[i] = c
	}
	e.scalar("SELECT count(*) FROM (SELECT pg_stat_statements_reset()) r")
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lat := make([][]time.Duration, pollers)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				var status string
				var result []byte
				t0 := time.Now()
				err := c.QueryRow(ctx, pollSQL, fmt.Sprintf("storm-%d", (n+i)%10)).Scan(&status, &result)
				if err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no polls")
	}
	r := stormResult{polls: int64(len(all)), qps: float64(len(all)) / elapsed.Seconds(),
		p50: float64(all[len(all)/2].Microseconds()), p99: float64(all[len(all)*99/100].Microseconds())}
	r.server = e.serverCalls("celery_taskmeta WHERE task_id")
	return r
}
