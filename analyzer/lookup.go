package analyzer

import (
	"bytes"

	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
)

// lookup is what a statement does to a watched table, found by reading its tokens: a read of
// rows by key (SELECT ... FROM t WHERE t.col = 'k' | $1 | IN (...) | = ANY($1)), or a write
// (INSERT/UPDATE/DELETE/TRUNCATE/COPY ... t).
type lookup struct {
	watch int  // index into the analyzer's watches; -1: none
	write bool // the statement writes the table
	// Where the key is: literal tokens (simple protocol), or a parameter.
	keys     []sqlscan.Token // String/Number tokens holding keys
	param    int             // $n holding the key (1-based); 0 none
	anyArray bool            // the parameter is an array: = ANY($n)
}

// matcher finds watched lookups. It is reused: its slices keep their capacity.
type matcher struct {
	watches []Watch
	queues  []Queue
	sc      sqlscan.Scanner
	toks    []sqlscan.Token
	scratch []byte
	lk      lookup
}

// match reads one statement. The returned lookup's keys alias the matcher and src, valid until
// the next call.
func (m *matcher) match(src []byte) *lookup {
	m.lk = lookup{watch: -1, keys: m.lk.keys[:0]}
	m.toks = m.toks[:0]
	m.sc.Reset(src)
	for {
		t := m.sc.Next()
		if t.Kind == sqlscan.EOF {
			break
		}
		if t.Kind == sqlscan.Punct && src[t.Start] == ';' {
			break
		}
		m.toks = append(m.toks, t)
	}
	if len(m.toks) == 0 {
		return &m.lk
	}
	i := 0
	if m.is(src, 0, "with") { // WITH ...: find the main statement after the CTEs
		i = m.afterWith(src)
	}
	switch {
	case m.is(src, i, "select"):
		m.matchSelect(src, i)
	case m.is(src, i, "update"):
		i++
		if m.is(src, i, "only") {
			i++
		}
		if w, j, alias := m.table(src, i); w >= 0 {
			m.lk.watch, m.lk.write = w, true
			m.whereKey(src, j, alias)
		}
	case m.is(src, i, "delete") && m.is(src, i+1, "from"):
		i += 2
		if m.is(src, i, "only") {
			i++
		}
		if w, j, alias := m.table(src, i); w >= 0 {
			m.lk.watch, m.lk.write = w, true
			m.whereKey(src, j, alias)
		}
	case m.is(src, i, "insert") && m.is(src, i+1, "into"):
		if w, j, _ := m.table(src, i+2); w >= 0 {
			m.lk.watch, m.lk.write = w, true
			m.insertKey(src, j)
		}
	case m.is(src, i, "truncate"), m.is(src, i, "copy"), m.is(src, i, "alter"), m.is(src, i, "drop"):
		// Table-wide writes: any watched table named anywhere in the statement.
		for j := i + 1; j < len(m.toks); j++ {
			if w, _, _ := m.table(src, j); w >= 0 {
				m.lk.watch, m.lk.write = w, true
				break
			}
		}
	}
	return &m.lk
}

func (m *matcher) text(src []byte, i int) []byte { t := m.toks[i]; return src[t.Start:t.End] }

// is reports whether token i is the keyword kw (compared case-insensitively).
func (m *matcher) is(src []byte, i int, kw string) bool {
	return i < len(m.toks) && m.toks[i].Kind == sqlscan.Ident && sqlscan.EqualFold(m.text(src, i), kw)
}

func (m *matcher) punct(src []byte, i int, c byte) bool {
	return i < len(m.toks) && m.toks[i].Kind == sqlscan.Punct && src[m.toks[i].Start] == c
}

func (m *matcher) op(src []byte, i int, s string) bool {
	return i < len(m.toks) && m.toks[i].Kind == sqlscan.Operator && string(m.text(src, i)) == s
}

// afterWith skips WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (...) [, ...].
func (m *matcher) afterWith(src []byte) int {
	depth := 0
	for i := 1; i < len(m.toks); i++ {
		switch {
		case m.punct(src, i, '('):
			depth++
		case m.punct(src, i, ')'):
			depth--
		case depth == 0 && (m.is(src, i, "select") || m.is(src, i, "update") || m.is(src, i, "delete") || m.is(src, i, "insert")):
			return i
		}
	}
	return len(m.toks)
}

// table reads [schema.]table [[AS] alias] at token i and returns the watch it names (or -1), the
// token after it, and the alias token index (or -1).
func (m *matcher) table(src []byte, i int) (watch, next, alias int) {
	if i >= len(m.toks) || (m.toks[i].Kind != sqlscan.Ident && m.toks[i].Kind != sqlscan.QuotedIdent) {
		return -1, i, -1
	}
	schema, name := -1, i
	next = i + 1
	if m.punct(src, next, '.') && next+1 < len(m.toks) {
		schema, name = i, next+1
		next += 2
	}
	watch = -1
	for w := range m.watches {
		wt := &m.watches[w]
		if !m.ident(src, name, wt.Table) {
			continue
		}
		if wt.Schema != "" && (schema < 0 || !m.ident(src, schema, wt.Schema)) {
			continue
		}
		watch = w
		break
	}
	alias = -1
	if m.is(src, next, "as") {
		next++
	}
	if next < len(m.toks) && (m.toks[next].Kind == sqlscan.QuotedIdent || m.toks[next].Kind == sqlscan.Ident && !isClauseWord(m.text(src, next))) {
		alias = next
		next++
	}
	return watch, next, alias
}

