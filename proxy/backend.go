package proxy

import (
	"hash/maphash"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// digestSeed is shared by every session of the process, so that the same rows returned to
// different connections have the same digest (a poll is "unchanged" across connections too).
var digestSeed = maphash.MakeSeed()

// backend inspects what the server sends: it pairs each answer with the expected entry the
// frontend queued, measures each statement (rows, digest of the rows, duration, tag, SQLSTATE)
// and hands the completed statements to the observer after they have been forwarded. It runs on
// the server-to-client goroutine only.
type backend struct {
	s    *Session
	cons consumer

	now    time.Time
	hasNow bool

	// The statement whose answer is streaming in.
	rows     int64
	digest   maphash.Hash
	index    int       // statement position inside the current Query
	prevDone time.Time // when the previous statement completed: the next one cannot start before

	events []Event

	// Copies that outlive the read buffer until the events are handed over. Each completed
	// statement gets its own slot, reused across batches.
	cols []byte // RowDescription of the statement in progress
	// stmtCols remembers the RowDescription of each described prepared statement: clients with
	// a statement cache (pgx, JDBC) describe once and then only Bind and Execute.
	stmtCols map[string][]byte
	firstRow []byte // start of its first DataRow
	kept     [][]byte
	keptN    int
	keptCap  int    // capacity of all kept slots: bounded by maxKept
	lastCols []byte // the Columns kept last in this batch, shared by the events that follow

	// Coalescing (cache non-nil only when the proxy has a Cache).
	cache     Cache
	fillBuf   []byte // DataRow messages of the answer being collected for a fill
	fillOver  bool   // the answer grew past the cache's limit: it will not fill
	inRow     bool   // a DataRow is being collected in pieces
	rowStart  int    // where in fillBuf that DataRow starts
	txPure    bool   // this transaction ran only a plain BEGIN and eligible reads
	txWrites  []Touch
	txWideAll bool     // more writes than txWrites holds: invalidate everything at its end
	txUnknown bool     // it ran statements sent while coalescing was off
	txSets    []string // settings (StmtSetting) made since the last ReadyForQuery
	settings  []string // settings in effect, NAME=value sorted by name
	batchErr  bool     // an ErrorResponse since the last ReadyForQuery
	params    []string
	inject    []byte

	authDone   bool
	authAsked  bool // the server asked the client to authenticate (its connection is never reused)
	authReady  bool // authenticated: tell the observer at the first ReadyForQuery, when the startup is over
	authNotify bool // tell the observer after the write
	executed   bool // an event was made since the last ReadyForQuery
	authOK     bool
	authState  string
	txStatus   byte
	lastError  bool // the last message was an ErrorResponse (a FATAL explains a close)
}

func newBackend(s *Session, q *queue) *backend {
	b := &backend{s: s, cons: consumer{q: q}, cache: s.srv.cfg.Cache, txPure: true}
	b.digest.SetSeed(digestSeed)
	return b
}

func (b *backend) timestamp() time.Time {
	if !b.hasNow {
		b.now, b.hasNow = time.Now(), true
	}
	return b.now
}

func (b *backend) header(byte, int) error { return nil }

func (b *backend) wantsWhole(typ byte) bool {
	return typ != pgwire.BackendDataRow && typ != pgwire.CopyData
}

// part sees DataRows (hashed as they stream) and COPY data (ignored).
func (b *backend) part(typ byte, piece []byte, last bool) {
	if typ != pgwire.BackendDataRow {
		return
	}
	if b.cache != nil {
		b.collectRow(piece, last)
	}
	if b.rows == 0 && len(b.firstRow) < FirstRowPrefix {
		b.firstRow = append(b.firstRow, piece[:min(len(piece), FirstRowPrefix-len(b.firstRow))]...)
	}
	_, _ = b.digest.Write(piece)
	if last {
		b.rows++
	}
}

func (b *backend) beforeWrite() {
	if b.cache != nil {
		// Under the client's write lock: once the frontend sees every answer published as
		// written, nothing of the server's can be pending behind an answer it writes.
		b.s.co.answered.Store(b.cons.popped)
	}
}

func (b *backend) injection() []byte { return b.inject }

func (b *backend) afterWrite() {
	b.hasNow = false
	if b.authNotify {
		b.authNotify = false
		b.s.authenticated(b.authOK, b.authState)
	}
	if len(b.events) > 0 {
		if b.cache != nil {
			b.s.co.observeMu.Lock()
			b.s.observer.Statements(&b.s.info, b.events)
			b.s.co.observeMu.Unlock()
		} else {
			b.s.observer.Statements(&b.s.info, b.events)
		}
		n := len(b.events)
		for i := range b.events {
			if b.events[i].Exchange {
				n--
			}
		}
		b.s.statements.Add(int64(n))
		clear(b.events) // drop references to the entries' buffers
		b.events = b.events[:0]
		b.keptN = 0
		b.lastCols = nil
	}
	b.cons.release()
}

func (b *backend) message(typ byte, body []byte, truncated bool) (verdict, error) {
	b.lastError = typ == pgwire.BackendErrorResponse
	switch typ {
	case pgwire.BackendAuthentication: // Authentication*: only the outcome matters; SASL payloads are never looked at
		if !b.authDone && len(body) >= 4 && be32(body) == 0 {
			// The server is still starting the session until its first ReadyForQuery: the
			// client waits for that, and a FATAL before it (no such database) is a failed login.
			b.authDone, b.authReady = true, true
		} else if !b.authDone {
			b.authAsked = true
		}
	case pgwire.BackendKeyData:
		b.s.backendKey(body)
	case pgwire.BackendReadyForQuery:
		if len(body) >= 1 {
			b.txStatus = body[0]
			b.s.txStatus.Store(uint32(body[0]))
		}
		if b.authReady {
			b.authReady, b.authOK, b.authNotify = false, true, true
		}
		if b.cache != nil {
			return b.coalescedReady(), nil
		}
		b.readyForQuery()
	case pgwire.BackendParameterStatus:
		if b.cache != nil {
			b.parameterStatus(body)
		}
		if b.s.srv.pool != nil {
			b.s.serverParams = setParam(b.s.serverParams, body)
		}
	case pgwire.BackendErrorResponse:
		b.errorResponse(body)
	case pgwire.BackendRowDescription:
		if p := b.cons.peek(); p != nil && p.kind == expDescribe {
			if len(p.name) > 0 && p.name[0] == pgwire.TargetStatement {
				b.describedStatement(p.name[1:], body)
			}
			b.cons.pop()
		} else {
			b.startStatement()
		}
		b.cols = append(b.cols[:0], body...)
	case pgwire.BackendNoData: // NoData answers a Describe
		if p := b.cons.peek(); p != nil && p.kind == expDescribe {
			b.cons.pop()
		}
	case pgwire.BackendParseComplete:
		if p := b.cons.peek(); p != nil && p.kind == expParse {
			delete(b.stmtCols, string(p.name)) // a new statement under that name
			b.cons.pop()
		}
	case pgwire.BackendBindComplete:
		b.popIf(expBind)
	case pgwire.BackendCloseComplete:
		if p := b.cons.peek(); p != nil && p.kind == expClose {
			if len(p.name) > 0 && p.name[0] == pgwire.TargetStatement {
				delete(b.stmtCols, string(p.name[1:]))
			}
			b.cons.pop()
		}
	case pgwire.BackendCommandComplete:
		tag, _, _ := cstring(body)
		b.complete(tag, false, false)
	case pgwire.BackendEmptyQueryResponse:
		b.complete(nil, false, true)
	case pgwire.BackendPortalSuspended:
		b.complete(nil, true, false)
	case pgwire.BackendFunctionCallResponse:
		if p := b.cons.peek(); p != nil && p.kind == expFunctionCall {
			b.event(p)
			b.endStatement()
		}
	}
	// 't' ParameterDescription, 'N' notices, 'A' notifications, 'G'/'H'/'W' COPY responses, 'c'
	// CopyDone and 'v' NegotiateProtocolVersion pass through: the statement they belong to
	// completes with a later message.
	return 0, nil
}

func (b *backend) popIf(kind expect) {
	if p := b.cons.peek(); p != nil && p.kind == kind {
		b.cons.pop()
	}
}

// startStatement resets the per-statement measures (a new result set begins).
func (b *backend) startStatement() {
	b.rows = 0
	b.digest.Reset()
	b.firstRow = b.firstRow[:0]
}

// endStatement forgets the row description too: the next statement brings its own.
func (b *backend) endStatement() {
	b.startStatement()
	b.cols = b.cols[:0]
}

// maxStmtCols bounds the remembered row descriptions per session.
const maxStmtCols = 256

func (b *backend) describedStatement(name, rowDesc []byte) {
	if old, ok := b.stmtCols[string(name)]; ok {
		b.stmtCols[string(name)] = append(old[:0], rowDesc...)
		return
	}
	if b.stmtCols == nil {
		b.stmtCols = make(map[string][]byte)
	}
	if len(b.stmtCols) >= maxStmtCols {
		clear(b.stmtCols) // a client that prepares without bound; forget and relearn
	}
	b.stmtCols[string(name)] = append([]byte(nil), rowDesc...)
}

// maxKept bounds the capacity of the kept slots. A batch can complete thousands of statements
// (a pipeline of Executes of one wide prepared statement answers about 25 bytes each), each
// carrying a RowDescription of up to a hundred kilobytes: past the budget events go without
// Columns rather than make the proxy hold a copy of each.
const maxKept = 4 << 20

// keep copies p into a slot that stays valid until the batch of events is handed over; nil when
// that would take the slots past maxKept.
func (b *backend) keep(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if b.keptN == len(b.kept) {
		b.kept = append(b.kept, nil)
	}
	slot := b.kept[b.keptN]
	if len(p) > cap(slot) && b.keptCap+len(p)-cap(slot) > maxKept {
		return nil
	}
	k := append(slot[:0], p...)
	b.keptCap += cap(k) - cap(slot)
	b.kept[b.keptN] = k
	b.keptN++
	return k
}

// keepCols keeps a RowDescription, sharing the previous event's copy when it is the same one:
// the statements of a pipeline mostly are.
func (b *backend) keepCols(cols []byte) []byte {
	if len(cols) == 0 {
		return nil
	}
	if len(b.lastCols) == len(cols) && string(b.lastCols) == string(cols) {
		return b.lastCols
	}
	k := b.keep(cols)
	if k != nil {
		b.lastCols = k
	}
	return k
}

// complete finishes the statement at the head of the queue.
func (b *backend) complete(tag []byte, suspended, empty bool) {
	p := b.cons.peek()
	if p == nil || (p.kind != expQuery && p.kind != expExecute) {
		b.endStatement()
		return
	}
	if b.cache != nil {
		b.statementDone(p, tag, suspended || empty)
	}
	ev := b.event(p)
	ev.Tag = tag
	ev.Suspended = suspended
	ev.Empty = empty
	if p.kind == expExecute {
		b.cons.pop()
	} else {
		b.index++
	}
	b.endStatement()
}

// event appends an event for the statement p is running, timed up to now.
func (b *backend) event(p *pending) *Event {
	now := b.timestamp()
	start := p.received
	if b.prevDone.After(start) {
		start = b.prevDone // it waited in the pipeline behind the statement before it
	}
	b.prevDone = now
	b.executed = true
	b.events = append(b.events, Event{
		Text:     p.text,
		Index:    b.index,
		Start:    start,
		Duration: now.Sub(start),
		Rows:     b.rows,
	})
	ev := &b.events[len(b.events)-1]
	switch p.kind {
	case expQuery:
		ev.Protocol = Simple
	case expFunctionCall:
		ev.Protocol = FunctionCall
	default:
		ev.Protocol = Extended
		ev.StatementName = p.name
		ev.Bind = BindMessage(p.bind)
	}
	ev.Columns = b.keepCols(b.columns(p))
	ev.FirstRow = b.keep(b.firstRow)
	ev.Digest = b.rowsDigest()
	return ev
}

// reusable says whether the server connection could serve another client once its own has
// said Terminate, as far as the server side knows: the login asked the client for no password
// (a kept connection would skip it for the next client), the last ReadyForQuery said idle, and
// every answer the client side queued was read. Both sides must have stopped (the queue's
// counts are then settled).
func (b *backend) reusable() bool {
	return b.authOK && !b.authAsked && b.txStatus == pgwire.TxIdle && b.cons.q.published == b.cons.popped
}

// columns is the RowDescription of the rows p's statement returns: the one sent with it, or for
// an Execute of a prepared statement the one its Describe brought earlier.
func (b *backend) columns(p *pending) []byte {
	if len(b.cols) == 0 && p.kind == expExecute && !p.nameLost {
		return b.stmtCols[string(p.name)]
	}
	return b.cols
}

// rowsDigest is the digest of the statement's rows; 0 only when it returned none.
func (b *backend) rowsDigest() uint64 {
	if b.rows == 0 {
		return 0
	}
	return max(b.digest.Sum64(), 1)
}

// errorResponse ends the statement at the head of the queue with the server's SQLSTATE. In the
// extended protocol the server then ignores everything up to the next Sync; those entries are
// dropped when its ReadyForQuery arrives.
func (b *backend) errorResponse(body []byte) {
	code := errorCode(body)
	if b.cache != nil && endsSession(body) && (b.authDone || code[0] == '5' && code[1] == '7') {
		// The server ends the session of its own accord (shutting down, restarting, a backend
		// terminated): said here, at the FATAL, since the end of stream behind it may take a
		// moment to be read, and a client reconnecting at once must not get an answer cached
		// before. A login refused for a bad password (class 28) says nothing of the kind.
		b.s.srv.forgetAnswers("the server ended a session with " + string(code[:]))
	}
	if !b.authDone || b.authReady {
		b.authDone, b.authReady, b.authOK, b.authNotify, b.authState = true, false, false, true, string(code[:])
		return
	}
	p := b.cons.peek()
	if p == nil {
		return // an error outside any statement, e.g. the server shutting the session down
	}
	if b.cache != nil {
		b.batchErr = true
		b.statementFailed(p)
	}
	switch p.kind {
	case expQuery, expFunctionCall:
		ev := b.event(p)
		ev.Failed, ev.SQLState = true, code
		b.index++
	case expSync:
		// An error right before Sync (e.g. a failed COMMIT inside it): nothing to pair with.
	default:
		if p.kind == expExecute || p.kind == expParse || p.kind == expBind {
			ev := b.event(p)
			ev.Failed, ev.SQLState = true, code
		}
		b.cons.pop()
	}
	b.endStatement()
}

// readyForQuery ends a Query or FunctionCall, or an extended batch up to and including its Sync.
func (b *backend) readyForQuery() {
	b.index = 0
	b.endStatement()
	executed := b.executed
	b.executed = false
	var first time.Time // when the batch's first message arrived
	for {
		p := b.cons.peek()
		if p == nil {
			return
		}
		kind := p.kind
		if first.IsZero() {
			first = p.received
		}
		if kind == expSync && !executed {
			b.exchange(first)
		}
		if p.note != nil && p.note.fill != nil { // skipped after an error: readers waiting for it forward their own
			p.note.fill.Abandon()
			p.note.fill = nil
		}
		b.cons.pop()
		if kind == expSync || kind == expQuery || kind == expFunctionCall {
			return
		}
	}
}

// exchange appends the event of a batch that ran no statement, from start to now.
func (b *backend) exchange(start time.Time) {
	now := b.timestamp()
	if b.prevDone.After(start) {
		start = b.prevDone
	}
	b.prevDone = now
	b.events = append(b.events, Event{Protocol: Extended, Start: start, Duration: now.Sub(start), Exchange: true})
}

// errorCode returns the SQLSTATE field of an ErrorResponse body.
func errorCode(body []byte) (code [5]byte) {
	copy(code[:], pgwire.ErrorField(body, pgwire.FieldCode))
	return code
}

// endsSession reports whether an ErrorResponse's severity ends the session (FATAL or PANIC).
func endsSession(body []byte) bool {
	sev := pgwire.Severity(body)
	return string(sev) == "FATAL" || string(sev) == "PANIC"
}
