package proxy_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// diffStep sends msgs, then reads until the server has sent a message of type until count times
// (count 0: read to EOF).
type diffStep struct {
	msgs  []pgproto3.FrontendMessage
	until byte
	count int
}

func q(sql string) diffStep {
	return diffStep{msgs: []pgproto3.FrontendMessage{&pgproto3.Query{String: sql}}, until: 'Z', count: 1}
}

func ext(until byte, count int, msgs ...pgproto3.FrontendMessage) diffStep {
	return diffStep{msgs: msgs, until: until, count: count}
}

// differentialScript exercises the protocol's corners: simple queries (several statements, errors,
// an empty one, a failed transaction), a pipelined extended batch with an error in the middle and
// three Syncs, Flush without Sync, a portal fetched with row limits, Describe of statements and
// portals, Close, COPY both ways and a failed COPY.
func differentialScript() []diffStep {
	text := func(s string) []byte { return []byte(s) }
	return []diffStep{
		q("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c"),
		q("SELECT 1; SELECT 2, 3; SELECT 1/0; SELECT 4"),
		q(""),
		q("BEGIN; SELECT nope"),
		q("SELECT 1"),
		q("ROLLBACK"),
		q("ROLLBACK"), // a WARNING notice: no transaction in progress
		ext('Z', 3,
			&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int + 1 AS n"},
			&pgproto3.Describe{ObjectType: 'S', Name: "s1"},
			&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{text("41")}},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Parse{Query: "SELECT 1/0"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT 'skipped'"},
			&pgproto3.Bind{},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{text("1")}, ResultFormatCodes: []int16{1}},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		),
		// Flush without Sync: the answers come at once, the ReadyForQuery only after the Sync.
		ext('C', 1,
			&pgproto3.Parse{Query: "SELECT 42"},
			&pgproto3.Bind{},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Flush{},
		),
		ext('Z', 1, &pgproto3.Sync{}),
		// A portal fetched three rows at a time inside a transaction.
		q("BEGIN"),
		ext('s', 2,
			&pgproto3.Parse{Query: "SELECT g, repeat('r', g) FROM generate_series(1, 10) g"},
			&pgproto3.Bind{DestinationPortal: "p1"},
			&pgproto3.Execute{Portal: "p1", MaxRows: 3},
			&pgproto3.Execute{Portal: "p1", MaxRows: 3},
			&pgproto3.Flush{},
		),
		ext('Z', 1,
			&pgproto3.Describe{ObjectType: 'P', Name: "p1"},
			&pgproto3.Execute{Portal: "p1"},
			&pgproto3.Close{ObjectType: 'P', Name: "p1"},
			&pgproto3.Close{ObjectType: 'S'},
			&pgproto3.Sync{},
		),
		q("COMMIT"),
		// Describe and Close of a named statement, then Describe of the closed one fails.
		ext('Z', 2,
			&pgproto3.Parse{Name: "s2", Query: "SELECT $1::text AS t, $2::int AS i", ParameterOIDs: []uint32{25}},
			&pgproto3.Describe{ObjectType: 'S', Name: "s2"},
			&pgproto3.Close{ObjectType: 'S', Name: "s2"},
			&pgproto3.Describe{ObjectType: 'S', Name: "s2"},
			&pgproto3.Sync{},
			&pgproto3.Parse{Name: "s3", Query: "CHECKPOINT"}, // NoData: it returns no rows
			&pgproto3.Describe{ObjectType: 'S', Name: "s3"},
			&pgproto3.Close{ObjectType: 'S', Name: "s3"},
			&pgproto3.Sync{},
		),
		q("COPY (SELECT g, 'row ' || g FROM generate_series(1, 50) g) TO STDOUT"),
		q("BEGIN"),
		ext('G', 1, &pgproto3.Query{String: "COPY diff_t FROM STDIN"}),
		ext('Z', 1,
			&pgproto3.CopyData{Data: text("1\tone\n2\t")},
			&pgproto3.CopyData{Data: text("two\n")},
			&pgproto3.CopyDone{},
		),
		q("SELECT * FROM diff_t ORDER BY id"),
		q("ROLLBACK"),
		ext('G', 1, &pgproto3.Query{String: "COPY diff_t FROM STDIN"}),
		ext('Z', 1, &pgproto3.CopyData{Data: text("3\tthree\n")}, &pgproto3.CopyFail{Message: "client gave up"}),
		// A function call (fast path), answered like a statement.
		q("SELECT 1 FROM pg_proc WHERE oid = 'pg_catalog.abs(integer)'::regprocedure"),
		ext('Z', 1, &pgproto3.FunctionCall{Function: 1397, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{text("-5")}}),
		ext(0, 0, &pgproto3.Terminate{}),
	}
}

