package proxy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The fuzz targets below run their seeds (f.Add and testdata/fuzz/<Target>/, which holds real
// captures of psql, pgx and pgbench sessions) on every go test; fuzz them with, e.g.,
//
//	go test -run='^$' -fuzz=FuzzFramer -fuzztime=5m ./proxy/

// chunker splits a stream into reads of the sizes spec gives (each byte 1..64, cycling), or
// one read when spec is empty.
type chunker struct {
	net.Conn
	data []byte
	spec []byte
	i    int
}

func (c *chunker) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.spec) > 0 {
		n = int(c.spec[c.i%len(c.spec)])%64 + 1
		c.i++
	}
	n = copy(b, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// framerInspector records what the pump shows it, message by message.
type framerInspector struct {
	got     []framed
	cur     []byte // pieces of the streamed message so far
	curTyp  byte
	inParts bool
}

type framed struct {
	typ       byte
	body      string
	whole     bool // shown with message (else with parts)
	truncated bool // message: only a prefix; parts: the stream ended first
}

func fuzzWantsWhole(typ byte) bool { return typ%3 != 0 }

func (r *framerInspector) header(byte, int) error { return nil }
func (r *framerInspector) wantsWhole(t byte) bool { return fuzzWantsWhole(t) }
func (r *framerInspector) injection() []byte      { return nil }
func (r *framerInspector) message(t byte, body []byte, truncated bool) (verdict, error) {
	r.got = append(r.got, framed{t, string(body), true, truncated})
	return 0, nil
}
func (r *framerInspector) part(t byte, piece []byte, last bool) {
	r.cur = append(r.cur, piece...)
	r.curTyp, r.inParts = t, true
	if last {
		r.got = append(r.got, framed{t, string(r.cur), false, false})
		r.cur, r.inParts = r.cur[:0], false
	}
}
func (r *framerInspector) beforeWrite() {}
func (r *framerInspector) afterWrite()  {}

// frameModel is the framing the pump must implement, written the plain way: the bytes it
// forwards, the messages it shows and whether it must stop at a malformed header.
func frameModel(data []byte, maxHold int) (out int, msgs []framed, malformed bool) {
	pos := 0
	for len(data)-pos >= headerLen {
		typ := data[pos]
		length := int(be32(data[pos+1:]))
		if length < 4 {
			return pos, msgs, true
		}
		size := 1 + length
		whole := fuzzWantsWhole(typ)
		end := min(pos+size, len(data))
		switch {
		case whole && size > maxHold:
			// Too large to hold: shown truncated (a prefix of what arrived), streamed on.
			msgs = append(msgs, framed{typ, string(data[pos+headerLen : end]), whole, true})
		case pos+size <= len(data):
			msgs = append(msgs, framed{typ, string(data[pos+headerLen : end]), whole, false})
		case whole:
			return pos, msgs, false // held, waiting for the rest that never comes
		default:
			// Streamed in pieces, and the input ends inside it.
			msgs = append(msgs, framed{typ, string(data[pos+headerLen:]), whole, true})
		}
		pos = end
	}
	return pos, msgs, false
}

func FuzzFramer(f *testing.F) {
	f.Add(bytes.Join([][]byte{msg('Q', "SELECT 1\x00"), msg('D', "rowdata"), msg('H', ""), msg('Q', "SELECT 2\x00")}, nil), []byte{3, 1, 7})
	f.Add(append(msg('Q', strings.Repeat("x", 300)+"\x00"), msg('S', "")...), []byte{50})
	f.Add(append(msg('0', strings.Repeat("y", 700)), 'Q', 0, 0, 0, 2), []byte{})
	f.Add([]byte{'Q', 0, 0, 0, 3}, []byte{0})
	f.Add(append(msg('E', strings.Repeat("z", 200)), msg('E', "tail")...), []byte{9, 63, 2})
	const minSize, maxHoldF = 16, 256
	f.Fuzz(func(t *testing.T, data, spec []byte) {
		out := &sink{keep: true}
		src := &chunker{data: data, spec: spec}
		p := newPump(src, out, minSize, maxHoldF)
		ins := &framerInspector{}
		var err error
		for {
			if p.end == len(p.buf) {
				t.Fatal("the pump's buffer is full and was not grown: a read would return nothing")
			}
			n, rerr := src.Read(p.buf[p.end:])
			p.end += n
			if n > 0 {
				if err = p.process(ins); err != nil {
					break
				}
			}
			if len(p.buf) > max(minSize, maxHoldF) {
				t.Fatalf("buffer grew to %d bytes", len(p.buf))
			}
			if rerr != nil {
				break
			}
		}
		if ins.inParts {
			ins.got = append(ins.got, framed{ins.curTyp, string(ins.cur), false, true})
		}
		wantOut, wantMsgs, malformed := frameModel(data, maxHoldF)
		var me *errMalformed
		if malformed != errors.As(err, &me) || (!malformed && err != nil) {
			t.Fatalf("error %v, model says malformed=%v", err, malformed)
		}
		if !bytes.Equal(out.buf.Bytes(), data[:wantOut]) {
			t.Fatalf("forwarded %d bytes, want the first %d of %d", out.buf.Len(), wantOut, len(data))
		}
		if p.bytes != int64(wantOut) {
			t.Fatalf("byte count %d, forwarded %d", p.bytes, wantOut)
		}
		if len(ins.got) != len(wantMsgs) {
			t.Fatalf("inspector saw %d messages, want %d", len(ins.got), len(wantMsgs))
		}
		for i, g := range ins.got {
			w := wantMsgs[i]
			if g.typ != w.typ || g.whole != w.whole || g.truncated != w.truncated {
				t.Fatalf("message %d: got %+v, want %+v", i, g, w)
			}
			if g.whole && g.truncated {
				// A message too large to hold is shown with whatever prefix the buffer had.
				if !strings.HasPrefix(w.body, g.body) {
					t.Fatalf("message %d: truncated body is not a prefix", i)
				}
			} else if g.body != w.body {
				t.Fatalf("message %d: body %q, want %q", i, g.body, w.body)
			}
		}
	})
}

// fakeConn is a net.Conn reading from a fixed input and keeping what is written.
type fakeConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (c *fakeConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error)        { return c.w.Write(b) }
func (c *fakeConn) Close() error                       { return nil }
func (c *fakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error        { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error    { return nil }
func (c *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

var fuzzTLS = sync.OnceValue(func() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
})

func startupPacket(params ...string) []byte {
	b := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	for _, p := range params {
		b = append(append(b, p...), 0)
	}
	b = append(b, 0)
	b[0], b[1], b[2], b[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
	return b
}

func FuzzReadStartup(f *testing.F) {
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	gss := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}
	cancel := []byte{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 1, 2, 9, 8, 7, 6}
	f.Add(startupPacket("user", "alice", "database", "db"), false)
	f.Add(append(append([]byte{}, ssl...), startupPacket("user", "alice")...), false)
	f.Add(append(append([]byte{}, gss...), append(ssl, startupPacket("user", "u", "replication", "database")...)...), false)
	f.Add(append(append([]byte{}, ssl...), 0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0), true)
	f.Add(cancel, false)
	f.Add(append(append([]byte{}, ssl...), ssl...), false)
	f.Add(startupPacket("user"), false)
	f.Add(startupPacket("database", "db"), false)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, withTLS bool) {
		var conf *tls.Config
		if withTLS {
			conf = fuzzTLS()
		}
		c := &fakeConn{r: bytes.NewReader(data)}
		st, err := readStartup(c, conf)
		if err != nil {
			var se *errStartup
			switch {
			case errors.As(err, &se):
				if len(se.code) != 5 {
					t.Fatalf("SQLSTATE %q", se.code)
				}
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			case withTLS && strings.HasPrefix(err.Error(), "TLS handshake with client: "):
			default:
				t.Fatalf("unexpected error %T: %v", err, err)
			}
			return
		}
		if st.cancel != nil {
			if st.packet != nil || st.params != nil {
				t.Fatal("a cancel request with a startup packet")
			}
			return
		}
		if st.params["user"] == "" || len(st.packet) < 8 || len(st.packet) > maxStartupLen || int(be32(st.packet)) != len(st.packet) {
			t.Fatalf("accepted startup %+v", st)
		}
		if st.protocol>>16 != protocolMajor3 {
			t.Fatalf("protocol %d", st.protocol)
		}
		if !st.tls && bytes.ContainsFunc(c.w.Bytes(), func(r rune) bool { return r != 'N' }) {
			t.Fatalf("wrote %q to a plain client", c.w.Bytes())
		}
	})
}

// checkingObserver reads everything an event offers, as an analyzer would.
type checkingObserver struct {
	NopObserver
	events int
}

func (o *checkingObserver) Statements(_ *ConnInfo, batch []Event) {
	for i := range batch {
		ev := &batch[i]
		o.events++
		ev.Bind.Params(func(_ int, _ int16, v []byte) bool { _ = len(v); return true })
		_ = ev.Bind.NumParams()
		_ = ev.Bind.ResultFormats()
		if len(ev.FirstRow) > FirstRowPrefix {
			panic("FirstRow longer than FirstRowPrefix")
		}
	}
}

// fuzzSession wires a frontend and a backend to one queue as a Session does, with small
// buffers so that truncation and streaming are reached with small inputs.
func fuzzSession() (*Session, *frontend, *backend) {
	obs := &checkingObserver{}
	srv := &Server{cfg: Config{Observer: obs}, log: discardLogger}
	s := &Session{srv: srv, observer: obs}
	q := &queue{}
	return s, newFrontend(q, 4096, &s.end), newBackend(s, q)
}

func FuzzInspectors(f *testing.F) {
	client, server := extendedRoundTrip()
	f.Add(client, server, []byte{})
	f.Add(client, server, []byte{1, 2, 3, 5, 8, 13})
	enc := func(msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
		var b []byte
		for _, m := range msgs {
			b, _ = m.Encode(b)
		}
		return b
	}
	f.Add(enc(&pgproto3.Query{String: "SELECT 1; SELECT 1/0"}, &pgproto3.Parse{Name: "s", Query: "SELECT $1"},
		&pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", Parameters: [][]byte{[]byte("x")}},
		&pgproto3.Execute{Portal: "p", MaxRows: 1}, &pgproto3.Close{ObjectType: 'P', Name: "p"}, &pgproto3.Sync{}, &pgproto3.FunctionCall{Function: 1, Arguments: [][]byte{{2}}}, &pgproto3.Terminate{}),
		enc(&pgproto3.AuthenticationOk{}, &pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}}, &pgproto3.ReadyForQuery{TxStatus: 'I'},
			&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("a")}}}, &pgproto3.DataRow{Values: [][]byte{[]byte("1")}},
			&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ErrorResponse{Code: "22012"}, &pgproto3.ReadyForQuery{TxStatus: 'I'},
			&pgproto3.ParseComplete{}, &pgproto3.ParameterDescription{ParameterOIDs: []uint32{25}}, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("x")}}},
			&pgproto3.BindComplete{}, &pgproto3.DataRow{Values: [][]byte{[]byte("x")}}, &pgproto3.PortalSuspended{}, &pgproto3.CloseComplete{},
			&pgproto3.ReadyForQuery{TxStatus: 'I'}, &pgproto3.FunctionCallResponse{Result: []byte("r")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}),
		[]byte{7, 30, 2})
	f.Fuzz(func(t *testing.T, client, server, spec []byte) {
		s, fe, be := fuzzSession()
		if len(spec) > 0 && spec[0]&1 == 1 {
			// As with --reuse-server-connections: Terminate stops the client side, and the
			// server's ParameterStatus values are recorded for the next client.
			fe.keepServer = true
			s.srv.pool = newServerPool(&s.srv.cfg, discardLogger)
		}
		csrc := &chunker{data: client, spec: spec}
		ssrc := &chunker{data: server, spec: bytes.Clone(spec)}
		c2s := newPump(csrc, &sink{}, 64, 512)
		s2c := newPump(ssrc, &sink{}, 64, 512)
		cDone, sDone := false, false
		step := func(p *pump, src *chunker, ins inspector, done *bool) {
			if p.end == len(p.buf) {
				t.Fatal("the pump's buffer is full and was not grown: a read would return nothing")
			}
			n, err := src.Read(p.buf[p.end:])
			p.end += n
			if n > 0 {
				if perr := p.process(ins); perr != nil {
					var me *errMalformed
					var tl *errTooLarge
					if !errors.As(perr, &me) && !errors.As(perr, &tl) && !(fe.keepServer && perr == errTerminated) {
						t.Fatalf("unexpected error %T: %v", perr, perr)
					}
					*done = true
				}
			}
			if err != nil {
				*done = true
			}
		}
		for !cDone || !sDone {
			if !cDone {
				step(c2s, csrc, fe, &cDone)
			}
			if !sDone {
				step(s2c, ssrc, be, &sDone)
			}
			if len(be.events) != 0 {
				t.Fatal("events kept after the write")
			}
		}
		// Nothing grows past its bound, and nothing is answered that was not asked.
		if fe.prod.held > maxQueueBytes+2*512 || fe.named > maxNamedBytes+2*512 ||
			len(fe.stmts) > maxNamedStmts || len(fe.portals) > maxNamedPortals {
			t.Fatalf("frontend state: held %d named %d stmts %d portals %d", fe.prod.held, fe.named, len(fe.stmts), len(fe.portals))
		}
		if be.keptCap > maxKept+FirstRowPrefix || len(be.stmtCols) > maxStmtCols {
			t.Fatalf("backend state: kept %d stmtCols %d", be.keptCap, len(be.stmtCols))
		}
		if be.cons.popped > fe.prod.q.published {
			t.Fatalf("popped %d of %d published", be.cons.popped, fe.prod.q.published)
		}
		// The byte accounting matches what is held.
		named := 0
		for k, st := range fe.stmts {
			named += len(k) + st.capacity()
		}
		for k, p := range fe.portals {
			named += len(k) + p.capacity()
		}
		if named != fe.named {
			t.Fatalf("named statements and portals hold %d bytes, accounted %d", named, fe.named)
		}
		held := 0
		for _, list := range [][]pending{fe.prod.staged, fe.prod.free, fe.prod.q.inbox, fe.prod.q.returned, be.cons.items[be.cons.head:], be.cons.retired} {
			for i := range list {
				held += list[i].capacity()
			}
		}
		if held != fe.prod.held {
			t.Fatalf("queue entries hold %d bytes, accounted %d", held, fe.prod.held)
		}
		if len(be.cons.retired) != 0 {
			t.Fatalf("%d entries popped and not given back", len(be.cons.retired))
		}
		_ = s
	})
}

