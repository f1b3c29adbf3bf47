package capture

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func encode(t testing.TB, msgs ...pgproto3.Message) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// frames feeds stream to a framer in chunks of size chunk (0: whole), with a gap of n bytes
// cut out at gapAt (n 0: none), and lists the messages: type, then body length.
func frames(client bool, stream []byte, chunk, gapAt, n int) (string, *framer) {
	f := newFramer(client)
	var out []string
	msg := func(typ byte, body []byte) {
		if typ == 0 {
			out = append(out, fmt.Sprintf("startup(%d)", binary.BigEndian.Uint32(body)))
			return
		}
		out = append(out, fmt.Sprintf("%c%d", typ, len(body)))
	}
	var seq uint32
	feed := func(p []byte) {
		for len(p) > 0 {
			k := len(p)
			if chunk > 0 {
				k = min(chunk, len(p))
			}
			seq += uint32(k)
			f.feed(p[:k], seq, msg)
			p = p[k:]
		}
	}
	if n > 0 {
		feed(stream[:gapAt])
		f.gap(int64(n))
		seq += uint32(n)
		feed(stream[gapAt+n:])
	} else {
		feed(stream)
	}
	return strings.Join(out, " "), f
}

func TestFramer(t *testing.T) {
	ssl := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)
	client := append(ssl, encode(t,
		&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "app"}},
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Query: "SELECT status FROM celery_taskmeta WHERE task_id = $1"},
		&pgproto3.Bind{Parameters: [][]byte{[]byte("k1")}},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT 2"},
	)...)
	want := "startup(80877103) startup(196608) Q9 P57 B14 E5 S0 Q9"
	for _, chunk := range []int{0, 1, 3, 7} {
		if got, _ := frames(true, client, chunk, 0, 0); got != want {
			t.Errorf("client, chunks of %d: %s; want %s", chunk, got, want)
		}
	}
	// A gap inside the Parse: the framer finds the Bind (a plausible header followed by
	// another) and goes on from there.
	parseAt := strings.Index(string(client), "SELECT status")
	if got, f := frames(true, client, 5, parseAt, 10); got != "startup(80877103) startup(196608) Q9 B14 E5 S0 Q9" || f.Resyncs != 1 {
		t.Errorf("client after a gap: %s (%d resyncs)", got, f.Resyncs)
	}

	server := encode(t,
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("status")}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("PENDING")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
		&pgproto3.DataRow{Values: [][]byte{[]byte("SUCCESS")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	if got, _ := frames(false, server, 2, 0, 0); got != "T27 D13 C9 Z1 D13 C9 Z1" {
		t.Errorf("server: %s", got)
	}
	// A gap in the first row (after the RowDescription): the server side resumes at the next
	// ReadyForQuery.
	if got, f := frames(false, server, 4, 35, 8); got != "T27 Z1 D13 C9 Z1" || f.Resyncs != 1 || f.Skipped == 0 {
		t.Errorf("server after a gap: %s (%d resyncs, %d skipped)", got, f.Resyncs, f.Skipped)
	}
	// A length no message has: lost sync, found again at a ReadyForQuery.
	bad := append([]byte{'D', 0x7f, 0xff, 0xff, 0xff}, server...)
	if got, _ := frames(false, bad, 0, 0, 0); got != "Z1 D13 C9 Z1" {
		t.Errorf("server after a corrupt length: %s", got)
	}
}

// Any bytes on either side, with gaps anywhere: messages or resyncs, never a panic, and every
// byte either framed, skipped or still buffered.
func FuzzFramer(f *testing.F) {
	f.Add(true, encode(f, &pgproto3.Query{String: "SELECT 1"}, &pgproto3.Sync{}), uint8(3), uint8(0))
	f.Add(false, encode(f, &pgproto3.ReadyForQuery{TxStatus: 'I'}), uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, client bool, data []byte, chunk, gapEvery uint8) {
		fr := newFramer(client)
		var framed int64
		msg := func(typ byte, body []byte) { framed += int64(len(body)) }
		for i := 0; len(data) > 0; i++ {
			k := min(int(chunk)+1, len(data))
			if gapEvery > 0 && i%int(gapEvery) == int(gapEvery)-1 {
				fr.gap(int64(k))
			} else {
				fr.feed(data[:k], uint32(i), msg)
			}
			data = data[k:]
		}
		if framed < 0 || fr.Skipped < 0 {
			t.Fatalf("framed %d, skipped %d", framed, fr.Skipped)
		}
	})
}
