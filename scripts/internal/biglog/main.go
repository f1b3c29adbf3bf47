// Command biglog writes a huge, realistic PostgreSQL stderr log to standard output, for
// scripts/bench-analyze to pipe into `pgpollwatch analyze -` and measure its memory bound.
//
//	go run ./scripts/internal/biglog --log postgresql.log --gb 5 | pgpollwatch analyze -
//
// It replays a real log (one written with a log_line_prefix that starts with '%m [%p]', as
// scripts/bench-analyze configures) over and over until --gb gigabytes (10^9 bytes) are written.
// Each repetition is what the analyzer would see if the same workload ran again right after:
//
//   - time moves forward: repetition r is shifted by r x (the log's span + 1 s), so time stamps
//     keep increasing across repetitions, as in a real log;
//   - every PID is new (pid + r x a power of ten above the largest PID), so sessions are new;
//   - every UUID (Celery's task ids) is new (its last 8 hex digits XORed with a constant per
//     repetition: a bijection within a repetition, distinct across them), so the watched keys
//     are new.
//
// New keys and sessions in every repetition are what stress memory: a log of a given size then
// holds far more keys than --max-keys, and the analyzer must stay bounded by that limit rather
// than by the input. Replaying unchanged lines would only test the same few keys again.
//
// Speed matters, so that the measurement is of the analyzer and not of this generator: the log
// is parsed once into a table of lines (time offset, PID, where the UUIDs are), and a repetition
// only appends bytes: the cached "YYYY-MM-DD HH:MM:SS" of the current second plus milliseconds,
// the new PID, and the rest of the line with its UUIDs patched in place. No time.Parse or
// regexp per line. It writes well over 1 GB/s on one core.
//
// Lines that do not start with a time stamp (continuation lines of multi-line statements, which
// start with a tab) are copied unchanged, except for their UUIDs. A statement is never cut in
// two: the output stops before the first line with a time stamp once --gb is reached.
//
// The time stamps are read as wall-clock times without a zone and shifted as such; the zone
// abbreviation is kept. scripts/bench-analyze sets log_timezone = 'UTC', so no daylight saving
// change can make that wrong.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// tsLayout is %m without the zone: what the first 23 bytes of a prefixed line hold.
const tsLayout = "2006-01-02 15:04:05.000"

// line is one line of the source log, as offsets into the source buffer.
type line struct {
	start, end int // the line, without its newline
	stamped    bool
	// For stamped lines: the time stamp's offset from the log's first, in milliseconds; the
	// bytes between the time stamp and the PID (" UTC ["); where the PID's digits end.
	offMS   int64
	pid     int64
	midEnd  int // end of " ZONE [": the PID's digits start here
	pidEnd  int
	uuidsLo int // range of this line's UUIDs in source.uuids
	uuidsHi int
}

type source struct {
	buf       []byte
	lines     []line
	uuids     []int // offset of each UUID's last 8 hex digits in buf
	base      time.Time
	span      int64 // last minus first time stamp, in milliseconds
	pidStride int64
}

func main() {
	logPath := flag.String("log", "", "the PostgreSQL stderr log to replay (log_line_prefix starting with '%m [%p]')")
	gb := flag.Float64("gb", 0, "how much to write, in GB (10^9 bytes); fractions allowed")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: biglog --log FILE --gb N >big.log\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *logPath == "" || !(*gb > 0) || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	src, err := load(*logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "biglog:", err)
		os.Exit(1)
	}
	start := time.Now()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	limit := int64(*gb * 1e9)
	lines, bytes, reps, err := src.write(w, limit)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "biglog: writing:", err)
		os.Exit(1)
	}
	secs := time.Since(start).Seconds()
	// One line, read by scripts/bench-analyze.
	fmt.Fprintf(os.Stderr, "biglog: %d lines, %d bytes, %d repetitions, %.2f s, %.0f MB/s\n",
		lines, bytes, reps, secs, float64(bytes)/1e6/secs)
}

// load reads the log and indexes its lines.
func load(path string) (*source, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &source{buf: buf}
	var maxPID int64
	first := true
	var last time.Time
	for start := 0; start < len(buf); {
		end := start
		for end < len(buf) && buf[end] != '\n' {
			end++
		}
		l := line{start: start, end: end}
		if ts, pid, midEnd, pidEnd, ok := parsePrefix(buf[start:end]); ok {
			if first {
				s.base, first = ts, false
			}
			l.stamped = true
			l.offMS = ts.Sub(s.base).Milliseconds()
			l.pid, l.midEnd, l.pidEnd = pid, start+midEnd, start+pidEnd
			maxPID = max(maxPID, pid)
			if ts.After(last) {
				last = ts
			}
		}
		l.uuidsLo = len(s.uuids)
		s.uuids = findUUIDs(s.uuids, buf, start, end)
		l.uuidsHi = len(s.uuids)
		s.lines = append(s.lines, l)
		start = end + 1
	}
	if first {
		return nil, errors.New(path + ": no line starts with a '%m [%p]' prefix (2006-01-02 15:04:05.000 UTC [123])")
	}
	s.span = last.Sub(s.base).Milliseconds()
	s.pidStride = 10
	for s.pidStride <= maxPID {
		s.pidStride *= 10
	}
	return s, nil
}

