package proxy

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func encode(msgs ...pgproto3.Message) []byte {
	var b []byte
	for _, m := range msgs {
		b, _ = m.Encode(b)
	}
	return b
}

// feed runs a whole stream through an inspector in one read, as a pump with room for it would.
func feed(t *testing.T, ins inspector, stream []byte) {
	t.Helper()
	p := newPump(nil, &sink{}, len(stream)+1, max(len(stream)+1, maxHold))
	p.end = copy(p.buf, stream)
	if err := p.process(ins); err != nil {
		t.Fatal(err)
	}
}

type eventsObserver struct {
	NopObserver
	texts, cols []int // lengths
	sharedCols  int   // events whose Columns shared the previous event's copy
	exchanges   []Event
	auths       []bool
}

func (o *eventsObserver) ConnAuthenticated(_ *ConnInfo, ok bool, _ string) {
	o.auths = append(o.auths, ok)
}

func (o *eventsObserver) Statements(_ *ConnInfo, batch []Event) {
	for i, ev := range batch {
		if ev.Exchange {
			o.exchanges = append(o.exchanges, ev)
			continue
		}
		o.texts = append(o.texts, len(ev.Text))
		o.cols = append(o.cols, len(ev.Columns))
		if i > 0 && len(ev.Columns) > 0 && len(batch[i-1].Columns) > 0 && &ev.Columns[0] == &batch[i-1].Columns[0] {
			o.sharedCols++
		}
	}
}

func budgetSession(obs Observer) (*frontend, *backend) {
	srv := &Server{cfg: Config{Observer: obs}, log: discardLogger}
	s := &Session{srv: srv, observer: obs}
	q := &queue{}
	return newFrontend(q, defaultMaxMessageSize, &s.end), newBackend(s, q)
}

