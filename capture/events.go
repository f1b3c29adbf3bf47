package capture

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pgpollwatch/pgpollwatch/event"
	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// Events is a Sink that pairs a conversation's messages into the events the live proxy gives
// its observer: the client's messages queue the answers the server owes, the server's answers
// complete them, measured as the proxy measures them (rows, a digest of the rows, the start of
// the first row, the command tag, the SQLSTATE, the time from the client's packet to the
// server's). Connections open at the startup packet and authenticate at the first
// ReadyForQuery, as in the proxy. The proxy's inspectors are not reused: they are shaped by its
// two goroutines per session and by the cache; here one goroutine reads both directions, in
// the order the capture saw them.
//
// A capture loses packets. What that costs is counted (EventStats), never guessed:
//   - a statement whose answer was lost in part still happened: its event says AnswerLost, with
//     no rows, digest or status, and the analyzer counts the poll without comparing answers;
//   - an answer to a statement the capture lost is no event (Unpaired);
//   - after a gap, the client's acknowledgements tell which statements the server answered
//     while the capture was blind (see answeredBefore).
type Events struct {
	Observer event.Observer
	Stats    EventStats
	nextID   uint64
}

// EventStats counts what Events made of a capture's conversations.
type EventStats struct {
	Statements  int64 // statement events given to the observer
	AnswersLost int64 // of them, with their answer lost in part
	Unpaired    int64 // statement answers whose statement the capture lost
	Unanswered  int64 // messages still waiting for their answer when their conversation ended
	Encrypted   int64 // conversations in TLS or GSSAPI: not decoded
	MidStream   int64 // conversations the capture joined after their start
	Cancels     int64 // CancelRequests
}

// NewEvents gives obs the events of a capture's conversations.
func NewEvents(obs event.Observer) *Events { return &Events{Observer: obs} }

// Messages a client sends that the server answers, in the order it answers them.
type expect uint8

const (
	expQuery expect = iota
	expParse
	expBind
	expDescribe
	expExecute
	expClose
	expSync
	expFunctionCall
)

// pending is an answer the server owes the client.
type pending struct {
	kind  expect
	at    time.Time // the packet that completed the client's message
	ack   uint32    // how much of the server's stream the client had when it sent it
	text  []byte    // copies: the capture's buffers are reused
	name  []byte
	bind  []byte
	lost  bool // the statement's answer is known lost in part
	known bool // name was a statement this conversation prepared (stmtCols applies)
}

type portal struct{ text, stmt, bind []byte }

// conv is one conversation's pairing state.
type conv struct {
	info     event.ConnInfo
	opened   bool
	authDone bool // AuthenticationOk, or a refusal, seen
	authOK   bool // tell the observer at the first ReadyForQuery
	told     bool // the observer has heard how the login ended
	batchErr bool // an ErrorResponse since the last ReadyForQuery: the server skips to the Sync

	stmts         map[string][]byte
	unnamedStmt   []byte
	portals       map[string]*portal
	unnamedPortal portal
	queue         []pending
	head          int

	// The statement whose answer is streaming in.
	rows     int64
	digest   xxhash.Digest
	firstRow []byte
	cols     []byte
	stmtCols map[string][]byte
	index    int
	prevDone time.Time
	executed bool
	// recovering: a gap in either direction since the queue was last seen in step (empty at a
	// ReadyForQuery). Statements completed while recovering may have lost part of their answer.
	recovering bool

	events []event.Event
	kept   [][]byte
	keptN  int

	fromClient, fromServer int64
	statements             int64
	overflow               int64 // answers given up: the queue was full
}

func (e *Events) conv(c *Conversation) *conv {
	if cv, ok := c.Local.(*conv); ok {
		return cv
	}
	e.nextID++
	cv := &conv{info: event.ConnInfo{ID: e.nextID, ClientAddr: c.Client.String(), OpenedAt: c.Opened}}
	cv.digest.Reset()
	c.Local = cv
	if c.MidStream {
		e.Stats.MidStream++
		cv.authDone, cv.told = true, true
		cv.recovering = true
	}
	return cv
}

// open tells the observer of the connection, once: at its StartupMessage, or at its first
// message when the capture joined it later (who the client is is then unknown).
func (e *Events) open(cv *conv) {
	if !cv.opened {
		cv.opened = true
		e.Observer.ConnOpened(&cv.info)
	}
}

