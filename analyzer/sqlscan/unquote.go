package sqlscan

import (
	"bytes"
	"unicode/utf8"
)

// Unquote appends the value of the string-constant token tok (the text of a
// String token) to dst and reports whether tok was well formed. On failure
// it returns dst unchanged and false. It allocates only if dst lacks
// capacity.
//
// It understands every form the scanner produces, assuming
// standard_conforming_strings = on and a UTF-8 database:
//
//   - '...' and N'...': a doubled quote stands for one, backslash is an
//     ordinary character.
//   - E'...': also \b \f \n \r \t, \ooo (octal), \xhh (hex), \uXXXX,
//     \UXXXXXXXX (with UTF-16 surrogate pairs) and \c for any other c. As in
//     PostgreSQL the result must be valid UTF-8 without NUL bytes when
//     octal or hex escapes were used.
//   - U&'...': \XXXX, \+XXXXXX and \\ with the default escape character.
//     A UESCAPE clause is a separate token that Unquote does not see.
//   - B'...' and X'...': the binary or hexadecimal digits as written.
//   - $$...$$ and $tag$...$tag$: the body, verbatim.
//
// Quoted parts continued across a newline ('a'<newline>'b') are joined.
func Unquote(dst, tok []byte) ([]byte, bool) {
	if len(tok) < 2 {
		return dst, false
	}
	orig := len(dst)
	var ok bool
	switch tok[0] {
	case '\'':
		dst, ok = unquoteParts(dst, tok, 0, modeStd)
	case 'e', 'E':
		dst, ok = unquoteParts(dst, tok, 1, modeEsc)
	case 'n', 'N':
		dst, ok = unquoteParts(dst, tok, 1, modeStd)
	case 'b', 'B':
		dst, ok = unquoteParts(dst, tok, 1, modeBin)
	case 'x', 'X':
		dst, ok = unquoteParts(dst, tok, 1, modeHex)
	case 'u', 'U':
		if len(tok) > 2 && tok[1] == '&' {
			dst, ok = unquoteParts(dst, tok, 2, modeUni)
		}
	case '$':
		dst, ok = unquoteDollar(dst, tok)
	}
	if !ok {
		return dst[:orig], false
	}
	return dst, true
}

// UnquoteIdent appends the value of an identifier token to dst: for "..."
// the text between the quotes with "" undoubled, for U&"..." additionally
// with Unicode escapes decoded (as for U&'...'), and for an unquoted
// identifier its ASCII-lower-cased text (PostgreSQL's case folding). It
// reports false, leaving dst unchanged, for a malformed or empty quoted
// identifier. Unlike PostgreSQL it does not truncate to NAMEDATALEN-1 bytes.
func UnquoteIdent(dst, tok []byte) ([]byte, bool) {
	if len(tok) == 0 {
		return dst, false
	}
	orig := len(dst)
	switch {
	case tok[0] == '"':
		v, ok := unquoteIdentBody(dst, tok, 0, false)
		if !ok || len(v) == orig {
			return dst[:orig], false
		}
		return v, true
	case len(tok) > 2 && (tok[0] == 'u' || tok[0] == 'U') && tok[1] == '&' && tok[2] == '"':
		v, ok := unquoteIdentBody(dst, tok, 2, true)
		if !ok || len(v) == orig {
			return dst[:orig], false
		}
		return v, true
	case class[tok[0]]&cIdentStart != 0:
		for _, c := range tok {
			if class[c]&cIdentCont == 0 {
				return dst[:orig], false
			}
			dst = append(dst, lower[c])
		}
		return dst, true
	}
	return dst, false
}

