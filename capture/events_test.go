package capture

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/event"
)

// eventLog records what an observer hears, one line per call.
type eventLog struct {
	lines  []string
	events []event.Event
}

func (l *eventLog) ConnOpened(c *event.ConnInfo) {
	l.lines = append(l.lines, fmt.Sprintf("open %s user=%s db=%s app=%s", c.ClientAddr, c.User, c.Database, c.ApplicationName))
}
func (l *eventLog) ConnAuthenticated(c *event.ConnInfo, ok bool, code string) {
	l.lines = append(l.lines, fmt.Sprintf("auth %v %s", ok, code))
}
func (l *eventLog) Statements(c *event.ConnInfo, batch []event.Event) {
	for _, ev := range batch {
		line := "exchange"
		if !ev.Exchange {
			line = fmt.Sprintf("%q rows=%d tag=%q lost=%v failed=%v dur=%v", ev.Text, ev.Rows, ev.Tag, ev.AnswerLost, ev.Failed, ev.Duration)
		}
		if ev.Protocol == event.Extended && !ev.Exchange {
			var params []string
			ev.Bind.Params(func(_ int, _ int16, v []byte) bool { params = append(params, string(v)); return true })
			line += fmt.Sprintf(" params=%v cols=%v", params, len(ev.Columns) > 0)
		}
		l.lines = append(l.lines, line)
		ev.Text, ev.Bind, ev.Columns, ev.FirstRow, ev.Tag = nil, nil, nil, nil, nil // they alias buffers
		l.events = append(l.events, ev)
	}
}
func (l *eventLog) ConnClosed(c *event.ConnInfo, st event.ConnStats) {
	l.lines = append(l.lines, fmt.Sprintf("closed statements=%d", st.Statements))
}

// script plays a conversation into a Tracker as TCP segments, one per step, with the sequence
// and acknowledgement numbers a real one has; a dropped step is left out of the capture.
type script struct {
	t            *testing.T
	tr           *Tracker
	ev           *Events
	log          *eventLog
	cli, srv     netip.AddrPort
	cseq, sseq   uint32
	at           time.Time
	snap         int // cut the server's payloads past this many bytes (0: never)
	cliMidStream bool
}

func newScript(t *testing.T) *script {
	l := &eventLog{}
	ev := NewEvents(l)
	s := &script{t: t, ev: ev, log: l, tr: NewTracker(ev, 5432), cli: netip.MustParseAddrPort("10.0.0.7:40000"),
		srv: netip.MustParseAddrPort("10.0.0.5:5432"), cseq: 1000, sseq: 9000, at: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	return s
}

func (s *script) syn() {
	s.tr.Add(&Segment{Src: s.cli, Dst: s.srv, Seq: s.cseq - 1, Flags: FlagSYN}, s.at)
	s.tr.Add(&Segment{Src: s.srv, Dst: s.cli, Seq: s.sseq - 1, Ack: s.cseq, Flags: FlagSYN | FlagACK}, s.at)
}

func (s *script) send(fromClient, drop bool, raw []byte) {
	s.at = s.at.Add(10 * time.Millisecond)
	seg := &Segment{Src: s.srv, Dst: s.cli, Seq: s.sseq, Ack: s.cseq, Flags: FlagACK | FlagPSH, Payload: raw, Len: len(raw)}
	if fromClient {
		seg = &Segment{Src: s.cli, Dst: s.srv, Seq: s.cseq, Ack: s.sseq, Flags: FlagACK | FlagPSH, Payload: raw, Len: len(raw)}
		s.cseq += uint32(len(raw))
	} else {
		s.sseq += uint32(len(raw))
	}
	if s.snap > 0 && len(raw) > s.snap && !fromClient {
		seg.Payload, seg.Cut = raw[:s.snap], true
	}
	if !drop {
		s.tr.Add(seg, s.at)
	}
}

func (s *script) client(drop bool, msgs ...pgproto3.FrontendMessage) {
	var raw []byte
	for _, m := range msgs {
		var err error
		if raw, err = m.Encode(raw); err != nil {
			s.t.Fatal(err)
		}
	}
	s.send(true, drop, raw)
}

func (s *script) server(drop bool, msgs ...pgproto3.BackendMessage) {
	var raw []byte
	for _, m := range msgs {
		var err error
		if raw, err = m.Encode(raw); err != nil {
			s.t.Fatal(err)
		}
	}
	s.send(false, drop, raw)
}

// fin ends the conversation as a client that terminates does: its FIN, then the server's.
func (s *script) fin() {
	s.tr.Add(&Segment{Src: s.cli, Dst: s.srv, Seq: s.cseq, Ack: s.sseq, Flags: FlagFIN | FlagACK}, s.at)
	s.tr.Add(&Segment{Src: s.srv, Dst: s.cli, Seq: s.sseq, Ack: s.cseq + 1, Flags: FlagFIN | FlagACK}, s.at)
}

func (s *script) login() {
	s.syn()
	s.client(false, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "app", "database": "shop", "application_name": "celery"}})
	s.server(false, &pgproto3.AuthenticationOk{}, &pgproto3.ParameterStatus{Name: "server_version", Value: "15.8"},
		&pgproto3.BackendKeyData{ProcessID: 7, SecretKey: []byte{0, 0, 0, 9}}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
}