func FuzzBindMessage(f *testing.F) {
	enc := func(b *pgproto3.Bind) []byte { m, _ := b.Encode(nil); return m[5:] }
	client, _ := extendedRoundTrip()
	f.Add(client[5 : 1+int(be32(client[1:]))])
	f.Add(enc(&pgproto3.Bind{}))
	f.Add(enc(&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", ParameterFormatCodes: []int16{1},
		Parameters: [][]byte{{0, 0, 0, 1}, nil, []byte("text")}, ResultFormatCodes: []int16{0, 1, 1}}))
	f.Add([]byte("p\x00s\x00\x00\x02\x00\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := BindMessage(body)
		n := 0
		ok := b.Params(func(i int, format int16, v []byte) bool {
			if i != n {
				t.Fatalf("parameter %d reported as %d", n, i)
			}
			n++
			if v != nil && (len(v) > len(body) || cap(v) != len(v)) {
				t.Fatalf("value of %d bytes (cap %d) from a %d-byte message", len(v), cap(v), len(body))
			}
			return true
		})
		if np := b.NumParams(); ok && np != n || !ok && np != -1 {
			t.Fatalf("NumParams %d, Params ok=%v with %d", np, ok, n)
		}
		rf := b.ResultFormats()
		if rf != nil {
			if !ok {
				t.Fatal("ResultFormats accepted a message Params refuses")
			}
			if !bytes.HasSuffix(body, rf) || len(rf) < 2 || len(rf) < 2+2*int(uint16(rf[0])<<8|uint16(rf[1])) {
				t.Fatalf("ResultFormats %x not a well-formed tail of %x", rf, body)
			}
		}
		// Stopping early is honoured.
		calls := 0
		b.Params(func(int, int16, []byte) bool { calls++; return false })
		if calls > 1 {
			t.Fatalf("Params went on after false: %d calls", calls)
		}
	})
}
