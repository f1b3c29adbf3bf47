package proxy

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// frontend inspects what the client sends: it learns prepared statements and portals and
// queues, in order, the answers the server will give, so the backend side can pair each answer
// with its statement. It runs on the client-to-server goroutine only.
type frontend struct {
	prod       producer
	co         *coalescing // nil unless the proxy has a cache
	maxMessage int
	end        *sessionEnd // the session's: Terminate is its end, so the server's close is no loss
	keepServer bool        // Terminate is not forwarded: the session may keep its server connection

	now    time.Time // read once per run of messages, when first needed
	hasNow bool

	unnamedStmt   preparedStmt
	stmts         map[string]*preparedStmt
	unnamedPortal portal
	portals       map[string]*portal
	named         int // bytes held by stmts and portals (keys and buffer capacities)
}

// Bounds on what the frontend remembers of named statements and portals. The server forgets a
// statement whose Parse failed and a portal when its transaction ends; the proxy does not hear
// of either, so without a bound a client could make it hold any amount (a failing Parse of a
// megabyte under a new name, again and again). Past a bound an arbitrary entry is forgotten:
// its statements are then observed without their text.
const (
	maxNamedStmts   = 4096
	maxNamedPortals = 1024
	maxNamedBytes   = 16 << 20
)

type preparedStmt struct {
	text  []byte
	types []byte // the Parse's parameter type section: part of what a cached answer depends on
	cls   stmtClass
}

type portal struct {
	text     []byte // the statement's text when the portal was bound
	stmtName []byte
	bind     []byte    // the Bind body
	cls      stmtClass // (coalescing) the class of text: the statement may be redefined since
}

func newFrontend(q *queue, maxMessage int, end *sessionEnd) *frontend {
	return &frontend{prod: producer{q: q}, maxMessage: maxMessage, end: end}
}

func (f *frontend) timestamp() time.Time {
	if !f.hasNow {
		f.now, f.hasNow = time.Now(), true
	}
	return f.now
}

func (f *frontend) header(typ byte, length int) error {
	switch typ {
	case pgwire.FrontendQuery, pgwire.FrontendParse, pgwire.FrontendBind, pgwire.FrontendExecute, pgwire.FrontendDescribe, pgwire.FrontendClose, pgwire.FrontendSync, pgwire.FrontendFlush, pgwire.FrontendFunctionCall, pgwire.FrontendTerminate, pgwire.CopyData, pgwire.CopyDone, pgwire.FrontendCopyFail, pgwire.FrontendPassword:
	default:
		return malformedf("invalid frontend message type %q", typ)
	}
	if f.maxMessage > 0 && length-4 > f.maxMessage {
		return &errTooLarge{typ: typ, size: length - 4, max: f.maxMessage}
	}
	return nil
}

func (f *frontend) wantsWhole(typ byte) bool {
	if f.co != nil && f.co.held.active {
		return true // any message ends a held batch, which must go before it
	}
	switch typ {
	case pgwire.CopyData, pgwire.CopyDone, pgwire.FrontendCopyFail, pgwire.FrontendPassword: // COPY data and authentication: never looked at
		return false
	}
	return true
}

func (f *frontend) part(byte, []byte, bool) {}

func (f *frontend) beforeWrite() { f.prod.publish() }

func (f *frontend) afterWrite() { f.hasNow = false }

func (f *frontend) injection() []byte { return f.co.inject }

func (f *frontend) message(typ byte, body []byte, truncated bool) (verdict, error) {
	if typ == pgwire.FrontendTerminate && f.keepServer {
		// The server connection may outlive this client: its Terminate stops here, after
		// anything held back before it.
		f.end.set(clientTerminated)
		var v verdict
		if f.co != nil && f.co.held.active {
			f.co.release(f)
			v = vInject
		}
		return v, errTerminated
	}
	if f.co != nil && !truncated {
		return f.co.message(f, typ, body)
	}
	var v verdict
	if f.co != nil && f.co.held.active {
		f.co.release(f) // a message too large to hold whole: the held batch goes first
		v = vInject
	}
	return v, f.forward(typ, body, truncated)
}

