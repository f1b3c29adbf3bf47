package pglog

// stderrParser reads the stderr format: each message is a line starting with the
// log_line_prefix and a severity, lines starting with a tab continue it, and its DETAIL,
// HINT, CONTEXT and STATEMENT follow on lines of their own with the same prefix.
type stderrParser struct {
	r    *Reader
	in   *input
	pfx  *prefix
	tc   *timeCache
	f    lineFields
	pend entry // the next message's first line, read while looking for this one's end
	has  bool
	junk []byte // parts that are not kept (HINT, CONTEXT, ...)
}

func (r *Reader) newParser(in *input) parser {
	tc := &timeCache{loc: r.opt.Location}
	switch in.format {
	case "csvlog":
		return &csvParser{r: r, in: in, tc: tc}
	case "jsonlog":
		return &jsonParser{r: r, in: in, tc: tc}
	}
	return &stderrParser{r: r, in: in, pfx: in.prefix, tc: tc}
}

func (p *stderrParser) next(e *entry) bool {
	lines := p.in.lines
	for !p.has {
		line, ok := lines.next()
		if !ok {
			return false
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == '\t' || !p.fill(&p.pend, line) {
			p.r.bad(line)
			continue
		}
		p.has = true
	}
	*e, p.pend = p.pend, *e
	p.has = false
	last := &e.message
	for {
		line, ok := lines.next()
		if !ok {
			// A file cut short (a truncated compressed file) may have cut this message:
			// drop it rather than pass on half a statement.
			return lines.err == nil
		}
		if len(line) > 0 && line[0] == '\t' {
			*last = append(append(*last, '\n'), line[1:]...)
			continue
		}
		if len(line) == 0 {
			// Not PostgreSQL's (a message's empty line is a lone tab).
			continue
		}
		if !p.pfx.match(line, &p.f, p.tc) {
			p.r.bad(line)
			continue
		}
		sev, n := parseSeverity(line[p.f.end:])
		if sev.isPart() && p.f.pid == e.pid && string(p.f.sessionID) == string(e.sessionID) {
			body := line[p.f.end+n:]
			switch sev {
			case sevDetail:
				e.detail = append(e.detail[:0], body...)
				last = &e.detail
			case sevStatement:
				e.statement = append(e.statement[:0], body...)
				last = &e.statement
			default:
				p.junk = p.junk[:0]
				last = &p.junk
			}
			continue
		}
		// The next message: keep it for the next call.
		p.has = p.fillMatched(&p.pend, line)
		return true
	}
}

// fill parses a message's first line into e.
func (p *stderrParser) fill(e *entry, line []byte) bool {
	if !p.pfx.match(line, &p.f, p.tc) {
		return false
	}
	return p.fillMatched(e, line)
}

// fillMatched is fill for a line p.f holds the prefix of.
func (p *stderrParser) fillMatched(e *entry, line []byte) bool {
	f := &p.f
	sev, n := parseSeverity(line[f.end:])
	if n == 0 {
		return false
	}
	body := line[f.end+n:]
	// log_error_verbosity = verbose puts the SQLSTATE first: "LOG:  00000: statement: ...".
	if len(body) >= 7 && body[5] == ':' && body[6] == ' ' && isSQLState(body[:5]) {
		body = body[7:]
	}
	e.clear()
	e.time, e.pid, e.sessionStart, e.port, e.sev = f.time, f.pid, f.sessionStart, f.port, sev
	e.sessionID = append(e.sessionID, f.sessionID...)
	e.user = append(e.user, f.user...)
	e.db = append(e.db, f.db...)
	e.app = append(e.app, f.app...)
	e.host = append(e.host, f.host...)
	e.message = append(e.message, body...)
	return true
}

func isSQLState(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