// unquoteIdentBody decodes "..." starting with the quote at tok[q].
func unquoteIdentBody(dst, tok []byte, q int, uni bool) ([]byte, bool) {
	i := q + 1
	n := len(tok)
	start := len(dst)
	for {
		k := bytes.IndexByte(tok[i:], '"')
		if k < 0 {
			return dst, false
		}
		dst = append(dst, tok[i:i+k]...)
		i += k + 1
		if i < n && tok[i] == '"' {
			dst = append(dst, '"')
			i++
			continue
		}
		if i != n {
			return dst, false
		}
		break
	}
	if !uni {
		return dst, true
	}
	// Decode escapes in place: the decoded form is never longer.
	body := dst[start:]
	out, ok := deescapeUnicode(body[:0], body, '\\')
	return dst[:start+len(out)], ok
}

type quoteMode uint8

const (
	modeStd quoteMode = iota // '' only
	modeEsc                  // E'': backslash escapes
	modeUni                  // U&'': Unicode escapes
	modeBin                  // B'': binary digits
	modeHex                  // X'': hex digits
)

// unquoteParts decodes a '-quoted constant whose first quote is at tok[q],
// including continuation parts.
func unquoteParts(dst, tok []byte, q int, mode quoteMode) ([]byte, bool) {
	if q >= len(tok) || tok[q] != '\'' {
		return dst, false
	}
	start := len(dst)
	i := q + 1
	n := len(tok)
	var ok, check bool
	for {
		if mode == modeEsc {
			var c bool
			dst, i, c, ok = unescapePart(dst, tok, i)
			if !ok {
				return dst, false
			}
			check = check || c
		} else {
			// Copy up to the closing quote, undoubling ''.
			for {
				k := bytes.IndexByte(tok[i:], '\'')
				if k < 0 {
					return dst, false
				}
				dst = append(dst, tok[i:i+k]...)
				i += k + 1
				if i < n && tok[i] == '\'' {
					dst = append(dst, '\'')
					i++
					continue
				}
				break
			}
		}
		if i == n {
			break
		}
		j, cont := continuation(tok, i)
		if !cont {
			return dst, false
		}
		i = j + 1
	}
	val := dst[start:]
	switch mode {
	case modeEsc:
		// Octal/hex escapes can produce arbitrary bytes; PostgreSQL then
		// verifies the whole literal.
		if check && (bytes.IndexByte(val, 0) >= 0 || !utf8.Valid(val)) {
			return dst, false
		}
	case modeUni:
		out, ok := deescapeUnicode(val[:0], val, '\\')
		return dst[:start+len(out)], ok
	case modeBin:
		for _, c := range val {
			if c != '0' && c != '1' {
				return dst, false
			}
		}
	case modeHex:
		for _, c := range val {
			if class[c]&cHex == 0 {
				return dst, false
			}
		}
	}
	return dst, true
}

