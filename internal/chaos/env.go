// Package chaos is pgpollwatch's fault campaign: PostgreSQL restarted and frozen under load,
// a slow reader of a huge answer, the proxy out of file descriptors, clients vanishing at
// random moments, and a long soak with a freshness checker. Each case is an ordinary function
// parameterised by scale and duration: chaos_test.go runs a short version of each in the test
// suite, internal/chaos/campaign (scripts/chaos) the full-length ones.
//
// The proxy runs as a separate process built from cmd/pgpollwatch, so that the RSS, CPU, file
// descriptors and RLIMIT_NOFILE measured are its own. Clients connect as pgcluster.TrustUser
// (the only kind of client whose server connections --reuse-server-connections keeps). Every
// verdict is checked against the server (pg_stat_activity) or against what the clients saw,
// never against the proxy's own idea of what it did.
package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/internal/pgcluster"
	"github.com/pgpollwatch/pgpollwatch/internal/storm"
)

// User is the role every client of the campaign connects as.
const User = pgcluster.TrustUser

// Env is what the cases run against: a PostgreSQL cluster they may restart and freeze, and a
// built pgpollwatch binary.
type Env struct {
	PG  *pgcluster.Cluster
	Bin string // the pgpollwatch binary (see Build)
	Dir string // where the proxies' logs go
	// Progress, if not nil, is told what a case is doing (the campaign prints it on stderr).
	Progress func(format string, args ...any)

	mu      sync.Mutex
	proxies []*Proxy
}

func (e *Env) progress(format string, args ...any) {
	if e.Progress != nil {
		e.Progress(format, args...)
	}
}

// Close stops every proxy the cases started and left running.
func (e *Env) Close() {
	e.mu.Lock()
	ps := e.proxies
	e.proxies = nil
	e.mu.Unlock()
	for _, p := range ps {
		p.Stop()
	}
}

// ModuleRoot returns the directory of the go.mod of the module holding the working directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the pgpollwatch module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// Build builds cmd/pgpollwatch of the module at root into dir and returns the binary's path.
func Build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "pgpollwatch")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pgpollwatch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/pgpollwatch: %w\n%s", err, out)
	}
	return bin, nil
}

// DirectDSN is a DSN straight to the server, as User.
func (e *Env) DirectDSN() string { return e.PG.ConnString(User, "") }

// Setup creates Celery's result tables (as User, so that its clients may write them).
func (e *Env) Setup(ctx context.Context) error {
	return storm.Setup(ctx, e.DirectDSN(), storm.FlavourCelery)
}

// exec runs sql straight on the server as User.
func (e *Env) exec(ctx context.Context, sql string, args ...any) error {
	c, err := pgx.Connect(ctx, e.DirectDSN())
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// Backend is a server backend of one of the campaign's clients, from pg_stat_activity.
type Backend struct {
	PID       int
	State     string
	WaitEvent string
	Query     string
}

// Backends lists the server backends of User (every client of the campaign), read as the
// superuser over the server's Unix socket, so the reader is never among them.
func (e *Env) Backends(ctx context.Context) ([]Backend, error) {
	c, err := pgx.Connect(ctx, fmt.Sprintf("host='%s' port=%d user=%s dbname=%s sslmode=disable connect_timeout=10",
		e.PG.SocketDir, e.PG.Port, pgcluster.SuperUser, pgcluster.Database))
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT pid, coalesce(state, ''), coalesce(wait_event, ''), left(query, 60)
		FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend' ORDER BY pid`, User)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Backend, error) {
		var b Backend
		err := r.Scan(&b.PID, &b.State, &b.WaitEvent, &b.Query)
		return b, err
	})
}

