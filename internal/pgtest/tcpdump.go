package pgtest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
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
	File   string
	marker net.Listener // a port of the capture's own: see Stop
	cmd    *exec.Cmd
	out    Output // its standard error: "listening on", then the counts at exit
	done   chan struct{}
	err    error
	once   sync.Once
	// Set by Stop, from tcpdump itself: the packets it wrote to File, and those the kernel
	// dropped (its buffer full: then the capture is not the whole traffic, and Stop fails).
	Captured, Dropped int64
}

// StartTcpdump captures every TCP packet to and from ports on lo into file, whole (-s 0), each
// written as it comes (-U), and returns once tcpdump says it is listening: from then on no
// packet is missed. As root it keeps its privileges (-Z root), so that it can write where the
// test's temporary files are. The test's end stops it if the test did not.
//
// The capture also holds one connection to a port of its own, made by Stop to mark the end of
// the test's traffic: a conversation that is not PostgreSQL, on a port that is not the
// server's.
func StartTcpdump(t testing.TB, file string, ports ...int) *Tcpdump {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatalf("tcpdump not found (%v): %s", err, TcpdumpHint)
	}
	d := &Tcpdump{File: file, done: make(chan struct{})}
	if d.marker, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := d.marker.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	t.Cleanup(func() { d.marker.Close() })
	filter := []string{fmt.Sprintf("tcp port %d", d.marker.Addr().(*net.TCPAddr).Port)}
	for _, p := range ports {
		filter = append(filter, fmt.Sprintf("tcp port %d", p))
	}
	// A 64 MiB kernel buffer (-B, in KiB): a storm on loopback comes at tens of thousands of
	// packets a second, and tcpdump on a loaded machine must not drop any.
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
//
// tcpdump reads the packets from the kernel's buffer behind the traffic, by as much as a
// second when a storm loads the machine, and on SIGINT it writes no more of what is still in
// the buffer: the end of the traffic would be missing. So Stop first sends a marker, a
// connection to the capture's own port with a random text, and waits until tcpdump has
// written it: every packet before it is in the file.
func (d *Tcpdump) Stop(t testing.TB) {
	t.Helper()
	d.once.Do(func() {
		if err := d.mark(); err != nil {
			d.cmd.Process.Kill()
			<-d.done
			t.Fatalf("tcpdump: %v\n%s", err, d.out.String())
		}
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

// mark sends a random text to the marker port and waits until the capture file holds it.
func (d *Tcpdump) mark() error {
	var b [16]byte
	rand.Read(b[:])
	text := []byte(fmt.Sprintf("pgtest: the end of the capture %x", b))
	c, err := net.Dial("tcp", d.marker.Addr().String())
	if err != nil {
		return err
	}
	_, err = c.Write(text)
	c.Close()
	if err != nil {
		return err
	}
	f, err := os.Open(d.File)
	if err != nil {
		return err
	}
	defer f.Close()
	// Read the file as tcpdump writes it, keeping the end of what was read in case the text
	// straddles two reads.
	var seen []byte
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := f.Read(buf)
		seen = append(seen, buf[:n]...)
		if bytes.Contains(seen, text) {
			return nil
		}
		if len(seen) > len(text) {
			seen = append(seen[:0], seen[len(seen)-len(text):]...)
		}
		select {
		case <-d.done:
			return fmt.Errorf("tcpdump exited (%v) before it wrote the end of the capture", d.err)
		default:
		}
		if err == io.EOF || n == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("the end of the capture not written within 30 s")
			}
			time.Sleep(20 * time.Millisecond)
		} else if err != nil && err != io.EOF {
			return err
		}
	}
}
