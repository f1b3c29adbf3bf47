package analyzer

import (
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

// Whether a poller spins is not a matter of how often it polls but of whether it waits in
// between. A loop without sleep whose every poll opens a connection and runs a dozen statements
// (Celery's parent, outside a worker) polls every 12 ms on an idle machine and every 30 ms on a
// busy one; a loop that sleeps 25 ms between one-statement polls has the same rate. The gaps
// between polls cannot tell these apart, the silences inside them can: the first gap is made of
// many short silences, the second of one long one. So, for each gap between two polls of a key,
// the analyzer asks whether the poller was silent for SpinInterval or longer at a stretch:
// whether it waited.
//
// "The poller" is what the analyzer can know of the polling process:
//
//   - When both polls ran on one connection, that connection. A connection is used by one
//     process at a time, so its silences are the process's own, even on a host where many other
//     processes with the same address and name are busy.
//   - When the polls ran on different connections, the client identity (address, user,
//     database, application_name) across all its connections that have carried a watched poll.
//     A loop that asks ten subtasks in turn, a connection per poll (Celery's
//     GroupResult.completed_count()), is busy polling the other nine between two polls of one
//     key: the time between that key's connections is not a wait, and only the identity's
//     activity shows it. Connections of the identity that never poll (a web worker's ordinary
//     queries) are left out, so they cannot hide a polite poller's sleep.
//
// What remains ambiguous: several processes sharing one identity, each polling on a connection
// per poll, densely enough that between them no SpinInterval passes without one of them busy,
// look like one loop that never waits. A single sequential loop's connections never overlap in
// time, so the poller counts how many of its polling statements began while another of its
// connections was busy (overlapPct) and the evidence says so when they do.

// silences remembers the long silences (SpinInterval or longer) of a connection or a poller
// well enough to answer, for any window that ends now, the longest silence inside it. A later
// silence at least as long as an earlier one makes the earlier useless for such windows, so
// only a staircase is kept: in time order, each shorter than the one before. Windows are
// clipped: a silence that began before the window counts only from its start.
type silences struct {
	n     int
	steps [16][2]int64 // from, to
	count uint32       // long silences so far (wrapping)
}

func (s *silences) add(from, to int64) {
	s.count++
	for s.n > 0 && s.steps[s.n-1][1]-s.steps[s.n-1][0] <= to-from {
		s.n--
	}
	if s.n == len(s.steps) { // a long staircase of ever shorter silences: forget the oldest
		copy(s.steps[:], s.steps[1:])
		s.n--
	}
	s.steps[s.n] = [2]int64{from, to}
	s.n++
}

// longestWithin is the longest stretch of the window [from, to] one silence covers.
func (s *silences) longestWithin(from, to int64) int64 {
	best := int64(0)
	for i := range s.n { // the first silence reaching into the window may be clipped; the next is whole
		st := &s.steps[i]
		if st[1] <= from {
			continue
		}
		best = max(best, min(st[1], to)-max(st[0], from))
		if st[0] >= from {
			break
		}
	}
	return best
}

// pauseClock follows one connection's silences. The goroutine that reports the connection's
// statements writes and reads it: a gap between two polls on one connection is judged when the
// second is reported there; other connections only compare its address. The end of the
// handshake may be reported from another goroutine, before any statement: lastEnd is atomic.
type pauseClock struct {
	id      uint64       // the connection's number: keys and pollers remember it, not the clock
	opened  int64        // analyzer nanos when the proxy accepted the connection
	lastEnd atomic.Int64 // the end of its latest statement, or of its opening
	long    silences
	// runStart is where the connection's current run of activity began: its opening, or the
	// first statement after its latest long silence.
	runStart int64
	polled   bool   // the connection has carried a watched poll: its activity is its poller's
	polls    uint32 // its polling statements so far (wrapping)
}

// mark is where the connection's counts stand.
func (c *pauseClock) mark() waitMark { return waitMark{polls: c.polls, silences: c.long.count} }

// connIDs numbers connections for their clocks.
var connIDs atomic.Uint64

func newPauseClock(opened int64) *pauseClock {
	c := &pauseClock{id: connIDs.Add(1), opened: opened, runStart: opened}
	c.lastEnd.Store(opened)
	return c
}

// authenticated moves the end of the connection's opening to at: the handshake is the client
// busy connecting, not waiting.
func (c *pauseClock) authenticated(at int64) {
	for last := c.lastEnd.Load(); at > last && !c.lastEnd.CompareAndSwap(last, at); last = c.lastEnd.Load() {
	}
}

// statement records one statement of the connection, which ran from start to end.
func (c *pauseClock) statement(start, end, long int64) {
	last := c.lastEnd.Load()
	if start-last >= long {
		c.long.add(last, start)
		c.runStart = start
	}
	c.lastEnd.Store(max(last, end))
}

// A gap between two polls of a key holds a wait when the poller was silent SpinInterval or
// longer at a stretch in it. That suffices while gaps are short: a spin loop over one key or a
// few polls again within milliseconds, and a busy host seldom stalls the client for 20 ms in
// so short a time. A loop over thousands of keys polls a key again only seconds later, and in
// seconds a busy host's scheduler stalls a spinning client for 20 ms somewhere nearly every
// time. So a gap waited when either:
//
//   - one silence in it lasts SpinInterval and 1/gapShare of the gap (2%): a sleep between
//     rounds, which a stall of the scheduler seldom matches; or
//   - the poller was silent SpinInterval or longer before at least half of its polls in it: a
//     sleep between polls, which a stall every few hundred polls does not match.
const gapShare = 50

// waitMark is where a clock's counts stand: polls, and long silences.
type waitMark struct{ polls, silences uint32 }

// since is the counts from an earlier mark to m.
func (m waitMark) since(earlier waitMark) waitMark {
	return waitMark{polls: m.polls - earlier.polls, silences: m.silences - earlier.silences}
}

// waitedIn reports whether a gap from from to to held a wait, given the long silences of the
// poller and its counts in the gap (the polls include the one that ends the gap).
func waitedIn(s *silences, in waitMark, from, to, long int64) bool {
	if s.longestWithin(from, to) >= max(long, (to-from)/gapShare) {
		return true
	}
	return in.polls > 1 && 2*uint64(in.silences) >= uint64(in.polls)
}

// pollerGaps is how many of a poller's latest gaps between two polls of one key its verdict
// weighs: enough that a sweep over thousands of keys is judged on more than one moment.
const pollerGaps = 256

// pollerClock follows the silences of one client identity's polling connections taken
// together, and keeps the poller's latest gaps between two polls of one key. The goroutines of
// all the identity's connections write it, so a mutex guards it: taken once per statement of a
// polling connection, and for a poll before the keys' shard locks (never the other way round).
type pollerClock struct {
	mu       sync.Mutex
	lastEnd  int64
	lastConn uint64 // the connection whose activity ended at lastEnd
	long     silences
	// openings are the identity's connections being opened now (from their startup message
	// to the end of their login): the poller is busy from the oldest one's start, though the
	// connection reports nothing until then. Without them, another connection's statement in
	// the meantime would find a silence where there was none.
	openings []opening

	// Statements that began while another polling connection of the identity was busy,
	// over the latest pollerGaps statements: bit i of overlapped.
	stmts      uint32
	overlapped [pollerGaps / 64]uint64

	gaps     uint32 // key gaps recorded so far
	waited   [pollerGaps / 64]uint64
	gapUs    [64]uint32 // the latest 64 key gaps in microseconds, for their median
	ring     wideRing   // watched polls per second
	again    wideRing   // of them, polls of a key it had polled before: what makes a poller storm
	peak     uint32
	polls    int64
	watch    int // the watched table of its latest poll
	tickKeys int // keys whose latest poll in the storm window was this poller's: the ticker's
	// tickStorming: of them, those storming on their own.
	tickStorming int
	tags         tagTop // the attribution tags it polled with most

	stormState // written by the ticker
	spinning   bool
}

// opening is a connection of the identity being opened since at.
type opening struct {
	conn uint64
	at   int64
}

// maxOpenings bounds the openings followed at once; beyond it the oldest is forgotten.
const maxOpenings = 64

// opened notes that connection conn of the identity began to open at at.
func (p *pollerClock) opened(conn uint64, at int64) {
	if len(p.openings) == maxOpenings {
		p.openings = slices.Delete(p.openings, 0, 1)
	}
	p.openings = append(p.openings, opening{conn: conn, at: at})
}

// settled notes that connection conn is open (or gone): with at > 0, its opening lasted until
// at, which is activity of the identity.
func (p *pollerClock) settled(conn *pauseClock, at, long int64) {
	i := slices.IndexFunc(p.openings, func(o opening) bool { return o.conn == conn.id })
	if i < 0 {
		return
	}
	from := p.openings[i].at
	p.openings = slices.Delete(p.openings, i, i+1)
	if at > 0 {
		p.busy(conn, from, at, long)
	}
}

// busy records activity of conn, one of the identity's polling connections, from from to to.
func (p *pollerClock) busy(conn *pauseClock, from, to, long int64) {
	i := p.stmts % pollerGaps
	p.overlapped[i/64] &^= 1 << (i % 64)
	quietUntil := from // the silence before this activity ends where a connection began to open
	for _, o := range p.openings {
		quietUntil = min(quietUntil, o.at)
	}
	switch {
	case quietUntil-p.lastEnd >= long:
		p.long.add(p.lastEnd, quietUntil)
	case from < p.lastEnd && conn.id != p.lastConn:
		p.overlapped[i/64] |= 1 << (i % 64)
	}
	p.stmts++
	if to > p.lastEnd {
		p.lastEnd, p.lastConn = to, conn.id
	}
}

// mark is where the poller's counts stand.
func (p *pollerClock) mark() waitMark {
	return waitMark{polls: uint32(p.polls), silences: p.long.count}
}

// gap records one gap between two polls of a key by this poller, the second in second sec.
func (p *pollerClock) gap(sec, micros int64, waited bool) {
	p.again.add(sec, 1)
	i := p.gaps % pollerGaps
	p.waited[i/64] &^= 1 << (i % 64)
	if waited {
		p.waited[i/64] |= 1 << (i % 64)
	}
	p.gapUs[p.gaps%uint32(len(p.gapUs))] = uint32(min(micros, math.MaxUint32))
	p.gaps++
}

// waits returns how many of the latest key gaps held a wait, and how many there are.
func (p *pollerClock) waits() (waited, gaps int) {
	for _, w := range p.waited {
		waited += bits.OnesCount64(w)
	}
	return waited, int(min(p.gaps, pollerGaps))
}

func (p *pollerClock) waitsPct() float64 {
	w, n := p.waits()
	if n == 0 {
		return -1
	}
	return 100 * float64(w) / float64(n)
}

// spin is the poller's verdict: it waited in at most half of its latest key gaps.
func (p *pollerClock) spin() bool {
	w, n := p.waits()
	return n > 0 && 2*(n-w) >= n
}

// medianGapMs is the median of its latest 64 key gaps, in milliseconds; -1 none.
func (p *pollerClock) medianGapMs() float64 {
	k := int(min(p.gaps, uint32(len(p.gapUs))))
	if k == 0 {
		return -1
	}
	var buf [64]uint32
	s := buf[:k]
	copy(s, p.gapUs[:k])
	slices.Sort(s)
	return float64(s[(k-1)/2]) / 1000
}

// overlapPct is the share of its latest statements that began while another of its polling
// connections was busy.
func (p *pollerClock) overlapPct() float64 {
	n := int(min(p.stmts, pollerGaps))
	if n == 0 {
		return 0
	}
	o := 0
	for _, w := range p.overlapped {
		o += bits.OnesCount64(w)
	}
	return 100 * float64(o) / float64(n)
}

// waited reports whether the poller waited between key k's previous poll and this one, by
// conn, which starts at to: on one connection, judged on that connection's silences; across
// connections, on those of the identity's polling connections together (see the top of this
// file). conn's goroutine calls it, with poller locked.
func waited(k *keyStats, conn *pauseClock, poller *pollerClock, to, long int64) bool {
	if k.lastConn == conn.id {
		return waitedIn(&conn.long, conn.mark().since(k.connMark), k.lastNs, to, long)
	}
	in := poller.mark().since(k.pollerMark)
	if k.lastPoller != poller {
		in = waitMark{} // another client polled it last: its counts say nothing of this one's
	}
	return waitedIn(&poller.long, in, k.lastNs, to, long)
}