// Message implements Sink.
func (e *Events) Message(c *Conversation, fromClient bool, typ byte, body []byte, at time.Time) {
	cv := e.conv(c)
	if fromClient {
		cv.fromClient += int64(len(body)) + pgwire.HeaderLen
		if typ == 0 {
			e.startup(c, cv, body)
			return
		}
		e.open(cv)
		e.client(c, cv, typ, body, at)
		return
	}
	cv.fromServer += int64(len(body)) + pgwire.HeaderLen
	if typ == 0 { // the one-byte answer to an encryption request
		if len(body) == 1 && (body[0] == 'S' || body[0] == 'G') {
			c.Encrypted = true
		}
		return
	}
	if cv.recovering && cv.head < len(cv.queue) {
		cv.answeredBefore(c.fromServer.msgSeq, e)
	}
	e.server(cv, typ, body, at)
}

// startup reads a client's untyped packet: a StartupMessage names the client; an encryption
// request makes the server's next byte its answer.
func (e *Events) startup(c *Conversation, cv *conv, body []byte) {
	if len(body) < 4 {
		return
	}
	switch code := binary.BigEndian.Uint32(body); {
	case code == 80877103 || code == 80877104: // SSLRequest, GSSENCRequest
		c.fromServer.answerByte = true
	case code == 80877102: // CancelRequest: a connection of its own
		e.Stats.Cancels++
	case code>>16 == 3:
		cv.info.Protocol = code
		cv.info.Params = map[string]string{}
		p := body[4:]
		for len(p) > 1 {
			k, rest, ok := pgwire.CString(p)
			if !ok {
				break
			}
			v, rest2, ok := pgwire.CString(rest)
			if !ok {
				break
			}
			cv.info.Params[string(k)] = string(v)
			p = rest2
		}
		cv.info.User, cv.info.Database = cv.info.Params["user"], cv.info.Params["database"]
		if cv.info.Database == "" {
			cv.info.Database = cv.info.User
		}
		cv.info.ApplicationName = cv.info.Params["application_name"]
		cv.info.Replication = cv.info.Params["replication"] != "" && cv.info.Params["replication"] != "false"
		e.open(cv)
	}
}

// Gap implements Sink.
func (e *Events) Gap(c *Conversation, fromClient bool, n int64) {
	cv := e.conv(c)
	cv.recovering = true
	if !fromClient {
		// The statement streaming in lost part of its answer.
		if p := cv.peek(); p != nil {
			p.lost = true
		}
	}
}

// Closed implements Sink.
func (e *Events) Closed(c *Conversation) {
	cv := e.conv(c)
	if c.Encrypted {
		e.Stats.Encrypted++
	}
	e.Stats.Unanswered += cv.overflow + int64(len(cv.queue)-cv.head)
	if !cv.opened {
		return // a cancel request, an encrypted conversation, or nothing readable
	}
	e.flush(cv)
	e.Observer.ConnClosed(&cv.info, event.ConnStats{Duration: c.last.Sub(c.Opened), BytesFromClient: cv.fromClient,
		BytesFromServer: cv.fromServer, Statements: cv.statements})
}

// client learns what a client message names and queues the answers it will bring.
func (e *Events) client(c *Conversation, cv *conv, typ byte, body []byte, at time.Time) {
	if cv.info.Replication {
		return
	}
	switch typ {
	case pgwire.FrontendQuery:
		text, _, ok := pgwire.CString(body)
		if !ok {
			text = body
		}
		cv.push(expQuery, at, c.clientAck, text, nil, nil)
	case pgwire.FrontendParse:
		name, rest, ok := pgwire.CString(body)
		query, _, ok2 := pgwire.CString(rest)
		if !ok || !ok2 {
			return
		}
		if len(name) == 0 {
			cv.unnamedStmt = append(cv.unnamedStmt[:0], query...)
		} else {
			if cv.stmts == nil {
				cv.stmts = map[string][]byte{}
			}
			if _, dup := cv.stmts[string(name)]; !dup && len(cv.stmts) < maxNamed {
				cv.stmts[string(name)] = append([]byte(nil), query...)
			}
		}
		cv.push(expParse, at, c.clientAck, query, name, nil)
	case pgwire.FrontendBind:
		portalName, rest, ok := pgwire.CString(body)
		stmtName, _, ok2 := pgwire.CString(rest)
		if !ok || !ok2 {
			return
		}
		p := cv.portal(portalName, true)
		if p == nil {
			return
		}
		p.text = append(p.text[:0], cv.stmt(stmtName)...)
		p.stmt = append(p.stmt[:0], stmtName...)
		p.bind = append(p.bind[:0], body...)
		cv.push(expBind, at, c.clientAck, p.text, stmtName, nil) // as the proxy: a failed Bind's event has the text
	case pgwire.FrontendExecute:
		portalName, _, ok := pgwire.CString(body)
		if !ok {
			return
		}
		if p := cv.portal(portalName, false); p != nil {
			cv.push(expExecute, at, c.clientAck, p.text, p.stmt, p.bind)
			cv.queue[len(cv.queue)-1].known = cv.stmtKnown(p.stmt)
		} else {
			cv.push(expExecute, at, c.clientAck, nil, nil, nil)
		}
	case pgwire.FrontendDescribe:
		if len(body) < 2 {
			return
		}
		name, _, _ := pgwire.CString(body[1:])
		cv.push(expDescribe, at, c.clientAck, nil, body[:1+len(name)], nil)
	case pgwire.FrontendClose:
		if len(body) < 2 {
			return
		}
		name, _, _ := pgwire.CString(body[1:])
		if body[0] == pgwire.TargetStatement && len(name) > 0 {
			delete(cv.stmts, string(name))
		} else if body[0] == pgwire.TargetPortal && len(name) > 0 {
			delete(cv.portals, string(name))
		}
		cv.push(expClose, at, c.clientAck, nil, body[:1+len(name)], nil)
	case pgwire.FrontendSync:
		cv.push(expSync, at, c.clientAck, nil, nil, nil)
	case pgwire.FrontendFunctionCall:
		cv.push(expFunctionCall, at, c.clientAck, nil, nil, nil)
	}
	// Flush, Terminate, COPY data and authentication answers expect nothing back.
}

