package proxy_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

func probe(t *testing.T, dsn string, timeout time.Duration) error {
	t.Helper()
	up, err := proxy.ParseUpstream(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return up.Probe(ctx)
}

// TestProbeUpstream: a server of the test's own answers the probe over TCP in every sslmode and
// over its Unix socket, without a line in its log; stopped, it does not; started again, it does.
// Its own server, since the test stops it and reads its whole log.
func TestProbeUpstream(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatalf("pgtest: %v\n%s", err, pgtest.InstallCommand)
	}
	t.Cleanup(pg.Stop)
	port := strconv.Itoa(pg.Port)
	tcp := "host=127.0.0.1 port=" + port + " sslmode="
	unix := "host=" + pg.SocketDir + " port=" + port
	ready := []string{
		tcp + "disable", // the server answers S, and the probe ends the handshake it asked for
		tcp + "prefer",
		tcp + "require",
		tcp + "verify-full sslrootcert=" + pg.CertFile,
		unix, // no TLS over a Unix socket: the server answers N
	}
	logStart := fileSize(t, pg.LogFile)
	for _, dsn := range ready {
		for range 3 {
			if err := probe(t, dsn, 5*time.Second); err != nil {
				t.Errorf("%s: %v", dsn, err)
			}
		}
	}
	// The probes sent no startup packet, so no backend logged in, and nothing else happened to
	// complain about: closing after the server's 'S' without a handshake logs "could not accept
	// SSL connection: EOF detected", a TLS connection dropped without close_notify "could not
	// receive data from client". Checkpoints are the server's own business.
	time.Sleep(200 * time.Millisecond) // let the server write what the probes made it log, if anything
	for _, line := range logLines(t, pg, logStart) {
		if !strings.Contains(line, "checkpoint") {
			t.Errorf("the probes made the server log: %s", line)
		}
	}

	// A certificate the sessions would refuse makes the upstream unready for them too. The
	// server logs the refused handshake ("sslv3 alert bad certificate"), so this probe comes
	// after the log is read: it once came before, and the line made the check fail whenever
	// the server wrote it before the test read the log.
	if err := probe(t, tcp+"verify-full", 5*time.Second); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("verify-full without the server's CA: %v, want a TLS handshake error", err)
	}

	if err := pg.StopServer("fast"); err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{tcp + "disable", tcp + "prefer", unix} {
		if err := probe(t, dsn, 5*time.Second); err == nil {
			t.Errorf("%s: ready with the server stopped", dsn)
		}
	}
	if err := probe(t, tcp+"disable", 5*time.Second); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("stopped server: %v, want connection refused", err)
	}
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	if err := probe(t, tcp+"disable", 5*time.Second); err != nil {
		t.Errorf("started again: %v", err)
	}
}

// TestProbeSilentServer: a listener that accepts and never answers (a frozen server, a full
// backlog behind a load balancer) is not ready, and the probe gives up at its deadline.
func TestProbeSilentServer(t *testing.T) {
	ln := muteListener(t)
	const timeout = 300 * time.Millisecond
	begin := time.Now()
	err := probe(t, "host=127.0.0.1 port="+portOf(ln.Addr().String())+" sslmode=disable", timeout)
	took := time.Since(begin)
	if err == nil || !strings.Contains(err.Error(), "no answer to the SSL request") {
		t.Errorf("silent server: %v, want no answer to the SSL request", err)
	}
	if took < timeout || took > timeout+time.Second {
		t.Errorf("gave up after %v, want the %v deadline", took, timeout)
	}
}

// TestProbeNotPostgres: something else listening on the port (the wrong service, a port that
// was reused) is not a ready upstream, and the reason says so; a closed port is refused.
func TestProbeNotPostgres(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	dsn := "host=127.0.0.1 port=" + portOf(ln.Addr().String()) + " sslmode=disable"
	if err := probe(t, dsn, 5*time.Second); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL server") {
		t.Errorf("an HTTP server: %v, want not a PostgreSQL server", err)
	}
	ln.Close()
	if err := probe(t, dsn, 5*time.Second); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("closed port: %v, want connection refused", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// logLines returns the lines the server logged since offset.
func logLines(t *testing.T, pg *pgtest.Cluster, offset int64) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(pg.OpenLog(t, offset))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// muteListener accepts connections and never answers them, holding them open until the test
// ends: a frozen server, or a full backlog behind a load balancer.
func muteListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln
}
