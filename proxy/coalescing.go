package proxy

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// coalescing is the client side of a session whose proxy has a Cache. It classifies what the
// client sends, invalidates on writes, and answers eligible reads from the cache when the
// session's state makes a cached answer indistinguishable from a fresh one (up to staleness):
//
//   - nothing is outstanding: every answer the server owed has been written to the client;
//   - the server is idle ('I'), or (ScopeReadCommitted) inside a transaction that so far ran
//     only a plain BEGIN and eligible reads;
//   - the session never changed state the server does not report (search_path, roles, ...);
//   - the read is one Query, or one batch [Parse] Bind [Describe portal] Execute Sync on the
//     unnamed portal with no row limit.
//
// Everything else is forwarded as if there were no cache. An extended batch is held back
// (not forwarded) from its Parse or Bind until its Sync shows whether it is such a read; any
// other message releases it, in order, before itself.
type coalescing struct {
	s     *Session
	cache Cache
	cls   Classifier

	tainted bool   // the session changed unreported state: no hits for the rest of its life
	startup uint64 // digest of the startup packet's settings: part of every key

	held heldBatch

	tail   tailAnswer
	inject []byte // what the pump writes in place of the current message (vInject)
	out    []byte // an answer being written to the client
	key    []byte
	events [1]Event
}

// heldBatch is an extended batch held back from the server until its Sync shows whether the
// cache may answer it: [Parse] Bind [Describe portal] Execute, in that order, on the unnamed
// portal. Any other message ends it: the batch is released upstream, in order, before it.
type heldBatch struct {
	active bool   // a batch is being held
	msgs   []byte // its messages, as the client sent them
	// Which messages it holds so far.
	parse, bind, describe, execute bool
	stmt                           *preparedStmt // the statement the Bind binds
}

// start begins holding a batch.
func (h *heldBatch) start() { h.active, h.msgs = true, h.msgs[:0] }

// reset forgets the batch (answered, released or abandoned).
func (h *heldBatch) reset() {
	*h = heldBatch{msgs: h.msgs[:0]}
}

// Session-wide state the two sides share for coalescing. The backend writes it before each
// write to the client (under the client's write lock); the frontend reads it.
type coalesceState struct {
	answered  atomic.Int64  // expected answers popped (published as written)
	settings  atomic.Uint64 // digest of the key-changing settings the session made (StmtSetting)
	lost      atomic.Bool   // a setting's fate could not be followed: no hits for the session's life
	servable  atomic.Bool   // the last ReadyForQuery left a state where hits may be served
	paramHash atomic.Uint64 // digest of the ParameterStatus values the server reported
	observeMu sync.Mutex    // the observer hears one side at a time
}

// tailAnswer is the cached rest of an answer whose Parse went upstream: the backend writes it
// in place of the ReadyForQuery that answers the Parse's Sync. The backend copies what it
// keeps before the frontend may reuse it.
type tailAnswer struct {
	ans                  *Answer
	describe             bool
	text, stmtName, bind []byte
	received             time.Time
}

// stmtClass caches a prepared statement's classification.
type stmtClass struct {
	done bool
	Class
}

// maxHeld bounds the bytes of a held batch: a larger one is no poll.
const maxHeld = 64 << 10

func newCoalescing(s *Session, f *frontend, c Cache) *coalescing {
	f.prod.notes = true
	return &coalescing{s: s, cache: c, cls: c.NewClassifier(), startup: startupDigest(s.info.Params)}
}

