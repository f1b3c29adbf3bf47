package coalesce

import (
	"testing"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// FuzzClassify reads arbitrary SQL and Bind parameters as the coalescing client side does:
// never a panic; a read depends on 1..MaxTouchKeys keys of one watched table (or on a
// parameter); Taints agrees with Classify; the same text always classifies the same.
//
//	go test -run='^$' -fuzz=FuzzClassify -fuzztime=5m ./coalesce/
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		`SELECT celery_taskmeta.status FROM celery_taskmeta WHERE celery_taskmeta.task_id = 'b5517ae9'`,
		`SELECT status FROM celery_taskmeta WHERE task_id = ANY($1)`,
		`SELECT status FROM celery_taskmeta WHERE task_id IN ('a', E'b\'', $$c$$, U&'d')`,
		`UPDATE celery_taskmeta SET status = $1 WHERE task_id = $2`,
		`INSERT INTO celery_taskmeta (task_id, status) VALUES ('a', 'b'), ('c', 'd')`,
		`WITH x AS (DELETE FROM celery_taskmeta RETURNING *) SELECT 1`,
		`BEGIN ISOLATION LEVEL READ COMMITTED`, `SET LOCAL TIME ZONE 'UTC'`, `SELECT set_config('a','b',true)`,
		`DO $$BEGIN END$$`, `SELECT status FROM "celery_taskmeta" WHERE "task_id" = 'x' FOR KEY SHARE`,
	} {
		f.Add(s, []byte("b5517ae9"), int16(0))
	}
	f.Add(`SELECT status FROM celery_taskmeta WHERE task_id = $1`, []byte("{a,\"b\",NULL}"), int16(1))
	c := New(Config{})
	f.Fuzz(func(t *testing.T, sql string, param []byte, format int16) {
		cl := c.NewClassifier()
		got := cl.Classify([]byte(sql))
		again := c.NewClassifier().Classify([]byte(sql))
		if got != again {
			t.Fatalf("%q classified %+v, then %+v", sql, got, again)
		}
		if got.Kind == proxy.StmtSetting && (got.Setting == "" || got.Taint) {
			t.Fatalf("%q: a setting %+v", sql, got)
		}
		if taints := cl.Taints([]byte(sql)); taints != (got.Taint || got.Kind == proxy.StmtSetting) || (got.Kind == proxy.StmtTaint) != (got.Taint && got.Kind != proxy.StmtWrite) {
			t.Fatalf("%q: Taints %v, Classify %+v", sql, taints, got)
		}
		switch got.Kind {
		case proxy.StmtRead:
			if got.Watch < 0 || got.Touch.Table || got.Touch.All || int(got.Touch.Watch) != got.Watch {
				t.Fatalf("%q: a read of %+v", sql, got)
			}
			if (got.KeyParam == 0) == (got.Touch.N == 0) || int(got.Touch.N) > proxy.MaxTouchKeys {
				t.Fatalf("%q: a read by %d literal keys and parameter %d", sql, got.Touch.N, got.KeyParam)
			}
		case proxy.StmtWrite:
			if !got.Touch.All && !got.Touch.Table && got.KeyParam == 0 && (got.Touch.N == 0 || int(got.Touch.N) > proxy.MaxTouchKeys) {
				t.Fatalf("%q: a write that touches nothing: %+v", sql, got)
			}
		}
		if got.KeyParam > 0 {
			b := []byte{0, 0, 0, 1, byte(format >> 8), byte(format), 0, 1, byte(len(param) >> 24), byte(len(param) >> 16), byte(len(param) >> 8), byte(len(param))}
			b = append(append(b, param...), 0, 0)
			if touch, ok := cl.BindTouch(&got, proxy.BindMessage(b)); ok && (touch.N == 0 || int(touch.N) > proxy.MaxTouchKeys) {
				t.Fatalf("%q with %q: BindTouch %+v", sql, param, touch)
			}
		}
	})
}
