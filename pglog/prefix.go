package pglog

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// A prefix is a compiled log_line_prefix: literals and escapes, matched against the start of a
// stderr line without regular expressions. Variable-width fields (%u, %d, %a, ...) end where
// the next literal occurs; when that guess leaves a line that does not continue as the prefix
// says (an application name with a space), later occurrences are tried.
type prefix struct {
	src   string
	items []pitem
	// has* say which fields the prefix carries, so that a record knows what it must take
	// from the session's connection lines instead.
	hasTime, hasSession, hasUser, hasDB, hasApp, hasHost bool
}

type pitem struct {
	lit []byte // a literal, when esc == 0
	esc byte
	pad int
}

// lineFields is what a prefix yields for one line. Slices alias the line.
type lineFields struct {
	time         time.Time
	pid          int
	sessionID    []byte
	sessionStart time.Time
	user, db     []byte
	app, host    []byte
	port         int
	end          int // where the severity starts
	consumed     int // prefix items matched (not counting %q), to rank prefixes that fit
	budget       int // backtracking steps left
}

func (f *lineFields) reset() {
	*f = lineFields{}
}

func compilePrefix(s string) (*prefix, error) {
	p := &prefix{src: s}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			p.items = append(p.items, pitem{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			lit = append(lit, c)
			continue
		}
		i++
		if i >= len(s) {
			break // a trailing '%' prints nothing
		}
		// Padding: an optional '-' and digits, as in %-10u.
		j := i
		if s[j] == '-' {
			j++
		}
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		pad := 0
		if j > i {
			pad, _ = strconv.Atoi(s[i:j])
			if j == i+1 && s[i] == '-' {
				pad = 0
			}
			i = j
			if i >= len(s) {
				break
			}
		}
		c = s[i]
		switch c {
		case '%':
			lit = append(lit, '%')
			continue
		case 'a', 'u', 'd', 'r', 'h', 'b', 'p', 'P', 't', 'm', 'n', 'i', 'e', 'c', 'l', 's', 'v', 'x', 'q', 'Q':
		default:
			continue // PostgreSQL ignores unknown escapes
		}
		flush()
		p.items = append(p.items, pitem{esc: c, pad: pad})
		switch c {
		case 't', 'm', 'n':
			p.hasTime = true
		case 'c':
			p.hasSession = true
		case 'u':
			p.hasUser = true
		case 'd':
			p.hasDB = true
		case 'a':
			p.hasApp = true
		case 'h', 'r':
			p.hasHost = true
		}
	}
	flush()
	for _, it := range p.items {
		if it.esc == 'p' {
			return p, nil
		}
	}
	if p.hasSession {
		return p, nil
	}
	return p, fmt.Errorf("log_line_prefix %q has neither %%p nor %%c: statements cannot be told apart by session", s)
}

// match parses the prefix at the start of line, then checks that a severity ("LOG:  ")
// follows. It returns false if the line is not in this prefix's shape.
func (p *prefix) match(line []byte, f *lineFields, tc *timeCache) bool {
	*f = lineFields{budget: 64}
	return p.matchFrom(line, 0, 0, f, tc, 0)
}

const maxBacktrack = 16

func (p *prefix) matchFrom(line []byte, it, pos int, f *lineFields, tc *timeCache, depth int) bool {
	for ; it < len(p.items); it++ {
		item := &p.items[it]
		if item.esc == 0 {
			if !bytes.HasPrefix(line[pos:], item.lit) {
				return false
			}
			pos += len(item.lit)
			continue
		}
		rest := line[pos:]
		switch item.esc {
		case 'q':
			// Non-session processes stop here; a session's line goes on.
			if _, n := parseSeverity(rest); n > 0 {
				f.end = pos
				f.consumed = it - p.qBefore(it)
				return true
			}
			continue
		case 't', 's':
			t, n := tc.parse(rest, false)
			if n == 0 {
				return false
			}
			if item.esc == 't' {
				f.time = t
			} else {
				f.sessionStart = t
			}
			pos += n
			continue
		case 'm':
			t, n := tc.parse(rest, true)
			if n == 0 {
				return false
			}
			f.time = t
			pos += n
			continue
		case 'n':
			t, n := parseEpoch(rest)
			if n == 0 {
				return false
			}
			f.time = t
			pos += n
			continue
		case 'p', 'l', 'x', 'P':
			n := skipPad(rest, item.pad)
			v, m := parseUint(rest[n:])
			if m == 0 && item.esc != 'P' {
				return false
			}
			if item.esc == 'p' {
				f.pid = v
			}
			pos += n + m
			pos += trailPad(line[pos:], item.pad, m)
			continue
		case 'c':
			n := 0
			for n < len(rest) && (isHex(rest[n]) || rest[n] == '.') {
				n++
			}
			if n == 0 {
				return false
			}
			f.sessionID = rest[:n]
			pos += n
			continue
		case 'e':
			if len(rest) < 5 {
				return false
			}
			pos += 5
			continue
		}
		// A variable-width field: it ends where the next literal starts (or, last in the
		// prefix, where the severity starts).
		var next []byte
		if it+1 < len(p.items) && p.items[it+1].esc == 0 {
			next = p.items[it+1].lit
		}
		from := 0
		for tries := 0; tries < maxBacktrack; tries++ {
			if f.budget--; f.budget < 0 {
				return false
			}
			var end int
			if next != nil {
				k := bytes.Index(rest[from:], next)
				if k < 0 {
					return false
				}
				end = from + k
			} else if it+1 == len(p.items) {
				k := findSeverity(rest[from:])
				if k < 0 {
					return false
				}
				end = from + k
			} else {
				// Followed by another escape: take a run of non-blanks.
				end = bytes.IndexByte(rest, ' ')
				if end < 0 {
					return false
				}
			}
			v := trimPad(rest[:end], item.pad)
			setVar(f, item.esc, v)
			if p.matchFrom(line, it+1, pos+end, f, tc, depth+1) {
				return true
			}
			if next == nil || depth > 8 {
				return false
			}
			from = end + 1
			if from > len(rest) {
				return false
			}
		}
		return false
	}
	if _, n := parseSeverity(line[pos:]); n == 0 {
		return false
	}
	f.end = pos
	f.consumed = len(p.items) - p.qBefore(len(p.items))
	return true
}

