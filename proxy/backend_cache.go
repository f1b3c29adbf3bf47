package proxy

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// The backend's part in coalescing: it keeps the session state that decides whether a hit may
// be served (published at each ReadyForQuery), collects the server's answers to reads that fill
// the cache, invalidates again what a transaction wrote when it ends, and writes the cached rest
// of an answer whose Parse went upstream.

// maxTxWrites bounds the writes a transaction remembers; past it, its end invalidates all.
const maxTxWrites = 64

// statementDone runs when a statement completes (CommandComplete, EmptyQuery, PortalSuspended).
func (b *backend) statementDone(p *pending, tag []byte, abnormal bool) {
	b.noteStatement(p)
	n := p.note
	if n.fill == nil {
		return
	}
	if abnormal || b.fillOver || b.inRow {
		n.fill.Abandon()
	} else {
		n.fill.Done(b.answer(p, tag))
	}
	n.fill = nil
	b.resetFill()
}

// statementFailed runs when the server refuses the statement at the head of the queue.
func (b *backend) statementFailed(p *pending) {
	b.txPure = false
	if n := p.note; n.fill != nil {
		n.fill.Abandon()
		n.fill = nil
	}
	b.resetFill()
}

// noteStatement keeps the transaction's "reads only" state and remembers its writes.
func (b *backend) noteStatement(p *pending) {
	if p.kind != expQuery && p.kind != expExecute {
		return
	}
	n := p.note
	if n.class != StmtBegin && n.class != StmtRead {
		b.txPure = false
	}
	switch n.class {
	case StmtUnknown:
		b.txUnknown = true
	case StmtSetting:
		b.txSets = append(b.txSets, n.setting)
	}
	if n.wrote {
		if len(b.txWrites) < maxTxWrites {
			b.txWrites = append(b.txWrites, n.touch)
		} else {
			b.txWideAll = true
		}
	}
}

// answer copies the collected answer into an immutable Answer.
func (b *backend) answer(p *pending, tag []byte) *Answer {
	a := &Answer{NRows: b.rows, Digest: b.rowsDigest()}
	if p.note.fillDesc && len(b.cols) > 0 {
		a.Desc = appendMessage(nil, pgwire.BackendRowDescription, b.cols)
	}
	a.Columns = slices.Clone(b.columns(p))
	a.Rows = slices.Clone(b.fillBuf)
	a.Complete = commandComplete(tag)
	a.FirstRow = slices.Clone(b.firstRow)
	return a
}

// collectRow appends a DataRow piece to the answer being collected for a fill.
func (b *backend) collectRow(piece []byte, last bool) {
	p := b.cons.peek()
	if p == nil || p.note == nil || p.note.fill == nil || b.fillOver {
		return
	}
	if !b.inRow {
		b.rowStart = len(b.fillBuf)
		b.fillBuf = append(b.fillBuf, pgwire.BackendDataRow, 0, 0, 0, 0)
		b.inRow = true
	}
	b.fillBuf = append(b.fillBuf, piece...)
	if last {
		binary.BigEndian.PutUint32(b.fillBuf[b.rowStart+1:], uint32(len(b.fillBuf)-b.rowStart-1))
		b.inRow = false
	}
	if len(b.fillBuf) > b.cache.MaxAnswer() {
		b.fillOver = true // too large to be worth caching: the read is forwarded as usual
		b.fillBuf = b.fillBuf[:0]
	}
}

func (b *backend) resetFill() {
	if cap(b.fillBuf) > 64<<10 {
		b.fillBuf = nil // do not keep a large answer's buffer for the session's life
	}
	b.fillBuf, b.fillOver, b.inRow = b.fillBuf[:0], false, false
}

