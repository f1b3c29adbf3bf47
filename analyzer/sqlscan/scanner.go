package sqlscan

import (
	"bytes"
	"encoding/binary"
)

// Kind is the lexical class of a [Token].
type Kind uint8

const (
	// EOF is returned at the end of the input (Start == End == len(src)).
	EOF Kind = iota
	// Ident is an unquoted identifier or keyword. PostgreSQL folds these to
	// lower case; compare them with [EqualFold].
	Ident
	// QuotedIdent is "..." (with "" doubling) or U&"...". Its value is
	// case-sensitive; decode it with [UnquoteIdent].
	QuotedIdent
	// String is any string constant: '...', E'...', N'...', U&'...',
	// B'...', X'...', $$...$$ and $tag$...$tag$. Quoted parts separated
	// only by whitespace containing a newline are one String token, as in
	// PostgreSQL. Decode it with [Unquote].
	String
	// Number is a numeric constant: 42, 1_000, 0x2A, 0o52, 0b101010, 4.2,
	// .5, 1e10. A sign is never part of the token.
	Number
	// Param is a positional parameter $1, $2, ...
	Param
	// Operator is an operator: one or more of ~!@#^&|`?+-*/%<>= following
	// PostgreSQL's rules for where an operator ends, and ":=" and "..".
	Operator
	// Cast is the "::" type-cast token.
	Cast
	// Punct is one of ( ) , ; [ ] . or a lone ':'.
	Punct
	// Other is a single byte that starts no token (a stray '$', '\', '{', a
	// control character, ...). PostgreSQL would reject most of them.
	Other
)

var kindNames = [...]string{"EOF", "Ident", "QuotedIdent", "String", "Number", "Param", "Operator", "Cast", "Punct", "Other"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Token is one lexical token: src[Start:End] is its text.
type Token struct {
	Kind       Kind
	Start, End int
}

// Scanner splits a statement into tokens in a single left-to-right pass. It
// skips whitespace and comments (-- to end of line, and nested /* */). The
// zero value scans an empty input; call Reset to scan src.
//
// The scanner never fails: input PostgreSQL would reject still yields
// tokens (an unterminated string or comment simply runs to the end of the
// input), so callers can fingerprint whatever an application sends. A
// Scanner is a plain value: copying it is a cheap way to look ahead.
type Scanner struct {
	src []byte
	pos int
}

// Reset makes s scan src from the beginning. src is not copied and must not
// be modified while tokens are in use.
func (s *Scanner) Reset(src []byte) {
	s.src = src
	s.pos = 0
}

// Pos returns the offset at which the next call to Next starts scanning.
func (s *Scanner) Pos() int { return s.pos }

// Src returns the input being scanned.
func (s *Scanner) Src() []byte { return s.src }

// Text returns the bytes of t.
func (s *Scanner) Text(t Token) []byte { return s.src[t.Start:t.End] }

// Actions of the scanner's dispatch on a token's first byte.
const (
	aOther  uint8 = iota // a byte that starts no token
	aSpace               // whitespace
	aIdent               // identifier start that cannot be a string prefix
	aPrefix              // e n b x u: identifier or E'', N'', B'', X'', U&'', U&""
	aDigit               // number
	aQuote               // '
	aDQuote              // "
	aDollar              // $
	aOp                  // operator character other than - and /
	aMinus               // - (operator or -- comment)
	aSlash               // / (operator or /* comment)
	aDot                 // . (punctuation, number or ..)
	aColon               // : (punctuation, :: or :=)
	aPunct               // ( ) , ; [ ]
)

var action = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case class[c]&cSpace != 0:
			t[c] = aSpace
		case class[c]&cIdentStart != 0:
			t[c] = aIdent
		case class[c]&cDigit != 0:
			t[c] = aDigit
		case class[c]&cOp != 0:
			t[c] = aOp
		}
	}
	for _, c := range []byte("enbxuENBXU") {
		t[c] = aPrefix
	}
	for _, c := range []byte("(),;[]") {
		t[c] = aPunct
	}
	t['\''], t['"'], t['$'], t['-'], t['/'], t['.'], t[':'] = aQuote, aDQuote, aDollar, aMinus, aSlash, aDot, aColon
	return t
}()

