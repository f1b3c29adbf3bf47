package coalesce

import (
	"bytes"
	"hash/maphash"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
	"github.com/pgpollwatch/pgpollwatch/proxy"
)

// classifier decides, for one session, what each statement is to the cache: an eligible read,
// a plain BEGIN, a write to invalidate, a change of unreported session state, or other.
//
// An eligible read is a watched lookup (analyzer.Classifier) that is also:
//   - one SELECT, with nothing after it in the string;
//   - free of locking clauses (FOR UPDATE/SHARE), INTO, subqueries, joins and set operations,
//     so its answer depends on the watched rows alone;
//   - free of function calls (a function may be volatile, or read other tables);
//   - by at most proxy.MaxTouchKeys keys.
//
// When in doubt a statement is StmtOther: it is forwarded, and inside a transaction it stops
// the cache from answering until the transaction ends.
type classifier struct {
	c    *Cache
	an   *analyzer.Classifier
	sc   sqlscan.Scanner
	toks []sqlscan.Token
	src  []byte
}

// NewClassifier implements proxy.Cache.
func (c *Cache) NewClassifier() proxy.Classifier {
	return &classifier{c: c, an: analyzer.NewClassifier(c.cfg.Watches)}
}

// Classify implements proxy.Classifier. A string of several statements is never an eligible
// read, but every write and every change of session state in it counts.
func (cl *classifier) Classify(text []byte) proxy.Class {
	switch cl.lex(text) {
	case lexMulti:
		return cl.classifyEach(text)
	case lexLong:
		return cl.classifyLong(text)
	}
	return cl.classifyOne(text)
}

// classifyEach classifies each statement of a multi-statement string and merges: one write
// keeps its touch, several touch everything; a change of session state taints.
func (cl *classifier) classifyEach(text []byte) proxy.Class {
	out := proxy.Class{Kind: proxy.StmtOther, Watch: -1}
	writes, taint := 0, false
	sqlscan.Split(text, func(stmt []byte) bool {
		var c proxy.Class
		if cl.lex(stmt) == lexOne {
			c = cl.classifyOne(stmt)
		} else {
			c = cl.classifyLong(stmt) // a piece Split cannot cut (BEGIN ATOMIC ... END): judged whole
		}
		// A setting that would only change the key is followed alone, not inside a string.
		taint = taint || c.Taint || c.Kind == proxy.StmtSetting
		if c.Kind == proxy.StmtWrite {
			if writes++; writes == 1 {
				out = c
			} else {
				out = proxy.Class{Kind: proxy.StmtWrite, Watch: -1, Touch: proxy.Touch{All: true}}
			}
		}
		return true
	})
	if taint {
		markTaint(&out)
	}
	return out
}

// markTaint records a change of unreported session state; a write stays a write (its
// invalidation matters to every other session), tainted too.
func markTaint(c *proxy.Class) {
	c.Taint = true
	if c.Kind != proxy.StmtWrite {
		c.Kind = proxy.StmtTaint
	}
}

// classifyLong judges a statement too long to read token by token: a write to every watched
// table if it names one, a change of session state if it could be one.
func (cl *classifier) classifyLong(text []byte) proxy.Class {
	out := proxy.Class{Kind: proxy.StmtOther, Watch: -1}
	lower := bytes.ToLower(text) // rare: no poll is this long
	for _, w := range cl.c.cfg.Watches {
		if bytes.Contains(lower, []byte(strings.ToLower(w.Table))) {
			out.Kind, out.Touch = proxy.StmtWrite, proxy.Touch{All: true}
			break
		}
	}
	first := bytes.Fields(lower)
	if bytes.Contains(lower, []byte("set_config")) || len(first) > 0 && (string(first[0]) == "set" || string(first[0]) == "reset" || string(first[0]) == "discard") {
		markTaint(&out)
	}
	return out
}

