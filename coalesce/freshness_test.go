package coalesce_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgpollwatch/pgpollwatch/coalesce"
	"github.com/pgpollwatch/pgpollwatch/internal/pgtest"
)

// The freshness checker. Writers bump a version per key in transactions; readers poll the
// same keys through the coalescing proxy over both protocols, on persistent and per-poll
// connections, inside and outside transactions. The guarantee under test:
//
//   - writes through the proxy: every read returns a version at least as new as the newest one
//     committed (acknowledged to its writer) before the read was sent;
//   - writes straight to the server: a read is never staler than the TTL, i.e. no version newer
//     than the one it returned had been acknowledged more than a TTL before the read was sent.

const freshKeys = 5

// freshnessDuration is how long each run lasts: 10 s, or PGPOLLWATCH_FRESHNESS_SECONDS.
func freshnessDuration(t *testing.T) time.Duration {
	if s := os.Getenv("PGPOLLWATCH_FRESHNESS_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PGPOLLWATCH_FRESHNESS_SECONDS=%q: %v", s, err)
		}
		return time.Duration(n) * time.Second
	}
	return 10 * time.Second
}

// history records, per key, when each version's commit was acknowledged.
type history struct {
	mu      sync.Mutex
	acked   [freshKeys][]time.Time // acked[k][v-1]: when version v was acknowledged
	newest  [freshKeys]atomic.Int64
	started time.Time
}

func (h *history) commit(k int, v int64, at time.Time) {
	h.mu.Lock()
	for int64(len(h.acked[k])) < v {
		h.acked[k] = append(h.acked[k], at)
	}
	h.mu.Unlock()
	h.newest[k].Store(v)
}

// staleness is how long before sent a version newer than got had been acknowledged (0: none).
func (h *history) staleness(k int, got int64, sent time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if got >= int64(len(h.acked[k])) {
		return 0
	}
	if first := h.acked[k][got]; first.Before(sent) { // version got+1
		return sent.Sub(first)
	}
	return 0
}

type readerKind struct {
	name       string
	mode       pgx.QueryExecMode
	perPoll    bool // a new connection for every poll (Celery's non-worker processes)
	inTx       bool // BEGIN; SELECT; ROLLBACK (SQLAlchemy with psycopg2)
	simpleText bool // the key as a literal in the text
}

var readerKinds = []readerKind{
	{name: "simple-literal", mode: pgx.QueryExecModeSimpleProtocol, simpleText: true},
	{name: "prepared", mode: pgx.QueryExecModeCacheStatement},
	{name: "unnamed-parse", mode: pgx.QueryExecModeExec},
	{name: "tx-simple", mode: pgx.QueryExecModeSimpleProtocol, inTx: true, simpleText: true},
	{name: "tx-prepared", mode: pgx.QueryExecModeCacheStatement, inTx: true},
	{name: "per-poll-simple", mode: pgx.QueryExecModeSimpleProtocol, perPoll: true, simpleText: true},
	{name: "per-poll-extended", mode: pgx.QueryExecModeExec, perPoll: true},
}

type freshResult struct {
	reads, violations int64
	maxStale          time.Duration
	firstViolation    string
}

// runFreshness runs writers (through the proxy or straight to the server) and readers for d.
func runFreshness(t *testing.T, e *env, writersVia bool, d time.Duration) freshResult {
	t.Helper()
	var rows string
	for k := 0; k < freshKeys; k++ {
		rows += fmt.Sprintf("%s(%d, 'fresh-%d', '0')", map[bool]string{true: ", ", false: ""}[k > 0], k+1, k)
	}
	e.super("INSERT INTO celery_taskmeta (id, task_id, status) VALUES " + rows)
	h := &history{started: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)

	// One writer per key, so versions rise monotonically; they alternate the protocol, write
	// in explicit transactions, and sometimes write two keys in one transaction.
	for k := 0; k < freshKeys; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mode := pgx.QueryExecModeCacheStatement
			if k%2 == 1 {
				mode = pgx.QueryExecModeSimpleProtocol
			}
			c, err := e.rawConnect(writersVia, mode)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(context.Background())
			for v := int64(1); ctx.Err() == nil; v++ {
				tx, err := c.Begin(ctx)
				if err != nil {
					break
				}
				_, err = tx.Exec(ctx, `UPDATE celery_taskmeta SET status = $1 WHERE task_id = $2`, strconv.FormatInt(v, 10), fmt.Sprintf("fresh-%d", k))
				if err == nil && v%7 == 0 {
					_, err = tx.Exec(ctx, `SELECT pg_sleep(0.002)`) // hold the write open a moment
				}
				if err != nil {
					tx.Rollback(context.Background())
					break
				}
				if err := tx.Commit(ctx); err != nil {
					break
				}
				h.commit(k, v, time.Now())
				time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
			}
		}()
	}

	var res freshResult
	var mu sync.Mutex
	for _, rk := range readerKinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *pgx.Conn
			for ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = e.rawConnect(true, rk.mode); err != nil {
						if ctx.Err() == nil {
							errs <- fmt.Errorf("%s: %w", rk.name, err)
						}
						return
					}
				}
				k := rand.IntN(freshKeys)
				floor := h.newest[k].Load()
				sent := time.Now()
				got, err := pollVersion(ctx, c, k, rk)
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("%s: %w", rk.name, err)
					}
					break
				}
				stale := h.staleness(k, got, sent)
				mu.Lock()
				res.reads++
				res.maxStale = max(res.maxStale, stale)
				if got < floor {
					res.violations++
					if res.firstViolation == "" {
						res.firstViolation = fmt.Sprintf("%s read version %d of key %d, but %d was committed before the read was sent", rk.name, got, k, floor)
					}
				}
				mu.Unlock()
				if rk.perPoll {
					c.Close(context.Background())
					c = nil
				}
			}
			if c != nil {
				c.Close(context.Background())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return res
}

