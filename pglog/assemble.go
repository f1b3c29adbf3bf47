package pglog

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// entry is one log message as any format gives it: the prefix's fields, the severity, the
// message and the parts that stderr writes on lines of their own (DETAIL, STATEMENT). Its
// buffers are reused from message to message.
type entry struct {
	time         time.Time
	pid          int
	sessionID    []byte
	sessionStart time.Time
	user, db     []byte
	app, host    []byte
	port         int
	sev          severity
	message      []byte
	detail       []byte
	statement    []byte
}

func (e *entry) clear() {
	e.time, e.pid, e.sessionStart, e.port, e.sev = time.Time{}, 0, time.Time{}, 0, sevNone
	e.sessionID, e.user, e.db, e.app, e.host = e.sessionID[:0], e.user[:0], e.db[:0], e.app[:0], e.host[:0]
	e.message, e.detail, e.statement = e.message[:0], e.detail[:0], e.statement[:0]
}

// session is what the log told about one backend so far.
type session struct {
	id      string
	pid     int
	start   time.Time // %s, when the prefix has it
	host    string
	port    int
	user    string
	db      string
	app     string
	pending *item // a statement logged at its start, waiting for its duration or error
	conn    *item // a connection received, waiting for its authorization
	last    time.Time
	// lastText is the session's latest statement text.
	lastText string
	// fetching: the last statement line was "execute fetch from", whose bare duration line
	// is expected and pairs with nothing.
	fetching bool
}

// item is a record on its way out: in the reorder heap until the log has moved past it.
type item struct {
	rec   Record
	seq   int64
	final bool
	sess  *session
}

var (
	bStatement  = []byte("statement: ")
	bExecute    = []byte("execute ")
	bFetch      = []byte("execute fetch from ")
	bDuration   = []byte("duration: ")
	bConnRecv   = []byte("connection received: ")
	bConnAuth   = []byte("connection authorized: ")
	bReplAuth   = []byte("replication connection authorized: ")
	bDisconnect = []byte("disconnection: session time: ")
	bParameters = []byte("parameters: ")
	bParse      = []byte("parse ")
	bBind       = []byte("bind ")
	bUnnamed    = []byte("<unnamed>")
	bUnknown    = []byte("[unknown]")
)

// handle turns one entry into records, or into changes to the records its session has
// waiting.
func (r *Reader) handle(e *entry) {
	r.seq++
	if !e.time.IsZero() && e.time.After(r.maxTime) {
		r.maxTime = e.time
		r.watermark = e.time.Add(-r.opt.Window).UnixNano()
	}
	msg := e.message
	switch e.sev {
	case sevLog:
		if len(msg) < 10 {
			return
		}
		switch msg[0] {
		case 's':
			if bytes.HasPrefix(msg, bStatement) {
				s := r.session(e, true)
				r.finishPending(s)
				it := r.statement(s, e, e.time, Simple, nil, msg[len(bStatement):])
				s.pending = it
			}
		case 'e':
			if bytes.HasPrefix(msg, bFetch) {
				if s := r.session(e, false); s != nil {
					s.fetching = true
				}
				return
			}
			if bytes.HasPrefix(msg, bExecute) {
				name, text, ok := cutName(msg[len(bExecute):])
				if !ok {
					return
				}
				s := r.session(e, true)
				r.finishPending(s)
				s.pending = r.statement(s, e, e.time, Extended, name, text)
			}
		case 'd':
			if bytes.HasPrefix(msg, bDuration) {
				r.duration(e, msg[len(bDuration):])
			} else if bytes.HasPrefix(msg, bDisconnect) {
				r.disconnection(e, msg[len(bDisconnect):])
			}
		case 'c':
			if bytes.HasPrefix(msg, bConnRecv) {
				r.connReceived(e, msg[len(bConnRecv):])
			} else if bytes.HasPrefix(msg, bConnAuth) {
				r.connAuthorized(e, msg[len(bConnAuth):])
			}
		case 'r':
			if bytes.HasPrefix(msg, bReplAuth) {
				r.connAuthorized(e, msg[len(bReplAuth):])
			}
		}
	case sevError, sevFatal, sevPanic:
		s := r.session(e, len(e.statement) > 0)
		if s == nil {
			return
		}
		s.fetching = false
		if p := s.pending; p != nil && len(e.statement) > 0 && p.rec.Text != string(e.statement) {
			// The error is another statement's (one not logged at its start).
			r.finishPending(s)
		}
		switch {
		case s.pending != nil:
			s.pending.rec.Failed = true
			r.finishPending(s)
		case len(e.statement) > 0:
			// A statement that failed before it was logged (log_statement off, or a parse or
			// bind error): its ERROR's STATEMENT is all there is.
			it := r.statement(s, e, e.time, Simple, nil, e.statement)
			it.rec.Failed = true
			it.final = true
		}
		if s.conn != nil && e.sev != sevError {
			s.conn.rec.Failed = true
			s.conn.final = true
			s.conn = nil
		}
	}
}