var statusCols = &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("status"), DataTypeOID: 25}}}

func (s *script) poll(dropQuery, dropAnswer bool, id, status string) {
	s.client(dropQuery, &pgproto3.Query{String: "SELECT status FROM celery_taskmeta WHERE task_id = '" + id + "'"})
	s.server(dropAnswer, statusCols, &pgproto3.DataRow{Values: [][]byte{[]byte(status)}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
}

func (s *script) want(want ...string) {
	s.t.Helper()
	if got := strings.Join(s.log.lines, "\n"); got != strings.Join(want, "\n") {
		s.t.Errorf("observer heard:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

const pollText = `"SELECT status FROM celery_taskmeta WHERE task_id = '%s'"`

func TestEventsSimpleAndExtended(t *testing.T) {
	s := newScript(t)
	s.login()
	s.poll(false, false, "a", "PENDING")
	// pgx: prepare and describe once, then Bind and Execute with the statement cache.
	s.client(false, &pgproto3.Parse{Name: "s1", Query: "SELECT status FROM celery_taskmeta WHERE task_id = $1"},
		&pgproto3.Describe{ObjectType: 'S', Name: "s1"}, &pgproto3.Sync{})
	s.server(false, &pgproto3.ParseComplete{}, &pgproto3.ParameterDescription{ParameterOIDs: []uint32{25}}, statusCols,
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
	for _, id := range []string{"b", "c"} {
		s.client(false, &pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte(id)}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		s.server(false, &pgproto3.BindComplete{}, &pgproto3.DataRow{Values: [][]byte{[]byte("SUCCESS")}},
			&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	}
	// A failing statement, then Terminate.
	s.client(false, &pgproto3.Query{String: "SELECT nope"})
	s.server(false, &pgproto3.ErrorResponse{Severity: "ERROR", Code: "42703", Message: "column does not exist"},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
	s.client(false, &pgproto3.Terminate{})
	s.fin()
	text := "SELECT status FROM celery_taskmeta WHERE task_id = $1"
	s.want("open 10.0.0.7:40000 user=app db=shop app=celery",
		"auth true ",
		fmt.Sprintf(pollText, "a")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		"exchange",
		fmt.Sprintf("%q rows=1 tag=\"SELECT 1\" lost=false failed=false dur=10ms params=[b] cols=true", text),
		fmt.Sprintf("%q rows=1 tag=\"SELECT 1\" lost=false failed=false dur=10ms params=[c] cols=true", text),
		`"SELECT nope" rows=0 tag="" lost=false failed=true dur=10ms`,
		"closed statements=4")
	if d := s.log.events; d[2].Digest != d[3].Digest || d[2].Digest == d[0].Digest || d[0].Digest == 0 {
		t.Errorf("digests %x %x %x: the same row must hash the same, another row otherwise", d[0].Digest, d[2].Digest, d[3].Digest)
	}
}

// A capture that lost packets: a lost answer keeps its poll (AnswerLost) and does not shift
// the next answers onto the wrong statements; a lost statement is no poll.
func TestEventsAfterLostPackets(t *testing.T) {
	s := newScript(t)
	s.login()
	s.poll(false, false, "a", "PENDING")
	s.poll(false, true, "b", "PENDING") // its answer lost
	s.poll(false, false, "c", "SUCCESS")
	s.poll(true, false, "d", "SUCCESS") // the statement lost: its answer pairs with nothing
	s.poll(false, false, "e", "FAILURE")
	s.fin()
	s.want("open 10.0.0.7:40000 user=app db=shop app=celery",
		"auth true ",
		fmt.Sprintf(pollText, "a")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		fmt.Sprintf(pollText, "b")+` rows=0 tag="" lost=true failed=false dur=0s`,
		fmt.Sprintf(pollText, "c")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		fmt.Sprintf(pollText, "e")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		"closed statements=4")
	if st := s.ev.Stats; st.AnswersLost != 1 || st.Unpaired != 1 || s.tr.Stats.Gaps != 2 {
		t.Errorf("answers lost %d, unpaired %d, gaps %d; want 1, 1, 2", st.AnswersLost, st.Unpaired, s.tr.Stats.Gaps)
	}
}

// An answer cut by the snap length is a poll whose answer is unknown.
func TestEventsSnapLength(t *testing.T) {
	s := newScript(t)
	s.login()
	s.snap = 40
	s.poll(false, false, "a", strings.Repeat("x", 100))
	s.snap = 0
	s.poll(false, false, "b", "SUCCESS")
	s.fin()
	s.want("open 10.0.0.7:40000 user=app db=shop app=celery",
		"auth true ",
		fmt.Sprintf(pollText, "a")+` rows=0 tag="" lost=true failed=false dur=0s`,
		fmt.Sprintf(pollText, "b")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		"closed statements=2")
	if s.tr.Stats.CutPackets != 1 {
		t.Errorf("cut packets %d, want 1", s.tr.Stats.CutPackets)
	}
}

// An SSLRequest answered S: the conversation is counted, never decoded.
func TestEventsEncrypted(t *testing.T) {
	s := newScript(t)
	s.syn()
	s.send(true, false, []byte{0, 0, 0, 8, 4, 210, 22, 47})
	s.send(false, false, []byte{'S'})
	s.send(true, false, []byte{0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3})
	s.send(false, false, []byte{0x16, 3, 3, 0, 90, 2, 0, 0, 86})
	s.fin()
	s.want()
	if s.ev.Stats.Encrypted != 1 {
		t.Errorf("encrypted %d, want 1", s.ev.Stats.Encrypted)
	}
	// Refused, the conversation goes on in the clear.
	s = newScript(t)
	s.syn()
	s.send(true, false, []byte{0, 0, 0, 8, 4, 210, 22, 47})
	s.send(false, false, []byte{'N'})
	s.client(false, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "app"}})
	s.server(false, &pgproto3.AuthenticationOk{}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	s.poll(false, false, "a", "PENDING")
	s.fin()
	s.want("open 10.0.0.7:40000 user=app db=app app=",
		"auth true ",
		fmt.Sprintf(pollText, "a")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		"closed statements=1")
}

// A capture that begins mid-conversation finds the first message boundary and goes on.
func TestEventsMidStream(t *testing.T) {
	s := newScript(t)
	s.login()
	s.poll(false, false, "a", "PENDING")
	// A new tracker joins here: no SYN, no startup.
	l := &eventLog{}
	s.ev = NewEvents(l)
	s.tr, s.log = NewTracker(s.ev, 5432), l
	s.poll(false, false, "b", "PENDING")
	s.poll(false, false, "c", "SUCCESS")
	s.fin()
	s.want("open 10.0.0.7:40000 user= db= app=",
		fmt.Sprintf(pollText, "b")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		fmt.Sprintf(pollText, "c")+` rows=1 tag="SELECT 1" lost=false failed=false dur=10ms`,
		"closed statements=2")
	if s.ev.Stats.MidStream != 1 {
		t.Errorf("mid-stream %d, want 1", s.ev.Stats.MidStream)
	}
}

// A pipeline of extended-protocol batches with an error in the middle (the server skips to the
// Sync), COPY, a cancel request on a connection of its own, and protocol 3.2.
func TestEventsPipelineCopyCancel32(t *testing.T) {
	s := newScript(t)
	s.syn()
	s.client(false, &pgproto3.StartupMessage{ProtocolVersion: 196610, Parameters: map[string]string{"user": "app", "database": "shop"}})
	s.server(false, &pgproto3.AuthenticationOk{}, &pgproto3.BackendKeyData{ProcessID: 7, SecretKey: make([]byte, 32)},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
	q := "SELECT status FROM celery_taskmeta WHERE task_id = $1"
	// Three batches sent at once; the second fails at its Bind, so its Execute never runs.
	var msgs []pgproto3.FrontendMessage
	for _, id := range []string{"a", "b", "c"} {
		msgs = append(msgs, &pgproto3.Parse{Query: q}, &pgproto3.Bind{Parameters: [][]byte{[]byte(id)}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
	}
	s.client(false, msgs...)
	row := &pgproto3.DataRow{Values: [][]byte{[]byte("PENDING")}}
	done := &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}
	ready := &pgproto3.ReadyForQuery{TxStatus: 'I'}
	s.server(false, &pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, row, done, ready,
		&pgproto3.ParseComplete{}, &pgproto3.ErrorResponse{Severity: "ERROR", Code: "22P02", Message: "bad input"}, ready,
		&pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, row, done, ready)
	// COPY in: the data is never looked at; the statement completes with its tag.
	s.client(false, &pgproto3.Query{String: "COPY t FROM STDIN"})
	s.server(false, &pgproto3.CopyInResponse{OverallFormat: 0})
	s.client(false, &pgproto3.CopyData{Data: []byte("1\tSELECT 1\n")}, &pgproto3.CopyDone{})
	s.server(false, &pgproto3.CommandComplete{CommandTag: []byte("COPY 1")}, ready)
	s.fin()
	// A cancel request: a connection of its own, no session.
	c := newScript(t)
	c.ev, c.log = s.ev, s.log
	c.tr = NewTracker(c.ev, 5432)
	c.cli = netip.MustParseAddrPort("10.0.0.7:40001")
	c.syn()
	c.send(true, false, []byte{0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 7, 0, 0, 0, 9})
	c.fin()
	s.want("open 10.0.0.7:40000 user=app db=shop app=",
		"auth true ",
		fmt.Sprintf("%q rows=1 tag=\"SELECT 1\" lost=false failed=false dur=10ms params=[a] cols=false", q),
		fmt.Sprintf("%q rows=0 tag=\"\" lost=false failed=true dur=0s params=[] cols=false", q), // as the proxy: no Bind on a failed Bind
		fmt.Sprintf("%q rows=1 tag=\"SELECT 1\" lost=false failed=false dur=0s params=[c] cols=false", q),
		`"COPY t FROM STDIN" rows=0 tag="COPY 1" lost=false failed=false dur=30ms`,
		"closed statements=4")
	if st := s.ev.Stats; st.Cancels != 1 || st.Unpaired != 0 || st.AnswersLost != 0 {
		t.Errorf("cancels %d, unpaired %d, answers lost %d; want 1, 0, 0", st.Cancels, st.Unpaired, st.AnswersLost)
	}
}

// TestMemoryBounded opens 150,000 conversations, each logged in with a poll in flight, through
// a Tracker and Events: at most MaxConversations (100,000) are held, and what each costs is
// bounded.
func TestMemoryBounded(t *testing.T) {
	var obs event.NopObserver
	ev := NewEvents(obs)
	tr := NewTracker(ev, 5432)
	srv := netip.MustParseAddrPort("10.0.0.5:5432")
	startup := encode(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "app", "database": "shop", "application_name": "celery"}})
	login := encode(t, &pgproto3.AuthenticationOk{}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	q := encode(t, &pgproto3.Query{String: "SELECT status FROM celery_taskmeta WHERE task_id = 'c6f5e2b0-0b1e-4d55-9d0e-5f1b2c3d4e5f'"})
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 150_000
	for i := range n {
		cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i / 50_000)}), uint16(10_000+i%50_000))
		tr.Add(&Segment{Src: cli, Dst: srv, Seq: 99, Flags: FlagSYN}, at)
		tr.Add(&Segment{Src: cli, Dst: srv, Seq: 100, Ack: 901, Flags: FlagACK, Payload: startup}, at)
		tr.Add(&Segment{Src: srv, Dst: cli, Seq: 901, Ack: 100 + uint32(len(startup)), Flags: FlagACK, Payload: login}, at)
		tr.Add(&Segment{Src: cli, Dst: srv, Seq: 100 + uint32(len(startup)), Ack: 901 + uint32(len(login)), Flags: FlagACK, Payload: q}, at)
		at = at.Add(time.Microsecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	per := held / int64(len(tr.conns))
	t.Logf("%d conversations opened, %d held, %d evicted: %d MB of heap, %d bytes each", n, len(tr.conns), tr.Stats.Evicted, held>>20, per)
	if len(tr.conns) != tr.MaxConversations || tr.Stats.Evicted != n-int64(tr.MaxConversations) {
		t.Errorf("%d conversations held, %d evicted; want %d and %d", len(tr.conns), tr.Stats.Evicted, tr.MaxConversations, n-tr.MaxConversations)
	}
	if per > 4096 {
		t.Errorf("%d bytes of heap per conversation, want 4 KiB at most", per)
	}
	runtime.KeepAlive(tr)
}
