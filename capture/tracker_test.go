package capture

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

type recordSink struct{ log []string }

func (r *recordSink) Message(c *Conversation, fromClient bool, typ byte, body []byte, at time.Time) {
	dir := "S"
	if fromClient {
		dir = "C"
	}
	if typ == 0 {
		typ = '0'
	}
	r.log = append(r.log, fmt.Sprintf("%d:%s%c", c.Client.Port(), dir, typ))
}
func (r *recordSink) Gap(c *Conversation, fromClient bool, n int64) {
	r.log = append(r.log, fmt.Sprintf("%d:gap%d", c.Client.Port(), n))
}
func (r *recordSink) Closed(c *Conversation) {
	r.log = append(r.log, fmt.Sprintf("%d:closed", c.Client.Port()))
}

func TestTracker(t *testing.T) {
	srv := netip.MustParseAddrPort("10.0.0.5:5432")
	cli := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("10.0.0.7"), port) }
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	sink := &recordSink{}
	tr := NewTracker(sink, 5432)
	seg := func(from, to netip.AddrPort, seq uint32, flags uint8, payload []byte) {
		tr.Add(&Segment{Src: from, Dst: to, Seq: seq, Flags: flags, Payload: payload}, at)
		at = at.Add(time.Millisecond)
	}
	startup := encode(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "a"}})
	q := encode(t, &pgproto3.Query{String: "SELECT 1"})
	answer := encode(t, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})

	// A whole conversation: SYN both ways, the startup, a query retransmitted, its answer, FIN.
	seg(cli(40000), srv, 100, FlagSYN, nil)
	seg(srv, cli(40000), 900, FlagSYN|FlagACK, nil)
	seg(cli(40000), srv, 101, FlagACK, startup)
	seg(cli(40000), srv, 101+uint32(len(startup)), FlagPSH|FlagACK, q)
	seg(cli(40000), srv, 101+uint32(len(startup)), FlagPSH|FlagACK, q) // retransmitted
	seg(srv, cli(40000), 901, FlagPSH|FlagACK, answer)
	seg(cli(40000), srv, 101+uint32(len(startup)+len(q)), FlagFIN|FlagACK, nil)
	seg(srv, cli(40000), 901+uint32(len(answer)), FlagFIN|FlagACK, nil)
	// One caught mid-conversation: the server side waits for a ReadyForQuery, the client side
	// for two plausible headers.
	seg(srv, cli(40001), 5000, FlagACK, answer[:3]) // the tail of an answer
	seg(srv, cli(40001), 5003, FlagACK, answer[3:])
	seg(cli(40001), srv, 7000, FlagACK, append(append([]byte{}, q...), q...))
	// Not PostgreSQL.
	seg(cli(40002), netip.MustParseAddrPort("10.0.0.5:6379"), 1, FlagACK, []byte("PING"))
	tr.Close()

	got := strings.Join(sink.log, " ")
	want := "40000:C0 40000:CQ 40000:SC 40000:SZ 40000:closed 40001:SZ 40001:CQ 40001:CQ 40001:closed"
	if got != want {
		t.Errorf("conversations:\n%s\nwant\n%s", got, want)
	}
	if tr.Stats.Retransmitted != int64(len(q)) || tr.Stats.NotPostgres != 1 || tr.Stats.Conversations != 2 {
		t.Errorf("stats %+v", tr.Stats)
	}

	// Bounds: a fourth conversation past a maximum of 3 closes one; an idle one is closed.
	sink.log = nil
	tr = NewTracker(sink, 5432)
	tr.MaxConversations, tr.IdleTimeout = 3, time.Minute
	for p := range uint16(4) {
		seg(cli(41000+p), srv, 1, FlagSYN, nil)
	}
	if len(tr.conns) != 3 || tr.Stats.Evicted != 1 {
		t.Errorf("%d conversations, %d evicted; want 3 and 1", len(tr.conns), tr.Stats.Evicted)
	}
	tr.Expire(at.Add(2 * time.Minute))
	if len(tr.conns) != 0 || tr.Stats.IdleClosed != 3 {
		t.Errorf("after the idle timeout: %d conversations, %d closed idle", len(tr.conns), tr.Stats.IdleClosed)
	}
}

// A server on a port not named is found by its client's startup packet; the conversation is
// then followed from its start, not as one joined mid-way.
func TestTrackerFindsPortByStartup(t *testing.T) {
	sink := &recordSink{}
	tr := NewTracker(sink, 5432)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	cli, srv := netip.MustParseAddrPort("10.0.0.7:40000"), netip.MustParseAddrPort("10.0.0.5:6543")
	startup := encode(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "a"}})
	q := encode(t, &pgproto3.Query{String: "SELECT 1"})
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: 100, Flags: FlagSYN}, at) // not known yet: not followed
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: 101, Flags: FlagACK, Payload: startup}, at)
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: 101 + uint32(len(startup)), Flags: FlagACK, Payload: q}, at)
	// Text that is no startup packet leaves another port alone.
	tr.Add(&Segment{Src: cli, Dst: netip.MustParseAddrPort("10.0.0.5:80"), Seq: 1, Flags: FlagACK, Payload: []byte("GET / HTTP/1.1\r\n\r\n")}, at)
	tr.Close()
	if got := strings.Join(sink.log, " "); got != "40000:C0 40000:CQ 40000:closed" || tr.Stats.PortsFound != 1 || tr.Stats.NotPostgres != 2 {
		t.Errorf("%s; ports found %d, not postgres %d", got, tr.Stats.PortsFound, tr.Stats.NotPostgres)
	}
}

// One side's FIN ends only its direction: the TLS close record a server sends after the
// client's FIN, or the answer to a query sent as the server ended the session, belong to the
// same conversation, which ends with the second FIN or a RST (found by fixtures/capture: a
// phantom conversation "joined mid-way" for each).
func TestTrackerHalfClose(t *testing.T) {
	sink := &recordSink{}
	tr := NewTracker(sink, 5432)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	cli, srv := netip.MustParseAddrPort("10.0.0.7:40000"), netip.MustParseAddrPort("10.0.0.5:5432")
	startup := encode(t, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "a"}})
	fatal := encode(t, &pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P01", Message: "terminating connection"})
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: 100, Flags: FlagSYN}, at)
	tr.Add(&Segment{Src: srv, Dst: cli, Seq: 900, Ack: 101, Flags: FlagSYN | FlagACK}, at)
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: 101, Ack: 901, Flags: FlagACK, Payload: startup}, at)
	end := 101 + uint32(len(startup))
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: end, Ack: 901, Flags: FlagFIN | FlagACK}, at)
	tr.Add(&Segment{Src: srv, Dst: cli, Seq: 901, Ack: end + 1, Flags: FlagACK | FlagPSH, Payload: fatal}, at)
	tr.Add(&Segment{Src: srv, Dst: cli, Seq: 901 + uint32(len(fatal)), Ack: end + 1, Flags: FlagFIN | FlagACK}, at)
	tr.Add(&Segment{Src: cli, Dst: srv, Seq: end + 1, Ack: 902 + uint32(len(fatal)), Flags: FlagACK}, at)
	tr.Close()
	if got := strings.Join(sink.log, " "); got != "40000:C0 40000:SE 40000:closed" || tr.Stats.Conversations != 1 {
		t.Errorf("%s; %d conversations: want one, closed after both FINs", got, tr.Stats.Conversations)
	}
}