// recReader keeps every byte read through it.
type recReader struct {
	r   io.Reader
	buf bytes.Buffer
}

func (rr *recReader) Read(b []byte) (int, error) {
	n, err := rr.r.Read(b)
	rr.buf.Write(b[:n])
	return n, err
}

// runScript logs in at addr as the trust user and returns every byte the server sent.
func runScript(t *testing.T, addr, db string, script []diffStep) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rr := &recReader{r: c}
	fe := pgproto3.NewFrontend(rr, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": pgtest.TrustUser, "database": db}})
	steps := append([]diffStep{{until: 'Z', count: 1}}, script...)
	for i, st := range steps {
		for _, m := range st.msgs {
			fe.Send(m)
		}
		if err := fe.Flush(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for seen := 0; st.count == 0 || seen < st.count; {
			msg, err := fe.Receive()
			if err != nil {
				if st.count == 0 {
					break
				}
				t.Fatalf("step %d: %v", i, err)
			}
			if typeLetter(msg)[0] == st.until {
				seen++
			}
		}
	}
	return rr.buf.Bytes()
}

// normalizeReplies zeroes what must differ between two connections: the BackendKeyData.
func normalizeReplies(b []byte) []byte {
	b = bytes.Clone(b)
	for p := 0; p+5 <= len(b); {
		n := 1 + int(binary.BigEndian.Uint32(b[p+1:]))
		if b[p] == 'K' {
			clear(b[p+5 : min(p+n, len(b))])
		}
		p += n
	}
	return b
}

// describeMessages lists a reply stream message by message, for a readable difference.
func describeMessages(b []byte) []string {
	var out []string
	for p := 0; p+5 <= len(b); {
		n := 1 + int(binary.BigEndian.Uint32(b[p+1:]))
		out = append(out, fmt.Sprintf("%c %q", b[p], b[p+5:min(p+n, len(b))]))
		p += n
	}
	return out
}

// TestServerRepliesIdenticalThroughProxy runs one scripted session straight against the server
// and one through the proxy: every byte the server sends must reach the client unchanged.
func TestServerRepliesIdenticalThroughProxy(t *testing.T) {
	pg := pgtest.Shared(t)
	p := startProxy(t)
	db := pg.CreateDatabase(t)
	pg.Exec(t, db, `CREATE TABLE diff_t (id int PRIMARY KEY, v text); GRANT ALL ON diff_t TO trust_user`)
	script := differentialScript()
	direct := normalizeReplies(runScript(t, pg.Addr(), db, script))
	proxied := normalizeReplies(runScript(t, p.addr, db, script))
	if !bytes.Equal(direct, proxied) {
		d, pr := describeMessages(direct), describeMessages(proxied)
		for i := 0; i < max(len(d), len(pr)); i++ {
			var a, b string
			if i < len(d) {
				a = d[i]
			}
			if i < len(pr) {
				b = pr[i]
			}
			if a != b {
				t.Fatalf("replies differ at message %d:\ndirect:  %s\nproxied: %s", i, a, b)
			}
		}
		t.Fatalf("replies differ (%d vs %d bytes)", len(direct), len(proxied))
	}
	// The script did reach every corner it means to.
	all := strings.Join(describeMessages(direct), "\n")
	for _, want := range []string{"I \"\"", "s \"\"", "n \"\"", "3 \"\"", "H ", "G ", "V ", "22012", "25P02", "57014", "26000", "WARNING"} {
		if !strings.Contains(all, want) {
			t.Errorf("the script never produced %q", want)
		}
	}
	waitFor(t, "the proxied statements' events", func() bool { return countEvents(p.obs, "SELECT 42") == 1 })
}
