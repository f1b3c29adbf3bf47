package analyzer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// scripted is one step of a scripted client: a connection opening, a statement, or a close.
type scripted struct {
	at   time.Duration // since the analyzer's epoch
	conn *proxy.ConnInfo
	kind byte // 'o' open, 's' statement, 'x' exchange (a round trip without a statement), 'c' close
	text string
	dur  time.Duration
}

// poller scripts a client polling for 6 s. Each round it visits its keys in turn (one key
// unless keys > 1: key-0, key-1, ...); for each poll it opens a connection when perPoll (else
// it keeps one, or cycles through pool connections), waits sleep, runs setup statements of
// 1 ms with think ms of silence before each, then the poll, then (perPoll) a ROLLBACK and a
// close. After each round it waits roundSleep.
type poller struct {
	key        string
	keys       int
	app        string // the client identity's application_name; default key
	addr       string // and address; default one per client
	perPoll    bool
	pool       int // persistent connections used in turn (default 1)
	sleep      time.Duration
	roundSleep time.Duration
	setup      int
	think      time.Duration
	reconnect  time.Duration // perPoll: from the close to the next opening, beyond sleep
	offset     time.Duration // when it starts
	length     time.Duration // how long it polls; default 6 s
	// A busy host's scheduler: after every stallEvery polls the client stalls for stall.
	stallEvery int
	stall      time.Duration
	// prepare is a round trip that runs no statement before each poll, as pgx prepares each
	// statement on a new connection (Parse/Describe/Sync): an Exchange event.
	prepare time.Duration
}

func (p poller) keyNames() []string {
	if p.keys <= 1 {
		return []string{p.key}
	}
	out := make([]string, p.keys)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", p.key, i)
	}
	return out
}

func (p poller) script(client int) []scripted {
	var out []scripted
	addr, app := p.addr, p.app
	if addr == "" {
		addr = fmt.Sprintf("10.0.0.%d:5000", client)
	}
	if app == "" {
		app = p.key
	}
	var conns []*proxy.ConnInfo
	if !p.perPoll {
		for i := range max(1, p.pool) {
			c := &proxy.ConnInfo{ClientAddr: addr, ApplicationName: app}
			conns = append(conns, c)
			out = append(out, scripted{at: p.offset + time.Duration(i)*time.Millisecond, conn: c, kind: 'o'})
		}
	}
	length := p.length
	if length == 0 {
		length = 6 * time.Second
	}
	at, n := p.offset+10*time.Millisecond, 0
	for at < p.offset+length {
		for _, key := range p.keyNames() {
			if at >= p.offset+length {
				break
			}
			at += p.sleep
			var c *proxy.ConnInfo
			if p.perPoll {
				at += p.reconnect
				c = &proxy.ConnInfo{ClientAddr: addr, ApplicationName: app}
				out = append(out, scripted{at: at, conn: c, kind: 'o'})
			} else {
				c = conns[n%len(conns)]
			}
			n++
			if p.stallEvery > 0 && n%p.stallEvery == 0 {
				at += p.stall
			}
			for range p.setup {
				at += p.think
				out = append(out, scripted{at: at, conn: c, kind: 's', text: "select current_schema()", dur: time.Millisecond})
				at += time.Millisecond
			}
			if p.prepare > 0 {
				out = append(out, scripted{at: at, conn: c, kind: 'x', dur: p.prepare})
				at += p.prepare
			}
			at += p.think
			out = append(out, scripted{at: at, conn: c, kind: 's', text: celeryLookup + "'" + key + "'", dur: time.Millisecond})
			at += time.Millisecond
			if p.perPoll {
				at += time.Millisecond
				out = append(out, scripted{at: at, conn: c, kind: 's', text: "ROLLBACK", dur: 200 * time.Microsecond})
				at += time.Millisecond
				out = append(out, scripted{at: at, conn: c, kind: 'c'})
			}
		}
		at += p.roundSleep
	}
	return out
}

// busyClient scripts a client that only runs ordinary queries on its one persistent
// connection: a 2 ms query after every 3 ms of think time, for 6 s.
func busyClient(addr, app string) []scripted {
	c := &proxy.ConnInfo{ClientAddr: addr, ApplicationName: app}
	out := []scripted{{at: 0, conn: c, kind: 'o'}}
	for at := 5 * time.Millisecond; at < 6*time.Second; at += 5 * time.Millisecond {
		out = append(out, scripted{at: at, conn: c, kind: 's', text: "select count(*) from pg_class", dur: 2 * time.Millisecond})
	}
	return out
}

