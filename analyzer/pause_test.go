package analyzer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// scripted is one step of a scripted client: a connection opening, a statement, or a close.
type scripted struct {
	at   time.Duration // since the analyzer's epoch
	conn *proxy.ConnInfo
	kind byte // 'o' open, 's' statement, 'c' close
	text string
	dur  time.Duration
}

// poller scripts a client polling key for 6 s. Each round it opens a connection when perPoll
// (else it keeps one, or cycles through pool connections), waits sleep, runs setup statements
// of 1 ms with think ms of silence before each, then the poll, then (perPoll) a ROLLBACK and a
// close.
type poller struct {
	key       string
	perPoll   bool
	pool      int // persistent connections used in turn (default 1)
	sleep     time.Duration
	setup     int
	think     time.Duration
	reconnect time.Duration // perPoll: from the close to the next opening, beyond sleep
}

func (p poller) script(client int) []scripted {
	var out []scripted
	addr := fmt.Sprintf("10.0.0.%d:5000", client)
	var conns []*proxy.ConnInfo
	if !p.perPoll {
		for i := range max(1, p.pool) {
			c := &proxy.ConnInfo{ClientAddr: addr, ApplicationName: p.key}
			conns = append(conns, c)
			out = append(out, scripted{at: time.Duration(i) * time.Millisecond, conn: c, kind: 'o'})
		}
	}
	at := 10 * time.Millisecond
	for round := 0; at < 6*time.Second; round++ {
		at += p.sleep
		var c *proxy.ConnInfo
		if p.perPoll {
			at += p.reconnect
			c = &proxy.ConnInfo{ClientAddr: addr, ApplicationName: p.key}
			out = append(out, scripted{at: at, conn: c, kind: 'o'})
		} else {
			c = conns[round%len(conns)]
		}
		for range p.setup {
			at += p.think
			out = append(out, scripted{at: at, conn: c, kind: 's', text: "select current_schema()", dur: time.Millisecond})
			at += time.Millisecond
		}
		at += p.think
		out = append(out, scripted{at: at, conn: c, kind: 's', text: celeryLookup + "'" + p.key + "'", dur: time.Millisecond})
		at += time.Millisecond
		if p.perPoll {
			at += time.Millisecond
			out = append(out, scripted{at: at, conn: c, kind: 's', text: "ROLLBACK", dur: 200 * time.Microsecond})
			at += time.Millisecond
			out = append(out, scripted{at: at, conn: c, kind: 'c'})
		}
	}
	return out
}

// TestSpinIsNotWaiting checks that a spin loop is told by whether the poller waits between
// polls, not by how often it polls: a loop without sleep whose polls take 30 ms (a connection
// and a dozen statements each, on a busy machine) spins; one that sleeps 25 ms does not, over
// one connection, a connection per poll, or a pool of connections.
func TestSpinIsNotWaiting(t *testing.T) {
	cases := []struct {
		p        poller
		spinning bool
		waits    float64 // WaitsPct
	}{
		// 30 ms a poll: 9 statements, each after 2 ms of client work, then the poll.
		{poller{key: "slow-spin", setup: 9, think: 2 * time.Millisecond}, true, 0},
		{poller{key: "sleeper", sleep: 25 * time.Millisecond}, false, 100},
		{poller{key: "fast-spin", think: 4 * time.Millisecond}, true, 0},
		// A connection per poll (Celery outside a worker): 12 ms to reconnect and 8 statements.
		{poller{key: "churn-spin", perPoll: true, reconnect: 12 * time.Millisecond, setup: 8, think: 2 * time.Millisecond}, true, 0},
		{poller{key: "churn-sleeper", perPoll: true, sleep: 25 * time.Millisecond, reconnect: 3 * time.Millisecond, setup: 2, think: time.Millisecond}, false, 100},
		// Three pooled connections in turn, 25 ms of sleep between polls: each connection is
		// silent for 75 ms, of which the 25 ms since the key's previous poll count.
		{poller{key: "pool-sleeper", pool: 3, sleep: 25 * time.Millisecond}, false, 100},
		{poller{key: "pool-spin", pool: 3, setup: 4, think: 5 * time.Millisecond}, true, 0},
	}
	a := New(Config{})
	var steps []scripted
	for i, c := range cases {
		steps = append(steps, c.p.script(i+1)...)
	}
	slices.SortStableFunc(steps, func(x, y scripted) int { return int(x.at - y.at) })
	nextTick := time.Second
	for _, st := range steps {
		for ; nextTick <= st.at; nextTick += time.Second {
			a.Tick(a.epoch.Add(nextTick))
		}
		switch st.kind {
		case 'o':
			st.conn.OpenedAt = a.epoch.Add(st.at)
			a.ConnOpened(st.conn)
		case 's':
			ev := simpleEvent(st.text, a.epoch.Add(st.at))
			ev.Duration = st.dur
			a.Statements(st.conn, []proxy.Event{ev})
		case 'c':
			a.ConnClosed(st.conn, proxy.ConnStats{})
		}
	}
	a.Tick(a.epoch.Add(nextTick))
	byKey := map[string]KeyStat{}
	for _, k := range a.Snapshot().Keys {
		byKey[k.Key] = k
	}
	for _, c := range cases {
		k, ok := byKey[c.p.key]
		if !ok {
			t.Errorf("%s: not in the snapshot", c.p.key)
			continue
		}
		t.Logf("%-14s %4d polls, median gap %5.1f ms, waits %3.0f%%, storming %v, spinning %v", k.Key, k.Polls, k.MedianIntervalMs, k.WaitsPct, k.Storming, k.Spinning)
		if !k.Storming || k.Spinning != c.spinning || k.WaitsPct != c.waits {
			t.Errorf("%s: storming %v, spinning %v, waits %.0f%%; want storming, spinning %v, waits %.0f%% (median gap %.1f ms)",
				c.p.key, k.Storming, k.Spinning, k.WaitsPct, c.spinning, c.waits, k.MedianIntervalMs)
		}
		if k.MedianIntervalMs < 20 && !c.spinning {
			t.Errorf("%s: the case is wrong: a median gap of %.1f ms is a spin loop whatever the waits", c.p.key, k.MedianIntervalMs)
		}
	}
}

