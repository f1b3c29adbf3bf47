package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// needRoot fails a test that captures live: the project's tests run as root.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("live capture needs CAP_NET_RAW: run the tests as root (sudo -E go test ./capture)")
	}
}

// seen is a captured segment, copied.
type seen struct {
	seg  Segment
	pkt  Packet
	data []byte
}

// collect reads l until Close into a channel.
func collect(t *testing.T, l *Live) <-chan seen {
	ch := make(chan seen, 1000)
	go func() {
		defer close(ch)
		for {
			p, err := l.Next()
			if err != nil {
				if err != io.EOF {
					t.Errorf("Next: %v", err)
				}
				return
			}
			s := seen{pkt: p, data: bytes.Clone(p.Data)}
			s.pkt.Data = s.data
			if err := Decode(p.Link, s.data, &s.seg); err != nil {
				t.Errorf("a captured packet does not decode: %v (% x)", err, s.data)
				continue
			}
			ch <- s
		}
	}()
	return ch
}

// pingPong serves one connection at a time: it answers each "ping-N" with "pong-N".
func pingPong(t *testing.T, ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if err != nil {
					break
				}
				if _, err := c.Write([]byte(strings.Replace(string(buf[:n]), "ping", "pong", 1))); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
}

// talk opens a connection to addr, exchanges the pings, closes it and waits for the server's
// end: its packets have all been sent when it returns.
func talk(t *testing.T, addr net.Addr, pings ...string) netip.AddrPort {
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for _, ping := range pings {
		if _, err := c.Write([]byte(ping)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if want := strings.Replace(ping, "ping", "pong", 1); err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("the server's end: %v", err)
	}
	return c.LocalAddr().(*net.TCPAddr).AddrPort()
}

func listen(t *testing.T, network, addr string) net.Listener {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pingPong(t, ln)
	return ln
}

func TestLive(t *testing.T) {
	needRoot(t)
	v6 := true
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Logf("no IPv6 loopback here (%v): IPv4 alone", err)
		v6 = false
	} else {
		ln.Close()
	}
	for _, iface := range []string{"lo", "any"} {
		for _, host := range []string{"127.0.0.1", "::1"} {
			if host == "::1" && !v6 {
				continue
			}
			t.Run(iface+"/"+host, func(t *testing.T) { testLive(t, iface, host) })
		}
	}
}

