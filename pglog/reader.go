package pglog

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Reader reads records from log files; make one with Open. It is not safe for concurrent
// use.
type Reader struct {
	opt    Options
	inputs []*input
	next   int    // the next input to read
	cur    *input // the input being read
	parse  parser

	e       entry
	seq     int64
	order   order
	strings interner
	free    []*item
	byID    map[string]*session
	byPID   map[int]*session

	maxTime   time.Time
	watermark int64 // maxTime - Window in Unix nanoseconds: items at or before it may go
	eof       bool
	stats     Stats

	stdin        io.Reader
	readBytes    int64 // from the files as stored
	totalBytes   int64
	lastProgress int64
	sinceSweep   int
	doneLines    int64 // in the files read to their end
	doneBytes    int64
}

// input is one file: what detection found, and its reader while it is being read.
type input struct {
	info   FileInfo
	format string
	prefix *prefix
	// While reading:
	raw    io.Closer     // the file
	dec    io.Closer     // the decompressor, if it must be closed
	br     *bufio.Reader // decompressed text
	stdin  bool
	lines  *lineReader
	sample []byte // the first bytes, for detection
}

// parser reads the next entry of a file into e; false at the end of the file.
type parser interface {
	next(e *entry) bool
}

const (
	readBuffer  = 256 << 10
	sampleBytes = 64 << 10
	sampleLines = 400
	maxLine     = 64 << 20
	maxHeap     = 1 << 18 // records held back at most, whatever the window
	maxBadText  = 200
)

// Open opens the log files (paths; "-" is standard input) and detects their formats and
// compression. It fails if a file cannot be opened or its format not told, naming the file,
// what was tried and a line of it.
func Open(paths []string, opt Options) (*Reader, error) {
	return open(paths, opt, os.Stdin)
}

// OpenStdin is Open with "-" read from stdin: a caller that has looked at the first bytes of
// standard input already (to tell a log from a capture) hands over what it buffered.
func OpenStdin(paths []string, opt Options, stdin io.Reader) (*Reader, error) {
	return open(paths, opt, stdin)
}

func open(paths []string, opt Options, stdin io.Reader) (*Reader, error) {
	if len(paths) == 0 {
		return nil, errors.New("pglog: no log file given")
	}
	switch opt.Format {
	case "", "stderr", "csvlog", "jsonlog":
	case "csv":
		opt.Format = "csvlog"
	case "json":
		opt.Format = "jsonlog"
	default:
		return nil, fmt.Errorf("pglog: unknown log format %q (known: %s)", opt.Format, strings.Join(Formats, ", "))
	}
	if opt.Window <= 0 {
		opt.Window = 2 * time.Second
	}
	if opt.MaxBadExamples == 0 {
		opt.MaxBadExamples = 5
	}
	r := &Reader{opt: opt, stdin: stdin, byID: map[string]*session{}, byPID: map[int]*session{}}
	var given *prefix
	if opt.Prefix != "" {
		p, err := compilePrefix(opt.Prefix)
		if err != nil {
			return nil, fmt.Errorf("pglog: %w", err)
		}
		given = p
	}
	usedStdin := false
	for _, path := range paths {
		if path == "-" {
			if usedStdin {
				return nil, errors.New("pglog: standard input (-) given twice")
			}
			usedStdin = true
		}
		in, err := r.probe(path, given)
		if err != nil {
			r.closeAll()
			return nil, err
		}
		r.inputs = append(r.inputs, in)
		r.stats.Files = append(r.stats.Files, in.info)
	}
	// Rotated logs: read in the order of their first time stamps.
	slices.SortStableFunc(r.inputs, func(a, b *input) int {
		switch {
		case a.info.First.IsZero() && b.info.First.IsZero():
			return 0
		case a.info.First.IsZero():
			return 1
		case b.info.First.IsZero():
			return -1
		}
		return a.info.First.Compare(b.info.First)
	})
	r.stats.Files = r.stats.Files[:0]
	for _, in := range r.inputs {
		r.stats.Files = append(r.stats.Files, in.info)
		if in.info.Size < 0 {
			r.totalBytes = -1
		} else if r.totalBytes >= 0 {
			r.totalBytes += in.info.Size
		}
	}
	return r, nil
}

