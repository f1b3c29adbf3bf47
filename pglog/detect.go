package pglog

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// sampleOf returns the first complete lines of sample (at most sampleLines), skipping empty
// ones.
func sampleOf(sample []byte) [][]byte {
	var lines [][]byte
	for len(sample) > 0 && len(lines) < sampleLines {
		k := bytes.IndexByte(sample, '\n')
		if k < 0 {
			lines = append(lines, sample) // the last line, maybe cut: still worth a look
			break
		}
		if k > 0 {
			lines = append(lines, sample[:k])
		}
		sample = sample[k+1:]
	}
	return lines
}

// detect decides the format (and for stderr the prefix) of in from its first bytes.
func (r *Reader) detect(in *input, sample []byte, given *prefix) error {
	lines := sampleOf(sample)
	if len(lines) == 0 {
		// An empty file: nothing to read, whatever its format.
		in.format = r.opt.Format
		if in.format == "" {
			in.format = "stderr"
		}
		if in.format == "stderr" {
			in.prefix = given
			if in.prefix == nil {
				in.prefix, _ = compilePrefix(DetectPrefixes[0])
			}
		}
		return nil
	}
	format := r.opt.Format
	if format == "" {
		format = guessFormat(lines)
	}
	switch format {
	case "jsonlog", "csvlog":
		in.format = format
		if !r.sampleParses(in, lines) {
			return fmt.Errorf("pglog: %s: not a PostgreSQL %s file: no record in its first %d lines has the %s fields (a time stamp, error_severity); a line: %s",
				in.info.Path, format, len(lines), format, maskLiterals(lines[0]))
		}
		return nil
	}
	in.format = "stderr"
	if given != nil {
		in.prefix = given
		if matched, _, total := prefixScore(given, lines, r.opt.Location); matched == 0 {
			return fmt.Errorf("pglog: %s: the lines do not start with log_line_prefix %q (%d of %d match); a line: %s",
				in.info.Path, given.src, matched, total, maskLiterals(firstMessageLine(lines)))
		}
		return nil
	}
	// The prefix that fits most lines wins; among those, the one that says most about them
	// (Debian's over PostgreSQL's default on a log with session lines), then the shorter
	// (PostgreSQL's default over Debian's on a log without).
	var best *prefix
	bestScore, bestItems, total := 0, 0, 0
	for _, src := range DetectPrefixes {
		p, err := compilePrefix(src)
		if err != nil {
			continue
		}
		score, items, n := prefixScore(p, lines, r.opt.Location)
		total = n
		if score > bestScore || score == bestScore && score > 0 &&
			(items > bestItems || items == bestItems && len(p.items) < len(best.items)) {
			best, bestScore, bestItems = p, score, items
		}
	}
	if best == nil || bestScore*2 < total {
		quoted := make([]string, len(DetectPrefixes))
		for i, p := range DetectPrefixes {
			quoted[i] = fmt.Sprintf("%q", p)
		}
		return fmt.Errorf("pglog: %s: cannot tell the log format: not jsonlog, not csvlog, and no known log_line_prefix fits its lines as stderr (tried %s); give the server's log_line_prefix (SHOW log_line_prefix) with --prefix, or the format with --format (%s); a line: %s",
			in.info.Path, strings.Join(quoted, ", "), strings.Join(Formats, ", "), maskLiterals(firstMessageLine(lines)))
	}
	in.prefix = best
	return nil
}

func firstMessageLine(lines [][]byte) []byte {
	for _, l := range lines {
		if len(l) > 0 && l[0] != '\t' {
			return l
		}
	}
	return lines[0]
}

// guessFormat looks at the first line: jsonlog is an object, csvlog a time stamp and a comma.
func guessFormat(lines [][]byte) string {
	first := bytes.TrimLeft(lines[0], " \t\ufeff")
	if len(first) > 0 && first[0] == '{' {
		return "jsonlog"
	}
	var tc timeCache
	if _, n := tc.parse(first, true); n > 0 && n < len(first) && first[n] == ',' {
		return "csvlog"
	}
	return "stderr"
}

// prefixScore counts the sample's message lines (not continuation lines) that p parses, and
// the prefix items they matched in all.
func prefixScore(p *prefix, lines [][]byte, loc *time.Location) (matched, items, total int) {
	tc := &timeCache{loc: loc}
	var f lineFields
	for _, l := range lines {
		if len(l) == 0 || l[0] == '\t' {
			continue
		}
		total++
		if p.match(l, &f, tc) {
			matched++
			items += f.consumed
		}
	}
	return matched, items, total
}

// sampleParses says whether one of the sample's lines reads as a record of in's format.
func (r *Reader) sampleParses(in *input, lines [][]byte) bool {
	joined := bytes.Join(lines, []byte{'\n'})
	s := &input{info: in.info, format: in.format, lines: &lineReader{br: newBytesReader(joined)}}
	sub := &Reader{opt: r.opt, stats: Stats{}}
	sub.opt.MaxBadExamples = -1
	sub.cur = s
	p := sub.newParser(s)
	var e entry
	return p.next(&e)
}

// firstTime returns the time of the first message of the sample that has one.
func (r *Reader) firstTime(in *input, sample []byte) time.Time {
	lines := sampleOf(sample)
	if len(lines) == 0 {
		return time.Time{}
	}
	joined := bytes.Join(lines, []byte{'\n'})
	s := &input{info: in.info, format: in.format, prefix: in.prefix, lines: &lineReader{br: newBytesReader(joined)}}
	sub := &Reader{opt: r.opt}
	sub.opt.MaxBadExamples = -1
	sub.cur = s
	p := sub.newParser(s)
	var e entry
	for p.next(&e) {
		if !e.time.IsZero() {
			return e.time
		}
	}
	return time.Time{}
}