// waitBackends polls pg_stat_activity until at most limit of User's backends are left or
// timeout passes, and returns those left and how long it took.
func (e *Env) waitBackends(ctx context.Context, limit int, timeout time.Duration) ([]Backend, time.Duration, error) {
	start := time.Now()
	for {
		bs, err := e.Backends(ctx)
		if err != nil || len(bs) <= limit || time.Since(start) > timeout || ctx.Err() != nil {
			return bs, time.Since(start), err
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// ProxyOpts say how to start a proxy.
type ProxyOpts struct {
	Args     []string // more flags, e.g. --coalesce
	Upstream string   // default: the cluster over TCP, sslmode=disable
	NoFile   int      // RLIMIT_NOFILE (soft and hard) of the proxy; 0: inherited
}

// Proxy is a running pgpollwatch process.
type Proxy struct {
	Addr        string // where clients connect
	MetricsAddr string // /metrics and /healthz
	LogFile     string
	PID         int
	Cmd         string // the command line, for the reports

	cmd  *exec.Cmd
	done chan struct{}
	stop sync.Once
}

// StartProxy starts a pgpollwatch with --metrics-listen and waits until it accepts clients.
func (e *Env) StartProxy(ctx context.Context, name string, o ProxyOpts) (*Proxy, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	up := o.Upstream
	if up == "" {
		up = fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", e.PG.Port)
	}
	p := &Proxy{
		Addr:        net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		LogFile:     filepath.Join(e.Dir, fmt.Sprintf("%s-%d.log", name, ports[0])),
		done:        make(chan struct{}),
	}
	args := append([]string{"--no-tui", "--log-level", "warn", "--listen", p.Addr,
		"--metrics-listen", p.MetricsAddr, "--upstream", up}, o.Args...)
	p.Cmd = "pgpollwatch " + strings.Join(o.Args, " ")
	if o.NoFile > 0 {
		p.Cmd = fmt.Sprintf("ulimit -n %d; %s", o.NoFile, p.Cmd)
		// sh execs the proxy, which keeps the PID: what we measure is the proxy itself.
		args = append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, o.NoFile), e.Bin}, args...)
		p.cmd = exec.Command("/bin/sh", args...)
	} else {
		p.cmd = exec.Command(e.Bin, args...)
	}
	logf, err := os.Create(p.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group: a ctrl-c on the terminal reaches the campaign, which stops the
	// proxies itself; and it dies with the campaign if that is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.PID = p.cmd.Process.Pid
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	e.mu.Lock()
	e.proxies = append(e.proxies, p)
	e.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.LogFile)
			return nil, fmt.Errorf("pgpollwatch exited during startup: %s", firstLines(string(b), 5))
		default:
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.PID))
		if strings.TrimSpace(string(comm)) == "pgpollwatch" {
			if _, err := p.Healthz(ctx); err == nil {
				if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
					c.Close()
					return p, nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("pgpollwatch is not serving on %s after 15 s (log %s)", p.Addr, p.LogFile)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the proxy: SIGTERM, then SIGKILL after its shutdown grace and a little more.
func (p *Proxy) Stop() {
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// Alive reports whether the proxy process still runs.
func (p *Proxy) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// DSN is a URL for User through the proxy, with extra query parameters (e.g. "connect_timeout=5").
func (p *Proxy) DSN(extra string) string {
	dsn := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", User, p.Addr, pgcluster.Database)
	if extra != "" {
		dsn += "&" + extra
	}
	return dsn
}

// RSS is the proxy's resident set (VmRSS of /proc/PID/status), in bytes.
func (p *Proxy) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on every Linux ABI Go runs on.
const clockTick = 10 * time.Millisecond

// CPU is the proxy's user+system CPU time (utime+stime of /proc/PID/stat).
func (p *Proxy) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if i < 0 || len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick, errors.Join(err1, err2)
}

// FDs counts the proxy's open file descriptors (entries of /proc/PID/fd).
func (p *Proxy) FDs() (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID))
	return len(ents), err
}

// NoFileLimit is the proxy's RLIMIT_NOFILE as /proc/PID/limits shows it ("soft/hard").
func (p *Proxy) NoFileLimit() string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.PID))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(line)
			if len(f) >= 5 {
				return f[3] + "/" + f[4]
			}
		}
	}
	return "?"
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// Healthz asks /healthz and returns how long the answer took.
func (p *Proxy) Healthz(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := p.get(ctx, "/healthz")
	return time.Since(start), err
}

// Metrics returns the /metrics samples without labels, by name.
func (p *Proxy) Metrics(ctx context.Context) (map[string]float64, error) {
	body, err := p.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") && !strings.Contains(f[0], "{") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				m[f[0]] = v
			}
		}
	}
	return m, nil
}

func (p *Proxy) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", path, resp.Status)
	}
	return string(b), err
}

// Sample is one reading of the proxy's resources.
type Sample struct {
	At         time.Time
	RSS        int64
	CPU        time.Duration
	FDs        int
	Goroutines int
	// From /metrics: what the Go heap holds, and the bounded state that fills it.
	HeapInuse, CacheBytes, CacheEntries, KeysTracked float64
}

// Sample reads RSS, CPU, descriptors, and goroutines and the heap from /metrics.
func (p *Proxy) Sample(ctx context.Context) (Sample, error) {
	s := Sample{At: time.Now()}
	var errs [4]error
	s.RSS, errs[0] = p.RSS()
	s.CPU, errs[1] = p.CPU()
	s.FDs, errs[2] = p.FDs()
	var m map[string]float64
	if m, errs[3] = p.Metrics(ctx); errs[3] == nil {
		g, ok := m["go_goroutines"]
		if !ok {
			errs[3] = errors.New("no go_goroutines in /metrics")
		}
		s.Goroutines = int(g)
		s.HeapInuse, s.KeysTracked = m["go_memstats_heap_inuse_bytes"], m["pgpollwatch_keys_tracked"]
		s.CacheBytes, s.CacheEntries = m["pgpollwatch_cache_bytes"], m["pgpollwatch_cache_entries"]
	}
	return s, errors.Join(errs[:]...)
}

func (s Sample) String() string {
	return fmt.Sprintf("RSS %s, %d goroutines, %d fds", mib(s.RSS), s.Goroutines, s.FDs)
}

// Settle waits (at most timeout) until the proxy's goroutines and descriptors are back within
// slack of base: idle session goroutines wait 10 s for a next client before they exit.
func (p *Proxy) Settle(ctx context.Context, base Sample, slackG, slackFD int, timeout time.Duration) (Sample, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := p.Sample(ctx)
		if err == nil && s.Goroutines <= base.Goroutines+slackG && s.FDs <= base.FDs+slackFD ||
			time.Now().After(deadline) || ctx.Err() != nil {
			return s, err
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// sleep waits d or until ctx ends, reporting whether the full time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