// play feeds the steps to a, in time order, ticking every second of the script. a's clock
// follows the script, and then reads its end: snapshots see the rates of its last seconds.
func play(a *Analyzer, steps []scripted) {
	slices.SortStableFunc(steps, func(x, y scripted) int { return int(x.at - y.at) })
	var now time.Duration
	a.now = func() time.Time { return a.epoch.Add(now) }
	nextTick := time.Second
	for _, st := range steps {
		now = st.at
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
		case 'x':
			a.Statements(st.conn, []proxy.Event{{Protocol: proxy.Extended, Start: a.epoch.Add(st.at), Duration: st.dur, Exchange: true}})
		case 'c':
			a.ConnClosed(st.conn, proxy.ConnStats{})
		}
	}
	a.Tick(a.epoch.Add(nextTick))
	now = nextTick
}

// TestSpinIsNotWaiting checks that a spin loop is told by whether the poller waits between
// polls, not by how often it polls nor by how many keys it visits: a loop without sleep whose
// polls take 30 ms (a connection and a dozen statements each, on a busy machine) spins; one
// that sleeps 25 ms does not, over one connection, a connection per poll, or a pool of
// connections; a loop over ten keys that never sleeps spins on every key, though ten polls of
// other keys (on other connections) lie between two polls of one.
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
		// GroupResult.completed_count() over five subtasks, a connection per poll: between two
		// polls of one key lie four connections of the same loop, 60 ms in all.
		{poller{key: "rr-churn-spin", keys: 5, perPoll: true, reconnect: 4 * time.Millisecond, setup: 2, think: time.Millisecond}, true, 0},
		// The same loop on one persistent connection, and with a sleep after every round.
		{poller{key: "rr-spin", keys: 10, setup: 1, think: time.Millisecond}, true, 0},
		{poller{key: "rr-churn-rounds", keys: 3, perPoll: true, reconnect: 2 * time.Millisecond, roundSleep: 30 * time.Millisecond}, false, 100},
		// pgx, a connection per poll: each new connection prepares the poll first, a round
		// trip of 25 ms on a busy server that runs no statement but is no wait either.
		{poller{key: "rr-pgx-churn-spin", keys: 3, perPoll: true, reconnect: 2 * time.Millisecond, prepare: 25 * time.Millisecond}, true, 0},
	}
	a := New(Config{})
	var steps []scripted
	for i, c := range cases {
		steps = append(steps, c.p.script(i+1)...)
	}
	play(a, steps)
	snap := a.Snapshot()
	stmts := 0
	for _, st := range steps {
		if st.kind == 's' {
			stmts++
		}
	}
	if snap.Totals.Queries != int64(stmts) {
		t.Errorf("%d queries counted, %d sent: exchanges are no queries", snap.Totals.Queries, stmts)
	}
	byKey := map[string]KeyStat{}
	for _, k := range snap.Keys {
		byKey[k.Key] = k
	}
	for _, c := range cases {
		for _, key := range c.p.keyNames() {
			k, ok := byKey[key]
			if !ok {
				t.Errorf("%s: not in the snapshot", key)
				continue
			}
			t.Logf("%-18s %4d polls, median gap %5.1f ms, waits %3.0f%%, storming %v, spinning %v", k.Key, k.Polls, k.MedianIntervalMs, k.WaitsPct, k.Storming, k.Spinning)
			if !k.Storming || k.Spinning != c.spinning || k.WaitsPct != c.waits {
				t.Errorf("%s: storming %v, spinning %v, waits %.0f%%; want storming, spinning %v, waits %.0f%% (median gap %.1f ms)",
					key, k.Storming, k.Spinning, k.WaitsPct, c.spinning, c.waits, k.MedianIntervalMs)
			}
			if k.MedianIntervalMs < 20 && !c.spinning {
				t.Errorf("%s: the case is wrong: a median gap of %.1f ms is a spin loop whatever the waits", key, k.MedianIntervalMs)
			}
		}
	}
}