// classifyOne classifies the single statement lex has just read.
func (cl *classifier) classifyOne(text []byte) proxy.Class {
	out := proxy.Class{Kind: proxy.StmtOther, Watch: -1}
	if len(cl.toks) == 0 {
		return out
	}
	switch first := cl.word(0); first {
	case "begin", "start":
		if cl.plainBegin() {
			out.Kind = proxy.StmtBegin
		}
		return out
	case "set", "reset", "discard":
		switch set, ok := cl.keyedSetting(); {
		case ok:
			out.Kind, out.Setting = proxy.StmtSetting, set
		case !cl.reportedSetting():
			markTaint(&out)
		}
		return out
	case "with":
		// A data-modifying CTE can hide anywhere in it: naming a watched table is enough.
		if w := cl.namesWatched(); w != -1 {
			out.Kind, out.Watch = proxy.StmtWrite, w
			out.Touch = proxy.Touch{Watch: int16(max(w, 0)), Table: true, All: w == -2}
		}
		return out
	case "call", "do", "execute", "merge", "refresh", "cluster", "vacuum", "import", "create", "comment", "grant", "revoke", "security", "reindex", "lock", "load":
		// Could change anything (a procedure, an anonymous block, a prepared statement run by
		// name) or names tables the analyzer does not read: every entry goes.
		if first == "lock" || first == "load" || first == "comment" || first == "grant" || first == "revoke" || first == "security" || first == "create" || first == "reindex" || first == "vacuum" || first == "cluster" {
			if cl.namesWatched() < 0 {
				return out
			}
		}
		out.Kind, out.Touch = proxy.StmtWrite, proxy.Touch{All: true}
		return out
	}
	if cl.callsSetConfig() {
		markTaint(&out)
		return out
	}
	var t proxy.Touch
	lk := cl.an.Match(text, func(k []byte) {
		if int(t.N) < len(t.Slots) {
			t.Slots[t.N] = cl.slot(k)
		}
		t.N++
	})
	out.Watch = lk.Watch
	if lk.Watch < 0 {
		if w := cl.namesWatched(); w != -1 && cl.word(0) != "select" {
			// A statement naming a watched table that the analyzer cannot read as a lookup
			// or keyed write (UPDATE ... FROM, ALTER, ...): the whole table.
			out.Kind, out.Watch = proxy.StmtWrite, w
			out.Touch = proxy.Touch{Watch: int16(max(w, 0)), Table: true, All: w == -2}
		}
		return out
	}
	t.Watch = int16(lk.Watch)
	if lk.Write {
		out.Kind = proxy.StmtWrite
		switch {
		case lk.Param > 0 && lk.Keys == 0:
			out.KeyParam, out.KeyArray = lk.Param, lk.AnyArray
			out.Touch = proxy.Touch{Watch: t.Watch, Table: true} // replaced by BindTouch
		case lk.Keys == 0 || int(t.N) > len(t.Slots) || lk.Param > 0:
			out.Touch = proxy.Touch{Watch: t.Watch, Table: true}
		default:
			out.Touch = t
		}
		return out
	}
	if !cl.plainSelect() {
		return out
	}
	switch {
	case lk.Param > 0 && lk.Keys == 0:
		out.Kind, out.KeyParam, out.KeyArray = proxy.StmtRead, lk.Param, lk.AnyArray
		out.Touch = proxy.Touch{Watch: t.Watch}
	case lk.Keys > 0 && lk.Param == 0 && int(t.N) <= len(t.Slots):
		out.Kind, out.Touch = proxy.StmtRead, t
	}
	return out
}

// BindTouch implements proxy.Classifier.
func (cl *classifier) BindTouch(c *proxy.Class, bind proxy.BindMessage) (proxy.Touch, bool) {
	t := proxy.Touch{Watch: int16(max(c.Watch, 0))}
	ok := cl.an.BindKeys(bind, c.KeyParam, c.KeyArray, func(k []byte) {
		if int(t.N) < len(t.Slots) {
			t.Slots[t.N] = cl.slot(k)
		}
		t.N++
	})
	if !ok || t.N == 0 || int(t.N) > len(t.Slots) {
		return proxy.Touch{}, false
	}
	return t, true
}

// Taints implements proxy.Classifier: a first-word test and a look for set_config, cheap enough
// to run on every statement while coalescing is off.
func (cl *classifier) Taints(text []byte) bool {
	switch cl.lex(text) {
	case lexMulti:
		return cl.classifyEach(text).Taint
	case lexLong:
		return cl.classifyLong(text).Taint
	}
	if len(cl.toks) == 0 {
		return false
	}
	switch cl.word(0) {
	case "set", "reset", "discard":
		return !cl.reportedSetting() // a keyed setting too: it is not followed while off
	}
	return cl.callsSetConfig()
}

// slot is the generation counter of one key of the classified statement's table.
func (cl *classifier) slot(key []byte) uint32 {
	return uint32(maphash.Bytes(cl.c.seed, key)) % genSlots
}