// countingReader counts what is read from a file as stored.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// openInput opens path for reading from its start: the file, the decompressor, a buffer.
func (r *Reader) openInput(in *input) error {
	var raw io.Reader
	if in.info.Path == "-" {
		in.stdin = true
		raw = r.stdin
	} else {
		f, err := os.Open(in.info.Path)
		if err != nil {
			return fmt.Errorf("pglog: %w", err)
		}
		in.raw = f
		raw = f
	}
	rb := bufio.NewReaderSize(countingReader{raw, &r.readBytes}, 64<<10)
	magic, _ := rb.Peek(6)
	var text io.Reader = rb
	var err error
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		in.info.Compression = "gzip"
		var z *gzip.Reader
		if z, err = gzip.NewReader(rb); err == nil {
			text, in.dec = z, z
		}
	case bytes.HasPrefix(magic, []byte("BZh")):
		in.info.Compression = "bzip2"
		text = bzip2.NewReader(rb)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		in.info.Compression = "xz"
		var x *xz.Reader
		if x, err = xz.NewReader(rb); err == nil {
			text = x
		}
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		in.info.Compression = "zstd"
		var z *zstd.Decoder
		if z, err = zstd.NewReader(rb, zstd.WithDecoderConcurrency(1)); err == nil {
			text, in.dec = z, zstdCloser{z}
		}
	}
	if err != nil {
		in.close()
		return fmt.Errorf("pglog: %s: reading %s data: %w", in.info.Path, in.info.Compression, err)
	}
	in.br = bufio.NewReaderSize(text, readBuffer)
	in.lines = &lineReader{br: in.br}
	return nil
}

type zstdCloser struct{ d *zstd.Decoder }

func (z zstdCloser) Close() error { z.d.Close(); return nil }

func (in *input) close() {
	if in.dec != nil {
		in.dec.Close()
		in.dec = nil
	}
	if in.raw != nil {
		in.raw.Close()
		in.raw = nil
	}
}

func (r *Reader) closeAll() {
	for _, in := range r.inputs {
		in.close()
	}
}

// Close closes the files still open. Reading to io.EOF closes them too.
func (r *Reader) Close() error {
	r.closeAll()
	return nil
}

// probe opens path, detects its compression, format and first time stamp.
func (r *Reader) probe(path string, given *prefix) (*input, error) {
	in := &input{info: FileInfo{Path: path, Size: -1}}
	if path != "-" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("pglog: %w", err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("pglog: %s is a directory", path)
		}
		in.info.Size = fi.Size()
	}
	before := r.readBytes
	if err := r.openInput(in); err != nil {
		return nil, err
	}
	sample, err := in.br.Peek(sampleBytes)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull && len(sample) == 0 {
		// A compressed file broken from the start still gets its format checked below,
		// from nothing: say what the real problem is.
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			in.close()
			return nil, fmt.Errorf("pglog: %s: %w", path, err)
		}
	}
	if err := r.detect(in, sample, given); err != nil {
		in.close()
		return nil, err
	}
	in.info.Format = in.format
	if in.prefix != nil {
		in.info.Prefix = in.prefix.src
	}
	in.info.First = r.firstTime(in, sample)
	if !in.stdin {
		// Read again from the start when its turn comes: keeps one file open at a time.
		in.close()
		in.br, in.lines = nil, nil
		r.readBytes = before
	}
	return in, nil
}

// lineReader splits a file's text into lines, without copying when a line fits the buffer.
type lineReader struct {
	br    *bufio.Reader
	long  []byte
	line  int64 // the number of the line last returned
	bytes int64
	err   error // what ended the file, other than io.EOF
	done  bool
}

// next returns the next line without its '\n' (valid until the next call), or false at the
// end. A last line cut off by an error (a truncated compressed file) is dropped.
func (l *lineReader) next() ([]byte, bool) {
	if l.done {
		return nil, false
	}
	b, err := l.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.long = append(l.long[:0], b...)
		for err == bufio.ErrBufferFull {
			b, err = l.br.ReadSlice('\n')
			if len(l.long) < maxLine {
				l.long = append(l.long, b...)
			}
		}
		b = l.long
	}
	if err != nil {
		l.done = true
		if err != io.EOF {
			l.err = err
			return nil, false
		}
		if len(b) == 0 {
			return nil, false
		}
	}
	l.bytes += int64(len(b))
	l.line++
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return b, true
}

// Next returns the next record, or io.EOF after the last.
func (r *Reader) Next() (Record, error) {
	for {
		if k := r.order.peek(); k.it != nil {
			if h := k.it; r.releasable(k) {
				r.order.pop()
				if h.sess != nil {
					if h.sess.pending == h {
						h.sess.pending = nil
					}
					if h.sess.conn == h {
						h.sess.conn = nil
					}
				}
				rec := h.rec
				h.rec, h.sess = Record{}, nil
				r.free = append(r.free, h)
				if !r.keep(&rec) {
					r.stats.Filtered++
					continue
				}
				r.stats.Records++
				switch rec.Kind {
				case Statement:
					r.stats.Statements++
				case Connection:
					r.stats.Connections++
				case Disconnection:
					r.stats.Disconnections++
				}
				return rec, nil
			}
		}
		if r.eof {
			if r.order.len() == 0 {
				return Record{}, io.EOF
			}
			continue
		}
		if !r.read() {
			r.eof = true
			r.progress(true)
		}
	}
}

