package analyzer

import "sync/atomic"

// Whether a poller spins is not a matter of how often it polls but of whether it waits in
// between. A loop without sleep whose every poll opens a connection and runs a dozen statements
// (Celery's parent, outside a worker) polls every 12 ms on an idle machine and every 30 ms on a
// busy one; a loop that sleeps 25 ms between one-statement polls has the same rate. The gaps
// between polls cannot tell these apart, the silences inside them can: the first gap is made of
// many short silences, the second of one long one. So the analyzer follows each connection's
// silences (from the end of one of its statements, or its opening, to the start of the next)
// and, for each gap between two polls of a key, asks whether the poller was silent for
// SpinInterval or longer at a stretch: whether it waited.

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
}

func newPauseClock(opened int64) *pauseClock {
	c := &pauseClock{opened: opened}
	c.lastEnd.Store(opened)
	return c
}

// statement records one statement of the connection, which ran from start to end.
func (c *pauseClock) statement(start, end, long int64) {
	last := c.lastEnd.Load()
	if start-last >= long {
		c.longFrom.Store(last)
		c.longTo.Store(start)
	}
	c.lastEnd.Store(max(last, end))
}

// longWithin is how much of the window [from, to] the latest long silence covers (<= 0: none).
// Any earlier long silence ended before the latest one began, so when the latest does not
// begin inside the window no earlier one lies in it either.
func (c *pauseClock) longWithin(from, to int64) int64 {
	return min(c.longTo.Load(), to) - max(c.longFrom.Load(), from)
}

// waited reports whether the poller waited at least long between a key's previous poll, which
// ended at from on connection prev, and this one, which starts at to on connection cur. The
// poller was silent if neither connection had a statement in flight and no connection was
// being opened: silences on cur since the previous poll; when the poll moved to another
// connection, silences on prev after its poll, and the time from prev's last statement to the
// opening of cur (a poller that connects anew for every poll sleeps there).
func waited(prev, cur *pauseClock, from, to, long int64) bool {
	if cur.longWithin(from, to) >= long {
		return true
	}
	if prev == nil || prev == cur {
		return false
	}
	if prev.longWithin(from, to) >= long {
		return true
	}
	return cur.opened > from && cur.opened-max(from, prev.lastEnd.Load()) >= long
}