// testLive captures a conversation on iface while another on a port left out goes on, and
// checks that each of its packets comes exactly once, in order, and nothing else.
func testLive(t *testing.T, iface, host string) {
	ln := listen(t, "tcp", net.JoinHostPort(host, "0"))
	other := listen(t, "tcp", net.JoinHostPort(host, "0"))
	server := ln.Addr().(*net.TCPAddr).AddrPort()
	start := time.Now()
	l, err := OpenLive(iface, []uint16{server.Port()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wantLink := LinkEthernet
	if iface == "any" {
		wantLink = LinkRaw
	}
	if l.Link() != wantLink {
		t.Errorf("link %d, want %d", l.Link(), wantLink)
	}
	ch := collect(t, l)

	talk(t, other.Addr(), "ping-other-1")
	pings := []string{"ping-1", "ping-22", "ping-333"}
	client := talk(t, ln.Addr(), pings...)
	talk(t, other.Addr(), "ping-other-2")
	received, _ := l.Stats()       // read halfway: the second reading must add to it
	talk(t, ln.Addr(), "ping-end") // the end of what to check: all before it was captured

	type dirPayload struct {
		fromClient bool
		payload    string
	}
	var got, want []dirPayload
	for _, ping := range pings {
		want = append(want, dirPayload{true, ping}, dirPayload{false, strings.Replace(ping, "ping", "pong", 1)})
	}
	flags := map[string]int{} // SYN, SYN+ACK, FIN by direction
	n := 0
	timeout := time.After(10 * time.Second)
	for end := false; !end; {
		var s seen
		select {
		case s = <-ch:
		case <-timeout:
			t.Fatalf("ping-end not captured; got %v", got)
		}
		n++
		seg, p := s.seg, s.pkt
		if p.Link != wantLink || p.OrigLen != len(p.Data) || p.Time.Before(start) || time.Since(p.Time) > time.Minute {
			t.Errorf("packet link %d, %d bytes of %d, at %v", p.Link, len(p.Data), p.OrigLen, p.Time)
		}
		if seg.Src.Port() != server.Port() && seg.Dst.Port() != server.Port() {
			t.Errorf("a packet of another port: %v -> %v", seg.Src, seg.Dst)
			continue
		}
		if string(seg.Payload) == "ping-end" {
			end = true
		}
		fromClient := seg.Src == client
		if !fromClient && seg.Dst != client {
			continue // the last connection
		}
		if fromClient && seg.Dst != server {
			t.Errorf("%v -> %v, want %v -> %v", seg.Src, seg.Dst, client, server)
		}
		if len(seg.Payload) > 0 {
			got = append(got, dirPayload{fromClient, string(seg.Payload)})
		}
		if f := seg.Flags & (FlagSYN | FlagFIN); f != 0 {
			flags[fmt.Sprintf("%v %#x", fromClient, f)]++
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("payloads\n got %v\nwant %v", got, want)
	}
	wantFlags := map[string]int{"true 0x2": 1, "false 0x2": 1, "true 0x1": 1, "false 0x1": 1}
	if fmt.Sprint(flags) != fmt.Sprint(wantFlags) {
		t.Errorf("SYN and FIN by direction (from the client?): %v, want once each: %v", flags, wantFlags)
	}

	r, dropped := l.Stats()
	if r < uint64(n) || r < received || dropped != 0 {
		t.Errorf("Stats: %d received (%d halfway), %d dropped; %d packets read", r, received, dropped, n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for s := range ch { // to the io.EOF of Close
		if s.seg.Src.Port() != server.Port() && s.seg.Dst.Port() != server.Port() {
			t.Errorf("a packet of another port: %v -> %v", s.seg.Src, s.seg.Dst)
		}
	}
	if r2, _ := l.Stats(); r2 < r {
		t.Errorf("Stats after Close: %d received, before %d", r2, r)
	}
}

// A packet longer than the snap length is cut, its length told.
func TestLiveSnapLen(t *testing.T) {
	needRoot(t)
	ln := listen(t, "tcp", "127.0.0.1:0")
	l, err := OpenLive("lo", []uint16{ln.Addr().(*net.TCPAddr).AddrPort().Port()}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := collect(t, l)
	long := "ping-" + strings.Repeat("x", 50)
	talk(t, ln.Addr(), long)
	time.AfterFunc(5*time.Second, func() { l.Close() })
	for s := range ch {
		if !strings.HasPrefix(long, string(s.seg.Payload)) || len(s.seg.Payload) == 0 {
			continue
		}
		p := s.pkt
		ipLen := int(p.Data[16])<<8 | int(p.Data[17])
		if len(p.Data) != 100 || p.OrigLen != 14+ipLen || !s.seg.Cut {
			t.Errorf("%d bytes of %d (IP length %d), cut %v", len(p.Data), p.OrigLen, ipLen, s.seg.Cut)
		}
		return
	}
	t.Error("the long packet was not captured")
}

// Close makes a Next waiting return io.EOF, and so does every Next after.
func TestLiveClose(t *testing.T) {
	needRoot(t)
	ln := listen(t, "tcp", "127.0.0.1:0")
	l, err := OpenLive("lo", []uint16{ln.Addr().(*net.TCPAddr).AddrPort().Port()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := l.Next()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Next returned with no traffic: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	closed := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
		if d := time.Since(closed); d > time.Second {
			t.Errorf("Next took %v to return after Close", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a Next waiting")
	}
	if _, err := l.Next(); err != io.EOF {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestOpenLiveErrors(t *testing.T) {
	_, err := OpenLive("nosuch0", []uint16{5432}, 0)
	if err == nil || !strings.Contains(err.Error(), `"nosuch0"`) || !strings.Contains(err.Error(), "any, lo") {
		t.Errorf("an unknown interface: %v", err)
	}
	if _, err := OpenLive("lo", nil, 0); err == nil {
		t.Error("no port: no error")
	}
	if _, err := OpenLive("lo", make([]uint16, maxPorts+1), 0); err == nil {
		t.Errorf("%d ports: no error", maxPorts+1)
	}
}

func TestPermissionError(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	err = permissionError("eth0", os.ErrPermission)
	want := "capturing on eth0 needs CAP_NET_RAW: run as root, or grant it once with `sudo setcap cap_net_raw+ep " + exe + "`"
	if !strings.HasPrefix(err.Error(), want) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("%v\nwant %s", err, want)
	}
}

// The filter for Ethernet, run in a BPF machine on packets of each kind.
func TestFilterProgram(t *testing.T) {
	const snap = 1000
	prog, err := filterProgram([]uint16{5432, 6432}, false, -1, snap)
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]bpf.Instruction, len(prog))
	for i, f := range prog {
		ins[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	a, b := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	a6, b6 := netip.MustParseAddr("fd00::1").As16(), netip.MustParseAddr("fd00::2").As16()
	withOptions := ipv4(a, b, 6, 0, append(make([]byte, 8), tcp(40000, 6432, 1, FlagACK, 0, "x")...))
	withOptions[0] = 0x47 // 8 bytes of options before the TCP header
	cases := []struct {
		name   string
		pkt    []byte
		accept bool
	}{
		{"IPv4 from the port", ether(0x0800, 0, ipv4(a, b, 6, 0, tcp(5432, 40000, 1, FlagACK, 0, "x"))), true},
		{"IPv4 to the second port", ether(0x0800, 0, ipv4(a, b, 6, 0x4000, tcp(40000, 6432, 1, FlagACK, 0, "x"))), true},
		{"IPv4 other ports", ether(0x0800, 0, ipv4(a, b, 6, 0, tcp(40000, 5433, 1, FlagACK, 0, "x"))), false},
		{"IPv4 UDP", ether(0x0800, 0, ipv4(a, b, 17, 0, tcp(40000, 5432, 1, 0, 0, "x"))), false},
		{"IPv4 options", ether(0x0800, 0, withOptions), true},
		{"IPv4 first fragment", ether(0x0800, 0, ipv4(a, b, 6, 0x2000, tcp(40000, 5432, 1, FlagACK, 0, "x"))), true},
		{"IPv4 later fragment", ether(0x0800, 0, ipv4(a, b, 6, 0x0010, tcp(40000, 5432, 1, FlagACK, 0, "x"))), false},
		{"IPv6 to the port", ether(0x86dd, 0, ipv6(a6, b6, tcp(40000, 5432, 1, FlagACK, 0, "x"))), true},
		{"IPv6 from the second port", ether(0x86dd, 0, ipv6(a6, b6, tcp(6432, 40000, 1, FlagACK, 0, "x"))), true},
		{"IPv6 other ports", ether(0x86dd, 0, ipv6(a6, b6, tcp(40000, 80, 1, FlagACK, 0, "x"))), false},
		{"ARP", ether(0x0806, 0, make([]byte, 28)), false},
	}
	udp6 := ether(0x86dd, 0, ipv6(a6, b6, tcp(40000, 5432, 1, 0, 0, "x")))
	udp6[14+6] = 17
	cases = append(cases, struct {
		name   string
		pkt    []byte
		accept bool
	}{"IPv6 UDP", udp6, false})
	for _, c := range cases {
		n, err := vm.Run(c.pkt)
		if err != nil || (n > 0) != c.accept || (c.accept && n != snap) {
			t.Errorf("%s: %d bytes, %v; accept: %v", c.name, n, err, c.accept)
		}
	}
	long := ether(0x0800, 0, ipv4(a, b, 6, 0, tcp(5432, 40000, 1, FlagACK, 0, strings.Repeat("x", 2000))))
	if n, _ := vm.Run(long); n != snap {
		t.Errorf("a long packet: %d bytes kept, want %d", n, snap)
	}
}

// capturedConn is a connection on lo to a server that reads and discards, captured by l.
func capturedConn(b *testing.B) (l *Live, c net.Conn) {
	needRoot(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	if l, err = OpenLive("lo", []uint16{ln.Addr().(*net.TCPAddr).AddrPort().Port()}, 0); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if c, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return l, c
}

// BenchmarkLiveLoopback captures a connection on lo that a sender floods with 100-byte
// writes: how many packets a second Next returns, and what share the kernel dropped.
func BenchmarkLiveLoopback(b *testing.B) {
	l, c := capturedConn(b)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		msg := make([]byte, 100)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(msg); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	var seg Segment
	var bytes int
	for b.Loop() {
		p, err := l.Next()
		if err != nil {
			b.Fatal(err)
		}
		if Decode(p.Link, p.Data, &seg) == nil {
			bytes += len(seg.Payload)
		}
	}
	elapsed := b.Elapsed()
	close(stop)
	<-sent
	received, dropped := l.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "payload-B/pkt")
	b.ReportMetric(100*float64(dropped)/float64(max(received+dropped, 1)), "%dropped")
}

// BenchmarkLiveNext is the cost of Next alone: the kernel queues a burst of packets of a
// connection on lo, then the timer runs while Next reads them.
func BenchmarkLiveNext(b *testing.B) {
	l, c := capturedConn(b)
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.StopTimer()
	for read := 0; read < b.N; {
		burst := min(1000, b.N-read)
		for {
			if r, _ := l.Stats(); r >= uint64(read+burst) {
				break
			}
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for range burst {
			if _, err := l.Next(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		read += burst
	}
	if _, dropped := l.Stats(); dropped > 0 {
		b.Fatalf("%d packets dropped: the bursts overflow the socket's queue", dropped)
	}
}
