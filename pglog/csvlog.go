package pglog

import (
	"bytes"
)

// csvlog columns (PostgreSQL 12 has the first 23, 13 adds backend_type, 14 leader_pid and
// query_id).
const (
	csvTime = iota
	csvUser
	csvDB
	csvPID
	csvFrom
	csvSession
	csvLineNum
	csvTag
	csvSessionStart
	csvVXID
	csvXID
	csvSeverity
	csvState
	csvMessage
	csvDetail
	csvHint
	csvInternalQuery
	csvInternalPos
	csvContext
	csvQuery
	csvQueryPos
	csvLocation
	csvApp
	csvMinColumns
)

// csvParser reads csvlog: one record per message, quoted fields may hold newlines.
type csvParser struct {
	r      *Reader
	in     *input
	tc     *timeCache
	rec    []byte // a record of several physical lines
	src    []byte // the record being split: a line as read, or rec
	buf    []byte // fields that held doubled quotes, unquoted
	fields []csvField
}

// csvField is a field's span in src, or in buf when it had to be unquoted.
type csvField struct {
	start, end int
	inBuf      bool
}

func (p *csvParser) next(e *entry) bool {
	lines := p.in.lines
	for {
		line, ok := lines.next()
		if !ok {
			return false
		}
		if len(line) == 0 {
			continue
		}
		p.src = line
		quotes := bytes.Count(line, []byte{'"'})
		if quotes%2 == 1 {
			// A quoted field goes on over the next lines.
			p.rec = append(p.rec[:0], line...)
			for quotes%2 == 1 && len(p.rec) < maxLine {
				more, ok := lines.next()
				if !ok {
					break
				}
				quotes += bytes.Count(more, []byte{'"'})
				p.rec = append(append(p.rec, '\n'), more...)
			}
			p.src = p.rec
		}
		if quotes%2 == 1 && lines.err != nil {
			return false // cut short: see stderrParser.next
		}
		if quotes%2 == 1 || !p.split() || !p.fill(e) {
			p.r.bad(p.src)
			continue
		}
		return true
	}
}

// split parses p.src into fields.
func (p *csvParser) split() bool {
	p.buf, p.fields = p.buf[:0], p.fields[:0]
	b := p.src
	i := 0
	for {
		var f csvField
		if i < len(b) && b[i] == '"' {
			i++
			f.start = i
			for {
				k := bytes.IndexByte(b[i:], '"')
				if k < 0 {
					return false
				}
				if i+k+1 < len(b) && b[i+k+1] == '"' {
					// A doubled quote: this field is unquoted into buf.
					if !f.inBuf {
						f.inBuf = true
						from := f.start
						f.start = len(p.buf)
						p.buf = append(p.buf, b[from:i+k+1]...)
					} else {
						p.buf = append(p.buf, b[i:i+k+1]...)
					}
					i += k + 2
					continue
				}
				if f.inBuf {
					p.buf = append(p.buf, b[i:i+k]...)
					f.end = len(p.buf)
				} else {
					f.end = i + k
				}
				i += k + 1
				break
			}
		} else {
			k := bytes.IndexByte(b[i:], ',')
			if k < 0 {
				k = len(b) - i
			}
			f.start, f.end = i, i+k
			i += k
		}
		p.fields = append(p.fields, f)
		if i >= len(b) {
			return true
		}
		if b[i] != ',' {
			return false
		}
		i++
		if i == len(b) {
			p.fields = append(p.fields, csvField{start: i, end: i})
			return true
		}
	}
}

func (p *csvParser) field(i int) []byte {
	if i >= len(p.fields) {
		return nil
	}
	f := p.fields[i]
	if f.inBuf {
		return p.buf[f.start:f.end]
	}
	return p.src[f.start:f.end]
}

func (p *csvParser) fill(e *entry) bool {
	if len(p.fields) < csvMinColumns {
		return false
	}
	t, n := p.tc.parse(p.field(csvTime), true)
	if n == 0 || n != len(p.field(csvTime)) {
		return false
	}
	sev := severityWord(p.field(csvSeverity))
	if sev == sevNone {
		return false
	}
	pid, m := parseUint(p.field(csvPID))
	if m != len(p.field(csvPID)) {
		return false
	}
	e.time, e.pid, e.sev = t, pid, sev
	if st, n := p.tc.parse(p.field(csvSessionStart), false); n > 0 {
		e.sessionStart = st
	}
	e.sessionID = append(e.sessionID, p.field(csvSession)...)
	e.user = append(e.user, p.field(csvUser)...)
	e.db = append(e.db, p.field(csvDB)...)
	e.app = append(e.app, p.field(csvApp)...)
	from := p.field(csvFrom)
	e.host, e.port = splitHostPort(e.host, from)
	e.message = append(e.message, p.field(csvMessage)...)
	e.detail = append(e.detail, p.field(csvDetail)...)
	e.statement = append(e.statement, p.field(csvQuery)...)
	return true
}

// splitHostPort splits csvlog's connection_from, "10.0.0.1:5432", "::1:5432" or "[local]",
// appending the host to dst.
func splitHostPort(dst, from []byte) ([]byte, int) {
	if k := bytes.LastIndexByte(from, ':'); k > 0 && from[0] != '[' {
		if port, n := parseUint(from[k+1:]); n > 0 && n == len(from)-k-1 {
			return append(dst, from[:k]...), port
		}
	}
	return append(dst, from...), 0
}
