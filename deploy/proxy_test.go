package deploy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

var bin string // the pgpollwatch binary, built once

func TestMain(m *testing.M) { pgtest.MainWithBinary(m, pgtest.Options{}, &bin) }

// What the binary logs once it listens, with the addresses it got from port 0.
var (
	listeningLine = regexp.MustCompile(`msg="pgpollwatch listening" listen=(\S+)`)
	metricsLine   = regexp.MustCompile(`msg="serving metrics" addr=http://(\S+)/metrics`)
)

// runningProxy is the binary running headless in front of the package's server, with
// --metrics-listen.
type runningProxy struct {
	addr, metrics string // where clients connect; where /metrics is
	cmd           *exec.Cmd
	log           *pgtest.Output
}

// startProxy runs the binary as an operator would, with args after the listen, upstream and
// metrics flags; it is killed when the test ends if it has not stopped by then.
func startProxy(t *testing.T, args ...string) *runningProxy {
	t.Helper()
	pg := pgtest.Shared(t)
	p := &runningProxy{log: &pgtest.Output{}}
	p.cmd = exec.Command(bin, append([]string{"--no-tui", "--listen", "127.0.0.1:0",
		"--upstream", fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", pg.Port),
		"--metrics-listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for p.addr == "" || p.metrics == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy did not say where it listens within 20 s:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
		if m := listeningLine.FindStringSubmatch(p.log.String()); m != nil {
			p.addr = m[1]
		}
		if m := metricsLine.FindStringSubmatch(p.log.String()); m != nil {
			p.metrics = m[1]
		}
	}
	return p
}

// dsn is a DSN for the storm through the proxy, as the trust role (which may create the
// storm's tables in a pgtest database, and whose server connections the proxy may reuse).
func (p *runningProxy) dsn(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(pgtest.TrustUser), Host: p.addr, Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// storm starts `pgpollwatch storm --dsn ... --setup` with args through the proxy; wait waits
// for it to end by itself and fails the test if it failed.
func (p *runningProxy) storm(t *testing.T, db string, args ...string) (wait func()) {
	t.Helper()
	out := &pgtest.Output{}
	cmd := exec.Command(bin, append([]string{"storm", "--dsn", p.dsn(db), "--setup"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return func() {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("storm %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
}

// sample is one line of the text exposition format.
type sample struct {
	name   string
	labels string // as exposed, with braces; "" when none
	value  string
}

// scrape reads /metrics.
func (p *runningProxy) scrape() ([]sample, error) {
	res, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return nil, fmt.Errorf("/metrics: %s: %s", res.Status, b)
	}
	return parseExposition(res.Body)
}

// parseExposition reads Prometheus' text format, as the proxy's client_golang writes it: one
// sample a line, name{labels} value, no timestamps.
func parseExposition(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20) // fingerprint labels hold statements
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s sample
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("unreadable sample %q", line)
			}
			s.name, s.labels, s.value = line[:i], line[i:j+1], strings.TrimSpace(line[j+1:])
		} else {
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("unreadable sample %q", line)
			}
			s.name, s.value = name, value
		}
		out = append(out, s)
	}
	return out, sc.Err()
}
