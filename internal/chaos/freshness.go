package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The freshness checker of coalesce/freshness_test.go, run against a proxy process: writers
// bump a version per key through the proxy in transactions and record when each commit was
// acknowledged; readers poll the keys through the proxy in several ways. A read must never
// return a version older than one acknowledged before the read was sent.

const freshKeys = 5

func freshKey(k int) string { return fmt.Sprintf("chaos-fresh-%d", k) }

type freshness struct {
	newest     [freshKeys]atomic.Int64 // the newest acknowledged version per key
	reads      atomic.Int64
	writes     atomic.Int64
	errors     tally
	mu         sync.Mutex
	violations int64
	first      string
}

type freshReader struct {
	name     string
	mode     pgx.QueryExecMode
	literal  bool // the key inlined in the text (psycopg2), else a $1 parameter
	inTx     bool // BEGIN; SELECT; ROLLBACK (SQLAlchemy)
	perPoll  bool // a new connection for every poll
	pauseMax time.Duration
}

var freshReaders = []freshReader{
	{name: "simple-literal", mode: pgx.QueryExecModeSimpleProtocol, literal: true},
	{name: "prepared", mode: pgx.QueryExecModeCacheStatement},
	{name: "tx-simple", mode: pgx.QueryExecModeSimpleProtocol, literal: true, inTx: true},
	{name: "per-poll-extended", mode: pgx.QueryExecModeExec, perPoll: true, pauseMax: 20 * time.Millisecond},
}

// setupFreshness resets the checker's rows (version 0) straight on the server.
func setupFreshness(ctx context.Context, e *Env) error {
	for k := range freshKeys {
		if err := e.exec(ctx, `DELETE FROM celery_taskmeta WHERE task_id = $1`, freshKey(k)); err != nil {
			return err
		}
		if err := e.exec(ctx, `INSERT INTO celery_taskmeta (id, task_id, status) VALUES ($1, $2, '0')`, -100-k, freshKey(k)); err != nil {
			return err
		}
	}
	return nil
}

// run runs one writer per key and the readers until ctx ends.
func (f *freshness) run(ctx context.Context, px *Proxy) {
	var wg sync.WaitGroup
	for k := range freshKeys {
		wg.Go(func() { f.writer(ctx, px, k) })
	}
	for _, rk := range freshReaders {
		wg.Go(func() { f.reader(ctx, px, rk) })
	}
	wg.Wait()
}

func (f *freshness) connect(ctx context.Context, px *Proxy, mode pgx.QueryExecMode) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(px.DSN("connect_timeout=10"))
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = mode
	return pgx.ConnectConfig(ctx, cfg)
}

func (f *freshness) failed(ctx context.Context, err error) {
	if ctx.Err() == nil {
		f.errors.add(Classify(err), errText(err))
		sleep(ctx, 100*time.Millisecond)
	}
}

// writer bumps key k's version in a transaction, alternating the protocol per key.
func (f *freshness) writer(ctx context.Context, px *Proxy, k int) {
	mode := pgx.QueryExecModeCacheStatement
	if k%2 == 1 {
		mode = pgx.QueryExecModeSimpleProtocol
	}
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for v := int64(1); ctx.Err() == nil; {
		var err error
		if c == nil {
			if c, err = f.connect(ctx, px, mode); err != nil {
				f.failed(ctx, err)
				continue
			}
		}
		err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE celery_taskmeta SET status = $1 WHERE task_id = $2`, strconv.FormatInt(v, 10), freshKey(k))
			return err
		})
		if err != nil {
			// A commit whose acknowledgement was lost may or may not have happened: the
			// next version is higher either way, and only acknowledged ones set the floor.
			f.failed(ctx, err)
			c.Close(context.Background())
			c = nil
			v++
			continue
		}
		f.newest[k].Store(v)
		f.writes.Add(1)
		v++
		sleep(ctx, time.Duration(rand.IntN(15))*time.Millisecond)
	}
}

func (f *freshness) reader(ctx context.Context, px *Proxy, rk freshReader) {
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		var err error
		if c == nil {
			if c, err = f.connect(ctx, px, rk.mode); err != nil {
				f.failed(ctx, err)
				continue
			}
		}
		k := rand.IntN(freshKeys)
		floor := f.newest[k].Load()
		got, err := pollVersion(ctx, c, k, rk)
		if err != nil {
			f.failed(ctx, err)
			c.Close(context.Background())
			c = nil
			continue
		}
		f.reads.Add(1)
		if got < floor {
			f.mu.Lock()
			f.violations++
			if f.first == "" {
				f.first = fmt.Sprintf("%s read version %d of %s after %d was acknowledged", rk.name, got, freshKey(k), floor)
			}
			f.mu.Unlock()
		}
		if rk.perPoll {
			c.Close(context.Background())
			c = nil
		}
		if rk.pauseMax > 0 {
			sleep(ctx, time.Duration(rand.Int64N(int64(rk.pauseMax))))
		}
	}
}

func pollVersion(ctx context.Context, c *pgx.Conn, k int, rk freshReader) (int64, error) {
	q, args := `SELECT status, result FROM celery_taskmeta WHERE task_id = $1`, []any{freshKey(k)}
	if rk.literal {
		q, args = `SELECT status, result FROM celery_taskmeta WHERE task_id = '`+freshKey(k)+`'`, nil
	}
	var status string
	var result []byte
	var err error
	if rk.inTx {
		err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, q, args...).Scan(&status, &result)
		})
	} else {
		err = c.QueryRow(ctx, q, args...).Scan(&status, &result)
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(status, 10, 64)
}
