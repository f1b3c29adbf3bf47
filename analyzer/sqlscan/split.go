package sqlscan

import "iter"

// splitter decides which ';' tokens end a statement. It follows psql's
// heuristic (psqlscan.l): a ';' is a statement boundary unless it is inside
// parentheses or inside the BEGIN ... END body of CREATE [OR REPLACE]
// FUNCTION/PROCEDURE (SQL-standard function bodies, BEGIN ATOMIC), where
// CASE ... END nests. Strings and comments never reach it.
type splitter struct {
	depth  int     // parenthesis depth, never negative
	begin  int     // BEGIN ... END depth inside a function body
	nIdent int     // identifiers seen in this statement
	ids    [4]byte // first letters of the leading create/or/replace/function/procedure words
}

// ident records an unquoted identifier. TRUE, FALSE and NULL are not
// counted (psql counts them): the normalizer replaces them by $n, and
// statement boundaries must not move when that happens.
func (sp *splitter) ident(k kw) {
	// Fast path: past the leading words of a statement that is not
	// CREATE ..., nothing can change.
	if sp.nIdent >= len(sp.ids) && sp.ids[0] != 'c' {
		return
	}
	sp.identSlow(k)
}

func (sp *splitter) identSlow(k kw) {
	switch k {
	case kwTrue, kwFalse, kwNull:
		return
	}
	if sp.nIdent < len(sp.ids) {
		var c byte
		switch k {
		case kwCreate:
			c = 'c'
		case kwFunction:
			c = 'f'
		case kwProcedure:
			c = 'p'
		case kwOr:
			c = 'o'
		case kwReplace:
			c = 'r'
		}
		sp.ids[sp.nIdent] = c
	}
	sp.nIdent++
	if sp.depth != 0 || sp.ids[0] != 'c' {
		return
	}
	if id := sp.ids; id[1] == 'f' || id[1] == 'p' || (id[1] == 'o' && id[2] == 'r' && (id[3] == 'f' || id[3] == 'p')) {
		switch k {
		case kwBegin:
			sp.begin++
		case kwCase:
			if sp.begin > 0 {
				sp.begin++
			}
		case kwEnd:
			if sp.begin > 0 {
				sp.begin--
			}
		}
	}
}

// punct records a Punct token and reports whether it ends the statement.
func (sp *splitter) punct(c byte) bool {
	switch c {
	case '(':
		sp.depth++
	case ')':
		if sp.depth > 0 {
			sp.depth--
		}
	case ';':
		if sp.depth == 0 && sp.begin == 0 {
			*sp = splitter{}
			return true
		}
	}
	return false
}

// Split calls fn with the text of each non-empty top-level statement of
// src, in order, until fn returns false. A statement's text excludes the
// terminating ';' and surrounding whitespace but keeps comments, like the
// per-statement text pg_stat_statements records for a multi-statement
// simple query. Pieces that hold only comments or whitespace are skipped.
// The slices alias src.
func Split(src []byte, fn func(stmt []byte) bool) {
	var s Scanner
	s.Reset(src)
	var sp splitter
	segStart := 0
	hasTok := false
	for {
		t := s.Next()
		switch t.Kind {
		case EOF:
			if hasTok {
				fn(trimSpace(src[segStart:]))
			}
			return
		case Ident:
			sp.ident(lookupKeyword(src[t.Start:t.End]))
		case Punct:
			if sp.punct(src[t.Start]) {
				if hasTok && !fn(trimSpace(src[segStart:t.Start])) {
					return
				}
				segStart, hasTok = t.End, false
				continue
			}
		}
		hasTok = true
	}
}

// Statements returns an iterator over the statements [Split] finds.
func Statements(src []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) { Split(src, yield) }
}
