package proxy

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// sink is a net.Conn that keeps (or discards) what is written to it.
type sink struct {
	net.Conn
	buf    bytes.Buffer
	keep   bool
	writes int
}

func (s *sink) Write(b []byte) (int, error) {
	s.writes++
	if s.keep {
		s.buf.Write(b)
	}
	return len(b), nil
}

// feeder is a net.Conn whose reads return the given chunks one by one, then EOF.
type feeder struct {
	net.Conn
	chunks [][]byte
}

func (f *feeder) Read(b []byte) (int, error) {
	if len(f.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(b, f.chunks[0])
	if n == len(f.chunks[0]) {
		f.chunks = f.chunks[1:]
	} else {
		f.chunks[0] = f.chunks[0][n:]
	}
	return n, nil
}

// recordingInspector notes what the pump showed it.
type recordingInspector struct {
	whole    map[byte]bool
	messages []string
	parts    map[byte]int // bytes seen in pieces, per type
	maxPiece int
}

func (r *recordingInspector) header(byte, int) error { return nil }
func (r *recordingInspector) wantsWhole(t byte) bool { return r.whole[t] }
func (r *recordingInspector) injection() []byte      { return nil }
func (r *recordingInspector) message(t byte, body []byte, truncated bool) (verdict, error) {
	s := string(t) + ":" + string(body)
	if truncated {
		s += "…"
	}
	r.messages = append(r.messages, s)
	return 0, nil
}
func (r *recordingInspector) part(t byte, piece []byte, last bool) {
	if r.parts == nil {
		r.parts = map[byte]int{}
	}
	r.parts[t] += len(piece)
	r.maxPiece = max(r.maxPiece, len(piece))
}
func (r *recordingInspector) beforeWrite() {}
func (r *recordingInspector) afterWrite()  {}

func msg(t byte, body string) []byte {
	b := []byte{t, 0, 0, 0, 0}
	b[1], b[2], b[3], b[4] = byte((len(body)+4)>>24), byte((len(body)+4)>>16), byte((len(body)+4)>>8), byte(len(body)+4)
	return append(b, body...)
}

// TestPumpForwardsEveryByteWhateverTheChunking splits a message stream at every possible point
// and checks the output is identical and each message was seen exactly once.
func TestPumpForwardsEveryByteWhateverTheChunking(t *testing.T) {
	stream := bytes.Join([][]byte{msg('Q', "SELECT 1\x00"), msg('D', "rowdata"), msg('H', ""), msg('Q', "SELECT 2\x00")}, nil)
	for cut1 := 0; cut1 <= len(stream); cut1++ {
		for cut2 := cut1; cut2 <= len(stream); cut2++ {
			out := &sink{keep: true}
			p := newPump(&feeder{chunks: [][]byte{stream[:cut1], stream[cut1:cut2], stream[cut2:]}}, out, 16, 64)
			ins := &recordingInspector{whole: map[byte]bool{'Q': true, 'H': true}}
			if err := p.run(ins); err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(out.buf.Bytes(), stream) {
				t.Fatalf("cuts %d,%d: output differs", cut1, cut2)
			}
			want := []string{"Q:SELECT 1\x00", "H:", "Q:SELECT 2\x00"}
			if len(ins.messages) != 3 || ins.messages[0] != want[0] || ins.messages[1] != want[1] || ins.messages[2] != want[2] {
				t.Fatalf("cuts %d,%d: messages %q", cut1, cut2, ins.messages)
			}
			if ins.parts['D'] != len("rowdata") {
				t.Fatalf("cuts %d,%d: DataRow pieces add to %d", cut1, cut2, ins.parts['D'])
			}
		}
	}
}

// TestPumpStreamsHugeMessages sends a 64 MiB DataRow and a 3 MiB Query: the buffer never grows
// past what the pump may hold, and the bytes arrive intact.
func TestPumpStreamsHugeMessages(t *testing.T) {
	row := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	query := append(bytes.Repeat([]byte("x"), 3<<20), 0)
	stream := append(msg('D', string(row)), msg('Q', string(query))...)
	var chunks [][]byte
	for i := 0; i < len(stream); i += 60 << 10 {
		chunks = append(chunks, stream[i:min(i+60<<10, len(stream))])
	}
	out := &sink{keep: true}
	p := newPump(&feeder{chunks: chunks}, out, 32<<10, 1<<20)
	ins := &recordingInspector{whole: map[byte]bool{'Q': true}}
	maxBuf := 0
	for {
		n, err := p.src.Read(p.buf[p.end:])
		p.end += n
		if err != nil {
			break
		}
		if err := p.process(ins); err != nil {
			t.Fatal(err)
		}
		maxBuf = max(maxBuf, len(p.buf))
	}
	if !bytes.Equal(out.buf.Bytes(), stream) {
		t.Fatal("stream altered")
	}
	if maxBuf > 1<<20 {
		t.Fatalf("buffer grew to %d bytes", maxBuf)
	}
	if ins.parts['D'] != len(row) {
		t.Fatalf("DataRow seen %d bytes", ins.parts['D'])
	}
	if len(ins.messages) != 1 || ins.messages[0][len(ins.messages[0])-len("…"):] != "…" {
		t.Fatalf("the 3 MiB Query should be seen once, truncated")
	}
}

// TestPumpHoldsLargeWholeMessage grows the buffer for a statement larger than it but within
// maxHold, then shrinks back.
func TestPumpHoldsLargeWholeMessage(t *testing.T) {
	q := msg('Q', string(bytes.Repeat([]byte("y"), 100<<10))+"\x00")
	small := msg('Q', "SELECT 1\x00")
	out := &sink{keep: true}
	p := newPump(&feeder{chunks: [][]byte{q[:1000], q[1000:50000], q[50000:], small}}, out, 8<<10, 1<<20)
	ins := &recordingInspector{whole: map[byte]bool{'Q': true}}
	if err := p.run(ins); err != io.EOF {
		t.Fatal(err)
	}
	if len(ins.messages) != 2 || len(ins.messages[0]) != 2+100<<10+1 {
		t.Fatalf("messages: %d", len(ins.messages))
	}
	if len(p.buf) != 8<<10 {
		t.Fatalf("buffer not shrunk back: %d", len(p.buf))
	}
}

// extendedRoundTrip is what pgx sends for a cached prepared statement, and what it gets back.
func extendedRoundTrip() (client, server []byte) {
	enc := func(msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
		var b []byte
		for _, m := range msgs {
			b, _ = m.Encode(b)
		}
		return b
	}
	client = enc(
		&pgproto3.Bind{PreparedStatement: "stmtcache_1", ParameterFormatCodes: []int16{0}, Parameters: [][]byte{[]byte("b5517ae9-59ef-46e7-808b-1da17dab9721")}, ResultFormatCodes: []int16{1, 0}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	server = enc(
		&pgproto3.BindComplete{},
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("status"), DataTypeOID: 25}, {Name: []byte("result"), DataTypeOID: 17}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("PENDING"), nil}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	return client, server
}

type countingObserver struct {
	NopObserver
	n atomic.Int64
}

func (c *countingObserver) Statements(_ *ConnInfo, batch []Event) { c.n.Add(int64(len(batch))) }

// benchSession wires a frontend and a backend to one queue, as a Session does.
func benchSession(obs Observer) (*pump, *frontend, *pump, *backend) {
	srv := &Server{cfg: Config{Observer: obs}}
	s := &Session{srv: srv, observer: obs}
	q := &queue{}
	front := newFrontend(q, defaultMaxMessageSize, &s.end)
	back := newBackend(s, q)
	// Prime the prepared statement, as pgx does once per connection.
	front.parse([]byte("stmtcache_1"), []byte("SELECT status, result FROM celery_taskmeta WHERE task_id = $1"), nil)
	c2s := newPump(nil, &sink{}, clientBufSize, maxHold)
	s2c := newPump(nil, &sink{}, serverBufSize, maxHold)
	return c2s, front, s2c, back
}

// BenchmarkRoundTrip runs one extended-protocol poll through both inspectors and pumps: what
// the proxy does per query, minus the syscalls.
func BenchmarkRoundTrip(b *testing.B) {
	obs := &countingObserver{}
	c2s, front, s2c, back := benchSession(obs)
	runRoundTrips(b, obs, c2s, front, s2c, back)
}

// runRoundTrips runs b.N polls (extendedRoundTrip) through a session's inspectors and pumps.
func runRoundTrips(b *testing.B, obs *countingObserver, c2s *pump, front *frontend, s2c *pump, back *backend) {
	client, server := extendedRoundTrip()
	b.ReportAllocs()
	b.SetBytes(int64(len(client) + len(server)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c2s.end = copy(c2s.buf, client)
		if err := c2s.process(front); err != nil {
			b.Fatal(err)
		}
		s2c.end = copy(s2c.buf, server)
		if err := s2c.process(back); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if obs.n.Load() != int64(b.N) {
		b.Fatalf("observer saw %d statements, want %d", obs.n.Load(), b.N)
	}
}

// TestRoundTripAllocatesNothing pins the hot path's zero-allocation property outside benchmarks.
func TestRoundTripAllocatesNothing(t *testing.T) {
	client, server := extendedRoundTrip()
	c2s, front, s2c, back := benchSession(&countingObserver{})
	allocs := testing.AllocsPerRun(1000, func() {
		c2s.end = copy(c2s.buf, client)
		_ = c2s.process(front)
		s2c.end = copy(s2c.buf, server)
		_ = s2c.process(back)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round trip", allocs)
	}
}

// BenchmarkPumpDataRows forwards a result of 1000 rows: the framer and digest per row.
func BenchmarkPumpDataRows(b *testing.B) {
	var server []byte
	for i := 0; i < 1000; i++ {
		server, _ = (&pgproto3.DataRow{Values: [][]byte{[]byte("1234567"), []byte("some text value")}}).Encode(server)
	}
	_, back := func() (*pump, *backend) { _, _, p, bk := benchSession(&countingObserver{}); return p, bk }()
	s2c := newPump(nil, &sink{}, len(server), maxHold)
	b.ReportAllocs()
	b.SetBytes(int64(len(server)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s2c.end = copy(s2c.buf, server)
		if err := s2c.process(back); err != nil {
			b.Fatal(err)
		}
	}
}