func pollVersion(ctx context.Context, c *pgx.Conn, k int, rk readerKind) (int64, error) {
	key := fmt.Sprintf("fresh-%d", k)
	var status string
	var err error
	q := pollSQL
	var args []any
	if rk.simpleText {
		q = `SELECT status, result FROM celery_taskmeta WHERE task_id = '` + key + `'`
	} else {
		args = []any{key}
	}
	if rk.inTx {
		tx, terr := c.Begin(ctx)
		if terr != nil {
			return 0, terr
		}
		var result []byte
		err = tx.QueryRow(ctx, q, args...).Scan(&status, &result)
		if rerr := tx.Rollback(ctx); err == nil {
			err = rerr
		}
	} else {
		var result []byte
		err = c.QueryRow(ctx, q, args...).Scan(&status, &result)
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(status, 10, 64)
}

// rawConnect is connect without the test cleanup (readers open and close connections).
func (e *env) rawConnect(via bool, mode pgx.QueryExecMode) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.dsn(pgtest.TrustUser, via))
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

func TestFreshnessWritesThroughProxy(t *testing.T) {
	e := newEnv(t, coalesce.Config{TTL: 500 * time.Millisecond})
	res := runFreshness(t, e, true, freshnessDuration(t))
	st := e.cache.Stats()
	t.Logf("%d reads, %d stale; cache: hits %d misses %d fills %d discarded fills %d invalidations %d bypassed %d; max staleness %v",
		res.reads, res.violations, st.Hits, st.Misses, st.Fills, st.DiscardedFills, st.Invalidations, st.Bypassed, res.maxStale)
	if res.violations > 0 {
		t.Fatalf("%d of %d reads older than a committed write; first: %s", res.violations, res.reads, res.firstViolation)
	}
	// The checker proves something only if the cache answered many reads and writes raced with
	// fills. Absolute counts, not a share of the reads: the writers write on a clock, so on a
	// slow host (4x fewer reads) a smaller share of reads falls between two invalidations.
	// Typically 62,000 hits and 7,600 invalidations; 921 and 2,508 with -race on one core.
	if st.Hits < 250 || st.Invalidations < 25 {
		t.Fatalf("the cache answered %d of %d reads with %d invalidations: too few to test freshness", st.Hits, res.reads, st.Invalidations)
	}
}

func TestFreshnessWritesBypassingProxyBoundedByTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	e := newEnv(t, coalesce.Config{TTL: ttl})
	res := runFreshness(t, e, false, freshnessDuration(t))
	st := e.cache.Stats()
	t.Logf("%d reads, %d older than a commit (allowed: the writes bypass the proxy); max staleness %v (TTL %v); hits %d",
		res.reads, res.violations, res.maxStale, ttl, st.Hits)
	if res.maxStale > ttl {
		t.Fatalf("a read was %v stale, over the TTL of %v", res.maxStale, ttl)
	}
	if st.Hits < res.reads/5 {
		t.Fatalf("the cache answered %d of %d reads: too few to test staleness", st.Hits, res.reads)
	}
	if st.Invalidations != 0 {
		t.Fatalf("%d invalidations though no write passed through the proxy", st.Invalidations)
	}
}