// TestExecutesInFlightAreBounded: one Bind of a large statement, then many Executes of its
// portal before any answer. Each Execute used to copy the statement text and Bind body: 64
// Executes of a 1 MiB portal held 64 MiB. The copies now stop at maxQueueBytes, and once the
// answers are in, new statements get their text again.
func TestExecutesInFlightAreBounded(t *testing.T) {
	obs := &eventsObserver{}
	fe, be := budgetSession(obs)
	text := "SELECT $1::text -- " + strings.Repeat("x", 512<<10)
	param := bytes.Repeat([]byte("p"), 512<<10)
	msgs := []pgproto3.Message{&pgproto3.Parse{Query: text}, &pgproto3.Bind{Parameters: [][]byte{param}}}
	const executes = 64
	for i := 0; i < executes; i++ {
		msgs = append(msgs, &pgproto3.Execute{})
	}
	msgs = append(msgs, &pgproto3.Sync{})
	feed(t, fe, encode(msgs...))
	if fe.prod.held > maxQueueBytes+2<<20 {
		t.Fatalf("%d MiB held for %d Executes", fe.prod.held>>20, executes)
	}
	var answers []pgproto3.Message
	answers = append(answers, &pgproto3.ParseComplete{}, &pgproto3.BindComplete{})
	for i := 0; i < executes; i++ {
		answers = append(answers, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
	}
	answers = append(answers, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	feed(t, be, encode(answers...))
	if len(obs.texts) != executes || obs.texts[0] != len(text) || obs.texts[executes-1] != 0 {
		t.Fatalf("events %d, first text %d bytes, last %d", len(obs.texts), obs.texts[0], obs.texts[executes-1])
	}
	// The pressure is over: the next statements are observed whole again.
	for i := 0; i < 3; i++ {
		feed(t, fe, encode(&pgproto3.Query{String: text}))
		feed(t, be, encode(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")}, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
		if got := obs.texts[len(obs.texts)-1]; got != len(text) {
			t.Fatalf("after the pipeline drained: text of %d bytes, want %d", got, len(text))
		}
	}
	if fe.prod.held > maxQueueBytes+2<<20 {
		t.Fatalf("%d MiB held", fe.prod.held>>20)
	}
}

// TestNamedStatementsAndPortalsAreBounded: statements whose Parse the server refused and
// portals it dropped at the end of their transaction stay in the frontend's maps, so those are
// bounded in count and bytes.
func TestNamedStatementsAndPortalsAreBounded(t *testing.T) {
	fe, _ := budgetSession(NopObserver{})
	big := strings.Repeat("y", 256<<10)
	var stream []byte
	for i := 0; i < 200; i++ { // 50 MiB of statement texts, each under a new name
		stream, _ = (&pgproto3.Parse{Name: "s" + strconv.Itoa(i), Query: big}).Encode(stream)
	}
	feed(t, fe, stream)
	if fe.named > maxNamedBytes+len(big)+64 {
		t.Fatalf("%d MiB held by named statements", fe.named>>20)
	}
	stream = stream[:0]
	for i := 0; i < 2*maxNamedStmts; i++ {
		stream, _ = (&pgproto3.Parse{Name: "t" + strconv.Itoa(i), Query: "SELECT 1"}).Encode(stream)
	}
	for i := 0; i < 2*maxNamedPortals; i++ {
		stream, _ = (&pgproto3.Bind{DestinationPortal: "p" + strconv.Itoa(i), PreparedStatement: "t1", Parameters: [][]byte{[]byte(big[:1000])}}).Encode(stream)
	}
	feed(t, fe, stream)
	if len(fe.stmts) > maxNamedStmts || len(fe.portals) > maxNamedPortals || fe.named > maxNamedBytes+len(big)+64 {
		t.Fatalf("%d statements, %d portals, %d bytes", len(fe.stmts), len(fe.portals), fe.named)
	}
	// The accounting matches what the maps hold.
	sum := 0
	for k, s := range fe.stmts {
		sum += len(k) + s.capacity()
	}
	for k, p := range fe.portals {
		sum += len(k) + p.capacity()
	}
	if sum != fe.named {
		t.Fatalf("accounted %d bytes, the maps hold %d", fe.named, sum)
	}
	// Closing forgets and gives the bytes back.
	stream = stream[:0]
	for k := range fe.stmts {
		stream, _ = (&pgproto3.Close{ObjectType: 'S', Name: k}).Encode(stream)
	}
	for k := range fe.portals {
		stream, _ = (&pgproto3.Close{ObjectType: 'P', Name: k}).Encode(stream)
	}
	feed(t, fe, stream)
	if len(fe.stmts) != 0 || len(fe.portals) != 0 || fe.named != 0 {
		t.Fatalf("after Close: %d statements, %d portals, %d bytes", len(fe.stmts), len(fe.portals), fe.named)
	}
}

// TestKeptColumnsAreBounded: a pipeline of Executes of described wide statements completes
// hundreds of statements in one read, each with a RowDescription of ~100 KiB. Events of the
// same statement share one copy, and the copies stop at maxKept.
func TestKeptColumnsAreBounded(t *testing.T) {
	obs := &eventsObserver{}
	fe, be := budgetSession(obs)
	wide := func(tag string) *pgproto3.RowDescription {
		rd := &pgproto3.RowDescription{}
		for i := 0; i < 1500; i++ {
			rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(tag + strings.Repeat("c", 40) + strconv.Itoa(i)), DataTypeOID: 25})
		}
		return rd
	}
	feed(t, fe, encode(&pgproto3.Parse{Name: "a", Query: "SELECT a"}, &pgproto3.Describe{ObjectType: 'S', Name: "a"},
		&pgproto3.Parse{Name: "b", Query: "SELECT b"}, &pgproto3.Describe{ObjectType: 'S', Name: "b"}, &pgproto3.Sync{}))
	feed(t, be, encode(&pgproto3.ParseComplete{}, &pgproto3.ParameterDescription{}, wide("a"),
		&pgproto3.ParseComplete{}, &pgproto3.ParameterDescription{}, wide("b"), &pgproto3.ReadyForQuery{TxStatus: 'I'}))
	const n = 400
	var client, server []pgproto3.Message
	for i := 0; i < n; i++ {
		name := "a"
		if i >= n/2 && i%2 == 1 {
			name = "b" // the second half alternates: no sharing
		}
		client = append(client, &pgproto3.Bind{PreparedStatement: name}, &pgproto3.Execute{})
		server = append(server, &pgproto3.BindComplete{}, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
	}
	client = append(client, &pgproto3.Sync{})
	server = append(server, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	feed(t, fe, encode(client...))
	feed(t, be, encode(server...))
	if len(obs.cols) != n || obs.cols[0] == 0 {
		t.Fatalf("%d events, first with %d bytes of columns", len(obs.cols), obs.cols[0])
	}
	if obs.sharedCols < n/2-1 {
		t.Fatalf("only %d events shared their columns", obs.sharedCols)
	}
	if be.keptCap > maxKept+200<<10 {
		t.Fatalf("%d MiB kept for one batch", be.keptCap>>20)
	}
	without := 0
	for _, c := range obs.cols {
		if c == 0 {
			without++
		}
	}
	if without == 0 {
		t.Fatal("every event kept its own columns: no budget")
	}
}