// TestWaitsOfSharedIdentities checks the cases where the client identity holds more than the
// poller: other processes with the same address and name that only run ordinary queries, and
// two processes that each poll their own key politely, a connection per poll.
func TestWaitsOfSharedIdentities(t *testing.T) {
	const addr, app = "10.0.1.1:5000", "web"
	a := New(Config{})
	var steps []scripted
	for range 20 {
		steps = append(steps, busyClient(addr, app)...)
	}
	// On its own connection, and on a connection per poll: either way the busy processes'
	// ordinary queries do not hide its sleep.
	steps = append(steps, poller{key: "busy-host-persistent", app: app, addr: addr, sleep: 40 * time.Millisecond}.script(0)...)
	steps = append(steps, poller{key: "busy-host-churn", app: app, addr: addr, perPoll: true, sleep: 40 * time.Millisecond, reconnect: 2 * time.Millisecond}.script(0)...)
	// Two processes of one identity, each asking for its own task every 80 ms.
	for i, off := range []time.Duration{0, 37 * time.Millisecond} {
		steps = append(steps, poller{key: fmt.Sprintf("twin-%d", i), app: "twins", addr: addr, perPoll: true,
			sleep: 80 * time.Millisecond, reconnect: 2 * time.Millisecond, setup: 2, think: time.Millisecond, offset: off}.script(0)...)
	}
	play(a, steps)
	s := a.Snapshot()
	for _, k := range s.Keys {
		t.Logf("%-22s %4d polls, median gap %5.1f ms, waits %3.0f%%, storming %v, spinning %v", k.Key, k.Polls, k.MedianIntervalMs, k.WaitsPct, k.Storming, k.Spinning)
		if k.Spinning || k.WaitsPct != 100 {
			t.Errorf("%s: spinning %v, waits %.0f%%; want no spin and a wait in every gap", k.Key, k.Spinning, k.WaitsPct)
		}
	}
	if len(s.Keys) != 4 {
		t.Errorf("%d keys, want 4", len(s.Keys))
	}
	for _, p := range s.Pollers {
		t.Logf("poller %s: %d polls, %d keys, waits %.0f%%, overlap %.0f%%", p.ApplicationName, p.Polls, p.Keys, p.WaitsPct, p.OverlapPct)
		if p.ApplicationName == "twins" && p.OverlapPct != 0 {
			// Their connections (4 ms every 80 ms, 37 ms apart) never overlap: the evidence
			// says nothing here, and must not invent an overlap.
			t.Errorf("twins: overlap %.0f%%, want 0", p.OverlapPct)
		}
	}
}