// lexResult says what lex found.
type lexResult uint8

const (
	lexOne   lexResult = iota // one statement, its tokens in cl.toks
	lexMulti                  // more than one statement
	lexLong                   // a statement too long to read token by token
)

// maxTokens bounds the tokens read of one statement: no poll is this long.
const maxTokens = 4096

// lex tokenizes text, which should be one statement.
func (cl *classifier) lex(text []byte) lexResult {
	cl.toks, cl.src = cl.toks[:0], text
	cl.sc.Reset(text)
	for {
		t := cl.sc.Next()
		if t.Kind == sqlscan.EOF {
			return lexOne
		}
		if t.Kind == sqlscan.Punct && text[t.Start] == ';' {
			for {
				u := cl.sc.Next()
				if u.Kind == sqlscan.EOF {
					return lexOne
				}
				if !(u.Kind == sqlscan.Punct && text[u.Start] == ';') {
					return lexMulti
				}
			}
		}
		cl.toks = append(cl.toks, t)
		if len(cl.toks) > maxTokens {
			return lexLong
		}
	}
}

// word returns token i in lower case when it is an unquoted identifier or keyword, else "".
func (cl *classifier) word(i int) string {
	if i >= len(cl.toks) || cl.toks[i].Kind != sqlscan.Ident {
		return ""
	}
	t := cl.src[cl.toks[i].Start:cl.toks[i].End]
	var buf [32]byte
	if len(t) > len(buf) {
		return "?"
	}
	for j, c := range t {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[j] = c
	}
	if kw, ok := keywordSet[string(buf[:len(t)])]; ok {
		return kw
	}
	return "?"
}

var keywordSet = func() map[string]string {
	m := make(map[string]string, len(keywords))
	for _, k := range keywords {
		m[k] = k
	}
	return m
}()

// keywords are the words the rules look at; word returns "?" for any other identifier.
var keywords = []string{"begin", "start", "transaction", "work", "isolation", "level", "read", "committed",
	"write", "only", "deferrable", "not", "set", "reset", "discard", "session", "local", "to",
	"timezone", "time", "zone", "datestyle", "intervalstyle", "client_encoding", "names",
	"standard_conforming_strings", "application_name", "call", "do", "execute", "merge", "refresh",
	"cluster", "vacuum", "import", "create", "comment", "grant", "revoke", "security", "reindex", "lock",
	"load", "select", "with", "for", "update", "share", "key", "no", "into", "join", "union", "intersect",
	"except", "from", "where", "set_config", "in", "any", "all", "some", "cast", "and", "or", "on",
	"as", "by", "exists", "between", "is", "like", "ilike", "similar", "escape", "default", "array"}

// plainBegin: BEGIN / START TRANSACTION with no isolation level but READ COMMITTED.
func (cl *classifier) plainBegin() bool {
	i := 1
	if cl.word(0) == "start" {
		if cl.word(1) != "transaction" {
			return false
		}
		i = 2
	}
	for ; i < len(cl.toks); i++ {
		switch cl.word(i) {
		case "isolation":
			if cl.word(i+1) != "level" || cl.word(i+2) != "read" || cl.word(i+3) != "committed" {
				return false
			}
			i += 3
		case "work", "transaction", "read", "write", "only", "not", "deferrable":
		default:
			if !(cl.toks[i].Kind == sqlscan.Punct && cl.src[cl.toks[i].Start] == ',') {
				return false
			}
		}
	}
	return true
}

// reportedSetting: SET/RESET of a parameter the server reports when it changes (ParameterStatus)
// and the session key includes. Anything else the server keeps quiet about taints the session.
func (cl *classifier) reportedSetting() bool {
	if cl.word(0) == "discard" {
		return false
	}
	i := 1
	if cl.word(i) == "session" {
		i++
	}
	switch cl.word(i) {
	case "timezone", "datestyle", "intervalstyle", "client_encoding", "names", "standard_conforming_strings", "application_name":
		return true
	case "time":
		return cl.word(i+1) == "zone"
	}
	return false
}

// keyedSettings are the unreported parameters that only change how values are written out, so a
// session that sets them just gets its own cache entries: pgjdbc sends SET extra_float_digits = 3
// after connecting.
var keyedSettings = map[string]bool{"extra_float_digits": true, "bytea_output": true}