// maxQueue bounds the answers a conversation waits for; a pipeline deeper than this is rare.
const maxQueue = 4096

// maxNamed bounds the named statements and portals a conversation remembers, as the proxy's
// frontend does: a client preparing without end must not grow the decoder without end.
const maxNamed = 4096

func (cv *conv) stmt(name []byte) []byte {
	if len(name) == 0 {
		return cv.unnamedStmt
	}
	return cv.stmts[string(name)]
}

func (cv *conv) stmtKnown(name []byte) bool {
	_, ok := cv.stmtCols[string(name)]
	return ok
}

func (cv *conv) portal(name []byte, create bool) *portal {
	if len(name) == 0 {
		return &cv.unnamedPortal
	}
	p := cv.portals[string(name)]
	if p == nil && create && len(cv.portals) < maxNamed {
		if cv.portals == nil {
			cv.portals = map[string]*portal{}
		}
		p = &portal{}
		cv.portals[string(name)] = p
	}
	return p
}

// push queues an answer the server owes. A slot's buffers are reused only once the queue has
// emptied at a flush: until then an event may point into them.
func (cv *conv) push(kind expect, at time.Time, ack uint32, text, name, bind []byte) {
	if len(cv.queue)-cv.head >= maxQueue {
		// Answers that never come (the capture misses the server's side): the oldest is
		// given up, so that a one-sided capture costs bounded memory.
		cv.pop()
		cv.overflow++
		cv.compact()
	}
	if len(cv.queue) == cap(cv.queue) {
		cv.queue = append(cv.queue, pending{})
	} else {
		cv.queue = cv.queue[:len(cv.queue)+1]
	}
	p := &cv.queue[len(cv.queue)-1]
	p.kind, p.at, p.ack, p.lost, p.known = kind, at, ack, false, false
	p.text = append(p.text[:0], text...)
	p.name = append(p.name[:0], name...)
	p.bind = append(p.bind[:0], bind...)
}

func (cv *conv) peek() *pending {
	if cv.head < len(cv.queue) {
		return &cv.queue[cv.head]
	}
	return nil
}

func (cv *conv) pop() { cv.head++ }

// answeredBefore drops, after a gap, the statements the server must have answered before the
// message at server sequence number seq: those the client sent before another it sent once it
// had received everything up to seq (its acknowledgement says so). A client that waits for
// each answer (most pollers) sends its next statement only after the answer to the last; so
// when the capture lost an answer, the statement it answered is not left at the head of the
// queue to take the next statement's answer. A pipelining client sends before it has its
// answers, its acknowledgements prove nothing, and nothing is dropped.
func (cv *conv) answeredBefore(seq uint32, e *Events) {
	last := &cv.queue[len(cv.queue)-1]
	if seqLess(last.ack, seq) {
		return
	}
	for p := cv.peek(); p != nil && seqLess(p.ack, last.ack); p = cv.peek() {
		if p.kind == expQuery || p.kind == expExecute || p.kind == expFunctionCall {
			p.lost = true
			// When its answer ended the capture cannot tell: between p.at and the next
			// statement's. Untimed, so that no duration or pause is made up.
			e.event(cv, p, p.at).Untimed = true
		}
		cv.pop()
		cv.endStatement()
	}
}

