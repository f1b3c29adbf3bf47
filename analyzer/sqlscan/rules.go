package sqlscan

// Several of PostgreSQL's decisions about what is a constant are taken by
// its grammar, which this package does not have. The methods here
// approximate each such decision from the neighbouring tokens, and name
// the grammar rule they imitate. They must decide the same way whether a
// neighbouring value is a literal or, after normalization, a $n parameter
// (see operand), so that normalizing normalized text changes nothing.

// identConst handles keywords that PostgreSQL's grammar turns into
// constants: TRUE and FALSE, NULL, the ALL of LIMIT ALL (a NULL), and the
// field name of EXTRACT(field FROM ...) (a string).
func (n *normalizer) identConst(tok Token, k kw) bool {
	switch k {
	case kwTrue, kwFalse:
		if n.prev.kw == kwIs || (n.prev.kw == kwNot && n.prev2.kw == kwIs) {
			return false // IS [NOT] TRUE is a BooleanTest
		}
		n.constant(tok.Start, tok.End, ConstBool, hcBool)
		return true
	case kwNull:
		switch n.prev.kw {
		case kwIs, kwNot, kwSet:
			return false // IS NULL, NOT NULL, SET NULL
		case kwFrom:
			if n.prev2.kw == kwDistinct {
				return false // IS DISTINCT FROM NULL becomes a NullTest
			}
		}
		if nxt := n.peek(); nxt.Kind == String || nxt.Kind == Param {
			return false // COPY's NULL 'string' option
		}
		n.constant(tok.Start, tok.End, ConstNull, hcString)
		return true
	case kwAll:
		if n.prev.kw != kwLimit {
			return false
		}
		n.constant(tok.Start, tok.End, ConstNull, hcString)
		return true
	}
	if n.prev.kind == Punct && n.prev.c == '(' && n.prev2.kw == kwExtract && n.peekKeyword() == kwFrom {
		n.constant(tok.Start, tok.End, ConstString, hcString)
		return true
	}
	return false
}

// number handles a Number token that was not folded with a minus sign.
func (n *normalizer) number(tok Token) {
	src := n.src
	b := src[tok.Start:tok.End]
	ck, hc := classifyNumber(b, false)
	depth := n.sp.depth
	p := n.prev
	afterOpenOrComma := p.kind == Punct && (p.c == '(' || p.c == ',')
	switch {
	case depth == n.typmodDepth && afterOpenOrComma:
		// varchar(255) after "::": a type modifier, not a Const node; its
		// text stays but it hashes like a constant (PostgreSQL jumbles
		// the length-coercion's argument as an int4 Const).
		n.h.tok(tagConst, uint64(hc))
	case depth == n.sortDepth && ck == ConstInteger && (p.kw == kwBy || (p.kind == Punct && p.c == ',')) && endsSortItem(src, n.peek()):
		// ORDER BY 1: a column number (findTargetlistEntrySQL92).
		mag, _ := parseUint(b)
		n.h.tok(tagSortPos, mag)
	default:
		n.constant(tok.Start, tok.End, ck, hc)
	}
}

// endsSortItem reports whether t can follow a bare column number in an
// ORDER BY / GROUP BY list.
func endsSortItem(src []byte, t Token) bool {
	switch t.Kind {
	case EOF:
		return true
	case Punct:
		c := src[t.Start]
		return c == ',' || c == ')' || c == ';'
	case Ident:
		switch lookupKeyword(src[t.Start:t.End]) {
		case kwTrue, kwFalse, kwNull:
			return false
		}
		return true // ASC, DESC, NULLS, LIMIT, ...
	}
	return false
}

// unaryContext reports whether a '-' at this point is a sign rather than
// binary minus.
func (n *normalizer) unaryContext() bool {
	p := n.prev
	switch p.kind {
	case EOF, Operator:
		return true
	case Punct:
		return p.c == '(' || p.c == ',' || p.c == '[' || p.c == ':'
	case Ident:
		return kwFlags[p.kw]&fUnary != 0
	}
	return false
}

// inList tries to collapse the list of constants that starts with the
// '(' open after IN. On success it has consumed everything up to and
// including the closing ')'.
func (n *normalizer) inList(open Token) bool {
	src := n.src
	c := Scanner{src: src, pos: open.End}
	nconsts := len(n.consts)
	first, last, count := -1, -1, 0
	var mask uint64
	for {
		t := c.Next()
		start := t.Start
		// Signs fold into a number here exactly as in run: "- -5" too.
		neg, signed := false, false
		for isMinus(src, t) {
			neg, signed = !neg, true
			t = c.Next()
		}
		if signed && t.Kind != Number {
			break
		}
		var ck ConstKind
		var hc uint8
		switch t.Kind {
		case Number:
			ck, hc = classifyNumber(src[t.Start:t.End], neg)
		case String:
			ck, hc = stringClass(src[t.Start])
		case Ident:
			switch lookupKeyword(src[t.Start:t.End]) {
			case kwTrue, kwFalse:
				ck, hc = ConstBool, hcBool
			case kwNull:
				ck, hc = ConstNull, hcString
			}
		}
		if ck == 0 {
			break
		}
		if first < 0 {
			first = start
		}
		last = t.End
		count++
		mask |= 1 << hc
		if n.emit {
			n.consts = append(n.consts, Const{int32(start), int32(t.End), ck})
		}
		t = c.Next()
		if t.Kind != Punct {
			break
		}
		if src[t.Start] == ',' {
			continue
		}
		if src[t.Start] != ')' {
			break
		}
		// Success.
		n.h.tok(tagPunct, '(')
		n.h.tok(tagInList, mask)
		n.h.tok(tagPunct, ')')
		if n.emit {
			n.placeholder(first, last, count > 1)
		}
		n.s.pos = t.End
		return true
	}
	n.consts = n.consts[:nconsts]
	return false
}