// forward checks a message the server will see, learns what it names and queues the answers
// it will bring.
func (f *frontend) forward(typ byte, body []byte, truncated bool) error {
	switch typ {
	case pgwire.FrontendQuery:
		text, _, ok := cstring(body)
		if !ok {
			if !truncated {
				return malformedf("Query message without terminator")
			}
			text = body
		}
		f.prod.set(f.prod.add(), expQuery, f.timestamp(), text, nil, nil)
	case pgwire.FrontendParse:
		name, query, types, ok := parseParse(body, truncated)
		if !ok {
			return malformedf("malformed Parse message")
		}
		f.parse(name, query, types)
		f.prod.set(f.prod.add(), expParse, f.timestamp(), query, name, nil)
	case pgwire.FrontendBind:
		portalName, rest, ok := cstring(body)
		stmtName, _, ok2 := cstring(rest)
		if !ok || !ok2 || (!truncated && BindMessage(body).ResultFormats() == nil) {
			return malformedf("malformed Bind message")
		}
		p := f.bindPortal(portalName, stmtName, body)
		f.prod.set(f.prod.add(), expBind, f.timestamp(), p.text, stmtName, nil)
	case pgwire.FrontendExecute:
		portalName, rest, ok := cstring(body)
		if !ok || len(rest) < 4 {
			return malformedf("malformed Execute message")
		}
		f.expectExecute(f.prod.add(), portalName, rest)
	case pgwire.FrontendDescribe:
		if !validDescribeOrClose(body) {
			return malformedf("malformed Describe message")
		}
		f.expect(typ, body)
	case pgwire.FrontendClose:
		if !validDescribeOrClose(body) {
			return malformedf("malformed Close message")
		}
		name, _, _ := cstring(body[1:])
		f.close(body[0], name)
		f.prod.set(f.prod.add(), expClose, f.timestamp(), nil, body[:1+len(name)], nil)
	case pgwire.FrontendSync:
		f.prod.set(f.prod.add(), expSync, f.timestamp(), nil, nil, nil)
	case pgwire.FrontendFunctionCall:
		f.prod.set(f.prod.add(), expFunctionCall, f.timestamp(), nil, nil, nil)
	case pgwire.FrontendTerminate:
		f.end.set(clientTerminated)
	}
	// 'H' (Flush) and 'X' (Terminate) expect nothing back.
	return nil
}

// expect queues the answer to a Parse, Bind, Describe or Execute that has been checked (and,
// for Parse and Bind, learnt) already. A held message passes here when it is released.
func (f *frontend) expect(typ byte, body []byte) *pending {
	e := f.prod.add()
	switch typ {
	case pgwire.FrontendParse:
		name, rest, _ := cstring(body)
		query, _, ok := cstring(rest)
		if !ok {
			query = rest // truncated
		}
		f.prod.set(e, expParse, f.timestamp(), query, name, nil)
	case pgwire.FrontendBind:
		portalName, _, _ := cstring(body)
		p := f.portal(portalName)
		if p == nil { // forgotten over the budget
			f.prod.set(e, expBind, f.timestamp(), nil, nil, nil)
			break
		}
		f.prod.set(e, expBind, f.timestamp(), p.text, p.stmtName, nil)
	case pgwire.FrontendExecute:
		portalName, rest, _ := cstring(body)
		f.expectExecute(e, portalName, rest)
	case pgwire.FrontendDescribe:
		name, _, _ := cstring(body[1:])
		// The name keeps its 'S'/'P' prefix so the backend can tell a statement from a portal.
		f.prod.set(e, expDescribe, f.timestamp(), nil, body[:1+len(name)], nil)
	}
	return e
}

// expectExecute queues an Execute's answer; rest is what follows the portal name (the row limit).
func (f *frontend) expectExecute(e *pending, portalName, rest []byte) {
	if p := f.portal(portalName); p != nil {
		f.prod.set(e, expExecute, f.timestamp(), p.text, p.stmtName, p.bind)
	} else {
		f.prod.set(e, expExecute, f.timestamp(), nil, nil, nil)
	}
	e.limited = binary.BigEndian.Uint32(rest) != 0
}

// parseParse splits a Parse body into statement name, query and the parameter type section.
func parseParse(body []byte, truncated bool) (name, query, types []byte, ok bool) {
	name, rest, ok := cstring(body)
	if !ok {
		return nil, nil, nil, false
	}
	query, types, ok2 := cstring(rest)
	if !ok2 {
		if !truncated {
			return nil, nil, nil, false
		}
		return name, rest, nil, true
	}
	return name, query, types, true
}