// server pairs a server message with the answer at the head of the queue.
func (e *Events) server(cv *conv, typ byte, body []byte, at time.Time) {
	switch typ {
	case pgwire.BackendAuthentication:
		if !cv.authDone && len(body) >= 4 && binary.BigEndian.Uint32(body) == 0 {
			cv.authDone, cv.authOK = true, true
		}
	case pgwire.BackendReadyForQuery:
		if cv.authOK && !cv.told {
			cv.told = true
			e.Observer.ConnAuthenticated(&cv.info, true, "")
		}
		e.readyForQuery(cv, at)
		e.flush(cv)
	case pgwire.BackendErrorResponse:
		e.errorResponse(cv, body, at)
	case pgwire.BackendRowDescription:
		if p := cv.peek(); p != nil && p.kind == expDescribe {
			if len(p.name) > 0 && p.name[0] == pgwire.TargetStatement {
				cv.described(p.name[1:], body)
			}
			cv.pop()
		} else {
			cv.startStatement()
		}
		cv.cols = append(cv.cols[:0], body...)
	case pgwire.BackendNoData:
		cv.popIf(expDescribe)
	case pgwire.BackendParseComplete:
		if p := cv.peek(); p != nil && p.kind == expParse {
			delete(cv.stmtCols, string(p.name))
			cv.pop()
		}
	case pgwire.BackendBindComplete:
		cv.popIf(expBind)
	case pgwire.BackendCloseComplete:
		cv.popIf(expClose)
	case pgwire.BackendDataRow:
		if cv.rows == 0 && len(cv.firstRow) == 0 {
			cv.firstRow = append(cv.firstRow, body[:min(len(body), event.FirstRowPrefix)]...)
		}
		_, _ = cv.digest.Write(body)
		cv.rows++
	case pgwire.BackendCommandComplete:
		tag, _, _ := pgwire.CString(body)
		e.complete(cv, tag, false, false, at)
	case pgwire.BackendEmptyQueryResponse:
		e.complete(cv, nil, false, true, at)
	case pgwire.BackendPortalSuspended:
		e.complete(cv, nil, true, false, at)
	case pgwire.BackendFunctionCallResponse:
		if p := cv.peek(); p != nil && p.kind == expFunctionCall {
			e.event(cv, p, at)
			cv.endStatement()
		}
	}
}

func (cv *conv) popIf(kind expect) {
	if p := cv.peek(); p != nil && p.kind == kind {
		cv.pop()
	}
}

func (cv *conv) startStatement() {
	cv.rows = 0
	cv.digest.Reset()
	cv.firstRow = cv.firstRow[:0]
}

func (cv *conv) endStatement() {
	cv.startStatement()
	cv.cols = cv.cols[:0]
}

// described remembers a prepared statement's RowDescription: clients with a statement cache
// (pgx, JDBC) describe once and then only Bind and Execute.
func (cv *conv) described(name, rowDesc []byte) {
	if cv.stmtCols == nil {
		cv.stmtCols = map[string][]byte{}
	}
	if len(cv.stmtCols) >= 256 {
		clear(cv.stmtCols)
	}
	cv.stmtCols[string(name)] = append(cv.stmtCols[string(name)][:0], rowDesc...)
}

// complete finishes the statement at the head of the queue.
func (e *Events) complete(cv *conv, tag []byte, suspended, empty bool, at time.Time) {
	p := cv.peek()
	if p == nil || (p.kind != expQuery && p.kind != expExecute) {
		if p == nil {
			e.Stats.Unpaired++
		}
		cv.endStatement()
		return
	}
	ev := e.event(cv, p, at)
	if !ev.AnswerLost {
		ev.Tag = cv.keep(tag)
	}
	ev.Suspended, ev.Empty = suspended, empty
	if p.kind == expExecute {
		cv.pop()
	} else {
		cv.index++
	}
	cv.endStatement()
}

