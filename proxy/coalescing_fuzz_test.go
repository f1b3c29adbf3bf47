package proxy

import (
	"bytes"
	"errors"
	"hash/maphash"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fakeCache answers Get from a script: each lookup takes the next byte of hits, odd = hit.
type fakeCache struct {
	off   bool
	hits  []byte
	i     int
	ans   *Answer
	fills []*fakeFill
}

func (c *fakeCache) Enabled() bool             { return !c.off }
func (c *fakeCache) Scope() CacheScope         { return ScopeReadCommitted }
func (c *fakeCache) NewClassifier() Classifier { return fakeClassifier{} }
func (c *fakeCache) Invalidate(Touch)          {}
func (c *fakeCache) Bypassed()                 {}
func (c *fakeCache) MaxAnswer() int            { return 1 << 10 }
func (c *fakeCache) Get(key []byte, t Touch, now time.Time) (*Answer, Fill) {
	hit := len(c.hits) > 0 && c.hits[c.i%len(c.hits)]%2 == 1
	c.i++
	if hit {
		return c.ans, nil
	}
	f := &fakeFill{}
	c.fills = append(c.fills, f)
	return nil, f
}

type fakeFill struct{ done, abandoned int }

func (f *fakeFill) Done(*Answer) { f.done++ }
func (f *fakeFill) Abandon()     { f.abandoned++ }

// fakeClassifier: SELECT ... is an eligible read (by $1 when it has one), UPDATE a write, SET a
// taint, BEGIN a begin.
type fakeClassifier struct{}

func (fakeClassifier) Classify(text []byte) Class {
	switch {
	case bytes.HasPrefix(text, []byte("SELECT")):
		c := Class{Kind: StmtRead, Watch: 0}
		if bytes.Contains(text, []byte("$1")) {
			c.KeyParam = 1
		} else {
			c.Touch = Touch{N: 1, Slots: [MaxTouchKeys]uint32{uint32(maphash.Bytes(digestSeed, text))}}
		}
		return c
	case bytes.HasPrefix(text, []byte("UPDATE")):
		return Class{Kind: StmtWrite, Touch: Touch{Table: true}}
	case bytes.HasPrefix(text, []byte("SET")):
		return Class{Kind: StmtTaint}
	case bytes.HasPrefix(text, []byte("BEGIN")):
		return Class{Kind: StmtBegin}
	}
	return Class{Kind: StmtOther, Watch: -1}
}
func (fakeClassifier) Taints(text []byte) bool { return bytes.HasPrefix(text, []byte("SET")) }
func (fakeClassifier) BindTouch(c *Class, bind BindMessage) (Touch, bool) {
	n := bind.NumParams()
	return Touch{N: 1}, n >= c.KeyParam
}

// FuzzCoalescing drives the client side of a coalescing session with arbitrary client traffic
// and cache answers, the server answering everything outstanding between reads when answer says
// so. Whatever happens: the server receives a subsequence of the client's messages, whole and
// unchanged; every answer the cache writes is whole messages ending in ReadyForQuery; the queue
// expects exactly the answers the forwarded messages bring; no fill is finished twice.
func FuzzCoalescing(f *testing.F) {
	enc := func(msgs ...pgproto3.FrontendMessage) []byte {
		var b []byte
		for _, m := range msgs {
			b, _ = m.Encode(b)
		}
		return b
	}
	poll := &pgproto3.Parse{Query: "SELECT status FROM celery_taskmeta WHERE task_id = $1"}
	bind := &pgproto3.Bind{Parameters: [][]byte{[]byte("k")}, ResultFormatCodes: []int16{1}}
	f.Add(enc(&pgproto3.Query{String: "SELECT status FROM celery_taskmeta WHERE task_id = 'k'"}, &pgproto3.Query{String: "BEGIN"},
		&pgproto3.Query{String: "SELECT status FROM celery_taskmeta WHERE task_id = 'k'"}), []byte{1, 0, 1}, []byte{1, 1, 1})
	f.Add(enc(poll, bind, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{},
		bind, &pgproto3.Execute{}, &pgproto3.Sync{}, poll, bind, &pgproto3.Flush{}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Sync{}),
		[]byte{0, 1, 1, 0}, []byte{1, 1, 0, 1})
	f.Add(enc(&pgproto3.Parse{Name: "s", Query: poll.Query}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{},
		&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("k")}}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Query{String: "UPDATE t SET x = 1"}, &pgproto3.Query{String: "SET search_path = x"}, &pgproto3.Terminate{}),
		[]byte{1}, []byte{1, 1, 1, 1})
	rd, _ := (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("status")}}}).Encode(nil)
	dr, _ := (&pgproto3.DataRow{Values: [][]byte{[]byte("PENDING")}}).Encode(nil)
	cc, _ := (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(nil)
	f.Fuzz(func(t *testing.T, client, hits, answer []byte) {
		cache := &fakeCache{hits: hits, ans: &Answer{Desc: rd, Rows: dr, Complete: cc, Columns: rd[headerLen:], NRows: 1}}
		obs := &checkingObserver{}
		srv := &Server{cfg: Config{Observer: obs, Cache: cache}, log: discardLogger}
		s := &Session{srv: srv, observer: obs}
		s.txStatus.Store('I')
		s.co.servable.Store(true)
		q := &queue{}
		fe, be := newFrontend(q, 4096, &s.end), newBackend(s, q)
		fe.co = newCoalescing(s, fe, cache)
		toClient := &sink{keep: true}
		s.s2c = newPump(nil, toClient, 64, 512)
		s.s2c.dstMu = new(sync.Mutex)
		upstream := &sink{keep: true}
		src := &chunker{data: bytes.Clone(client), spec: answer}
		c2s := newPump(src, upstream, 64, 512)
		for i := 0; ; i++ {
			n, err := src.Read(c2s.buf[c2s.end:])
			c2s.end += n
			if n > 0 {
				if perr := c2s.process(fe); perr != nil {
					var me *errMalformed
					var tl *errTooLarge
					if !errors.As(perr, &me) && !errors.As(perr, &tl) {
						t.Fatalf("unexpected error %T: %v", perr, perr)
					}
					break
				}
			}
			if err != nil {
				break
			}
			if len(answer) > 0 && answer[i%len(answer)]%3 == 0 && !fe.co.held.active {
				// The server has answered everything so far (as the backend would publish it).
				be.cons.refill()
				be.cons.popped += int64(len(be.cons.items) - be.cons.head)
				be.cons.head = len(be.cons.items)
				s.co.answered.Store(fe.prod.added)
			}
		}
		// What the server received is a subsequence of what the client sent (the last message
		// may be cut short: the client's stream ended inside a message that streams through).
		sent, _ := splitMessages(t, client, true)
		got, cut := splitMessages(t, upstream.buf.Bytes(), true)
		j := 0
		for _, m := range got {
			for j < len(sent) && !bytes.Equal(sent[j], m) {
				j++
			}
			if j == len(sent) {
				t.Fatalf("the server received %q, which the client did not send (in this order)", m)
			}
			j++
		}
		// The queue expects one answer per forwarded message that brings one.
		want := int64(0)
		if len(cut) >= headerLen {
			got = append(got, cut) // a message passing through in pieces was queued whole
		}
		for _, m := range got {
			switch m[0] {
			case 'Q', 'P', 'B', 'D', 'E', 'C', 'S', 'F':
				want++
			}
		}
		if fe.prod.added != want {
			t.Fatalf("the queue expects %d answers for %d forwarded messages that bring one", fe.prod.added, want)
		}
		// The cache's answers are whole messages, each ending in ReadyForQuery.
		answers, _ := splitMessages(t, toClient.buf.Bytes(), false)
		if len(answers) > 0 && answers[len(answers)-1][0] != 'Z' {
			t.Fatalf("the cache's answers end with %q, not ReadyForQuery", answers[len(answers)-1][0])
		}
		for _, fl := range cache.fills {
			if fl.done+fl.abandoned > 1 {
				t.Fatal("a fill finished twice")
			}
		}
		abandonFills(fe, be)
	})
}

// splitMessages splits a stream of typed messages; a stream from the client may end in a
// partial or malformed message (the pump refuses it), one written by the proxy may not.
func splitMessages(t *testing.T, b []byte, lenient bool) (whole [][]byte, cut []byte) {
	for len(b) > 0 {
		if len(b) < headerLen || int(be32(b[1:])) < 4 || 1+int(be32(b[1:])) > len(b) {
			if !lenient {
				t.Fatalf("a partial message at the end: %q", b)
			}
			return whole, b
		}
		n := 1 + int(be32(b[1:]))
		whole = append(whole, b[:n])
		b = b[n:]
	}
	return whole, nil
}
