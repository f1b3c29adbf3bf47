package analyzer

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
)

// Attribution tags: which code sent a statement, read from the comment that sqlcommenter
// (/*controller='jobs',action='show',traceparent='...'*/, values URL-encoded and quoted) or
// marginalia (/*application:App,controller:jobs,job:PollJob*/) puts at the end of a statement
// (or, prepended, at its start). Only the keys that name code are kept, in a fixed order; the
// ones unique to a request (traceparent, tracestate, pid, hostname) would make every statement a
// tag of its own and say nothing of the code. Values are cut to maxTagValue bytes and runs that
// look like ids are masked, and past maxTags distinct tags every new one counts as "other".

const (
	maxTags     = 64 // distinct tags counted; the rest count as otherTag
	maxTagValue = 64 // bytes of a value kept
	maxTagLen   = 256
	noTag       = 0 // the statement had no attribution comment
	otherTag    = 1 // a tag past the cap
)

// tagKeys are the comment keys kept, in the order a tag lists them.
var tagKeys = []string{"application", "app", "framework", "controller", "controller_with_namespace", "action",
	"job", "task", "route", "endpoint", "module", "function", "source_location", "line"}

// tagTable interns tags: a statement's tag is a small id from then on.
type tagTable struct {
	mu    sync.Mutex
	ids   map[string]uint16
	stats []*tagStats // by id; [noTag] and [otherTag] are placeholders for "" and "other"
}

// tagStats counts the statements of one tag.
type tagStats struct {
	name     string
	mu       sync.Mutex
	queries  int64
	polls    int64
	ring     wideRing
	pollRing wideRing
}

func newTagTable() *tagTable {
	return &tagTable{ids: map[string]uint16{}, stats: []*tagStats{{}, {name: "other"}}}
}

// id interns tag, which must be non-empty: an existing id, a new one, or otherTag past the cap,
// with the tag's counters.
func (t *tagTable) id(tag []byte) (uint16, *tagStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[string(tag)]; ok {
		return id, t.stats[id]
	}
	if len(t.stats) >= maxTags+2 {
		return otherTag, t.stats[otherTag]
	}
	id := uint16(len(t.stats))
	name := string(tag)
	t.ids[name] = id
	t.stats = append(t.stats, &tagStats{name: name})
	return id, t.stats[id]
}

func (t *tagTable) get(id uint16) *tagStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats[id]
}

func (t *tagTable) name(id uint16) string { return t.get(id).name }

// count adds a statement of the tag (a poll when poll) in second sec.
func (s *tagStats) count(sec int64, poll bool) {
	s.mu.Lock()
	s.queries++
	s.ring.add(sec, 1)
	if poll {
		s.polls++
		s.pollRing.add(sec, 1)
	}
	s.mu.Unlock()
}