// Next returns the next token, or a token of Kind EOF at the end of input.
func (s *Scanner) Next() Token {
	src := s.src
	n := len(src)
	for i := s.pos; i < n; {
		var kind Kind
		end := i + 1
		switch action[src[i]] {
		case aSpace:
			i++
			continue
		case aIdent:
			// Identifiers are most of a typical statement's bytes: test
			// eight bytes per branch with four independent pair lookups,
			// then finish one byte at a time.
			j := i + 1
			for j+8 <= n {
				w := binary.LittleEndian.Uint64(src[j:])
				if identPair[uint16(w)]&identPair[uint16(w>>16)]&identPair[uint16(w>>32)]&identPair[uint16(w>>48)] == 0 {
					break
				}
				j += 8
			}
			for j < n && class[src[j]]&cIdentCont != 0 {
				j++
			}
			s.pos = j
			return Token{Ident, i, j}
		case aPunct:
			s.pos = end
			return Token{Punct, i, end}
		case aPrefix:
			kind, end = s.identOrPrefixed(i)
		case aDigit:
			kind, end = Number, scanNumber(src, i)
		case aQuote:
			kind, end = String, scanQuoted(src, i, false)
		case aDQuote:
			kind, end = QuotedIdent, scanQuotedIdent(src, i)
		case aDollar:
			kind, end = scanDollar(src, i)
		case aMinus:
			if i+1 < n && src[i+1] == '-' {
				i = skipLineComment(src, i+2)
				continue
			}
			kind, end = Operator, scanOperator(src, i)
		case aSlash:
			if i+1 < n && src[i+1] == '*' {
				i = skipBlockComment(src, i+2)
				continue
			}
			kind, end = Operator, scanOperator(src, i)
		case aOp:
			kind, end = Operator, scanOperator(src, i)
		case aDot:
			switch {
			case i+1 < n && isDigit(src[i+1]):
				kind, end = Number, scanNumber(src, i)
			case i+1 < n && src[i+1] == '.':
				kind, end = Operator, i+2 // scan.l's DOT_DOT (PL/pgSQL ranges)
			default:
				kind = Punct
			}
		case aColon:
			kind = Punct
			if i+1 < n {
				switch src[i+1] {
				case ':':
					kind, end = Cast, i+2
				case '=':
					kind, end = Operator, i+2
				}
			}
		default:
			kind = Other
		}
		s.pos = end
		return Token{kind, i, end}
	}
	s.pos = n
	return Token{EOF, n, n}
}

// identOrPrefixed scans what starts with one of the letters e n b x u: a
// string or quoted identifier introduced by a prefix (E'...', N'...',
// B'...', X'...', U&'...', U&"...") or else an identifier.
func (s *Scanner) identOrPrefixed(i int) (Kind, int) {
	src := s.src
	n := len(src)
	if i+1 < n {
		switch src[i] {
		case 'e', 'E':
			if src[i+1] == '\'' {
				return String, scanQuoted(src, i+1, true)
			}
		case 'n', 'N', 'b', 'B', 'x', 'X':
			if src[i+1] == '\'' {
				return String, scanQuoted(src, i+1, false)
			}
		case 'u', 'U':
			if src[i+1] == '&' && i+2 < n {
				switch src[i+2] {
				case '\'':
					return String, scanQuoted(src, i+2, false)
				case '"':
					return QuotedIdent, scanQuotedIdent(src, i+2)
				}
			}
		}
	}
	j := i + 1
	for j < n && class[src[j]]&cIdentCont != 0 {
		j++
	}
	return Ident, j
}

// skipLineComment returns the offset of the newline ending a -- comment
// whose body starts at i (or len(src)).
func skipLineComment(src []byte, i int) int {
	for i < len(src) && src[i] != '\n' && src[i] != '\r' {
		i++
	}
	return i
}

// skipBlockComment returns the offset just past the */ that closes a /*
// comment whose body starts at i. Block comments nest in PostgreSQL.
func skipBlockComment(src []byte, i int) int {
	depth := 1
	n := len(src)
	for i < n {
		switch src[i] {
		case '*':
			if i+1 < n && src[i+1] == '/' {
				i += 2
				if depth--; depth == 0 {
					return i
				}
				continue
			}
		case '/':
			if i+1 < n && src[i+1] == '*' {
				depth++
				i += 2
				continue
			}
		}
		i++
	}
	return n
}

// scanQuoted scans a '-quoted string whose opening quote is at i and
// returns the offset just past it. esc enables backslash escapes (E'...').
// Quoted parts separated by whitespace that contains a newline are one
// constant (SQL standard; scan.l's quotecontinue).
func scanQuoted(src []byte, i int, esc bool) int {
	n := len(src)
	i++
	for {
		if esc {
			for i < n && src[i] != '\'' {
				if src[i] == '\\' {
					i++
				}
				i++
			}
			if i >= n {
				return n
			}
		} else {
			k := bytes.IndexByte(src[i:], '\'')
			if k < 0 {
				return n
			}
			i += k
		}
		// src[i] is a quote.
		i++
		if i < n && src[i] == '\'' {
			i++ // doubled quote
			continue
		}
		if j, ok := continuation(src, i); ok {
			i = j + 1
			continue
		}
		return i
	}
}

// continuation reports whether the string constant that ended just before
// i continues: scan.l's {quote}{whitespace_with_newline}{quote}. Between
// the two quotes only whitespace and -- comments may appear, and at least
// one newline must. It returns the offset of the continuing quote.
func continuation(src []byte, i int) (int, bool) {
	n := len(src)
	newline := false
	for i < n {
		switch c := src[i]; c {
		case ' ', '\t', '\f', '\v':
			i++
		case '\n', '\r':
			newline = true
			i++
		case '-':
			if i+1 >= n || src[i+1] != '-' {
				return 0, false
			}
			// A -- comment must itself be ended by a newline.
			i = skipLineComment(src, i+2)
			if i >= n {
				return 0, false
			}
		case '\'':
			return i, newline
		default:
			return 0, false
		}
	}
	return 0, false
}

