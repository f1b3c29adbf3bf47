package proxy

import (
	"io"
	"testing"
)

// BenchmarkPumpSocketRoundTrip: one small message through a pump between two loopback TCP
// connections, waited for at the far end, per op: the read-after-readiness path (runRaw) with
// its system calls, which the micro-benchmarks on in-memory connections do not take.
func BenchmarkPumpSocketRoundTrip(b *testing.B) {
	peer, src := tcpPair(b)
	out, dst := tcpPair(b)
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
}