// qBefore counts the %q items before item it.
func (p *prefix) qBefore(it int) int {
	n := 0
	for _, x := range p.items[:it] {
		if x.esc == 'q' {
			n++
		}
	}
	return n
}

func setVar(f *lineFields, esc byte, v []byte) {
	switch esc {
	case 'u':
		f.user = v
	case 'd':
		f.db = v
	case 'a':
		f.app = v
	case 'h':
		f.host = v
	case 'r':
		// host(port), or just host ([local], or no port).
		f.host, f.port = v, 0
		if n := len(v); n > 2 && v[n-1] == ')' {
			if k := bytes.LastIndexByte(v, '('); k > 0 {
				if port, m := parseUint(v[k+1 : n-1]); m == n-k-2 {
					f.host, f.port = v[:k], port
				}
			}
		}
	}
}

func skipPad(b []byte, pad int) int {
	if pad <= 0 {
		return 0
	}
	n := 0
	for n < len(b) && b[n] == ' ' {
		n++
	}
	return n
}

// trailPad skips the spaces a left-aligned (%-10p) field was padded with.
func trailPad(b []byte, pad, width int) int {
	if pad >= 0 {
		return 0
	}
	n := 0
	for width+n < -pad && n < len(b) && b[n] == ' ' {
		n++
	}
	return n
}

func trimPad(v []byte, pad int) []byte {
	if pad == 0 {
		return v
	}
	return bytes.Trim(v, " ")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func parseUint(b []byte) (int, int) {
	v, n := 0, 0
	for n < len(b) && n < 18 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int(b[n]-'0')
		n++
	}
	return v, n
}

// severity is a message's level, as the text before ":  ".
type severity uint8

const (
	sevNone severity = iota
	sevDebug
	sevInfo
	sevNotice
	sevWarning
	sevLog
	sevError
	sevFatal
	sevPanic
	// Parts of a message that stderr writes on lines of their own.
	sevDetail
	sevHint
	sevContext
	sevStatement
	sevQuery
	sevLocation
)

func (s severity) isPart() bool { return s >= sevDetail }

// parseSeverity reads "LOG:  " and the like at the start of b and returns the severity and
// the length through the two spaces (0 if there is none).
func parseSeverity(b []byte) (severity, int) {
	// The longest is "STATEMENT:  ".
	n := 0
	for n < len(b) && n < 9 && b[n] >= 'A' && b[n] <= 'Z' {
		n++
	}
	if n == 5 && n < len(b) && b[n] >= '1' && b[n] <= '5' { // DEBUG1 to DEBUG5
		n++
	}
	if n < 3 || len(b) < n+3 || b[n] != ':' || b[n+1] != ' ' || b[n+2] != ' ' {
		return sevNone, 0
	}
	var s severity
	switch string(b[:n]) {
	case "LOG":
		s = sevLog
	case "ERROR":
		s = sevError
	case "DETAIL":
		s = sevDetail
	case "STATEMENT":
		s = sevStatement
	case "FATAL":
		s = sevFatal
	case "PANIC":
		s = sevPanic
	case "WARNING":
		s = sevWarning
	case "NOTICE":
		s = sevNotice
	case "INFO":
		s = sevInfo
	case "HINT":
		s = sevHint
	case "CONTEXT":
		s = sevContext
	case "QUERY":
		s = sevQuery
	case "LOCATION":
		s = sevLocation
	case "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4", "DEBUG5":
		s = sevDebug
	default:
		return sevNone, 0
	}
	return s, n + 3
}

func severityWord(w []byte) severity {
	s, _ := parseSeverity(append(append(make([]byte, 0, 16), w...), ":  "...))
	return s
}

// findSeverity returns where the first severity ("LOG:  ") in b starts, or -1.
func findSeverity(b []byte) int {
	for i := 0; i+5 < len(b); {
		k := bytes.Index(b[i:], []byte(":  "))
		if k < 0 {
			return -1
		}
		end := i + k
		start := end
		for start > 0 && (b[start-1] >= 'A' && b[start-1] <= 'Z' || b[start-1] >= '0' && b[start-1] <= '9') {
			start--
		}
		if _, n := parseSeverity(b[start:]); n > 0 {
			return start
		}
		i = end + 1
	}
	return -1
}
