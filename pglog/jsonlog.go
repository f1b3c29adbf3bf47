package pglog

import (
	"unicode/utf16"
	"unicode/utf8"
)

// jsonParser reads jsonlog (PostgreSQL 15+): one JSON object per line, keys left out when
// empty. It is a small scanner for flat objects, not encoding/json: a line costs no
// allocation.
type jsonParser struct {
	r   *Reader
	in  *input
	tc  *timeCache
	key []byte
	val []byte
}

func (p *jsonParser) next(e *entry) bool {
	lines := p.in.lines
	for {
		line, ok := lines.next()
		if !ok {
			return false
		}
		if len(line) == 0 {
			continue
		}
		e.clear()
		if !p.parse(line, e) {
			p.r.bad(line)
			continue
		}
		return true
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// parse reads one object into e; false if it is not JSON or lacks a time stamp or severity.
func (p *jsonParser) parse(b []byte, e *entry) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false
	}
	haveTime := false
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		var ok bool
		if p.key, i, ok = jsonString(b, i, p.key[:0]); !ok {
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return false
		}
		var v []byte
		isString := b[i] == '"'
		if isString {
			if p.val, i, ok = jsonString(b, i, p.val[:0]); !ok {
				return false
			}
			v = p.val
		} else {
			start := i
			if i, ok = jsonSkipValue(b, i, 0); !ok {
				return false
			}
			v = b[start:i]
		}
		switch string(p.key) {
		case "timestamp":
			t, n := p.tc.parse(v, true)
			if n == 0 {
				return false
			}
			e.time, haveTime = t, true
		case "error_severity":
			if e.sev = severityWord(v); e.sev == sevNone {
				return false
			}
		case "pid":
			e.pid, _ = parseUint(v)
		case "session_id":
			e.sessionID = append(e.sessionID[:0], v...)
		case "session_start":
			if t, n := p.tc.parse(v, false); n > 0 {
				e.sessionStart = t
			}
		case "user":
			e.user = append(e.user[:0], v...)
		case "dbname":
			e.db = append(e.db[:0], v...)
		case "application_name":
			e.app = append(e.app[:0], v...)
		case "remote_host":
			e.host = append(e.host[:0], v...)
		case "remote_port":
			e.port, _ = parseUint(v)
		case "message":
			e.message = append(e.message[:0], v...)
		case "detail":
			e.detail = append(e.detail[:0], v...)
		case "statement":
			e.statement = append(e.statement[:0], v...)
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return false
		}
		i = skipWS(b, i+1)
	}
	return haveTime && e.sev != sevNone
}

// jsonString decodes the string starting at b[i] (a '"') onto dst, returning the index after
// its closing quote.
func jsonString(b []byte, i int, dst []byte) ([]byte, int, bool) {
	i++
	for {
		start := i
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		dst = append(dst, b[start:i]...)
		if i >= len(b) {
			return dst, i, false
		}
		if b[i] == '"' {
			return dst, i + 1, true
		}
		// An escape.
		if i+1 >= len(b) {
			return dst, i, false
		}
		c := b[i+1]
		i += 2
		switch c {
		case '"', '\\', '/':
			dst = append(dst, c)
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
		case 'u':
			r, ok := hex4(b, i)
			if !ok {
				return dst, i, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if r2, ok := hex4(b, i+2); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							i += 6
							dst = utf8.AppendRune(dst, d)
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, i, false
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// jsonSkipValue skips a number, true, false, null, object or array starting at b[i].
func jsonSkipValue(b []byte, i, depth int) (int, bool) {
	if depth > 32 || i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			if b[i] == '\\' {
				i++
			} else if b[i] == '"' {
				return i + 1, true
			}
		}
		return i, false
	case '{', '[':
		close := byte('}')
		if b[i] == '[' {
			close = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == close {
			return i + 1, true
		}
		for {
			var ok bool
			if close == '}' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				if i, ok = jsonSkipValue(b, i, depth+1); !ok {
					return i, false
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = skipWS(b, i+1)
			}
			if i, ok = jsonSkipValue(b, i, depth+1); !ok {
				return i, false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == close {
				return i + 1, true
			}
			if b[i] != ',' {
				return i, false
			}
			i = skipWS(b, i+1)
		}
	}
	start := i
	for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '-' || b[i] == '+' || b[i] == '.' || b[i] == 'e' || b[i] == 'E' ||
		b[i] >= 'a' && b[i] <= 'z') {
		i++
	}
	return i, i > start
}