// snapshot lists the tags seen, busiest first.
func (t *tagTable) snapshot(sec int64) []TagStat {
	t.mu.Lock()
	stats := slices.Clone(t.stats[1:])
	t.mu.Unlock()
	var out []TagStat
	for _, s := range stats {
		s.mu.Lock()
		if s.queries > 0 {
			out = append(out, TagStat{Tag: s.name, Queries: s.queries, Polls: s.polls,
				QPS10: s.ring.rate(sec, 10), PollsPerSec10: s.pollRing.rate(sec, 10)})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(x, y TagStat) int {
		return cmp.Or(cmp.Compare(y.QPS10, x.QPS10), cmp.Compare(y.Queries, x.Queries), cmp.Compare(x.Tag, y.Tag))
	})
	return out
}

// splitComment finds the statement's attribution comment, a /* ... */ that ends it (after white
// space and a ';') or starts it, and returns its body (nil: none) and the text without it,
// which changes nothing of the statement: what the fingerprint cache keys on, so that a new
// traceparent is no new text. It looks at the ends of the text only, which costs nothing for
// the statements without one: a "*/" that ends a statement cannot be inside a string literal
// of a complete statement. It runs once a statement.
func splitComment(text []byte) (body, bare []byte) {
	start, end := commentSpan(text)
	switch {
	case start < 0:
		return nil, text
	case end == len(text) || len(bytes.TrimRight(text[end:], " \t\r\n;")) == 0:
		return text[start+2 : end-2], text[:start] // a comment that ends the statement
	}
	return text[start+2 : end-2], text[end:]
}

// commentOf is splitComment's body alone.
func commentOf(text []byte) []byte {
	body, _ := splitComment(text)
	return body
}

// commentSpan is where splitComment's comment lies in text, "/*" to "*/" included; -1, -1: none.
// It runs on every statement: plain loops, no cut sets.
func commentSpan(text []byte) (start, end int) {
	e := len(text)
	for e > 0 && (isSpace(text[e-1]) || text[e-1] == ';') {
		e--
	}
	if e >= 4 && text[e-1] == '/' && text[e-2] == '*' {
		// Backwards from the end: the cost is the comment's length, not the statement's.
		for i := e - 4; i >= 0; i-- {
			if text[i] == '/' && text[i+1] == '*' {
				return i, e
			}
		}
		return -1, -1
	}
	s := 0
	for s < len(text) && isSpace(text[s]) {
		s++
	}
	if s+1 < len(text) && text[s] == '/' && text[s+1] == '*' {
		if i := bytes.Index(text[s+2:], []byte("*/")); i >= 0 {
			return s, s + 2 + i + 2
		}
	}
	return -1, -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseTag reads a comment body's key/value pairs (sqlcommenter key='value' or marginalia
// key:value, comma-separated) and appends the tag, "k=v,k=v" in tagKeys order, to dst. It
// returns dst unchanged when the comment holds no key of tagKeys.
func parseTag(dst, body []byte) []byte {
	var vals [16][]byte // by index into tagKeys
	found := false
	for len(body) > 0 {
		var pair []byte
		pair, body = splitPair(body)
		k, v, ok := keyValue(pair)
		if !ok {
			continue
		}
		for i, want := range tagKeys {
			if i < len(vals) && string(k) == want && vals[i] == nil {
				vals[i], found = v, true
			}
		}
	}
	if !found {
		return dst
	}
	start := len(dst)
	for i := range tagKeys {
		v := vals[i]
		if v == nil {
			continue
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, tagKeys[i]...)
		dst = append(dst, '=')
		dst = appendValue(dst, v, tagKeys[i] == "line" || tagKeys[i] == "source_location")
		if len(dst)-start > maxTagLen {
			dst = dst[:start+maxTagLen]
			break
		}
	}
	return dst
}

// splitPair cuts the next comma-separated pair off s, minding quotes (a sqlcommenter value is
// quoted and may hold an escaped quote).
func splitPair(s []byte) (pair, rest []byte) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '\'':
			quoted = !quoted
		case c == ',' && !quoted:
			return s[:i], s[i+1:]
		}
	}
	return s, nil
}

// keyValue splits key='value' or key:value and decodes both; false when it is neither.
func keyValue(pair []byte) (k, v []byte, ok bool) {
	pair = bytes.TrimSpace(pair)
	i := bytes.IndexAny(pair, "=:")
	if i <= 0 {
		return nil, nil, false
	}
	k, v = bytes.TrimSpace(pair[:i]), bytes.TrimSpace(pair[i+1:])
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	if len(k) == 0 || len(v) == 0 || len(k) > 40 {
		return nil, nil, false
	}
	return k, v, true
}