// TestSweepStorms checks the poller storm: a loop over 2,000 keys that never waits polls each
// key under the per-key storm rate, yet it is a storm of its poller and a spin loop; a loop
// over the same keys that sleeps after each round is a storm (it polls fast enough) but no
// spin loop; one that sleeps between polls stays under the sweep rate.
func TestSweepStorms(t *testing.T) {
	a := New(Config{})
	var steps []scripted
	// Both stall for 25 ms every 300 polls, as a client on a busy host does: in the spinner's
	// 2 s gaps between two polls of a key that is no wait, and in the polite loop's the stalls
	// after its sleep do not hide the sleep.
	steps = append(steps, poller{key: "spin", keys: 2000, addr: "10.0.2.1:1", app: "spinner", length: 12 * time.Second,
		stallEvery: 300, stall: 25 * time.Millisecond}.script(0)...)
	steps = append(steps, poller{key: "rounds", keys: 400, addr: "10.0.2.2:1", app: "rounds", roundSleep: 200 * time.Millisecond, length: 12 * time.Second,
		stallEvery: 300, stall: 25 * time.Millisecond}.script(0)...)
	// GroupResult.completed_count() over ten subtasks, a connection per poll, on a busy host:
	// 40 ms a poll, 2.5 polls/s per key and 25 in all, under both storm rates, but it never
	// waits: a storm of its poller, and each of its keys spins.
	steps = append(steps, poller{key: "slow", keys: 10, addr: "10.0.2.5:1", app: "slow-spinner", perPoll: true, reconnect: 5 * time.Millisecond,
		setup: 8, think: 3 * time.Millisecond, length: 12 * time.Second}.script(0)...)
	// A worker that looks each task up once, 300 a second: no key is asked again.
	steps = append(steps, poller{key: "worker", keys: 4000, addr: "10.0.2.4:1", app: "worker", sleep: 2 * time.Millisecond, length: 12 * time.Second}.script(0)...)
	steps = append(steps, poller{key: "polite", keys: 400, addr: "10.0.2.3:1", app: "polite", sleep: 25 * time.Millisecond, length: 12 * time.Second}.script(0)...)
	play(a, steps)
	s := a.Snapshot()
	byApp := map[string]PollerStat{}
	for _, p := range s.Pollers {
		byApp[p.ApplicationName] = p
		t.Logf("poller %-8s %6d polls, %4.0f/s, %4d keys, key gap %7.1f ms, waits %3.0f%%, storming %v, spinning %v",
			p.ApplicationName, p.Polls, p.PollQPS10, p.Keys, p.KeyGapMs, p.WaitsPct, p.Storming, p.Spinning)
	}
	slowKeys := 0
	for _, k := range s.Keys {
		if k.Storming {
			t.Errorf("key %s storms at %.0f/s: the case is wrong, a sweep polls each key seldom", k.Key, k.QPS10)
		}
		if strings.HasPrefix(k.Key, "slow-") {
			slowKeys++
			if !k.Spinning {
				t.Errorf("key %s of the slow spinner: not spinning (waits %.0f%%)", k.Key, k.WaitsPct)
			}
		} else if k.Spinning != strings.HasPrefix(k.Key, "spin-") {
			t.Errorf("key %s: spinning %v", k.Key, k.Spinning)
		}
	}
	if slowKeys != 10 {
		t.Errorf("%d keys of the slow spinner in the snapshot, want 10", slowKeys)
	}
	want := map[string][2]bool{"spinner": {true, true}, "rounds": {true, false}, "polite": {false, false}, "worker": {false, false}, "slow-spinner": {true, true}}
	for app, w := range want {
		p := byApp[app]
		if p.Storming != w[0] || p.Spinning != w[1] {
			t.Errorf("%s: storming %v, spinning %v; want %v, %v", app, p.Storming, p.Spinning, w[0], w[1])
		}
	}
	if p := byApp["spinner"]; p.WaitsPct != 0 || p.Keys != 2000 {
		t.Errorf("spinner: waits %.0f%% over %d keys, want 0%% over 2000", p.WaitsPct, p.Keys)
	}
	if p := byApp["rounds"]; p.WaitsPct != 100 {
		t.Errorf("rounds: waits %.0f%%, want 100%%", p.WaitsPct)
	}
	var storms []Storm
	for _, st := range s.Storms {
		if st.Kind == "poller" {
			storms = append(storms, st)
		}
	}
	spins := 0
	for _, st := range storms {
		if st.Spin {
			spins++
		}
		if !st.Active || st.Keys < 2 {
			t.Errorf("poller storm %+v", st)
		}
	}
	if len(storms) != 3 || spins != 2 {
		t.Fatalf("poller storms: %+v", storms)
	}
	var spin *Finding
	for i, f := range s.Findings {
		if f.Kind == "spin-poll" {
			spin = &s.Findings[i]
		}
	}
	if spin == nil || len(s.Findings) < 2 {
		t.Fatalf("findings: %+v", s.Findings)
	}
	t.Logf("finding: %s\n  %v", spin.Summary, spin.Evidence)
}

