package pgtest

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TcpdumpHint says how to get tcpdump where a test needs it.
const TcpdumpHint = "install it with: apt-get update && apt-get install -y tcpdump (make test installs it: scripts/install-test-deps); it must run as root or with CAP_NET_RAW"

// Tcpdump is Debian's tcpdump capturing loopback traffic to a pcap file while a test runs: the
// truth of the tests of `pgpollwatch analyze` on packet captures.
type Tcpdump struct {
	File string
	cmd  *exec.Cmd
	out  Output // its standard error: "listening on", then the counts at exit
	done chan struct{}
	err  error
	once sync.Once
	// Set by Stop, from tcpdump itself: the packets it wrote to File, and those the kernel
	// dropped (its buffer full: then the capture is not the whole traffic, and Stop fails).
	Captured, Dropped int64
}

// StartTcpdump captures every TCP packet to and from ports on lo into file, whole (-s 0), each
// written as it comes (-U), and returns once tcpdump says it is listening: from then on no
// packet is missed. As root it keeps its privileges (-Z root), so that it can write where the
// test's temporary files are. The test's end stops it if the test did not.
func StartTcpdump(t testing.TB, file string, ports ...int) *Tcpdump {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatalf("tcpdump not found (%v): %s", err, TcpdumpHint)
	}
	var filter []string
	for _, p := range ports {
		filter = append(filter, fmt.Sprintf("tcp port %d", p))
	}
	// A 64 MiB kernel buffer (-B, in KiB): a storm on loopback comes at tens of thousands of
	// packets a second, and tcpdump on a loaded machine must not drop any.
	d := &Tcpdump{File: file, done: make(chan struct{})}
	d.cmd = exec.Command(path, "-i", "lo", "-w", file, "-U", "-s", "0", "-B", "65536", "-Z", "root", "-n", strings.Join(filter, " or "))
	d.cmd.Stderr = &d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting tcpdump: %v: %s", err, TcpdumpHint)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.Stop(t) })
	deadline := time.After(20 * time.Second)
	for !strings.Contains(d.out.String(), "listening on lo") {
		select {
		case <-d.done:
			t.Fatalf("tcpdump exited (%v) before it was listening:\n%s\n%s", d.err, d.out.String(), TcpdumpHint)
		case <-deadline:
			t.Fatalf("tcpdump did not say it was listening within 20 s:\n%s", d.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return d
}

var tcpdumpCount = regexp.MustCompile(`(?m)^(\d+) packets (captured|dropped by kernel)$`)

// Stop ends the capture with SIGINT, as a user would, and waits for tcpdump to write the rest
// of the file and its counts. A capture the kernel dropped packets of fails the test: it is not
// the whole traffic, and the test would blame the analysis for what tcpdump missed.
func (d *Tcpdump) Stop(t testing.TB) {
	t.Helper()
	d.once.Do(func() {
		d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			t.Fatalf("tcpdump still running 30 s after SIGINT:\n%s", d.out.String())
		}
		out := d.out.String()
		counts := map[string]int64{}
		for _, m := range tcpdumpCount.FindAllStringSubmatch(out, -1) {
			counts[m[2]], _ = strconv.ParseInt(m[1], 10, 64)
		}
		if _, ok := counts["captured"]; !ok || d.err != nil {
			t.Fatalf("tcpdump: %v, and no count of the packets captured in its output:\n%s", d.err, out)
		}
		d.Captured, d.Dropped = counts["captured"], counts["dropped by kernel"]
		if d.Dropped > 0 {
			t.Fatalf("tcpdump: the kernel dropped %d packets (%d captured): the capture is not the whole traffic; give tcpdump a larger buffer (-B) or run the test on a less loaded machine\n%s",
				d.Dropped, d.Captured, out)
		}
	})
}