// releasable says whether the log has moved far enough past the item of k.
func (r *Reader) releasable(k okey) bool {
	if r.eof || r.order.len() > maxHeap {
		return true
	}
	if k.t == math.MinInt64 {
		// No time stamps: a statement waits for the next few messages at most.
		return k.it.final || k.seq+1000 < r.seq
	}
	return k.t <= r.watermark
}

func (r *Reader) keep(rec *Record) bool {
	o := &r.opt
	if !rec.Time.IsZero() {
		if !o.Since.IsZero() && rec.Time.Before(o.Since) {
			return false
		}
		if !o.Until.IsZero() && !rec.Time.Before(o.Until) {
			return false
		}
	}
	return (o.Database == "" || rec.Database == o.Database) &&
		(o.User == "" || rec.User == o.User) &&
		(o.App == "" || rec.App == o.App)
}

func (r *Reader) alloc() *item {
	if n := len(r.free); n > 0 {
		it := r.free[n-1]
		r.free = r.free[:n-1]
		*it = item{}
		return it
	}
	return &item{}
}

// read reads and handles one entry; false when every file has been read.
func (r *Reader) read() bool {
	for {
		if r.cur == nil {
			if r.next >= len(r.inputs) {
				return false
			}
			in := r.inputs[r.next]
			r.next++
			if in.lines == nil {
				if err := r.openInput(in); err != nil {
					r.fail(err)
					continue
				}
			}
			r.cur = in
			r.parse = r.newParser(in)
		}
		r.e.clear()
		if r.parse.next(&r.e) {
			r.handle(&r.e)
			r.stats.Lines = r.linesSoFar()
			if r.readBytes-r.lastProgress >= 4<<20 {
				r.progress(false)
			}
			if r.sinceSweep++; r.sinceSweep >= 1<<16 {
				r.sinceSweep = 0
				r.sweep()
			}
			return true
		}
		// The end of this file.
		l := r.cur.lines
		if l.err != nil {
			r.fail(fmt.Errorf("%s: %w", r.cur.info.Path, l.err))
		}
		r.cur.close()
		r.cur.lines, r.cur.br = nil, nil
		r.cur, r.parse = nil, nil
		r.doneLines += l.line
		r.doneBytes += l.bytes
		r.stats.Lines = r.linesSoFar()
	}
}

func (r *Reader) linesSoFar() int64 {
	n := r.doneLines
	if r.cur != nil {
		n += r.cur.lines.line
		r.stats.Bytes = r.doneBytes + r.cur.lines.bytes
	} else {
		r.stats.Bytes = r.doneBytes
	}
	return n
}

func (r *Reader) fail(err error) {
	r.stats.Incomplete = true
	if r.stats.Err == nil {
		r.stats.Err = err
	} else {
		r.stats.Err = errors.Join(r.stats.Err, err)
	}
}

func (r *Reader) progress(final bool) {
	r.lastProgress = r.readBytes
	if r.opt.Progress != nil {
		r.opt.Progress(r.readBytes, r.totalBytes)
	}
}

// sweep forgets sessions idle for long (a log without disconnection lines would otherwise
// keep every session ever seen).
func (r *Reader) sweep() {
	if len(r.byID)+len(r.byPID) < 50_000 || r.maxTime.IsZero() {
		return
	}
	cut := r.maxTime.Add(-10 * time.Minute)
	for k, s := range r.byID {
		if s.pending == nil && s.conn == nil && s.last.Before(cut) {
			delete(r.byID, k)
		}
	}
	for k, s := range r.byPID {
		if s.pending == nil && s.conn == nil && s.last.Before(cut) {
			delete(r.byPID, k)
		}
	}
}

// Stats returns what was read so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.Files = slices.Clone(s.Files)
	s.BadExamples = slices.Clone(s.BadExamples)
	return s
}

// bad counts a line that is not in the file's format and keeps it as an example.
func (r *Reader) bad(line []byte) {
	r.stats.BadLines++
	if len(r.stats.BadExamples) >= r.opt.MaxBadExamples {
		return
	}
	r.stats.BadExamples = append(r.stats.BadExamples, BadLine{Path: r.cur.info.Path, Line: r.cur.lines.line, Text: maskLiterals(line)})
}

// maskLiterals replaces every '...' literal by '…' and cuts the line to maxBadText bytes.
func maskLiterals(b []byte) string {
	out := make([]byte, 0, min(len(b), maxBadText)+8)
	for i := 0; i < len(b) && len(out) < maxBadText; i++ {
		if b[i] != '\'' {
			out = append(out, b[i])
			continue
		}
		j := i + 1
		for j < len(b) {
			if b[j] == '\'' {
				if j+1 < len(b) && b[j+1] == '\'' {
					j += 2
					continue
				}
				break
			}
			j++
		}
		out = append(out, "'…'"...)
		i = j
	}
	if len(out) > maxBadText {
		out = out[:maxBadText]
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

func newBytesReader(b []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(b), max(16, min(len(b)+1, readBuffer)))
}