// scanQuotedIdent scans "..." (with "" doubling) opening at i.
func scanQuotedIdent(src []byte, i int) int {
	n := len(src)
	i++
	for {
		k := bytes.IndexByte(src[i:], '"')
		if k < 0 {
			return n
		}
		i += k + 1
		if i < n && src[i] == '"' {
			i++
			continue
		}
		return i
	}
}

// scanDollar scans what starts with '$': a parameter ($1), a dollar-quoted
// string ($$...$$, $tag$...$tag$), or a lone '$' (Other) when neither
// applies, which is what scan.l's dolqfailed rule does.
func scanDollar(src []byte, i int) (Kind, int) {
	n := len(src)
	j := i + 1
	if j < n && isDigit(src[j]) {
		for j < n && isDigit(src[j]) {
			j++
		}
		return Param, j
	}
	if j < n && class[src[j]]&cIdentStart != 0 {
		j++
		for j < n && class[src[j]]&cTagCont != 0 {
			j++
		}
	}
	if j >= n || src[j] != '$' {
		return Other, i + 1
	}
	j++
	delim := src[i:j]
	// A plain substring search for the closing delimiter finds the same
	// end as scan.l's xdolq state (see the tests for the tricky cases).
	k := bytes.Index(src[j:], delim)
	if k < 0 {
		return String, n
	}
	return String, j + k + len(delim)
}

// scanNumber scans a numeric constant starting at i (a digit, or a '.'
// followed by a digit), using PostgreSQL 16's syntax: underscores between
// digits, 0x / 0o / 0b integers. Trailing junk such as the "abc" of 123abc
// is left for the next token (PostgreSQL raises an error there).
func scanNumber(src []byte, i int) int {
	n := len(src)
	if src[i] == '0' && i+2 < n {
		base := 0
		switch src[i+1] | 0x20 {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if base != 0 {
			if j := scanDigits(src, i+2, base); j > i+2 {
				return j
			}
		}
	}
	j := i
	if src[i] != '.' {
		j = scanDigits(src, i+1, 10)
		if j < n && src[j] == '.' {
			if j+1 < n && src[j+1] == '.' {
				return j // "1..10": integer followed by "..", scan.l's decimalfail
			}
			j++
			if j < n && isDigit(src[j]) {
				j = scanDigits(src, j+1, 10)
			}
		}
	} else {
		j = scanDigits(src, i+2, 10)
	}
	// Exponent.
	if j < n && src[j]|0x20 == 'e' {
		k := j + 1
		if k < n && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < n && isDigit(src[k]) {
			return scanDigits(src, k+1, 10)
		}
	}
	return j
}

// scanDigits consumes (_?digit)* in the given base starting at i.
func scanDigits(src []byte, i, base int) int {
	n := len(src)
	for {
		k := i
		if k < n && src[k] == '_' {
			k++
		}
		if k >= n || !isBaseDigit(src[k], base) {
			return i
		}
		i = k + 1
	}
}

func isBaseDigit(c byte, base int) bool {
	switch base {
	case 10:
		return isDigit(c)
	case 16:
		return class[c]&cHex != 0
	case 8:
		return c >= '0' && c <= '7'
	default:
		return c == '0' || c == '1'
	}
}

// scanOperator scans an operator starting at i with PostgreSQL's rules: the
// longest run of operator characters, cut before an embedded comment start
// ("/*" or "--"), and a multi-character operator may not end in + or -
// unless it contains one of ~ ! @ # ^ & | ` ? % (so "=-5" is "=" then "-"
// then "5", but "@-" is one operator).
func scanOperator(src []byte, i int) int {
	n := len(src)
	j := i + 1
	for j < n && class[src[j]]&cOp != 0 {
		if j+1 < n && ((src[j] == '/' && src[j+1] == '*') || (src[j] == '-' && src[j+1] == '-')) {
			break
		}
		j++
	}
	if j-i > 1 && (src[j-1] == '+' || src[j-1] == '-') {
		for k := i; k < j-1; k++ {
			switch src[k] {
			case '~', '!', '@', '#', '^', '&', '|', '`', '?', '%':
				return j
			}
		}
		for j-i > 1 && (src[j-1] == '+' || src[j-1] == '-') {
			j--
		}
	}
	return j
}

// identPair[p] is 1 iff both bytes of the little-endian pair p may continue
// an identifier, so one lookup classifies two bytes. (On the machines this
// was tuned on, four pair lookups per 8 bytes beat eight byte lookups and
// a SWAR range test.)
var identPair = func() *[1 << 16]uint8 {
	t := new([1 << 16]uint8)
	for p := range t {
		if class[p&0xff]&class[p>>8]&cIdentCont != 0 {
			t[p] = 1
		}
	}
	return t
}()