// appendValue appends a value decoded (sqlcommenter's %XX and \' escapes), cut to maxTagValue,
// with runs that look like ids (six or more hex digits and dashes, one a digit) masked as '?'
// and characters that would break a tag (',', '=', control bytes) replaced. A code location
// (tail) keeps its end, the file and line, rather than its start, a long path.
func appendValue(dst, v []byte, tail bool) []byte {
	start := len(dst)
	limit := maxTagValue
	if tail {
		limit = 1024
	}
	for i := 0; i < len(v) && len(dst)-start < limit; i++ {
		c := v[i]
		switch {
		case c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]):
			c = unhex(v[i+1])<<4 | unhex(v[i+2])
			i += 2
		case c == '\\' && i+1 < len(v):
			i++
			c = v[i]
		}
		if c < 0x20 || c == 0x7f || c == ',' || c == '=' {
			c = '_'
		}
		dst = append(dst, c)
	}
	if n := len(dst) - start; n > maxTagValue {
		dst = append(dst[:start], dst[start+n-maxTagValue:]...)
	}
	return maskIDs(dst, start)
}

// maskIDs replaces, in dst[start:], each run of six or more hex digits and dashes that holds a
// digit by a single '?': a uuid, a job id or a hash in a route says which request, not which
// code, and would make every request a tag.
func maskIDs(dst []byte, start int) []byte {
	out := start
	for i := start; i < len(dst); {
		j, digit := i, false
		for j < len(dst) && (isHex(dst[j]) || dst[j] == '-') {
			digit = digit || '0' <= dst[j] && dst[j] <= '9'
			j++
		}
		if j-i >= 6 && digit {
			dst[out] = '?'
			out++
			i = j
			continue
		}
		if j == i {
			j = i + 1
		}
		out += copy(dst[out:], dst[i:j])
		i = j
	}
	return dst[:out]
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// tagTop keeps the few tags a key or poller was polled with most (the space-saving sketch: a
// new tag takes the least counted slot and inherits its count, so heavy tags stay).
type tagTop [3]struct {
	id uint16
	n  uint32
}

func (t *tagTop) add(id uint16) {
	if id == noTag {
		return
	}
	low := 0
	for i := range t {
		if t[i].id == id {
			t[i].n++
			return
		}
		if t[i].n < t[low].n {
			low = i
		}
	}
	t[low].id = id
	t[low].n++
}

// counts names the kept tags, most counted first.
func (t *tagTop) counts(tags *tagTable) []TagCount {
	var out []TagCount
	for _, e := range t {
		if e.n > 0 && e.id != noTag {
			out = append(out, TagCount{Tag: tags.name(e.id), Count: int64(e.n)})
		}
	}
	slices.SortFunc(out, func(x, y TagCount) int { return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Tag, y.Tag)) })
	return out
}

// tagOf is the attribution tag of a statement's comment body (noTag: none; body nil: no
// comment), with its counters. A connection that sends the same comment again, or another
// comment that gives the same tag (a new traceparent), gets them without the table's lock.
func (a *Analyzer) tagOf(cs *connState, body []byte) (uint16, *tagStats) {
	if body == nil {
		return noTag, nil
	}
	if cs.tagID != noTag && bytes.Equal(body, cs.tagBody) {
		return cs.tagID, cs.tagStat
	}
	cs.tagBuf = parseTag(cs.tagBuf[:0], body)
	switch {
	case len(cs.tagBuf) == 0:
		cs.tagID, cs.tagStat = noTag, nil
	case cs.tagID != noTag && bytes.Equal(cs.tagBuf, cs.tagName):
	default:
		cs.tagID, cs.tagStat = a.tags.id(cs.tagBuf)
		cs.tagName = append(cs.tagName[:0], cs.tagBuf...)
	}
	cs.tagBody = append(cs.tagBody[:0], body...)
	return cs.tagID, cs.tagStat
}

// sumTags adds up the top tags of several keys: the tags of a finding over a group of keys.
func sumTags(keys []KeyStat) []TagCount {
	sum := map[string]int64{}
	for _, k := range keys {
		for _, t := range k.Tags {
			sum[t.Tag] += t.Count
		}
	}
	out := make([]TagCount, 0, len(sum))
	for tag, n := range sum {
		out = append(out, TagCount{Tag: tag, Count: n})
	}
	slices.SortFunc(out, func(x, y TagCount) int { return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Tag, y.Tag)) })
	if len(out) > 3 {
		out = out[:3]
	}
	return out
}