func validDescribeOrClose(body []byte) bool {
	if len(body) < 2 || (body[0] != pgwire.TargetStatement && body[0] != pgwire.TargetPortal) {
		return false
	}
	_, _, ok := cstring(body[1:])
	return ok
}

// parse records a prepared statement's text. A second Parse of an existing named statement
// fails on the server (42P05), so the first text is kept.
func (f *frontend) parse(name, query, types []byte) {
	if len(name) == 0 {
		f.unnamedStmt.text = append(f.unnamedStmt.text[:0], query...)
		f.unnamedStmt.types = append(f.unnamedStmt.types[:0], types...)
		f.unnamedStmt.cls = stmtClass{}
		return
	}
	if f.stmts == nil {
		f.stmts = make(map[string]*preparedStmt)
	}
	if _, exists := f.stmts[string(name)]; !exists {
		for len(f.stmts) >= maxNamedStmts {
			f.evictStmt()
		}
		s := &preparedStmt{text: append([]byte(nil), query...), types: append([]byte(nil), types...)}
		f.stmts[string(name)] = s
		f.named += len(name) + s.capacity()
		f.trim()
	}
}

func (s *preparedStmt) capacity() int { return cap(s.text) + cap(s.types) }

func (p *portal) capacity() int { return cap(p.text) + cap(p.stmtName) + cap(p.bind) }

// trim forgets named portals, then named statements, until what they hold is within budget.
func (f *frontend) trim() {
	for f.named > maxNamedBytes && len(f.portals) > 0 {
		f.evictPortal()
	}
	for f.named > maxNamedBytes && len(f.stmts) > 0 {
		f.evictStmt()
	}
}

// evictStmt forgets one named statement, whichever the map yields first.
func (f *frontend) evictStmt() {
	for k, s := range f.stmts {
		f.named -= len(k) + s.capacity()
		delete(f.stmts, k)
		return
	}
}

func (f *frontend) evictPortal() {
	for k, p := range f.portals {
		f.named -= len(k) + p.capacity()
		delete(f.portals, k)
		return
	}
}

func (f *frontend) stmt(name []byte) *preparedStmt {
	if len(name) == 0 {
		return &f.unnamedStmt
	}
	return f.stmts[string(name)] // nil when unknown: the server will refuse the Bind
}

func (f *frontend) portal(name []byte) *portal {
	if len(name) == 0 {
		return &f.unnamedPortal
	}
	return f.portals[string(name)]
}

// bindPortal creates (or, for the unnamed portal, replaces) a portal from a statement.
func (f *frontend) bindPortal(portalName, stmtName, body []byte) *portal {
	p := &f.unnamedPortal
	named := len(portalName) > 0
	if named {
		if f.portals == nil {
			f.portals = make(map[string]*portal)
		}
		if p = f.portals[string(portalName)]; p == nil {
			for len(f.portals) >= maxNamedPortals {
				f.evictPortal()
			}
			p = &portal{}
			f.portals[string(portalName)] = p
			f.named += len(portalName)
		}
	}
	before := p.capacity()
	p.text = p.text[:0]
	p.cls = stmtClass{}
	if s := f.stmt(stmtName); s != nil {
		p.text = append(p.text, s.text...)
		p.cls = s.cls
	}
	p.stmtName = append(p.stmtName[:0], stmtName...)
	p.bind = append(p.bind[:0], body...)
	if named {
		f.named += p.capacity() - before
		f.trim() // p may be forgotten too: the caller still reads it, the map no longer has it
	}
	return p
}

func (f *frontend) close(kind byte, name []byte) {
	switch {
	case kind == pgwire.TargetStatement && len(name) == 0:
		f.unnamedStmt.text = f.unnamedStmt.text[:0]
	case kind == pgwire.TargetStatement:
		if s, ok := f.stmts[string(name)]; ok {
			f.named -= len(name) + s.capacity()
			delete(f.stmts, string(name))
		}
	case len(name) == 0:
		f.unnamedPortal.text = f.unnamedPortal.text[:0]
	default:
		if p, ok := f.portals[string(name)]; ok {
			f.named -= len(name) + p.capacity()
			delete(f.portals, string(name))
		}
	}
}

// errTooLarge is a client message over --max-message-size.
type errTooLarge struct {
	typ       byte
	size, max int
}

func (e *errTooLarge) Error() string {
	return "message of type '" + string(e.typ) + "' is " + strconv.Itoa(e.size) + " bytes, over the limit of " + strconv.Itoa(e.max)
}