// session finds the entry's session, creating it if create is set.
func (r *Reader) session(e *entry, create bool) *session {
	var s *session
	if len(e.sessionID) > 0 {
		s = r.byID[string(e.sessionID)]
		if s == nil && create {
			s = &session{id: string(e.sessionID), pid: e.pid, start: e.sessionStart}
			r.byID[s.id] = s
		}
	} else {
		s = r.byPID[e.pid]
		if s != nil && !e.sessionStart.IsZero() && !s.start.IsZero() && !s.start.Equal(e.sessionStart) {
			// The PID was reused by a new backend.
			r.endSession(s)
			s = nil
		}
		if s == nil && create {
			at := e.sessionStart
			if at.IsZero() {
				at = e.time
			}
			s = &session{id: sessionID(at, e.pid), pid: e.pid, start: e.sessionStart}
			r.byPID[e.pid] = s
		}
	}
	if s != nil {
		s.last = e.time
		if len(e.user) > 0 && !bytes.Equal(e.user, bUnknown) && string(e.user) != s.user {
			s.user = string(e.user)
		}
		if len(e.db) > 0 && !bytes.Equal(e.db, bUnknown) && string(e.db) != s.db {
			s.db = string(e.db)
		}
		if len(e.app) > 0 && !bytes.Equal(e.app, bUnknown) && string(e.app) != s.app {
			s.app = string(e.app)
		}
		if len(e.host) > 0 && string(e.host) != s.host {
			s.host = string(e.host)
			s.port = e.port
		}
	}
	return s
}

// sessionID makes an id like %c's: the session's start in Unix seconds and the PID, in hex.
func sessionID(at time.Time, pid int) string {
	var b [40]byte
	out := b[:0]
	if !at.IsZero() {
		out = strconv.AppendInt(out, at.Unix(), 16)
	} else {
		out = append(out, '0')
	}
	out = append(out, '.')
	out = strconv.AppendInt(out, int64(pid), 16)
	return string(out)
}

func (r *Reader) endSession(s *session) {
	r.finishPending(s)
	if s.conn != nil {
		s.conn.final = true
		s.conn = nil
	}
	if r.byID[s.id] == s {
		delete(r.byID, s.id)
	}
	if r.byPID[s.pid] == s {
		delete(r.byPID, s.pid)
	}
}

// finishPending lets the session's waiting statement go out as it is.
func (r *Reader) finishPending(s *session) {
	if s.pending != nil {
		s.pending.final = true
		s.pending = nil
	}
	s.fetching = false
}

// record starts a record of s at time at and queues it, not final.
func (r *Reader) record(kind Kind, s *session, at time.Time) *item {
	it := r.alloc()
	it.rec = Record{
		Kind:     kind,
		Time:     at,
		Duration: -1,
		Session:  s.id,
		PID:      s.pid,
		Host:     s.host,
		Port:     s.port,
		User:     s.user,
		Database: s.db,
		App:      s.app,
	}
	it.sess = s
	it.seq = r.seq
	r.order.push(it)
	return it
}

