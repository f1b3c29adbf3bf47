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
}

// set fills p, reusing its buffers.
func (p *pending) set(kind expect, received time.Time, text, name, bind []byte) {
	p.kind = kind
	p.received = received
	p.text = append(p.text[:0], text...)
	p.name = append(p.name[:0], name...)
	p.bind = append(p.bind[:0], bind...)
	p.limited = false
}

// queue is the FIFO of answers a session expects, in the order the server will send them. The
// client-side goroutine adds to it and the server-side goroutine takes from it. Each side works
// on a private slice and they meet under the mutex once per read, trading whole batches.
type queue struct {
	mu       sync.Mutex
	inbox    []pending // published by the client side, not yet taken
	returned []pending // consumed entries given back for reuse
}

// producer is the client side's end of a queue.
type producer struct {
	q      *queue
	staged []pending
	free   []pending
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
	p.free = append(p.free, q.returned...)
	clear(q.returned) // drop the slice headers: those buffers belong to the producer now
	q.returned = q.returned[:0]
	q.mu.Unlock()
	clear(p.staged)
	p.staged = p.staged[:0]
}

// consumer is the server side's end of a queue.
type consumer struct {
	q       *queue
	items   []pending
	head    int
	retired []pending // popped, but events may still point into their buffers
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

// pending reports how many answers are still expected (for tests and diagnostics).
func (c *consumer) pendingCount() int {
	c.q.mu.Lock()
	n := len(c.q.inbox)
	c.q.mu.Unlock()
	return n + len(c.items) - c.head
}