func (m *matcher) ident(src []byte, i int, name string) bool {
	if i >= len(m.toks) {
		return false
	}
	t := m.toks[i]
	if t.Kind == sqlscan.Ident && hasUpper(name) {
		return false // an unquoted identifier folds to lower case and cannot match
	}
	ok := identMatches(t.Kind, src[t.Start:t.End], name, m.scratch)
	return ok
}

// hasUpper reports whether s has an ASCII capital, which no unquoted identifier can match.
func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// isClauseWord lists the words that can follow a table name and are not an alias.
func isClauseWord(w []byte) bool {
	for _, kw := range clauseWords {
		if sqlscan.EqualFold(w, kw) {
			return true
		}
	}
	return false
}

var clauseWords = []string{"where", "join", "inner", "left", "right", "full", "cross", "natural", "on", "using",
	"group", "order", "limit", "offset", "fetch", "for", "union", "except", "intersect", "window", "having",
	"set", "returning", "values", "default", "select", "overriding", "tablesample", "lateral"}

// matchSelect finds FROM table at the statement's top level, then the key in its WHERE.
func (m *matcher) matchSelect(src []byte, i int) {
	depth := 0
	for ; i < len(m.toks); i++ {
		switch {
		case m.punct(src, i, '('):
			depth++
		case m.punct(src, i, ')'):
			depth--
		case depth == 0 && m.is(src, i, "from"):
			w, j, alias := m.table(src, i+1)
			if w < 0 {
				return
			}
			m.lk.watch = w
			m.whereKey(src, j, alias)
			return
		}
	}
}

// whereKey finds, after token i, WHERE ... [qual.]col = key | IN (keys) | = ANY($n).
func (m *matcher) whereKey(src []byte, i, alias int) {
	col := m.watches[m.lk.watch].Column
	for ; i < len(m.toks); i++ {
		if m.is(src, i, "where") {
			break
		}
	}
	for i++; i < len(m.toks); i++ {
		if !m.ident(src, i, col) {
			continue
		}
		// A qualifier before the column must be the table or its alias.
		if i >= 2 && m.punct(src, i-1, '.') {
			q := i - 2
			if !(alias >= 0 && m.sameIdent(src, q, alias)) && !m.ident(src, q, m.watches[m.lk.watch].Table) {
				continue
			}
		}
		j := i + 1
		switch {
		case m.op(src, j, "=") && m.is(src, j+1, "any") && m.punct(src, j+2, '('):
			if j+3 < len(m.toks) && m.toks[j+3].Kind == sqlscan.Param {
				m.lk.param = paramNumber(m.text(src, j+3))
				m.lk.anyArray = true
				return
			}
			if m.is(src, j+3, "array") && m.punct(src, j+4, '[') {
				m.literalList(src, j+5, ']')
				return
			}
		case m.op(src, j, "="):
			m.keyAt(src, j+1)
			return
		case m.is(src, j, "in") && m.punct(src, j+1, '('):
			m.literalList(src, j+2, ')')
			return
		}
	}
}

// keyAt takes the constant or parameter at token i as the key.
func (m *matcher) keyAt(src []byte, i int) {
	if i >= len(m.toks) {
		return
	}
	switch m.toks[i].Kind {
	case sqlscan.Param:
		m.lk.param = paramNumber(m.text(src, i))
	case sqlscan.String, sqlscan.Number:
		m.lk.keys = append(m.lk.keys, m.toks[i])
	}
}

// literalList collects the constants of a list up to the closing token.
func (m *matcher) literalList(src []byte, i int, closing byte) {
	for ; i < len(m.toks) && !m.punct(src, i, closing); i++ {
		switch m.toks[i].Kind {
		case sqlscan.String, sqlscan.Number:
			m.lk.keys = append(m.lk.keys, m.toks[i])
		case sqlscan.Param:
			if m.lk.param == 0 {
				m.lk.param = paramNumber(m.text(src, i))
			}
		}
	}
}

// insertKey reads INSERT INTO t (c1, c2, ...) VALUES (v1, v2, ...)[, (...)] and takes the
// value at the key column's position in each row.
func (m *matcher) insertKey(src []byte, i int) {
	if !m.punct(src, i, '(') {
		return
	}
	col := m.watches[m.lk.watch].Column
	pos, n := -1, 0
	for i++; i < len(m.toks) && !m.punct(src, i, ')'); i++ {
		if m.punct(src, i, ',') {
			n++
			continue
		}
		if m.ident(src, i, col) {
			pos = n
		}
	}
	if pos < 0 || !m.is(src, i+1, "values") {
		return
	}
	for i += 2; m.punct(src, i, '('); {
		depth, field := 0, 0
		for i++; i < len(m.toks); i++ {
			switch {
			case m.punct(src, i, '('):
				depth++
			case m.punct(src, i, ')') && depth > 0:
				depth--
			case m.punct(src, i, ')'):
				goto rowDone
			case depth == 0 && m.punct(src, i, ','):
				field++
			case depth == 0 && field == pos:
				if m.toks[i].Kind == sqlscan.Param && m.lk.param == 0 {
					m.lk.param = paramNumber(m.text(src, i))
				} else if m.toks[i].Kind == sqlscan.String || m.toks[i].Kind == sqlscan.Number {
					m.lk.keys = append(m.lk.keys, m.toks[i])
				}
			}
		}
	rowDone:
		i++
		if !m.punct(src, i, ',') {
			return
		}
		i++
	}
}

func (m *matcher) sameIdent(src []byte, a, b int) bool {
	ta, tb := m.toks[a], m.toks[b]
	return ta.Kind == tb.Kind && bytes.EqualFold(src[ta.Start:ta.End], src[tb.Start:tb.End])
}

func paramNumber(tok []byte) int {
	n := 0
	for _, c := range tok[1:] {
		if c < '0' || c > '9' || n > 1<<16 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
