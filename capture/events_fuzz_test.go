package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/event"
)

// FuzzEvents plays any sequence of segments, both directions, with holes, overlaps, SYNs and
// FINs, through a Tracker into Events: a result or nothing, never a panic, a hang or an
// unbounded queue. Each chunk of the input is a control byte (bit 0 from the server, bit 1
// not captured, bit 2 SYN, bit 3 FIN, bits 4-7 a shift of the sequence number), a length and
// that many payload bytes.
func FuzzEvents(f *testing.F) {
	chunk := func(ctrl byte, msgs ...pgproto3.Message) []byte {
		var raw []byte
		for _, m := range msgs {
			raw, _ = m.Encode(raw)
		}
		return append([]byte{ctrl, byte(len(raw))}, raw...)
	}
	var seed []byte
	seed = append(seed, 4, 0) // SYN
	seed = append(seed, chunk(0, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "a"}})...)
	seed = append(seed, chunk(1, &pgproto3.AuthenticationOk{}, &pgproto3.ReadyForQuery{TxStatus: 'I'})...)
	seed = append(seed, chunk(0, &pgproto3.Query{String: "SELECT status FROM celery_taskmeta WHERE task_id = 'x'"})...)
	seed = append(seed, chunk(1, statusCols, &pgproto3.DataRow{Values: [][]byte{[]byte("PENDING")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})...)
	seed = append(seed, chunk(2, &pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})...)
	seed = append(seed, chunk(1, &pgproto3.ParseComplete{}, &pgproto3.BindComplete{}, &pgproto3.DataRow{Values: [][]byte{[]byte("1")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})...)
	seed = append(seed, 8, 0) // FIN
	f.Add(seed)
	f.Add([]byte{4, 0, 0, 8, 0, 0, 0, 8, 4, 210, 22, 47, 1, 1, 'S', 0, 3, 0x16, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		obs := &boundedObserver{t: t}
		ev := NewEvents(obs)
		tr := NewTracker(ev, 5432)
		cli, srv := netip.MustParseAddrPort("10.0.0.7:40000"), netip.MustParseAddrPort("10.0.0.5:5432")
		seq := [2]uint32{1000, 9000}
		at := time.Unix(1e9, 0)
		for len(data) >= 2 {
			ctrl, n := data[0], int(data[1])
			data = data[2:]
			n = min(n, len(data))
			payload := data[:n]
			data = data[n:]
			dir := int(ctrl & 1)
			s := seq[dir] + uint32(ctrl>>4) - 8 // a shift: overlaps and holes
			seg := &Segment{Seq: s, Ack: seq[1-dir], Flags: FlagACK, Payload: payload, Len: len(payload)}
			seg.Src, seg.Dst = cli, srv
			if dir == 1 {
				seg.Src, seg.Dst = srv, cli
			}
			if ctrl&4 != 0 {
				seg.Flags |= FlagSYN
			}
			if ctrl&8 != 0 {
				seg.Flags |= FlagFIN
			}
			seq[dir] = s + uint32(n)
			at = at.Add(time.Millisecond)
			if ctrl&2 == 0 {
				tr.Add(seg, at)
			}
			for _, c := range tr.conns {
				if cv, ok := c.Local.(*conv); ok && len(cv.queue)-cv.head > maxQueue {
					t.Fatalf("%d answers waited for, over the bound of %d", len(cv.queue)-cv.head, maxQueue)
				}
			}
		}
		tr.Close()
		if obs.closed > obs.opened {
			t.Fatalf("%d connections closed, %d opened", obs.closed, obs.opened)
		}
	})
}

// boundedObserver checks what Events says of each statement.
type boundedObserver struct {
	t              *testing.T
	opened, closed int
}

func (o *boundedObserver) ConnOpened(*event.ConnInfo)                      { o.opened++ }
func (o *boundedObserver) ConnAuthenticated(*event.ConnInfo, bool, string) {}
func (o *boundedObserver) ConnClosed(*event.ConnInfo, event.ConnStats)     { o.closed++ }
func (o *boundedObserver) Statements(_ *event.ConnInfo, batch []event.Event) {
	for _, ev := range batch {
		if ev.Duration < 0 || ev.AnswerLost && (ev.Rows != 0 || ev.Digest != 0) || ev.Rows == 0 && ev.Digest != 0 {
			o.t.Fatalf("event %+v: a negative duration, or a digest of no rows", ev)
		}
	}
}