// TestWaited covers waitedIn's cases one by one, in nanoseconds with a 20 ms threshold. One
// poll in the gap (the one that ends it) unless a case says otherwise.
func TestWaited(t *testing.T) {
	const ms = int64(time.Millisecond)
	const long = 20 * ms
	clock := func(opened int64, stmts ...[2]int64) *silences {
		c := newPauseClock(opened)
		for _, s := range stmts {
			c.statement(s[0], s[1], long)
		}
		return &c.long
	}
	// activity feeds a poller the busy spans of its polling connections, in the order their
	// ends were seen.
	type span struct {
		conn     int
		from, to int64
	}
	activity := func(spans ...span) *silences {
		p := &pollerClock{}
		conns := map[int]*pauseClock{}
		for _, s := range spans {
			if conns[s.conn] == nil {
				conns[s.conn] = newPauseClock(0)
			}
			p.busy(conns[s.conn], s.from, s.to, long)
		}
		return &p.long
	}
	one := waitMark{polls: 1}
	cases := []struct {
		name     string
		s        *silences
		in       waitMark
		from, to int64
		want     bool
	}{
		{"same connection, short silence", clock(0, [2]int64{0, 1 * ms}, [2]int64{15 * ms, 16 * ms}), one, 1 * ms, 15 * ms, false},
		{"same connection, long silence", clock(0, [2]int64{0, 1 * ms}, [2]int64{22 * ms, 23 * ms}), one, 1 * ms, 22 * ms, true},
		{"same connection, long silence before the previous poll",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{40 * ms, 41 * ms}, [2]int64{45 * ms, 46 * ms}), one, 41 * ms, 45 * ms, false},
		{"a long silence straddling the previous poll counts from it",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{50 * ms, 51 * ms}), one, 35 * ms, 50 * ms, false},
		{"new connection, opened soon after the previous one's last statement",
			activity(span{1, 0, 3 * ms}, span{2, 10 * ms, 16 * ms}), one, 1 * ms, 15 * ms, false},
		{"new connection, opened 25 ms after the previous one's last statement",
			activity(span{1, 0, 3 * ms}, span{2, 28 * ms, 31 * ms}), one, 1 * ms, 30 * ms, true},
		{"round robin: the poller polled other keys on other connections in between",
			activity(span{1, 0, 3 * ms}, span{2, 5 * ms, 12 * ms}, span{3, 14 * ms, 22 * ms}, span{4, 24 * ms, 30 * ms}), waitMark{polls: 3}, 3 * ms, 24 * ms, false},
		{"round robin with a 25 ms sleep after the round",
			activity(span{1, 0, 3 * ms}, span{2, 5 * ms, 12 * ms}, span{3, 14 * ms, 22 * ms}, span{4, 47 * ms, 50 * ms}), waitMark{polls: 3, silences: 1}, 3 * ms, 47 * ms, true},
		{"a pooled connection, idle since before the previous poll",
			activity(span{2, 0, 1 * ms}, span{1, 30 * ms, 31 * ms}, span{2, 55 * ms, 56 * ms}), waitMark{polls: 1, silences: 1}, 31 * ms, 55 * ms, true},
		{"a pooled connection, busy until just before (its statement's end seen last)",
			activity(span{1, 30 * ms, 31 * ms}, span{2, 0, 40 * ms}, span{2, 45 * ms, 46 * ms}), one, 31 * ms, 45 * ms, false},
		{"a 25 ms stall in a 5 s gap of 1,000 polls is no wait (one silence must be 2% of the gap: 100 ms)",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{1 * ms, 2000 * ms}, [2]int64{2025 * ms, 5001 * ms}), waitMark{polls: 1000, silences: 1}, 1 * ms, 5001 * ms, false},
		{"a 150 ms sleep in a 5 s gap is one, though stalls followed it",
			activity(span{1, 0, 1 * ms}, span{1, 151 * ms, 2000 * ms}, span{1, 2030 * ms, 3000 * ms}, span{1, 3025 * ms, 5001 * ms}), waitMark{polls: 1000, silences: 3}, 1 * ms, 5001 * ms, true},
		{"25 ms before each of 200 polls in a 5 s gap: it waits between polls",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{1 * ms, 4975 * ms}, [2]int64{5000 * ms, 5001 * ms}), waitMark{polls: 200, silences: 200}, 1 * ms, 5001 * ms, true},
		{"25 ms before 99 of 200 polls: less than half",
			clock(0, [2]int64{0, 1 * ms}, [2]int64{1 * ms, 4975 * ms}, [2]int64{5000 * ms, 5001 * ms}), waitMark{polls: 200, silences: 99}, 1 * ms, 5001 * ms, false},
	}
	for _, c := range cases {
		if got := waitedIn(c.s, c.in, c.from, c.to, long); got != c.want {
			t.Errorf("%s: waited %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSilences checks the staircase: for windows ending now, the longest silence inside.
func TestSilences(t *testing.T) {
	var s silences
	s.add(0, 100)   // 100
	s.add(200, 250) // 50
	s.add(300, 330) // 30
	s.add(400, 440) // 40: drops the 30
	cases := []struct{ from, want int64 }{
		{0, 100}, {50, 50}, {60, 50}, {210, 40}, {300, 40}, {420, 20}, {500, 0},
	}
	for _, c := range cases {
		if got := s.longestWithin(c.from, 1000); got != c.want {
			t.Errorf("from %d: %d, want %d", c.from, got, c.want)
		}
	}
	if s.n != 3 {
		t.Errorf("%d steps kept, want 3", s.n)
	}
	for i := range 40 { // ever shorter silences: the oldest go, the newest stay
		s.add(int64(1000+100*i), int64(1000+100*i+90-i))
	}
	if s.n != len(s.steps) || s.longestWithin(4850, 5000) != 90-39 || s.longestWithin(0, 5000) != 90-24 || s.count != 44 {
		t.Errorf("after 40 shorter silences: %d steps, newest %d, longest %d, %d counted", s.n, s.longestWithin(4850, 5000), s.longestWithin(0, 5000), s.count)
	}
}

// TestDensePolitePollersAreNamedAsSuch pins down what cannot be told apart: ten processes of
// one identity, each asking for its own task every 30 ms on a connection per poll, leave no
// 20 ms without one of them busy, so together they look like a loop that never waits. Their
// connections overlap, which one loop's never do, and the finding says so.
func TestDensePolitePollersAreNamedAsSuch(t *testing.T) {
	a := New(Config{})
	var steps []scripted
	for i := range 10 {
		steps = append(steps, poller{key: fmt.Sprintf("proc-%d", i), app: "workers", addr: "10.0.3.1:1", perPoll: true,
			sleep: 30 * time.Millisecond, reconnect: time.Millisecond, setup: 2, think: time.Millisecond,
			offset: time.Duration(i) * 3700 * time.Microsecond}.script(0)...)
	}
	play(a, steps)
	s := a.Snapshot()
	if len(s.Pollers) != 1 {
		t.Fatalf("pollers: %+v", s.Pollers)
	}
	p := s.Pollers[0]
	t.Logf("poller: %.0f polls/s, %d keys, waits %.0f%%, overlap %.0f%%, storming %v, spinning %v", p.PollQPS10, p.Keys, p.WaitsPct, p.OverlapPct, p.Storming, p.Spinning)
	if p.OverlapPct < overlapDoubt {
		t.Errorf("overlap %.0f%%: ten processes' connections overlap", p.OverlapPct)
	}
	var f *Finding
	for i := range s.Findings {
		if s.Findings[i].ID == "poller:10.0.3.1|workers||" || s.Findings[i].ID == "poller:10.0.3.1|workers|||spin" {
			f = &s.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("no finding for the poller: %+v", s.Findings)
	}
	if p.Spinning && !strings.Contains(f.Summary, "several processes") {
		t.Errorf("a spin verdict over overlapping connections does not say it may be several processes: %s", f.Summary)
	}
	if !strings.Contains(strings.Join(f.Evidence, " "), "more than one process shares") {
		t.Errorf("evidence does not name the overlap: %v", f.Evidence)
	}
}

// TestStormLogKeepsPollerStorms: when the log is full, an ended storm goes first, then the
// oldest key storm; a poller's storm over its keys is not pushed out by its keys' own storms,
// and every entry keeps its number.
func TestStormLogKeepsPollerStorms(t *testing.T) {
	var l stormLog
	poller := l.add(Storm{Kind: "poller", Active: true})
	ended := l.add(Storm{Kind: "key", Key: "ended"})
	var keys []int
	for i := range maxStorms - 2 {
		keys = append(keys, l.add(Storm{Kind: "key", Key: fmt.Sprint(i), Active: true}))
	}
	last := l.add(Storm{Kind: "key", Key: "one more", Active: true})
	if l.at(ended) != nil || l.at(poller) == nil || l.at(keys[0]) == nil || l.at(last).Key != "one more" {
		t.Fatalf("full log: the ended storm kept %v, the poller's dropped %v", l.at(ended) != nil, l.at(poller) == nil)
	}
	l.add(Storm{Kind: "key", Key: "and another", Active: true})
	if l.at(poller) == nil || l.at(keys[0]) != nil || l.at(keys[1]).Key != "1" || len(l.list()) != maxStorms {
		t.Fatalf("all active: the poller's storm dropped %v, the oldest key storm kept %v", l.at(poller) == nil, l.at(keys[0]) != nil)
	}
}

// TestOpeningIsBusy: while one process of an identity opens a connection (50 ms on a busy
// server), another's statement must not find the identity silent: the opening is reported
// only when it ends, and a silence once recorded cannot be taken back.
func TestOpeningIsBusy(t *testing.T) {
	const ms = int64(time.Millisecond)
	p := &pollerClock{}
	a, b := newPauseClock(10*ms), newPauseClock(0)
	p.busy(b, 0, 5*ms, 20*ms)
	p.opened(a.id, 10*ms)
	p.busy(b, 40*ms, 45*ms, 20*ms) // b's next statement, while a is still opening
	p.settled(a, 60*ms, 20*ms)
	p.busy(a, 62*ms, 70*ms, 20*ms)
	if got := p.long.longestWithin(0, 70*ms); got != 0 {
		t.Errorf("a silence of %d ms while a connection was opening", got/ms)
	}
	if len(p.openings) != 0 {
		t.Errorf("%d openings left", len(p.openings))
	}
	p.busy(b, 100*ms, 101*ms, 20*ms) // and a real silence after it is still one
	if got := p.long.longestWithin(0, 101*ms); got != 30*ms {
		t.Errorf("the silence after the opening: %d ms, want 30", got/ms)
	}
}
