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

// pauseClock follows one connection's silences. The connection's own goroutine writes it; the
// goroutines of other connections read it when a key polled here is next polled there, so the
// fields are atomics. A reader may see a long silence's two ends from different updates; that
// can misjudge one gap of 32, which the spin verdict (a majority) absorbs.
type pauseClock struct {
	opened  int64 // analyzer nanos when the client's startup message arrived; set once, before sharing
	lastEnd atomic.Int64
	// The latest silence of SpinInterval or longer: from the end of a statement (or the
	// opening) to the start of the next statement. Both 0 before there is one.
	longFrom, longTo atomic.Int64
	// runStart is where the connection's current run of activity began: its opening, or the
	// first statement after its latest long silence. Only the connection's goroutine uses it.
	runStart int64
	polled   bool // the connection has carried a watched poll: its activity is its poller's
}

func newPauseClock(opened int64) *pauseClock {
	c := &pauseClock{opened: opened, runStart: opened}
	c.lastEnd.Store(opened)
	return c
}

// authenticated moves the end of the connection's opening to at: the handshake is the client
// busy connecting, not waiting.
func (c *pauseClock) authenticated(at int64) {
	if last := c.lastEnd.Load(); at > last {
		c.lastEnd.Store(at)
	}
}

// statement records one statement of the connection, which ran from start to end.
func (c *pauseClock) statement(start, end, long int64) {
	last := c.lastEnd.Load()
	if start-last >= long {
		c.longFrom.Store(last)
		c.longTo.Store(start)
		c.runStart = start
	}
	c.lastEnd.Store(max(last, end))
}

// longWithin is how much of the window [from, to] the latest long silence covers (<= 0: none).
// Any earlier long silence ended before the latest one began, so when the latest does not
// begin inside the window no earlier one lies in it either.
func (c *pauseClock) longWithin(from, to int64) int64 {
	return min(c.longTo.Load(), to) - max(c.longFrom.Load(), from)
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
	lastConn *pauseClock // the connection whose activity ended at lastEnd
	// The latest silence of SpinInterval or longer, as in pauseClock.
	longFrom, longTo int64

	// Statements that began while another polling connection of the identity was busy,
	// over the latest pollerGaps statements: bit i of overlapped.
	stmts      uint32
	overlapped [pollerGaps / 64]uint64

	gaps     uint32 // key gaps recorded so far
	waited   [pollerGaps / 64]uint64
	gapUs    [64]uint32 // the latest 64 key gaps in microseconds, for their median
	ring     wideRing   // watched polls per second
	peak     uint32
	polls    int64
	watch    int // the watched table of its latest poll
	tickKeys int // keys whose latest poll in the storm window was this poller's: the ticker's

	stormState // written by the ticker
	spinning   bool
}

// busy records activity of conn, one of the identity's polling connections, from from to to.
func (p *pollerClock) busy(conn *pauseClock, from, to, long int64) {
	i := p.stmts % pollerGaps
	p.overlapped[i/64] &^= 1 << (i % 64)
	switch {
	case from-p.lastEnd >= long:
		p.longFrom, p.longTo = p.lastEnd, from
	case from < p.lastEnd && conn != p.lastConn:
		p.overlapped[i/64] |= 1 << (i % 64)
	}
	p.stmts++
	if to > p.lastEnd {
		p.lastEnd, p.lastConn = to, conn
	}
}

// longWithin is pauseClock.longWithin for the identity.
func (p *pollerClock) longWithin(from, to int64) int64 {
	return min(p.longTo, to) - max(p.longFrom, from)
}

// gap records one gap between two polls of a key by this poller.
func (p *pollerClock) gap(micros int64, waited bool) {
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

// waited reports whether the poller waited at least long between a key's previous poll, which
// ended at from on connection prev, and this one, which starts at to on connection cur: on one
// connection, that connection's silences; across connections, the silences of the identity's
// polling connections together (see the top of this file).
func waited(prev, cur *pauseClock, poller *pollerClock, from, to, long int64) bool {
	if prev == cur || poller == nil {
		return cur.longWithin(from, to) >= long
	}
	return poller.longWithin(from, to) >= long
}