func (r *Reader) statement(s *session, e *entry, at time.Time, proto Protocol, name, text []byte) *item {
	it := r.record(Statement, s, at)
	it.rec.Protocol = proto
	if proto == Extended && !bytes.Equal(name, bUnnamed) {
		it.rec.Name = r.strings.get(name)
	}
	if string(text) == s.lastText {
		it.rec.Text = s.lastText // a poller's same statement again: no hashing either
	} else {
		it.rec.Text = r.strings.get(text)
		s.lastText = it.rec.Text
	}
	if proto == Extended && bytes.HasPrefix(e.detail, bParameters) {
		it.rec.Params = parseParams(e.detail[len(bParameters):], r.opt.ParamMaxLength, &r.strings)
	}
	return it
}

// interner returns the same string for the same bytes, without allocating when it saw them
// lately: pollers send the same statements and keys over and over.
type interner struct {
	m map[string]string
}

const (
	internMax     = 8192 // strings kept, then forgotten all at once
	internMaxSize = 4096 // longer ones are not kept
)

func (in *interner) get(b []byte) string {
	if len(b) > internMaxSize {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil || len(in.m) >= internMax {
		in.m = make(map[string]string, 1024)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// cutName splits "NAME: text" (the statement name of an execute line, possibly with
// "/portal").
func cutName(b []byte) (name, text []byte, ok bool) {
	k := bytes.Index(b, []byte(": "))
	if k < 0 {
		return nil, nil, false
	}
	return b[:k], b[k+2:], true
}

// duration handles "duration: N ms" and what may follow it.
func (r *Reader) duration(e *entry, b []byte) {
	d, rest, ok := parseMillis(b)
	if !ok {
		return
	}
	var proto Protocol
	var name, text []byte
	switch {
	case len(rest) == 0:
		// Bare: the end of the statement logged at its start.
		s := r.session(e, false)
		switch {
		case s != nil && s.pending != nil:
			s.pending.rec.Duration = d
			r.finishPending(s)
		case s != nil && s.fetching:
			s.fetching = false
		default:
			r.stats.Unpaired++
		}
		return
	case bytes.HasPrefix(rest, []byte("  statement: ")):
		proto, text = Simple, rest[len("  statement: "):]
	case bytes.HasPrefix(rest, []byte("  execute fetch from ")):
		return
	case bytes.HasPrefix(rest, []byte("  execute ")):
		var ok bool
		if name, text, ok = cutName(rest[len("  execute "):]); !ok {
			return
		}
		proto = Extended
	case bytes.HasPrefix(rest, []byte("  parse ")), bytes.HasPrefix(rest, []byte("  bind ")):
		// The extended protocol's other steps: the execute is the statement.
		if s := r.session(e, false); s != nil {
			r.finishPending(s)
		}
		return
	default:
		return
	}
	s := r.session(e, true)
	if p := s.pending; p != nil && p.rec.Duration < 0 && p.rec.Protocol == proto && p.rec.Text == string(text) {
		// Logged at its start too (an unusual mix of settings): one statement.
		p.rec.Duration = d
		r.finishPending(s)
		return
	}
	r.finishPending(s)
	at := e.time
	if !at.IsZero() {
		at = at.Add(-d)
	}
	it := r.statement(s, e, at, proto, name, text)
	it.rec.Duration = d
	it.final = true
}

// parseMillis reads "12.345 ms" and returns the duration and what follows " ms".
func parseMillis(b []byte) (time.Duration, []byte, bool) {
	ms, n := parseUint(b)
	if n == 0 {
		return 0, nil, false
	}
	var frac, scale int64 = 0, 1_000_000
	if n < len(b) && b[n] == '.' {
		n++
		for n < len(b) && b[n] >= '0' && b[n] <= '9' {
			if scale > 1 {
				scale /= 10
				frac += int64(b[n]-'0') * scale
			}
			n++
		}
	}
	if !bytes.HasPrefix(b[n:], []byte(" ms")) {
		return 0, nil, false
	}
	return time.Duration(ms)*time.Millisecond + time.Duration(frac), b[n+3:], true
}

func (r *Reader) connReceived(e *entry, b []byte) {
	// host=127.0.0.1 port=41234, or host=[local]
	var host []byte
	port := 0
	if v, ok := field(b, "host="); ok {
		host = v
	}
	if v, ok := field(b, "port="); ok {
		port, _ = parseUint(v)
	}
	if len(e.sessionID) == 0 {
		// A new backend: without a session id, this is where a reused PID starts anew.
		if old := r.byPID[e.pid]; old != nil {
			r.endSession(old)
		}
	}
	s := r.session(e, true)
	if len(host) > 0 {
		s.host, s.port = string(host), port
	}
	if s.conn != nil {
		s.conn.final = true
	}
	s.conn = r.record(Connection, s, e.time)
}

func (r *Reader) connAuthorized(e *entry, b []byte) {
	s := r.session(e, true)
	// user=U database=D application_name=A SSL enabled (...); replication: no database.
	if v, ok := fieldUntil(b, "user=", " database=", " application_name=", " SSL enabled", " GSS "); ok && len(v) > 0 {
		s.user = string(v)
	}
	if v, ok := fieldUntil(b, " database=", " application_name=", " SSL enabled", " GSS "); ok && len(v) > 0 {
		s.db = string(v)
	}
	if v, ok := fieldUntil(b, " application_name=", " SSL enabled", " GSS "); ok && len(v) > 0 {
		s.app = string(v)
	}
	it := s.conn
	s.conn = nil
	if it == nil {
		it = r.record(Connection, s, e.time)
	}
	it.rec.User, it.rec.Database, it.rec.App = s.user, s.db, s.app
	it.rec.Host, it.rec.Port = s.host, s.port
	it.final = true
}

func (r *Reader) disconnection(e *entry, b []byte) {
	s := r.session(e, true)
	// 0:00:01.234 user=U database=D host=H port=P
	d, ok := parseSessionTime(b)
	if v, ok := fieldUntil(b, " user=", " database=", " host="); ok && len(v) > 0 && s.user == "" {
		s.user = string(v)
	}
	if v, ok := fieldUntil(b, " database=", " host="); ok && len(v) > 0 && s.db == "" {
		s.db = string(v)
	}
	if v, ok := fieldUntil(b, " host=", " port="); ok && len(v) > 0 && s.host == "" {
		s.host = string(v)
		if p, ok := fieldUntil(b, " port="); ok {
			s.port, _ = parseUint(p)
		}
	}
	r.endSession(s)
	it := r.record(Disconnection, s, e.time)
	if ok {
		it.rec.Duration = d
	}
	it.final = true
}

// parseSessionTime reads "H:MM:SS.mmm".
func parseSessionTime(b []byte) (time.Duration, bool) {
	h, n := parseUint(b)
	if n == 0 || len(b) < n+10 || b[n] != ':' || b[n+3] != ':' || b[n+6] != '.' {
		return 0, false
	}
	m, ok1 := digits2(b[n+1:])
	s, ok2 := digits2(b[n+4:])
	ms, k := parseUint(b[n+7 : n+10])
	if !ok1 || !ok2 || k != 3 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond, true
}

// field returns the value after key up to the next space.
func field(b []byte, key string) ([]byte, bool) {
	k := bytes.Index(b, []byte(key))
	if k < 0 {
		return nil, false
	}
	v := b[k+len(key):]
	if e := bytes.IndexByte(v, ' '); e >= 0 {
		v = v[:e]
	}
	return v, true
}

// fieldUntil returns the value after the first of keys[0], up to the earliest of the others
// (values such as application names may hold spaces).
func fieldUntil(b []byte, key string, ends ...string) ([]byte, bool) {
	k := bytes.Index(b, []byte(key))
	if k < 0 {
		return nil, false
	}
	v := b[k+len(key):]
	end := len(v)
	for _, s := range ends {
		if e := bytes.Index(v, []byte(s)); e >= 0 && e < end {
			end = e
		}
	}
	return v[:end], true
}

// parseParams reads the parameters PostgreSQL logs for the extended protocol:
// $1 = 'it”s', $2 = NULL, $3 = '12'. A value shortened by log_parameter_max_length ends in
// "..." inside its quotes. Whatever does not parse ends the list.
func parseParams(b []byte, maxLen int, in *interner) []Param {
	out := make([]Param, 0, 1+bytes.Count(b, []byte(", $")))
	for len(b) > 0 {
		if b[0] != '$' {
			break
		}
		_, n := parseUint(b[1:])
		if n == 0 || !bytes.HasPrefix(b[1+n:], []byte(" = ")) {
			break
		}
		b = b[1+n+3:]
		var p Param
		switch {
		case bytes.HasPrefix(b, []byte("NULL")):
			p.Null = true
			b = b[4:]
		case len(b) > 0 && b[0] == '\'':
			v, rest, ok := unquote(b, in)
			if !ok {
				return out
			}
			p.Value, b = v, rest
			if maxLen >= 0 && len(p.Value) >= 3 && p.Value[len(p.Value)-3:] == "..." {
				head := p.Value[:len(p.Value)-3]
				if maxLen == 0 || utf8.RuneCountInString(head) == maxLen {
					p.Value, p.Truncated = head, true
				}
			}
		default:
			return out
		}
		out = append(out, p)
		if !bytes.HasPrefix(b, []byte(", ")) {
			break
		}
		b = b[2:]
	}
	return out
}

// unquote reads a '...' literal with doubled quotes at the start of b.
func unquote(b []byte, in *interner) (string, []byte, bool) {
	i := 1
	simple := true
	for i < len(b) {
		if b[i] == '\'' {
			if i+1 < len(b) && b[i+1] == '\'' {
				simple = false
				i += 2
				continue
			}
			break
		}
		i++
	}
	if i >= len(b) {
		return "", nil, false
	}
	if simple {
		return in.get(b[1:i]), b[i+1:], true
	}
	out := make([]byte, 0, i)
	for j := 1; j < i; j++ {
		out = append(out, b[j])
		if b[j] == '\'' {
			j++
		}
	}
	return string(out), b[i+1:], true
}

// order releases items by time, then log order. Items mostly come in that order (a line's
// time is the record's): those go to a FIFO; the others (a statement logged at its end,
// dated back by its duration) to a heap. Keys are kept inline so that ordering touches no
// item.
type order struct {
	q  []okey // FIFO, from qh on
	qh int
	h  []okey // min-heap
}

type okey struct {
	t, seq int64
	it     *item
}

func keyOf(it *item) okey {
	t := int64(math.MinInt64)
	if !it.rec.Time.IsZero() {
		t = it.rec.Time.UnixNano()
	}
	return okey{t: t, seq: it.seq, it: it}
}

func (a okey) less(b okey) bool {
	return a.t < b.t || a.t == b.t && a.seq < b.seq
}

func (o *order) len() int { return len(o.q) - o.qh + len(o.h) }

func (o *order) push(it *item) {
	k := keyOf(it)
	if n := len(o.q); n == o.qh || !k.less(o.q[n-1]) {
		if n == cap(o.q) && o.qh*4 > n {
			// Full, with a quarter or more already gone: move down rather than grow.
			m := copy(o.q, o.q[o.qh:])
			clear(o.q[m:])
			o.q, o.qh = o.q[:m], 0
		}
		o.q = append(o.q, k)
		return
	}
	o.h = append(o.h, k)
	for j := len(o.h) - 1; j > 0; {
		i := (j - 1) / 2
		if !o.h[j].less(o.h[i]) {
			break
		}
		o.h[i], o.h[j] = o.h[j], o.h[i]
		j = i
	}
}

// peek returns the first item's key; its it is nil if there is none.
func (o *order) peek() okey {
	switch {
	case len(o.q) > o.qh && (len(o.h) == 0 || o.q[o.qh].less(o.h[0])):
		return o.q[o.qh]
	case len(o.h) > 0:
		return o.h[0]
	}
	return okey{}
}

// pop removes the first item.
func (o *order) pop() *item {
	if len(o.q) > o.qh && (len(o.h) == 0 || o.q[o.qh].less(o.h[0])) {
		it := o.q[o.qh].it
		o.q[o.qh] = okey{}
		o.qh++
		if o.qh == len(o.q) {
			o.q, o.qh = o.q[:0], 0
		}
		return it
	}
	h := o.h
	it := h[0].it
	n := len(h) - 1
	h[0] = h[n]
	h[n] = okey{}
	h = h[:n]
	for i := 0; ; {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j+1 < n && h[j+1].less(h[j]) {
			j++
		}
		if !h[j].less(h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
	o.h = h
	return it
}