// TestWaitedBetweenConnections covers waited's cases one by one, in nanoseconds with a 20 ms
// threshold.
func TestWaitedBetweenConnections(t *testing.T) {
	const ms = int64(time.Millisecond)
	const long = 20 * ms
	clock := func(opened int64, stmts ...[2]int64) *pauseClock {
		c := newPauseClock(opened)
		for _, s := range stmts {
			c.statement(s[0], s[1], long)
		}
		return c
	}
	cases := []struct {
		name      string
		prev, cur *pauseClock
		same      bool
		from, to  int64
		want      bool
	}{
		{"same connection, short silence", nil, clock(0, [2]int64{0, 1 * ms}, [2]int64{15 * ms, 16 * ms}), true, 1 * ms, 15 * ms, false},
		{"same connection, long silence", nil, clock(0, [2]int64{0, 1 * ms}, [2]int64{22 * ms, 23 * ms}), true, 1 * ms, 22 * ms, true},
		{"same connection, long silence before the previous poll", nil,
			clock(0, [2]int64{0, 1 * ms}, [2]int64{40 * ms, 41 * ms}, [2]int64{45 * ms, 46 * ms}), true, 41 * ms, 45 * ms, false},
		{"a long silence straddling the previous poll counts from it", nil,
			clock(0, [2]int64{0, 1 * ms}, [2]int64{50 * ms, 51 * ms}), true, 35 * ms, 50 * ms, false},
		{"new connection, opened soon after the previous one's last statement",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{2 * ms, 3 * ms}), clock(10*ms, [2]int64{15 * ms, 16 * ms}), false, 1 * ms, 15 * ms, false},
		{"new connection, opened 25 ms after the previous one's last statement",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{2 * ms, 3 * ms}), clock(28*ms, [2]int64{30 * ms, 31 * ms}), false, 1 * ms, 30 * ms, true},
		{"new connection, silent 25 ms after opening",
			clock(0, [2]int64{0, 1 * ms}), clock(3*ms, [2]int64{28 * ms, 29 * ms}), false, 1 * ms, 28 * ms, true},
		{"previous connection silent 25 ms after its poll",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{26 * ms, 27 * ms}), clock(27*ms, [2]int64{28 * ms, 29 * ms}), false, 1 * ms, 28 * ms, true},
		{"an old pooled connection, idle since before the previous poll",
			clock(0, [2]int64{30 * ms, 31 * ms}), clock(0, [2]int64{0, 1 * ms}, [2]int64{55 * ms, 56 * ms}), false, 31 * ms, 55 * ms, true},
		{"an old pooled connection, busy until just before",
			clock(0, [2]int64{30 * ms, 31 * ms}), clock(0, [2]int64{0, 40 * ms}, [2]int64{45 * ms, 46 * ms}), false, 31 * ms, 45 * ms, false},
	}
	for _, c := range cases {
		prev := c.prev
		if c.same {
			prev = c.cur
		}
		if got := waited(prev, c.cur, c.from, c.to, long); got != c.want {
			t.Errorf("%s: waited %v, want %v", c.name, got, c.want)
		}
	}
}
