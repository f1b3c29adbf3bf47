package coalesce

import (
	"strings"
	"testing"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

func TestClassify(t *testing.T) {
	long := "INSERT INTO celery_taskmeta (task_id) VALUES ('k0')" + strings.Repeat(", ('k')", 2000)
	c := New(Config{})
	cl := c.NewClassifier()
	tests := []struct {
		sql   string
		kind  proxy.StmtKind
		keys  int  // literal keys found (Touch.N) for reads and keyed writes
		param int  // the key's parameter
		table bool // a write to the whole table
		all   bool // a write to everything
	}{
		// Eligible reads: what Celery's SQLAlchemy backend, django-celery-results and pgx send.
		{sql: `SELECT celery_taskmeta.id, celery_taskmeta.task_id, celery_taskmeta.status FROM celery_taskmeta WHERE celery_taskmeta.task_id = 'b5517ae9-59ef-46e7-808b-1da17dab9721'`, kind: proxy.StmtRead, keys: 1},
		{sql: `SELECT "celery_taskmeta"."status" FROM "celery_taskmeta" WHERE "celery_taskmeta"."task_id" = E'x' LIMIT 1`, kind: proxy.StmtRead, keys: 1},
		{sql: `select status from celery_taskmeta where task_id = $1`, kind: proxy.StmtRead, param: 1},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = $1::varchar;`, kind: proxy.StmtRead, param: 1},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id IN ('a', 'b', 'c')`, kind: proxy.StmtRead, keys: 3},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = ANY($1)`, kind: proxy.StmtRead, param: 1},
		{sql: `SELECT date_done::timestamptz FROM celery_taskmeta WHERE (task_id = 'a')`, kind: proxy.StmtRead, keys: 1},
		{sql: `SELECT "django_celery_results_taskresult"."status" FROM "django_celery_results_taskresult" WHERE "django_celery_results_taskresult"."task_id" = 'x' LIMIT 21`, kind: proxy.StmtRead, keys: 1},
		// Watched, but not eligible: forwarded.
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id IN ('a','b','c','d','e')`, kind: proxy.StmtOther}, // > 4 keys
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = 'a' FOR UPDATE`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = 'a' FOR NO KEY UPDATE SKIP LOCKED`, kind: proxy.StmtOther},
		{sql: `SELECT status, now() FROM celery_taskmeta WHERE task_id = 'a'`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = lower('A')`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = 'a'; SELECT 1`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta JOIN other ON true WHERE task_id = 'a'`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta, other WHERE task_id = 'a'`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = (SELECT max(x) FROM other)`, kind: proxy.StmtOther},
		{sql: `SELECT status INTO copy FROM celery_taskmeta WHERE task_id = 'a'`, kind: proxy.StmtOther},
		{sql: `SELECT status FROM celery_taskmeta WHERE task_id = 'a' UNION SELECT 'x'`, kind: proxy.StmtOther},
		{sql: `WITH t AS (SELECT 1) SELECT status FROM celery_taskmeta WHERE task_id = 'a'`, kind: proxy.StmtWrite, table: true},
		{sql: `SELECT status FROM celery_taskmeta`, kind: proxy.StmtOther}, // no key
		{sql: `SELECT 1`, kind: proxy.StmtOther},
		// Transactions.
		{sql: `BEGIN`, kind: proxy.StmtBegin},
		{sql: `begin transaction isolation level read committed, read write`, kind: proxy.StmtBegin},
		{sql: `START TRANSACTION READ ONLY`, kind: proxy.StmtBegin},
		{sql: `BEGIN ISOLATION LEVEL REPEATABLE READ`, kind: proxy.StmtOther},
		{sql: `START TRANSACTION ISOLATION LEVEL SERIALIZABLE`, kind: proxy.StmtOther},
		{sql: `COMMIT`, kind: proxy.StmtOther},
		// Session state.
		{sql: `SET TIME ZONE 'UTC'`, kind: proxy.StmtOther},
		{sql: `SET SESSION timezone TO 'UTC'`, kind: proxy.StmtOther},
		{sql: `SET client_encoding = 'UTF8'`, kind: proxy.StmtOther},
		{sql: `SET application_name = 'worker'`, kind: proxy.StmtOther},
		{sql: `SET search_path = other`, kind: proxy.StmtTaint},
		{sql: `SET LOCAL search_path = other`, kind: proxy.StmtTaint},
		{sql: `SET ROLE app`, kind: proxy.StmtTaint},
		{sql: `SET SESSION AUTHORIZATION app`, kind: proxy.StmtTaint},
		{sql: `SET extra_float_digits = 3`, kind: proxy.StmtSetting},
		{sql: `set session EXTRA_FLOAT_DIGITS to -2`, kind: proxy.StmtSetting},
		{sql: `SET bytea_output = 'escape'`, kind: proxy.StmtSetting},
		{sql: `SET extra_float_digits = 3, 4`, kind: proxy.StmtTaint},
		{sql: `SET LOCAL extra_float_digits = 3`, kind: proxy.StmtTaint},
		{sql: `SET work_mem = '64MB'`, kind: proxy.StmtTaint},
		{sql: `RESET ALL`, kind: proxy.StmtTaint},
		{sql: `DISCARD ALL`, kind: proxy.StmtTaint},
		{sql: `SELECT set_config('search_path', 'x', false)`, kind: proxy.StmtTaint},
		// Writes.
		{sql: `UPDATE celery_taskmeta SET status='SUCCESS' WHERE celery_taskmeta.task_id = 'a'`, kind: proxy.StmtWrite, keys: 1},
		{sql: `UPDATE celery_taskmeta SET status = $1 WHERE task_id = $2`, kind: proxy.StmtWrite, param: 2, table: true},
		{sql: `INSERT INTO celery_taskmeta (task_id, status) VALUES ('a', 'PENDING')`, kind: proxy.StmtWrite, keys: 1},
		{sql: `INSERT INTO celery_taskmeta (task_id, status) VALUES ($1, $2)`, kind: proxy.StmtWrite, param: 1, table: true},
		{sql: `DELETE FROM celery_taskmeta WHERE task_id = 'a'`, kind: proxy.StmtWrite, keys: 1},
		{sql: `DELETE FROM celery_taskmeta WHERE date_done < now()`, kind: proxy.StmtWrite, table: true},
		{sql: `TRUNCATE celery_taskmeta`, kind: proxy.StmtWrite, table: true},
		{sql: `COPY celery_taskmeta FROM STDIN`, kind: proxy.StmtWrite, table: true},
		{sql: `ALTER TABLE celery_taskmeta ADD COLUMN x int`, kind: proxy.StmtWrite, table: true},
		{sql: `UPDATE other SET v = 1 FROM celery_taskmeta`, kind: proxy.StmtWrite, table: true},
		{sql: `UPDATE celery_taskmeta SET status = 'x' FROM celery_tasksetmeta WHERE celery_taskmeta.id = 1`, kind: proxy.StmtWrite, table: true},
		{sql: `CALL finish_task('a')`, kind: proxy.StmtWrite, all: true},
		{sql: `DO $$ BEGIN UPDATE celery_taskmeta SET status = 'x'; END $$`, kind: proxy.StmtWrite, all: true},
		{sql: `EXECUTE upd('a')`, kind: proxy.StmtWrite, all: true},
		{sql: `UPDATE other SET v = 1`, kind: proxy.StmtOther},
		{sql: long, kind: proxy.StmtWrite, all: true}, // too long to read token by token
		// Several statements in one Query: every write and change of state counts.
		{sql: `BEGIN; UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'a'; COMMIT`, kind: proxy.StmtWrite, keys: 1},
		{sql: `UPDATE celery_taskmeta SET status = 'x' WHERE task_id = 'a'; DELETE FROM celery_taskmeta WHERE task_id = 'b'`, kind: proxy.StmtWrite, all: true},
		{sql: `SELECT 1; SET search_path = x`, kind: proxy.StmtTaint},
		{sql: `SELECT 1; SET TIME ZONE 'UTC'; SELECT 2`, kind: proxy.StmtOther},
		{sql: `LOCK TABLE other`, kind: proxy.StmtOther},
	}
	for _, tc := range tests {
		got := cl.Classify([]byte(tc.sql))
		ok := got.Kind == tc.kind && got.KeyParam == tc.param && got.Touch.Table == tc.table && got.Touch.All == tc.all
		if tc.keys > 0 && int(got.Touch.N) != tc.keys {
			ok = false
		}
		if !ok {
			t.Errorf("%s\n\tgot  %+v\n\twant kind %d keys %d param %d table %v all %v", tc.sql, got, tc.kind, tc.keys, tc.param, tc.table, tc.all)
		}
		// Taints also covers settings that would only change the key: they are not followed
		// while coalescing is off.
		if taints := cl.Taints([]byte(tc.sql)); taints != (tc.kind == proxy.StmtTaint || tc.kind == proxy.StmtSetting) || got.Taint != (tc.kind == proxy.StmtTaint) {
			t.Errorf("%s: Taints = %v", tc.sql, taints)
		}
	}
}

// TestKeysShareSlotsAcrossForms: a write by literal and a read by (text or binary) parameter of
// the same key reach the same generation counter, or the write would not invalidate the read.
func TestKeysShareSlotsAcrossForms(t *testing.T) {
	c := New(Config{})
	cl := c.NewClassifier()
	write := cl.Classify([]byte(`UPDATE celery_taskmeta SET status = 'SUCCESS' WHERE task_id = 'b5517ae9-59ef-46e7-808b-1da17dab9721'`))
	read := cl.Classify([]byte(`SELECT status FROM celery_taskmeta WHERE task_id = $1`))
	uuid := []byte{0xb5, 0x51, 0x7a, 0xe9, 0x59, 0xef, 0x46, 0xe7, 0x80, 0x8b, 0x1d, 0xa1, 0x7d, 0xab, 0x97, 0x21}
	for _, p := range []struct {
		format int16
		value  []byte
	}{{0, []byte("b5517ae9-59ef-46e7-808b-1da17dab9721")}, {1, uuid}} {
		touch, ok := cl.BindTouch(&read, bindOf(p.format, p.value))
		if !ok || touch.N != 1 || touch.Slots[0] != write.Touch.Slots[0] || touch.Watch != write.Touch.Watch {
			t.Errorf("format %d: read touches %+v (%v), the write %+v", p.format, touch, ok, write.Touch)
		}
	}
}

// bindOf is a Bind body for the unnamed portal and statement with one parameter.
func bindOf(format int16, v []byte) proxy.BindMessage {
	b := []byte{0, 0, 0, 1, 0, byte(format), 0, 1}
	b = append(b, byte(len(v)>>24), byte(len(v)>>16), byte(len(v)>>8), byte(len(v)))
	b = append(b, v...)
	return append(b, 0, 0)
}