// keyedSetting reads SET [SESSION] name {=|TO} value for a keyed setting and returns name=value.
func (cl *classifier) keyedSetting() (string, bool) {
	i := 1
	if cl.word(0) != "set" || i >= len(cl.toks) {
		return "", false
	}
	if cl.word(i) == "session" {
		i++
	}
	if i >= len(cl.toks) || cl.toks[i].Kind != sqlscan.Ident {
		return "", false
	}
	name := strings.ToLower(string(cl.src[cl.toks[i].Start:cl.toks[i].End]))
	if !keyedSettings[name] {
		return "", false
	}
	i++
	if !(cl.word(i) == "to" || i < len(cl.toks) && cl.toks[i].Kind == sqlscan.Operator && string(cl.src[cl.toks[i].Start:cl.toks[i].End]) == "=") {
		return "", false
	}
	i++
	sign := ""
	if i < len(cl.toks) && cl.toks[i].Kind == sqlscan.Operator && string(cl.src[cl.toks[i].Start:cl.toks[i].End]) == "-" {
		sign, i = "-", i+1
	}
	if i != len(cl.toks)-1 {
		return "", false // one value, nothing after it
	}
	t := cl.toks[i]
	v := cl.src[t.Start:t.End]
	switch t.Kind {
	case sqlscan.Number:
	case sqlscan.Ident:
		v = bytes.ToLower(v)
	case sqlscan.String:
		u, ok := sqlscan.Unquote(nil, v)
		if !ok {
			return "", false
		}
		v = bytes.ToLower(u)
	default:
		return "", false
	}
	if sign != "" && t.Kind != sqlscan.Number {
		return "", false
	}
	return name + "=" + sign + string(v), true
}

// callsSetConfig finds set_config(...) anywhere: it changes any setting, reported or not.
func (cl *classifier) callsSetConfig() bool {
	for i := range cl.toks {
		if cl.word(i) == "set_config" {
			return true
		}
	}
	return false
}

// plainSelect checks the eligibility rules beyond being a watched lookup.
func (cl *classifier) plainSelect() bool {
	if cl.word(0) != "select" {
		return false
	}
	depth := 0
	for i := 1; i < len(cl.toks); i++ {
		t := cl.toks[i]
		switch {
		case t.Kind == sqlscan.Punct && cl.src[t.Start] == '(':
			// A parenthesis after a name is a function call, unless the name is syntax.
			if i > 0 && (cl.toks[i-1].Kind == sqlscan.QuotedIdent || cl.toks[i-1].Kind == sqlscan.Ident && !grouping(cl.word(i-1))) {
				return false
			}
			depth++
		case t.Kind == sqlscan.Punct && cl.src[t.Start] == ')':
			depth--
		case t.Kind == sqlscan.Ident:
			switch cl.word(i) {
			case "select", "into", "join", "union", "intersect", "except":
				return false
			case "for":
				if depth == 0 {
					return false // FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE
				}
			case "from":
				// One table: a comma at the top level before WHERE means another.
				for j := i + 1; j < len(cl.toks) && cl.word(j) != "where"; j++ {
					if cl.toks[j].Kind == sqlscan.Punct && cl.src[cl.toks[j].Start] == ',' {
						return false
					}
				}
			}
		}
	}
	return true
}

// grouping lists the words a parenthesis may follow without being a call.
func grouping(w string) bool {
	switch w {
	case "in", "any", "all", "some", "cast", "and", "or", "not", "on", "where", "select", "from", "as", "by",
		"between", "is", "like", "ilike", "similar", "escape", "array":
		return true
	}
	return false
}

// namesWatched returns the watch whose table a statement names anywhere (-1 none, -2 several).
func (cl *classifier) namesWatched() int {
	found := -1
	for _, t := range cl.toks {
		if t.Kind != sqlscan.Ident && t.Kind != sqlscan.QuotedIdent {
			continue
		}
		name := cl.src[t.Start:t.End]
		for w, wt := range cl.c.cfg.Watches {
			if identIs(t.Kind, name, wt.Table) {
				if found >= 0 && found != w {
					return -2
				}
				found = w
			}
		}
	}
	return found
}

func identIs(k sqlscan.Kind, tok []byte, name string) bool {
	if k == sqlscan.QuotedIdent {
		return len(tok) == len(name)+2 && string(tok[1:len(tok)-1]) == name
	}
	return sqlscan.EqualFold(tok, name)
}
