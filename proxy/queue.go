package proxy

import (
	"sync"
	"time"
)

// expect is a kind of response the session waits for from the server.
type expect uint8

const (
	expQuery        expect = iota + 1 // Query: results until ReadyForQuery
	expParse                          // ParseComplete
	expBind                           // BindComplete
	expDescribe                       // [ParameterDescription] RowDescription | NoData
	expExecute                        // DataRow* then CommandComplete | EmptyQuery | PortalSuspended
	expClose                          // CloseComplete
	expSync                           // ReadyForQuery
	expFunctionCall                   // FunctionCallResponse then ReadyForQuery
)

// pending is one client message whose answer is still to come. Its byte slices are buffers it
// owns and reuses: entries travel between the two sides of a session and come back for reuse,
// so steady-state traffic allocates nothing.
type pending struct {
	kind     expect
	received time.Time
	text     []byte // SQL text: the Query string, or the prepared statement's text
	name     []byte // prepared statement name
	bind     []byte // Bind body of the portal an Execute runs
	limited  bool   // Execute with a row limit
	nameLost bool   // name was not copied (over the budget): it must not be looked up

	// note is set only when the proxy has a cache. A pointer, not the fields: every entry is
	// copied several times on its way through the queue, and without a cache nothing reads it.
	note *coalesceNote
}

// coalesceNote is what the coalescing client side tells the backend about an expected answer.
type coalesceNote struct {
	class    StmtKind    // what the statement is
	wrote    bool        // it writes touch: invalidate again when its transaction ends
	fillDesc bool        // the fill's answer includes the RowDescription the client asked for
	touch    Touch       // what it writes
	fill     Fill        // the server's answer fills the cache
	tail     *tailAnswer // (Sync) write this cached answer in place of the ReadyForQuery
	setting  string      // (StmtSetting) the NAME=value it sets
}

// set fills e, reusing its buffers. A buffer grows only while the entries' buffers together
// stay within maxQueueBytes: past that the copy is left empty (the statement is observed without
// its text), so that a client cannot make the proxy hold far more than it sent. An Execute copies
// its portal's statement text and Bind body, so without the budget a 10-byte message could cost
// megabytes, times every Execute in flight.
func (p *producer) set(e *pending, kind expect, received time.Time, text, name, bind []byte) {
	e.kind = kind
	e.received = received
	e.text = p.fill(e.text, text, 0)
	e.name = p.fill(e.name, name, maxFreeName)
	e.nameLost = len(e.name) < len(name)
	e.bind = p.fill(e.bind, bind, 0)
	e.limited = false
	if p.notes {
		if e.note == nil {
			e.note = new(coalesceNote) // once per entry: entries are reused
		} else {
			*e.note = coalesceNote{}
		}
	}
	p.added++
}

// maxFreeName is the longest statement or portal name copied whatever the budget: without its
// name an Execute could not be matched to its statement's RowDescription.
const maxFreeName = 256

// fill copies src into dst's storage, growing it only within the budget (or when src is at most
// free bytes long).
func (p *producer) fill(dst, src []byte, free int) []byte {
	if len(src) <= cap(dst) {
		return append(dst[:0], src...)
	}
	if len(src) > free && p.held+len(src)-cap(dst) > maxQueueBytes {
		// Entries the consumer gave back since the last publish may free enough.
		if p.reclaim(); p.held+len(src)-cap(dst) > maxQueueBytes {
			return dst[:0]
		}
	}
	nb := append(dst[:0], src...)
	p.held += cap(nb) - cap(dst)
	return nb
}

// maxQueueBytes bounds the buffers of a session's expected-answer entries, in flight and free
// together (capacity, not length, since free entries keep theirs for reuse).
const maxQueueBytes = 16 << 20

func (e *pending) capacity() int { return cap(e.text) + cap(e.name) + cap(e.bind) }

// queue is the FIFO of answers a session expects, in the order the server will send them. The
// client-side goroutine adds to it and the server-side goroutine takes from it. Each side works
// on a private slice and they meet under the mutex once per read, trading whole batches.
type queue struct {
	mu        sync.Mutex
	inbox     []pending // published by the client side, not yet taken
	returned  []pending // consumed entries given back for reuse
	published int64     // entries ever published; the consumer counts the ones it popped
}

// producer is the client side's end of a queue.
type producer struct {
	q      *queue
	staged []pending
	free   []pending
	held   int   // capacity of all entries' buffers, wherever the entries are
	added  int64 // entries ever set: added - popped answers are still owed
	notes  bool  // entries carry coalescing notes (the proxy has a cache)
}

// add stages a new entry; it becomes visible to the consumer at publish. The pointer is valid
// until then.
func (p *producer) add() *pending {
	var e pending
	if n := len(p.free); n > 0 {
		e = p.free[n-1]
		p.free = p.free[:n-1]
	}
	p.staged = append(p.staged, e)
	return &p.staged[len(p.staged)-1]
}

// publish hands the staged entries to the consumer and takes back entries it has finished with.
// It must run before the messages that caused the entries are written to the server.
func (p *producer) publish() {
	if len(p.staged) == 0 {
		return
	}
	q := p.q
	q.mu.Lock()
	q.inbox = append(q.inbox, p.staged...)
	q.published += int64(len(p.staged))
	n := len(p.free)
	p.free = append(p.free, q.returned...)
	clear(q.returned) // drop the slice headers: those buffers belong to the producer now
	q.returned = q.returned[:0]
	q.mu.Unlock()
	p.relieve(n)
	clear(p.staged)
	p.staged = p.staged[:0]
}

// reclaim takes back the entries the consumer has finished with (outside publish: only when a
// copy would not fit the budget).
func (p *producer) reclaim() {
	q := p.q
	q.mu.Lock()
	n := len(p.free)
	p.free = append(p.free, q.returned...)
	clear(q.returned)
	q.returned = q.returned[:0]
	q.mu.Unlock()
	p.relieve(n)
}

// relieve drops the buffers of the free entries from index n on when the entries hold more than
// half the budget (a deep pipeline of large statements), rather than keep the peak for the
// session's life.
func (p *producer) relieve(n int) {
	if p.held <= maxQueueBytes/2 {
		return
	}
	for i := n; i < len(p.free); i++ {
		e := &p.free[i]
		p.held -= e.capacity()
		e.text, e.name, e.bind = nil, nil, nil
	}
}

// consumer is the server side's end of a queue.
type consumer struct {
	q       *queue
	items   []pending
	head    int
	retired []pending // popped, but events may still point into their buffers
	popped  int64     // entries ever popped: published - popped answers are still expected
}

// peek returns the oldest expected answer, or nil when nothing is expected.
func (c *consumer) peek() *pending {
	if c.head == len(c.items) {
		c.refill()
		if c.head == len(c.items) {
			return nil
		}
	}
	return &c.items[c.head]
}

// pop retires the oldest entry. Its buffers stay valid until release.
func (c *consumer) pop() {
	if c.peek() == nil {
		return
	}
	c.retired = append(c.retired, c.items[c.head])
	c.items[c.head] = pending{}
	c.head++
	c.popped++
}

func (c *consumer) refill() {
	q := c.q
	q.mu.Lock()
	c.items, q.inbox = q.inbox, c.items[:0]
	q.mu.Unlock()
	c.head = 0
}

// release gives retired entries back to the producer once nothing refers to their buffers.
func (c *consumer) release() {
	if len(c.retired) == 0 {
		return
	}
	q := c.q
	q.mu.Lock()
	q.returned = append(q.returned, c.retired...)
	q.mu.Unlock()
	clear(c.retired)
	c.retired = c.retired[:0]
}
