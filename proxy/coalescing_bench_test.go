package proxy

import (
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// coalescingBenchSession is benchSession with a cache: the session is idle and servable.
func coalescingBenchSession(cache *fakeCache, obs Observer) (*pump, *frontend, *pump, *backend, *sink) {
	c2s, front, s2c, back := benchSession(obs)
	s := back.s
	s.srv.cfg.Cache = cache
	back.cache = cache
	s.txStatus.Store('I')
	s.co.servable.Store(true)
	front.co = newCoalescing(s, front, cache)
	toClient := &sink{}
	s2c.dst, s2c.dstMu = toClient, new(sync.Mutex)
	s.s2c = s2c
	return c2s, front, s2c, back, toClient
}

// BenchmarkRoundTripCacheOff is BenchmarkRoundTrip with a cache configured but switched off (the
// TUI's default): what the coalescing plumbing costs every query when it serves nothing.
func BenchmarkRoundTripCacheOff(b *testing.B) {
	obs := &countingObserver{}
	c2s, front, s2c, back, _ := coalescingBenchSession(&fakeCache{off: true}, obs)
	runRoundTrips(b, obs, c2s, front, s2c, back)
}

// BenchmarkCachedPoll answers pgx's cached-statement poll (Bind/Describe/Execute/Sync) from the
// cache: holding the batch, building the key, the lookup, writing the answer, the event.
func BenchmarkCachedPoll(b *testing.B) {
	client, _ := extendedRoundTrip()
	rd, _ := (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("status"), DataTypeOID: 25}, {Name: []byte("result"), DataTypeOID: 17, Format: 1}}}).Encode(nil)
	dr, _ := (&pgproto3.DataRow{Values: [][]byte{[]byte("PENDING"), nil}}).Encode(nil)
	cc, _ := (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(nil)
	cache := &fakeCache{hits: []byte{1}, ans: &Answer{Desc: rd, Rows: dr, Complete: cc, Columns: rd[headerLen:], NRows: 1}}
	obs := &countingObserver{}
	c2s, front, _, _, toClient := coalescingBenchSession(cache, obs)
	front.stmts["stmtcache_1"].cls = stmtClass{done: true, Class: Class{Kind: StmtRead, KeyParam: 1}}
	b.ReportAllocs()
	b.SetBytes(int64(len(client)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c2s.end = copy(c2s.buf, client)
		if err := c2s.process(front); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if obs.n.Load() != int64(b.N) || toClient.writes != b.N || front.prod.added != 0 {
		b.Fatalf("%d polls: %d events, %d answers written, %d forwarded", b.N, obs.n.Load(), toClient.writes, front.prod.added)
	}
}
