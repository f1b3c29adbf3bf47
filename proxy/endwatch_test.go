package proxy

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

// sendWithFIN writes b and the end of stream in one TCP segment: TCP_CORK holds the bytes back
// until the FIN is queued behind them (on Linux; elsewhere they may go in two segments, which
// the portable path reads alike). The socket stays open for reading. Exported to the
// external tests as SendWithFIN (export_test.go).
func sendWithFIN(c *net.TCPConn, b []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	cork := func(on int) error { return setCork(rc, on) }
	if err := cork(1); err != nil {
		return err
	}
	if _, err := c.Write(b); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	return cork(0)
}

// TestPumpReadsEndOfStreamBehindLastBytes: a peer that sends its last message and its FIN in one
// segment raises one readiness edge for both. The pump forwards the message and returns io.EOF
// (within a second), whether the segment comes while it waits or before it starts, and
// whatever else it waited through before.
func TestPumpReadsEndOfStreamBehindLastBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // messages the peer sends, one at a time, before its last one
		early  bool
	}{
		{"while waiting", 0, false},
		{"after other traffic", 50, false},
		{"before the pump starts", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, src := tcpPair(t)
			_, dst := tcpPair(t)
			p := newPump(src, dst, clientBufSize, maxHold)
			done := make(chan error, 1)
			start := func() { go func() { done <- p.run(&recordingInspector{}) }() }
			if tc.early {
				mustSendWithFIN(t, peer, msg('Q', "SELECT 1\x00"))
				time.Sleep(50 * time.Millisecond) // the segment is in before the pump reads
				start()
			} else {
				start()
				for range tc.before {
					if _, err := peer.Write(msg('Q', "SELECT 0\x00")); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // the pump waits for readiness
				mustSendWithFIN(t, peer, msg('Q', "SELECT 1\x00"))
			}
			sent := time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, io.EOF) {
					t.Fatalf("pump ended with %v, want io.EOF", err)
				}
				t.Logf("end of stream read %v after it was sent", time.Since(sent).Round(time.Millisecond))
			case <-time.After(time.Second):
				t.Fatal("the pump still waits a second after the peer's end of stream")
			}
			want := (tc.before + 1) * len(msg('Q', "SELECT 0\x00"))
			if p.bytes != int64(want) {
				t.Fatalf("forwarded %d bytes, want %d", p.bytes, want)
			}
		})
	}
}

// TestEndWatchLeavesBusyAndOpenSocketsAlone: a quiet socket that is still open is peeked at
// once, found drained, and left alone after that (the pump's mark is cleared, the pump leaves
// the watch, nothing is shut down): the pump still forwards what comes later.
func TestEndWatchLeavesBusyAndOpenSocketsAlone(t *testing.T) {
	peer, src := tcpPair(t)
	out, dst := tcpPair(t)
	p := newPump(src, dst, clientBufSize, maxHold)
	done := make(chan error, 1)
	go func() { done <- p.run(&recordingInspector{}) }()
	m := msg('Q', "SELECT 1\x00")
	if _, err := peer.Write(m); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(m))
	out.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(out, got); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.shortRead.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watch never settled the quiet socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Settled, it leaves the watch: an idle connection costs the watch nothing.
	for inWatch(p) {
		if time.Now().After(deadline) {
			t.Fatal("a settled pump stays in the watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := peer.Write(m); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(out, got); err != nil {
		t.Fatalf("after the watch looked at it, the pump forwards no more: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the pump stopped on an open socket: %v", err)
	default:
	}
	peer.Close()
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("pump ended with %v, want io.EOF", err)
	}
}

func inWatch(p *pump) bool {
	ends.mu.Lock()
	defer ends.mu.Unlock()
	_, ok := ends.pumps[p]
	return ok || p.watched.Load()
}

func mustSendWithFIN(t *testing.T, c *net.TCPConn, b []byte) {
	t.Helper()
	if err := sendWithFIN(c, b); err != nil {
		t.Fatal(err)
	}
}
