package proxy

import (
	"io"
	"net"
	"testing"
)

// BenchmarkPumpSocketRoundTrip: one small message through a pump between two loopback TCP
// connections, waited for at the far end, per op: the read-after-readiness path (runRaw) with
// its system calls, which the micro-benchmarks on in-memory connections do not take.
func BenchmarkPumpSocketRoundTrip(b *testing.B) {
	pair := func() (net.Conn, net.Conn) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		return d, a
	}
	peer, src := pair()
	out, dst := pair()
	defer peer.Close()
	defer out.Close()
	p := newPump(src, dst, clientBufSize, maxHold)
	done := make(chan error, 1)
	go func() { done <- p.run(&recordingInspector{}) }()
	m := msg('Q', "SELECT 1\x00")
	got := make([]byte, len(m))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := peer.Write(m); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(out, got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	peer.Close()
	<-done
	src.Close()
	dst.Close()
}