// startupDigest hashes the settings the client sent in its startup packet (options=-c ...,
// bytea_output, search_path, ...): the server applies them without reporting most of them, and
// they can change what a read returns. user and database are in the key already;
// application_name never changes a watched read's answer.
func startupDigest(params map[string]string) uint64 {
	var kv []string
	for k, v := range params {
		switch k {
		case "user", "database", "application_name":
			continue
		}
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return paramDigest(digestSeed, kv)
}

// message handles one whole client message. It returns the verdict for the pump.
func (co *coalescing) message(f *frontend, typ byte, body []byte) (verdict, error) {
	if co.held.active {
		switch v, held, err := co.hold(f, typ, body); {
		case err != nil:
			return 0, err
		case held:
			return v, nil
		}
		// The message is not part of a cacheable batch: release the batch before it.
		co.release(f)
		v, err := co.dispatch(f, typ, body)
		return v | vInject, err
	}
	if (typ == pgwire.FrontendParse || typ == pgwire.FrontendBind) && co.servable(f) {
		co.held.start()
		if v, held, err := co.hold(f, typ, body); err != nil || held {
			return v, err
		}
		co.held.reset()
	}
	return co.dispatch(f, typ, body)
}

func (co *coalescing) dispatch(f *frontend, typ byte, body []byte) (verdict, error) {
	if typ == pgwire.FrontendQuery {
		return co.query(f, body)
	}
	return co.classified(f, typ, body)
}

// classified forwards a message, noting for the backend what each statement is.
func (co *coalescing) classified(f *frontend, typ byte, body []byte) (verdict, error) {
	if typ == pgwire.FrontendParse {
		if _, query, _, ok := parseParse(body, false); ok && !co.cache.Enabled() && co.cls.Taints(query) {
			co.tainted = true
		}
	}
	if err := f.forward(typ, body, false); err != nil {
		return 0, err
	}
	if typ == pgwire.FrontendExecute && !co.cache.Enabled() {
		f.prod.staged[len(f.prod.staged)-1].note.class = StmtUnknown
	} else if typ == pgwire.FrontendExecute {
		portalName, _, _ := cstring(body)
		c, bind := &unknownStatement, BindMessage(nil)
		if p := f.portal(portalName); p != nil {
			// The portal's own text and class: its statement may have been closed and
			// redefined since it was bound, and the portal still runs the old one.
			if !p.cls.done {
				p.cls = stmtClass{done: true, Class: co.cls.Classify(p.text)}
			}
			c, bind = &p.cls.Class, p.bind
		}
		co.note(f.prod.staged[len(f.prod.staged)-1:], c, bind)
		if c.Kind == StmtRead {
			co.cache.Bypassed()
		}
	}
	return 0, nil
}

// unknownStatement is what an Execute of a portal the proxy no longer knows (forgotten past its
// bounds) may be: anything, a write to every watched table included.
var unknownStatement = Class{Kind: StmtWrite, Watch: -1, Touch: Touch{All: true}}

// note records on the queued entry for an Execute (or Query) what the statement is: the
// backend needs it to keep the transaction's "reads only" state and to invalidate again at
// commit. A write invalidates now, before the server runs it.
func (co *coalescing) note(e []pending, c *Class, bind BindMessage) {
	if len(e) == 0 || c == nil {
		return
	}
	p := e[0].note
	p.class = c.Kind
	if c.Taint {
		co.tainted = true
	}
	switch c.Kind {
	case StmtSetting:
		p.setting = c.Setting
	case StmtWrite:
		t := c.Touch
		if c.KeyParam > 0 {
			var ok bool
			if t, ok = co.cls.BindTouch(c, bind); !ok {
				t = Touch{Watch: int16(c.Watch), Table: true}
			}
		}
		p.touch, p.wrote = t, true
		co.cache.Invalidate(t)
	}
}

// stmtClassOf classifies a prepared statement once.
func (co *coalescing) stmtClassOf(st *preparedStmt) *Class {
	if st == nil {
		return nil
	}
	if !st.cls.done {
		st.cls = stmtClass{done: true, Class: co.cls.Classify(st.text)}
	}
	return &st.cls.Class
}

// servable is the whole rule for when a cached answer may be served now, in place of the
// server's: it would be indistinguishable from the server's answer but for its age.
//
//   - The cache is on, and the session never changed state the server does not report
//     (co.tainted: SET ROLE, search_path, ... seen by the classifier; st.lost: a setting
//     whose fate could not be followed).
//   - Nothing the server owes the session is outstanding: every answer the frontend queued
//     (f.prod.added) has been written to the client (st.answered, published by the backend
//     before each write). A cached answer written now cannot overtake one of the server's.
//   - The server's last ReadyForQuery left a state where hits may be served (st.servable,
//     set by the backend): idle, or with ScopeReadCommitted a transaction block that so far
//     ran only a plain BEGIN and eligible reads.
//
// What is eligible (one Query, or one held batch; a watched read) is decided by the caller.
func (co *coalescing) servable(f *frontend) bool {
	st := &co.s.co
	return !co.tainted && co.cache.Enabled() && f.prod.added == st.answered.Load() && st.servable.Load() && !st.lost.Load()
}

// query handles a Query message.
func (co *coalescing) query(f *frontend, body []byte) (verdict, error) {
	text, _, ok := cstring(body)
	if !ok {
		return 0, malformedf("Query message without terminator")
	}
	if !co.cache.Enabled() {
		if co.cls.Taints(text) {
			co.tainted = true
		}
		err := f.forward(pgwire.FrontendQuery, body, false)
		if err == nil {
			f.prod.staged[len(f.prod.staged)-1].note.class = StmtUnknown
		}
		return 0, err
	}
	c := co.cls.Classify(text)
	var fill Fill
	if c.Kind == StmtRead && c.KeyParam == 0 {
		if !co.servable(f) {
			co.cache.Bypassed()
		} else {
			key := co.cacheKey(pgwire.FrontendQuery, text, nil, nil)
			ans, fl := co.cache.Get(key, c.Touch, time.Now())
			if ans != nil && ans.Desc != nil {
				received := f.timestamp()
				co.out = appendAnswer(co.out[:0], ans, false, true, co.s.status())
				if co.answer(ans, Event{Protocol: Simple, Text: text}, received) {
					return vWithhold, nil
				}
			}
			fill = fl
		}
	}
	f.prod.set(f.prod.add(), expQuery, f.timestamp(), text, nil, nil)
	e := f.prod.staged[len(f.prod.staged)-1:]
	co.note(e, &c, nil)
	e[0].note.fill = fill
	e[0].note.fillDesc = true
	return 0, nil
}

// hold looks at a message while a batch is (or may start being) held. held is false when the
// message does not continue a cacheable batch.
func (co *coalescing) hold(f *frontend, typ byte, body []byte) (v verdict, held bool, err error) {
	switch {
	case typ == pgwire.FrontendParse && !co.held.parse && !co.held.bind:
		name, query, types, ok := parseParse(body, false)
		if !ok {
			return 0, false, nil // forward reports it
		}
		if len(name) > 0 && f.stmts[string(name)] != nil {
			// The server refuses to redefine a named statement (42P05) and keeps the old one,
			// whose class this Parse must not overwrite.
			return 0, false, nil
		}
		c := co.cls.Classify(query)
		if c.Kind != StmtRead {
			return 0, false, nil
		}
		f.parse(name, query, types)
		if st := f.stmt(name); st != nil {
			st.cls = stmtClass{done: true, Class: c}
		}
		co.held.parse = true
	case typ == pgwire.FrontendBind && !co.held.bind:
		portalName, rest, ok := cstring(body)
		stmtName, _, ok2 := cstring(rest)
		if !ok || !ok2 || len(portalName) != 0 || BindMessage(body).ResultFormats() == nil {
			return 0, false, nil
		}
		st := f.stmt(stmtName)
		if c := co.stmtClassOf(st); c == nil || c.Kind != StmtRead {
			return 0, false, nil
		}
		f.bindPortal(portalName, stmtName, body)
		co.held.bind, co.held.stmt = true, st
	case typ == pgwire.FrontendDescribe && co.held.bind && !co.held.describe && !co.held.execute && len(body) == 2 && body[0] == pgwire.TargetPortal && body[1] == 0:
		co.held.describe = true
	case typ == pgwire.FrontendExecute && co.held.bind && !co.held.execute && len(body) == 5 && body[0] == 0 && binary.BigEndian.Uint32(body[1:]) == 0:
		co.held.execute = true
	case typ == pgwire.FrontendSync && co.held.execute:
		return co.sync(f, body)
	default:
		return 0, false, nil
	}
	if len(co.held.msgs)+headerLen+len(body) > maxHeld {
		return 0, false, nil
	}
	co.held.msgs = appendMessage(co.held.msgs, typ, body)
	return vWithhold, true, nil
}

// sync decides a held batch at its Sync: answered from the cache, or released upstream (with
// a fill when this read is to fill the cache).
func (co *coalescing) sync(f *frontend, body []byte) (verdict, bool, error) {
	received := f.timestamp()
	st := co.held.stmt
	c := &st.cls.Class
	bind := BindMessage(f.unnamedPortal.bind)
	t, ok := c.Touch, true
	if c.KeyParam > 0 {
		t, ok = co.cls.BindTouch(c, bind)
	}
	var fill Fill
	if ok {
		key := co.cacheKey(pgwire.FrontendExecute, st.text, st.types, bind)
		ans, fl := co.cache.Get(key, t, time.Now())
		if ans != nil && (ans.Desc != nil || !co.held.describe) {
			ev := Event{Protocol: Extended, Text: st.text, StatementName: f.unnamedPortal.stmtName, Bind: bind}
			if co.held.parse {
				// Never swallow a Parse: it goes upstream with this Sync, and the backend puts
				// the cached rest of the answer in place of the ReadyForQuery.
				v := co.releaseParse(f, body, ans, ev, received)
				return v, true, nil
			}
			co.out = appendAnswer(co.out[:0], ans, true, co.held.describe, co.s.status())
			if co.answer(ans, ev, received) {
				co.reset()
				return vWithhold, true, nil
			}
		}
		fill = fl
	}
	// A miss: the batch goes upstream as the client sent it, and its Sync after it.
	describe := co.held.describe
	exec := co.release(f)
	if exec != nil {
		exec.note.fill = fill
		exec.note.fillDesc = describe
	} else if fill != nil {
		fill.Abandon()
	}
	if err := f.forward(pgwire.FrontendSync, body, false); err != nil {
		return 0, true, err
	}
	co.reset()
	return vInject, true, nil
}

// releaseParse sends the held Parse upstream with the client's Sync, and leaves the rest of
// the answer to the backend.
func (co *coalescing) releaseParse(f *frontend, sync []byte, ans *Answer, ev Event, received time.Time) verdict {
	co.inject = co.inject[:0]
	pos := 0
	for pos < len(co.held.msgs) {
		typ, n := co.held.msgs[pos], int(be32(co.held.msgs[pos+1:]))
		if typ == pgwire.FrontendParse {
			msg := co.held.msgs[pos : pos+1+n]
			co.inject = append(co.inject, msg...)
			f.expect(pgwire.FrontendParse, msg[headerLen:])
		}
		pos += 1 + n
	}
	co.inject = appendMessage(co.inject, pgwire.FrontendSync, sync)
	f.prod.set(f.prod.add(), expSync, received, nil, nil, nil)
	// One tail is enough: the next hit needs this Sync answered first.
	t := &co.tail
	t.ans, t.describe, t.received = ans, co.held.describe, received
	t.text = append(t.text[:0], ev.Text...)
	t.stmtName = append(t.stmtName[:0], ev.StatementName...)
	t.bind = append(t.bind[:0], ev.Bind...)
	f.prod.staged[len(f.prod.staged)-1].note.tail = t
	co.reset()
	return vWithhold | vInject
}

// release queues the answers of the held messages and has the pump write them. It returns the
// queued Execute, if the batch had one.
func (co *coalescing) release(f *frontend) *pending {
	co.inject = append(co.inject[:0], co.held.msgs...)
	for pos := 0; pos < len(co.held.msgs); {
		typ, n := co.held.msgs[pos], int(be32(co.held.msgs[pos+1:]))
		f.expect(typ, co.held.msgs[pos+headerLen:pos+1+n])
		pos += 1 + n
	}
	var exec *pending
	if co.held.execute { // the Execute is the last held message
		last := f.prod.staged[len(f.prod.staged)-1:]
		co.note(last, &co.held.stmt.cls.Class, f.unnamedPortal.bind)
		exec = &last[0]
	}
	co.reset()
	return exec
}

func (co *coalescing) reset() { co.held.reset() }

// answer writes co.out to the client and tells the observer; false when it could not be
// written now (the server side is mid-message) and the read must be forwarded instead.
func (co *coalescing) answer(ans *Answer, ev Event, received time.Time) bool {
	ok, err := co.s.s2c.writeBetween(co.out)
	if !ok {
		return false
	}
	if err != nil {
		co.s.client.Close() // the client is gone; its side of the session ends on the next read
	}
	co.s.observeCached(co.events[:], ans, ev, received)
	return true
}

// appendAnswer appends a cached answer as the server would have written it: BindComplete for
// an extended batch, the RowDescription when the batch described its portal (a Query always
// does), the rows, the CommandComplete, and ReadyForQuery with the session's status. Every
// answer the cache gives is built here.
func appendAnswer(dst []byte, ans *Answer, extended, describe bool, status byte) []byte {
	if extended {
		dst = pgwire.AppendBindComplete(dst)
	}
	if describe {
		dst = append(dst, ans.Desc...)
	}
	return pgwire.AppendReadyForQuery(append(append(dst, ans.Rows...), ans.Complete...), status)
}

// cachedEvent is ev, a statement the cache answered, received at received and answered at now,
// with what the answer says: columns, first row, rows, digest and command tag. Every event of
// a cached answer is built here.
func cachedEvent(ev Event, ans *Answer, received, now time.Time) Event {
	ev.Start, ev.Duration = received, now.Sub(received)
	ev.Columns, ev.FirstRow = ans.Columns, ans.FirstRow
	ev.Rows, ev.Digest, ev.Cached = ans.NRows, ans.Digest, true
	if len(ans.Complete) > headerLen {
		ev.Tag, _, _ = cstring(ans.Complete[headerLen:])
	}
	return ev
}

// observeCached tells the observer about a statement the cache answered.
func (s *Session) observeCached(slot []Event, ans *Answer, ev Event, received time.Time) {
	slot[0] = cachedEvent(ev, ans, received, time.Now())
	s.co.observeMu.Lock()
	s.observer.Statements(&s.info, slot[:1])
	s.co.observeMu.Unlock()
	s.statements.Add(1)
	slot[0] = Event{}
}

// status is the transaction status the server last reported.
func (s *Session) status() byte { return byte(s.txStatus.Load()) }

// cacheKey identifies one read: who asks (user, database, the reported session parameters),
// the exact statement text, its parameter types, and for the extended protocol the bound
// values with their formats and the result formats.
func (co *coalescing) cacheKey(kind byte, text, types []byte, bind BindMessage) []byte {
	s := co.s
	k := append(co.key[:0], kind)
	k = append(k, s.info.User...)
	k = append(k, 0)
	k = append(k, s.info.Database...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, s.co.paramHash.Load())
	k = binary.BigEndian.AppendUint64(k, co.startup)
	k = binary.BigEndian.AppendUint64(k, s.co.settings.Load())
	k = binary.BigEndian.AppendUint32(k, uint32(len(text)))
	k = append(k, text...)
	if kind == pgwire.FrontendExecute {
		k = binary.BigEndian.AppendUint32(k, uint32(len(types)))
		k = append(k, types...)
		k = appendBindKey(k, bind)
	}
	co.key = k
	return k
}

// appendBindKey appends the parameters (format and value of each) and the result formats,
// written the same way whatever shorthand the client used: no codes, one code for all, or a
// code per column all the same mean one thing.
func appendBindKey(k []byte, bind BindMessage) []byte {
	bind.Params(func(i int, format int16, v []byte) bool {
		k = append(k, byte(format))
		if v == nil {
			k = binary.BigEndian.AppendUint32(k, 0xffffffff) // NULL
			return true
		}
		k = binary.BigEndian.AppendUint32(k, uint32(len(v)))
		k = append(k, v...)
		return true
	})
	rf := bind.ResultFormats()
	n := int(binary.BigEndian.Uint16(rf))
	codes := rf[2 : 2+2*n]
	same := true
	for i := 2; i < len(codes); i += 2 {
		if codes[i] != codes[0] || codes[i+1] != codes[1] {
			same = false
		}
	}
	if same {
		var c uint16
		if n > 0 {
			c = binary.BigEndian.Uint16(codes)
		}
		return binary.BigEndian.AppendUint16(append(k, 'R', 1), c)
	}
	return append(append(k, 'R', 0), rf...)
}

// appendMessage appends a protocol message with its header.
func appendMessage(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(body)))
	return append(dst, body...)
}

// paramDigest hashes the server-reported parameters (name=value, in name order).
func paramDigest(seed maphash.Seed, params []string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, p := range params {
		h.WriteString(p)
		h.WriteByte(0)
	}
	return h.Sum64()
}
