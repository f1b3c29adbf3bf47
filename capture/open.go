package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// Kind is what a file is, told from its first bytes.
type Kind uint8

const (
	KindUnknown Kind = iota // not a capture: a server's log, say
	KindPcap                // a classic pcap file, of either magic and byte order
	KindPcapng              // a pcapng file
	KindGzip                // a gzip file: a capture maybe; decompress and sniff again
)

func (k Kind) String() string {
	switch k {
	case KindPcap:
		return "pcap"
	case KindPcapng:
		return "pcapng"
	case KindGzip:
		return "gzip"
	}
	return "unknown"
}

// ErrNotCapture says a file is none of the captures Open reads.
var ErrNotCapture = errors.New("not a packet capture: pcap, pcapng or a gzip of one")

// SniffLen is how much of a file's start IsCapture wants to look into a gzip file.
const SniffLen = 4096

// Sniff tells what a file is from its first 4 bytes (3 for gzip). KindGzip is only a maybe:
// logs are gzipped too; IsCapture looks inside.
func Sniff(head []byte) Kind {
	if len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8 { // 8: deflate, gzip's only method
		return KindGzip
	}
	if len(head) < 4 {
		return KindUnknown
	}
	switch binary.LittleEndian.Uint32(head) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1: // µs or ns, either byte order
		return KindPcap
	case blockSection:
		return KindPcapng
	}
	return KindUnknown
}

// IsCapture tells whether a file whose first bytes are head is a capture Open reads: a pcap or
// pcapng file, or a gzip of one. For a gzip file it decompresses the start of head, which wants
// SniffLen bytes of the file (or all of a shorter one); a gzip whose head holds too little to
// tell is said not to be a capture.
func IsCapture(head []byte) bool {
	switch Sniff(head) {
	case KindPcap, KindPcapng:
		return true
	case KindGzip:
		z, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return false
		}
		var inner [4]byte
		if _, err := io.ReadFull(z, inner[:]); err != nil {
			return false
		}
		k := Sniff(inner[:])
		return k == KindPcap || k == KindPcapng
	}
	return false
}

// Open reads a capture file of any kind Sniff tells, gzipped or not. It buffers r: a reader
// of 16-byte records straight from a file would make a system call for each.
func Open(r io.Reader) (Source, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	kind, gzipped := Sniff(head), false
	if kind == KindGzip {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("capture: reading gzip data: %w", err)
		}
		br, gzipped = bufio.NewReaderSize(z, 64<<10), true
		if head, err = br.Peek(4); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("capture: reading gzip data: %w", err)
		}
		if kind = Sniff(head); kind == KindGzip {
			kind = KindUnknown // a gzip of a gzip: no capture tool writes one
		}
	}
	// A nil *Reader in a Source would not be a nil Source: each case returns its own nil.
	switch kind {
	case KindPcap:
		p, err := NewReader(br)
		if err != nil {
			return nil, err
		}
		return p, nil
	case KindPcapng:
		p, err := NewPcapngReader(br)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	if gzipped {
		return nil, fmt.Errorf("capture: a gzip file, but %w (it holds %q)", ErrNotCapture, head)
	}
	return nil, fmt.Errorf("capture: %w (it starts with %q)", ErrNotCapture, head)
}