// coalescedReady handles a ReadyForQuery: it ends the statement or batch, invalidates again
// what a finished transaction wrote (before the client hears it finished), publishes whether
// the state allows hits, and writes a cached tail in place of it when one is waiting.
func (b *backend) coalescedReady() verdict {
	var tail *tailAnswer
	if p := b.cons.peek(); p != nil && p.kind == expSync && p.note != nil {
		tail = p.note.tail
		p.note.tail = nil
		b.executed = b.executed || tail != nil // its cached answer is the batch's event, no exchange
	}
	b.readyForQuery()
	status := b.txStatus
	if status == pgwire.TxIdle {
		b.endTransaction()
	}
	failed := b.batchErr
	b.batchErr = false
	if len(b.txSets) > 0 {
		b.settle(status, failed)
	}
	b.s.co.servable.Store(status == pgwire.TxIdle || status == pgwire.TxInBlock && b.txPure && b.cache.Scope() == ScopeReadCommitted)
	if tail == nil || failed {
		return 0
	}
	// The Parse went upstream and succeeded: the rest of the answer comes from the cache.
	ans := tail.ans
	b.inject = appendAnswer(b.inject[:0], ans, true, tail.describe, status)
	ev := Event{Protocol: Extended, Text: b.keep(tail.text), StatementName: b.keep(tail.stmtName), Bind: BindMessage(b.keep(tail.bind))}
	b.events = append(b.events, cachedEvent(ev, ans, tail.received, b.timestamp()))
	return vWithhold | vInject
}

// settle decides the settings made since the last ReadyForQuery. Outside a transaction block a
// SET took effect if nothing failed (an error rolls back the implicit transaction with it): its
// value joins the key. Inside one, a later ROLLBACK could undo it, which the proxy does not
// follow: the session is never answered from the cache again.
func (b *backend) settle(status byte, failed bool) {
	switch {
	case status != pgwire.TxIdle:
		b.s.co.lost.Store(true)
	case !failed:
		for _, set := range b.txSets {
			name := set[:strings.IndexByte(set, '=')+1]
			i := slices.IndexFunc(b.settings, func(s string) bool { return strings.HasPrefix(s, name) })
			if i >= 0 {
				b.settings[i] = set
			} else {
				b.settings = append(b.settings, set)
				slices.Sort(b.settings)
			}
		}
		b.s.co.settings.Store(paramDigest(digestSeed, b.settings))
	}
	b.txSets = b.txSets[:0]
}

// endTransaction invalidates again everything the finished transaction wrote: entries filled
// by reads that ran while it was open must not outlive its commit.
func (b *backend) endTransaction() {
	b.txPure = true
	if b.txWideAll || b.txUnknown && b.cache.Enabled() {
		// Writes past counting, or statements sent while coalescing was off (unread: any may
		// have written what the cache, switched on since, now holds).
		b.cache.Invalidate(Touch{All: true})
	}
	b.txUnknown = false
	for _, t := range b.txWrites {
		b.cache.Invalidate(t)
	}
	b.txWrites, b.txWideAll = b.txWrites[:0], false
}

// parameterStatus tracks the parameters the server reports (TimeZone, DateStyle, ...): they are
// part of every cache key, so a SET the server reports just changes the key. Before the first
// ReadyForQuery the frontend cannot be asking the cache yet, so no key sees a partial set.
func (b *backend) parameterStatus(body []byte) {
	name, rest, ok := cstring(body)
	value, _, ok2 := cstring(rest)
	if !ok || !ok2 || string(name) == "application_name" {
		return // application_name never changes a watched read's answer: pollers share entries
	}
	entry := string(name) + "=" + string(value)
	i, found := slices.BinarySearchFunc(b.params, string(name), func(e, n string) int {
		return strings.Compare(e[:strings.IndexByte(e, '=')], n)
	})
	if found {
		b.params[i] = entry
	} else {
		b.params = slices.Insert(b.params, i, entry)
	}
	b.s.co.paramHash.Store(paramDigest(digestSeed, b.params))
}

// abandonFills gives up the fills of reads whose answers will never come (the session ended).
func abandonFills(fe *frontend, be *backend) {
	drop := func(es []pending) {
		for i := range es {
			if n := es[i].note; n != nil && n.fill != nil {
				n.fill.Abandon()
				n.fill = nil
			}
		}
	}
	drop(be.cons.items[be.cons.head:])
	q := be.cons.q
	q.mu.Lock()
	drop(q.inbox)
	q.mu.Unlock()
	drop(fe.prod.staged)
}

// commandComplete builds a CommandComplete message for tag.
func commandComplete(tag []byte) []byte {
	return pgwire.AppendCommandComplete(make([]byte, 0, headerLen+len(tag)+1), tag)
}