// parsePrefix reads "2006-01-02 15:04:05.000 ZONE [PID]" at the start of a line: the time
// stamp, the PID, and where the PID's digits start and end.
func parsePrefix(b []byte) (ts time.Time, pid int64, midEnd, pidEnd int, ok bool) {
	if len(b) < len(tsLayout)+4 || b[4] != '-' || b[10] != ' ' || b[19] != '.' || b[len(tsLayout)] != ' ' {
		return
	}
	ts, err := time.Parse(tsLayout, string(b[:len(tsLayout)]))
	if err != nil {
		return
	}
	i := len(tsLayout) + 1
	for i < len(b) && b[i] != ' ' { // the zone abbreviation
		i++
	}
	if i+2 >= len(b) || b[i+1] != '[' {
		return
	}
	midEnd = i + 2
	j := midEnd
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		pid = pid*10 + int64(b[j]-'0')
		j++
	}
	if j == midEnd || j >= len(b) || b[j] != ']' {
		return
	}
	return ts, pid, midEnd, j, true
}

// findUUIDs appends the offsets of the last 8 hex digits of each UUID in buf[start:end].
func findUUIDs(dst []int, buf []byte, start, end int) []int {
	for i := start; i+36 <= end; i++ {
		if isUUID(buf[i : i+36]) {
			dst = append(dst, i+28)
			i += 35
		}
	}
	return dst
}

func isUUID(b []byte) bool {
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// write replays the log until limit bytes are written (finishing the current statement), and
// returns how many lines, bytes and repetitions (begun) it wrote.
func (s *source) write(w io.Writer, limit int64) (lines, bytes int64, reps int, err error) {
	out := make([]byte, 0, 1<<16)
	var curSec int64 = -1 << 62
	var secText []byte // "2006-01-02 15:04:05" of curSec
	for r := 0; ; r++ {
		reps = r + 1
		shiftMS := int64(r) * (s.span + 1000)
		pidShift := int64(r) * s.pidStride
		// Odd multiplier: distinct for every r < 2^32, and 0 (the log itself) for r = 0.
		mask := uint32(r) * 0x9E3779B1
		for _, l := range s.lines {
			if l.stamped && bytes >= limit {
				return lines, bytes, reps, flush(w, out)
			}
			mark := len(out)
			if l.stamped {
				ms := s.base.UnixMilli() + l.offMS + shiftMS
				if sec := floorDiv(ms, 1000); sec != curSec {
					curSec = sec
					secText = time.Unix(sec, 0).UTC().AppendFormat(secText[:0], "2006-01-02 15:04:05")
				}
				out = append(out, secText...)
				m := ms - curSec*1000
				out = append(out, '.', byte('0'+m/100), byte('0'+m/10%10), byte('0'+m%10))
				out = append(out, s.buf[l.start+len(tsLayout):l.midEnd]...)
				out = strconv.AppendInt(out, l.pid+pidShift, 10)
				out = append(out, s.buf[l.pidEnd:l.end]...)
			} else {
				out = append(out, s.buf[l.start:l.end]...)
			}
			if r > 0 {
				// The UUIDs' offsets are in the source line; the output line differs in
				// length only before the PID's end, so measure from the line's end.
				lineEnd := len(out)
				for _, u := range s.uuids[l.uuidsLo:l.uuidsHi] {
					patchUUID(out[lineEnd-(l.end-u):], mask)
				}
			}
			out = append(out, '\n')
			lines++
			bytes += int64(len(out) - mark)
			if len(out) >= 1<<16-4096 {
				if err := flush(w, out); err != nil {
					return lines, bytes, reps, err
				}
				out = out[:0]
			}
		}
	}
}

func flush(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}

// patchUUID XORs the 8 hex digits at the start of b with mask, in lower case.
func patchUUID(b []byte, mask uint32) {
	var v uint32
	for _, c := range b[:8] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint32(c)
	}
	v ^= mask
	const hex = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		b[i] = hex[v&15]
		v >>= 4
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