// event appends the event of the statement p runs, answered at at.
func (e *Events) event(cv *conv, p *pending, at time.Time) *event.Event {
	start := p.at
	if cv.prevDone.After(start) {
		start = cv.prevDone // it waited in the pipeline behind the statement before it
	}
	if at.Before(start) {
		at = start
	}
	cv.prevDone = at
	cv.executed = true
	cv.statements++
	e.Stats.Statements++
	cv.events = append(cv.events, event.Event{Text: p.text, Index: cv.index, Start: start, Duration: at.Sub(start)})
	ev := &cv.events[len(cv.events)-1]
	switch p.kind {
	case expQuery:
		ev.Protocol = event.Simple
	case expFunctionCall:
		ev.Protocol = event.FunctionCall
	default:
		ev.Protocol = event.Extended
		ev.StatementName = p.name
		ev.Bind = event.BindMessage(p.bind)
	}
	if p.lost {
		e.Stats.AnswersLost++
		ev.AnswerLost = true
		return ev
	}
	ev.Rows = cv.rows
	cols := cv.cols
	if len(cols) == 0 && p.kind == expExecute && p.known {
		cols = cv.stmtCols[string(p.name)]
	}
	ev.Columns = cv.keep(cols)
	ev.FirstRow = cv.keep(cv.firstRow)
	if cv.rows > 0 {
		ev.Digest = max(cv.digest.Sum64(), 1)
	}
	return ev
}

// keep copies p into a slot that stays valid until the events are handed over.
func (cv *conv) keep(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if cv.keptN == len(cv.kept) {
		cv.kept = append(cv.kept, nil)
	}
	k := append(cv.kept[cv.keptN][:0], p...)
	cv.kept[cv.keptN] = k
	cv.keptN++
	return k
}

// errorResponse ends the statement at the head of the queue with the server's SQLSTATE; in the
// extended protocol the server then skips to the Sync, whose ReadyForQuery drops the rest.
func (e *Events) errorResponse(cv *conv, body []byte, at time.Time) {
	var code [5]byte
	copy(code[:], pgwire.ErrorField(body, pgwire.FieldCode))
	if !cv.authDone || (cv.authOK && !cv.told) {
		cv.authDone, cv.authOK, cv.told = true, false, true
		e.Observer.ConnAuthenticated(&cv.info, false, string(code[:]))
		return
	}
	p := cv.peek()
	if p == nil {
		return
	}
	cv.batchErr = true
	switch p.kind {
	case expQuery, expFunctionCall:
		ev := e.event(cv, p, at)
		ev.Failed, ev.SQLState = true, code
		cv.index++
	case expSync:
	default:
		if p.kind == expExecute || p.kind == expParse || p.kind == expBind {
			ev := e.event(cv, p, at)
			ev.Failed, ev.SQLState = true, code
		}
		cv.pop()
	}
	cv.endStatement()
}

// readyForQuery ends a Query or FunctionCall, or an extended batch up to its Sync. While the
// conversation recovers from a gap, a statement still waiting here lost its answer.
func (e *Events) readyForQuery(cv *conv, at time.Time) {
	cv.index = 0
	cv.endStatement()
	executed := cv.executed
	cv.executed = false
	var first time.Time
	for p := cv.peek(); p != nil; p = cv.peek() {
		if first.IsZero() {
			first = p.at
		}
		if cv.recovering && !cv.batchErr && (p.kind == expExecute || (p.kind == expQuery && !executed)) {
			p.lost = true
			e.event(cv, p, at)
			executed = true
		}
		if p.kind == expSync && !executed {
			e.exchange(cv, first, at)
		}
		cv.pop()
		if p.kind == expSync || p.kind == expQuery || p.kind == expFunctionCall {
			break
		}
	}
	cv.batchErr = false
	if cv.head == len(cv.queue) {
		cv.recovering = false // in step again
	}
}

// exchange appends the event of a batch that ran no statement.
func (e *Events) exchange(cv *conv, start, at time.Time) {
	if cv.prevDone.After(start) {
		start = cv.prevDone
	}
	if at.Before(start) {
		at = start
	}
	cv.prevDone = at
	cv.events = append(cv.events, event.Event{Protocol: event.Extended, Start: start, Duration: at.Sub(start), Exchange: true})
}

// flush hands the completed statements to the observer; then the queue's emptied slots and
// the kept copies may be reused.
func (e *Events) flush(cv *conv) {
	if len(cv.events) > 0 {
		e.open(cv)
		e.Observer.Statements(&cv.info, cv.events)
		clear(cv.events)
		cv.events = cv.events[:0]
		cv.keptN = 0
	}
	if cv.head == len(cv.queue) {
		cv.queue, cv.head = cv.queue[:0], 0
	} else {
		cv.compact()
	}
}

// compact moves the waiting answers to the front of the queue once most of it is done with.
// The slots they leave are cleared, not reused: an event not yet handed over may point into
// their buffers.
func (cv *conv) compact() {
	if cv.head > 64 && cv.head*2 > len(cv.queue) {
		n := copy(cv.queue, cv.queue[cv.head:])
		clear(cv.queue[n:])
		cv.queue, cv.head = cv.queue[:n], 0
	}
}
