package proxy_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// fakeUpstream is a tiny in-test server that speaks just enough of the protocol for tests that
// need more connections than PostgreSQL allows, or faster ones: any startup packet logs in
// (AuthenticationOk, BackendKeyData, ReadyForQuery), every Query gets one row, Sync gets
// ReadyForQuery, Terminate or EOF closes, and a CancelRequest is counted and closed.
type fakeUpstream struct {
	ln      net.Listener
	open    atomic.Int64 // connections being served
	cancels atomic.Int64
	nextPID atomic.Uint32
	wg      sync.WaitGroup
}

// fakeGreeting is what the fake server answers a startup packet with, but for the key.
var fakeGreeting = func() []byte {
	b, _ := (&pgproto3.AuthenticationOk{}).Encode(nil)
	b, _ = (&pgproto3.BackendKeyData{ProcessID: 0, SecretKey: []byte{1, 2, 3, 4}}).Encode(b)
	b, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(b)
	return b
}()

var fakeQueryReply = func() []byte {
	b, _ := (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("n"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}}).Encode(nil)
	b, _ = (&pgproto3.DataRow{Values: [][]byte{[]byte("1")}}).Encode(b)
	b, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(b)
	b, _ = (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(b)
	return b
}()

func startFakeUpstream(t testing.TB) *fakeUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.open.Add(1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer f.open.Add(-1)
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeUpstream) addr() string { return f.ln.Addr().String() }

// dsn is an upstream DSN for the proxy.
func (f *fakeUpstream) dsn() string {
	return "host=127.0.0.1 port=" + portOf(f.addr()) + " sslmode=disable"
}

func (f *fakeUpstream) serve(c net.Conn) {
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if binary.BigEndian.Uint32(hdr[4:]) == 80877102 {
		f.cancels.Add(1)
		return
	}
	buf := make([]byte, 256)
	if n < 8 || n > 10000 {
		return
	}
	if rest := n - 8; rest > 0 {
		if rest > len(buf) {
			buf = make([]byte, rest)
		}
		if _, err := io.ReadFull(c, buf[:rest]); err != nil {
			return
		}
	}
	greeting := append([]byte(nil), fakeGreeting...)
	binary.BigEndian.PutUint32(greeting[9+5:], f.nextPID.Add(1)) // the K body's process ID
	if _, err := c.Write(greeting); err != nil {
		return
	}
	var mh [5]byte
	for {
		if _, err := io.ReadFull(c, mh[:]); err != nil {
			return
		}
		body := int(binary.BigEndian.Uint32(mh[1:])) - 4
		if body < 0 || body > 1<<20 {
			return
		}
		if body > len(buf) {
			buf = make([]byte, body)
		}
		if _, err := io.ReadFull(c, buf[:body]); err != nil {
			return
		}
		var err error
		switch mh[0] {
		case 'Q':
			if string(buf[:body]) == fakeFatalQuery+"\x00" {
				fatalAndClose(c)
				return
			}
			_, err = c.Write(fakeQueryReply)
		case 'S':
			_, err = c.Write(fakeQueryReply[len(fakeQueryReply)-6:])
		case 'X':
			return
		}
		if err != nil {
			return
		}
	}
}

// fakeFatalQuery makes the fake server end the session as PostgreSQL does on a FATAL error, with
// the ErrorResponse and the end of stream in one TCP segment.
const fakeFatalQuery = "fake: FATAL"

func fatalAndClose(c net.Conn) {
	b, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01",
		Message: "terminating connection due to administrator command"}).Encode(nil)
	_ = proxy.SendWithFIN(c.(*net.TCPConn), b)
}

// startProxyTo runs a proxy in front of an upstream DSN.
func startProxyTo(t testing.TB, dsn string, opts ...proxyOption) *testProxy {
	return startProxy(t, append([]proxyOption{withUpstream(dsn)}, opts...)...)
}

// fakeStartup is a startup packet for the fake upstream (any user will do).
var fakeStartup = func() []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "fake", "database": "fake"}}).Encode(nil)
	return b
}()