// unescapePart decodes one E'...' part starting after its opening quote,
// returning the offset just past the closing quote.
func unescapePart(dst, tok []byte, i int) ([]byte, int, bool, bool) {
	n := len(tok)
	check := false
	for i < n {
		c := tok[i]
		switch c {
		case '\'':
			if i+1 < n && tok[i+1] == '\'' {
				dst = append(dst, '\'')
				i += 2
				continue
			}
			return dst, i + 1, check, true
		case '\\':
			if i+1 >= n {
				return dst, i, check, false
			}
			e := tok[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				v := int(e - '0')
				for k := 0; k < 2 && i < n && tok[i] >= '0' && tok[i] <= '7'; k++ {
					v = v*8 + int(tok[i]-'0')
					i++
				}
				b := byte(v) // PostgreSQL keeps the low 8 bits of \777
				if b == 0 || b >= 0x80 {
					check = true
				}
				dst = append(dst, b)
			case 'x':
				if i < n && class[tok[i]]&cHex != 0 {
					v := hexVal(tok[i])
					i++
					if i < n && class[tok[i]]&cHex != 0 {
						v = v*16 + hexVal(tok[i])
						i++
					}
					b := byte(v)
					if b == 0 || b >= 0x80 {
						check = true
					}
					dst = append(dst, b)
				} else {
					dst = append(dst, 'x') // "\x" without digits is just "x"
				}
			case 'u', 'U':
				digits := 4
				if e == 'U' {
					digits = 8
				}
				r, ok := hexRun(tok, i, digits)
				if !ok {
					return dst, i, check, false
				}
				i += digits
				if isHighSurrogate(r) {
					// Must be followed by \u or \U with the low half.
					if i+1 >= n || tok[i] != '\\' || (tok[i+1] != 'u' && tok[i+1] != 'U') {
						return dst, i, check, false
					}
					d2 := 4
					if tok[i+1] == 'U' {
						d2 = 8
					}
					lo, ok := hexRun(tok, i+2, d2)
					if !ok || !isLowSurrogate(lo) {
						return dst, i, check, false
					}
					i += 2 + d2
					r = surrogatePair(r, lo)
				} else if isLowSurrogate(r) || !validCodePoint(r) {
					return dst, i, check, false
				}
				dst = utf8.AppendRune(dst, r)
			default:
				dst = append(dst, e)
			}
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst, i, check, false
}

// deescapeUnicode decodes U&'...' escapes of src (which has quotes already
// undoubled) into dst. dst may alias src: output never outruns input.
func deescapeUnicode(dst, src []byte, esc byte) ([]byte, bool) {
	n := len(src)
	var pairFirst rune
	for i := 0; i < n; {
		c := src[i]
		if c != esc {
			if pairFirst != 0 {
				return dst, false
			}
			dst = append(dst, c)
			i++
			continue
		}
		var r rune
		switch {
		case i+1 < n && src[i+1] == esc:
			if pairFirst != 0 {
				return dst, false
			}
			dst = append(dst, esc)
			i += 2
			continue
		case i+1 < n && src[i+1] == '+':
			v, ok := hexRun(src, i+2, 6)
			if !ok {
				return dst, false
			}
			r = v
			i += 8
		default:
			v, ok := hexRun(src, i+1, 4)
			if !ok {
				return dst, false
			}
			r = v
			i += 5
		}
		switch {
		case pairFirst != 0:
			if !isLowSurrogate(r) {
				return dst, false
			}
			r = surrogatePair(pairFirst, r)
			pairFirst = 0
		case isHighSurrogate(r):
			pairFirst = r
			continue
		case isLowSurrogate(r) || !validCodePoint(r):
			return dst, false
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst, pairFirst == 0
}

// unquoteDollar decodes $tag$body$tag$.
func unquoteDollar(dst, tok []byte) ([]byte, bool) {
	k := bytes.IndexByte(tok[1:], '$')
	if k < 0 {
		return dst, false
	}
	d := k + 2 // delimiter length
	if len(tok) < 2*d || !bytes.Equal(tok[:d], tok[len(tok)-d:]) {
		return dst, false
	}
	return append(dst, tok[d:len(tok)-d]...), true
}

func hexVal(c byte) rune {
	switch {
	case c <= '9':
		return rune(c - '0')
	case c >= 'a':
		return rune(c - 'a' + 10)
	default:
		return rune(c - 'A' + 10)
	}
}

// hexRun parses exactly digits hex digits at b[i:].
func hexRun(b []byte, i, digits int) (rune, bool) {
	if i+digits > len(b) {
		return 0, false
	}
	var v uint32
	for _, c := range b[i : i+digits] {
		if class[c]&cHex == 0 {
			return 0, false
		}
		v = v<<4 | uint32(hexVal(c))
	}
	if v > 0x7fffffff {
		return 0, false
	}
	return rune(v), true
}

func isHighSurrogate(r rune) bool { return r >= 0xD800 && r <= 0xDBFF }
func isLowSurrogate(r rune) bool  { return r >= 0xDC00 && r <= 0xDFFF }
func validCodePoint(r rune) bool  { return r > 0 && r <= 0x10FFFF }
func surrogatePair(hi, lo rune) rune {
	return 0x10000 + (hi-0xD800)<<10 + (lo - 0xDC00)
}
