package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"time"
)

// The pcapng blocks a reader needs (draft-ietf-opsawg-pcapng); every other block (Name
// Resolution, Interface Statistics, Decryption Secrets, custom, ...) is skipped by its length.
const (
	blockSection   = 0x0a0d0d0a // a palindrome: the same in either byte order
	blockInterface = 1
	blockPacket    = 2 // the obsolete Packet Block, still written by old tools
	blockSimple    = 3
	blockEnhanced  = 6

	byteOrderMagic = 0x1a2b3c4d

	optEnd      = 0
	optTSResol  = 9
	optTSOffset = 14
)

// maxBlock bounds one block's length. The format allows 4 GiB, but no capture of PostgreSQL
// traffic holds a packet of more than 256 KiB; a larger length is a corrupt file, and reading it
// must not ask for gigabytes.
const maxBlock = 16 << 20

// ErrNotPcapng says the input does not start with a pcapng Section Header Block.
var ErrNotPcapng = errors.New("not a pcapng file")

// PcapngReader reads a pcapng file: its sections, each with its own byte order and interfaces,
// and the packets of Enhanced, Simple and (obsolete) Packet Blocks. Like Reader it reuses one
// buffer for the block it reads, so Next allocates nothing once the buffer has grown to the
// largest block.
type PcapngReader struct {
	r      io.Reader
	order  binary.ByteOrder
	off    int64 // where in the file the next block starts, for errors a user can look at
	ifaces []pcapngIface
	last   time.Time // the previous packet's time: a Simple Packet Block carries none
	hdr    [12]byte
	buf    []byte
	err    error // once a read failed, the rest of the file cannot be trusted: Next repeats it
}

// pcapngIface is what an Interface Description Block says about its packets.
type pcapngIface struct {
	link    LinkType
	snapLen uint32 // 0: no limit
	pow2    bool   // time stamps count units of 2^-exp s, else of 10^-exp s
	exp     uint8
	offset  int64 // if_tsoffset: seconds to add to every time stamp
}

// NewPcapngReader reads the first Section Header Block of a pcapng file.
func NewPcapngReader(r io.Reader) (*PcapngReader, error) {
	p := &PcapngReader{r: r}
	if _, err := io.ReadFull(r, p.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrNotPcapng
		}
		return nil, err
	}
	if binary.BigEndian.Uint32(p.hdr[:]) != blockSection {
		return nil, ErrNotPcapng
	}
	if err := p.section(); err != nil {
		return nil, err
	}
	return p, nil
}

// Next returns the next packet, or io.EOF after the last. A block cut short by the end of the
// file is io.ErrUnexpectedEOF: the capture was truncated. A corrupt block is an error naming
// its offset; after any error Next returns the same error again.
func (p *PcapngReader) Next() (Packet, error) {
	if p.err != nil {
		return Packet{}, p.err
	}
	for {
		if _, err := io.ReadFull(p.r, p.hdr[:8]); err != nil {
			return p.fail(err) // io.EOF at a block boundary: the end
		}
		typ := p.order.Uint32(p.hdr[0:])
		if typ == blockSection {
			if _, err := io.ReadFull(p.r, p.hdr[8:]); err != nil {
				return p.fail(unexpected(err))
			}
			if err := p.section(); err != nil {
				return p.fail(err)
			}
			continue
		}
		at := p.off
		body, err := p.block(typ)
		if err != nil {
			return p.fail(err)
		}
		switch typ {
		case blockInterface:
			if err := p.iface(at, body); err != nil {
				return p.fail(err)
			}
		case blockEnhanced, blockPacket:
			return p.packet(at, typ, body)
		case blockSimple:
			return p.simple(at, body)
		}
	}
}

// fail ends the file at err: after a bad block the rest cannot be trusted.
func (p *PcapngReader) fail(err error) (Packet, error) {
	p.err = err
	return Packet{}, err
}

// section reads a Section Header Block whose first 12 bytes are in p.hdr: a new byte order,
// and no interfaces until the section describes them.
func (p *PcapngReader) section() error {
	at := p.off
	switch {
	case binary.LittleEndian.Uint32(p.hdr[8:]) == byteOrderMagic:
		p.order = binary.LittleEndian
	case binary.BigEndian.Uint32(p.hdr[8:]) == byteOrderMagic:
		p.order = binary.BigEndian
	default:
		return fmt.Errorf("%w: the section header at offset %d has no byte-order magic", ErrNotPcapng, at)
	}
	n, err := p.blockLen(blockSection, 28)
	if err != nil {
		return err
	}
	b, err := p.read(n - 12)
	if err != nil {
		return err
	}
	if err := p.trailer(at, n, b); err != nil {
		return err
	}
	if major, minor := p.order.Uint16(b[0:]), p.order.Uint16(b[2:]); major != 1 {
		return fmt.Errorf("pcapng: the section header at offset %d says version %d.%d; only 1.x is read", at, major, minor)
	}
	p.off += int64(n)
	p.ifaces = p.ifaces[:0]
	return nil
}

// block reads the rest of a block whose type and length are in p.hdr, and returns its body.
func (p *PcapngReader) block(typ uint32) ([]byte, error) {
	at := p.off
	n, err := p.blockLen(typ, 12)
	if err != nil {
		return nil, err
	}
	b, err := p.read(n - 8)
	if err != nil {
		return nil, err
	}
	if err := p.trailer(at, n, b); err != nil {
		return nil, err
	}
	p.off += int64(n)
	return b[:len(b)-4], nil
}

// blockLen checks the total length of the block at p.off, in p.hdr[4:].
func (p *PcapngReader) blockLen(typ uint32, least int) (int, error) {
	n := p.order.Uint32(p.hdr[4:])
	switch {
	case n < uint32(least):
		return 0, fmt.Errorf("pcapng: the block of type %#x at offset %d is %d bytes long, less than %d: the file is corrupt", typ, p.off, n, least)
	case n%4 != 0:
		return 0, fmt.Errorf("pcapng: the block of type %#x at offset %d is %d bytes long, not a multiple of 4: the file is corrupt", typ, p.off, n)
	case n > maxBlock:
		return 0, fmt.Errorf("pcapng: the block of type %#x at offset %d is %d bytes long, more than %d: the file is corrupt", typ, p.off, n, maxBlock)
	}
	return int(n), nil
}

// trailer checks that a block of n bytes at at ends with its length again: a length that
// does not is a corrupt file (or one written by a tool that died mid-block and resumed).
func (p *PcapngReader) trailer(at int64, n int, b []byte) error {
	if t := p.order.Uint32(b[len(b)-4:]); t != uint32(n) {
		return fmt.Errorf("pcapng: the block at offset %d starts with length %d but ends with %d: the file is corrupt", at, n, t)
	}
	return nil
}

// read reads the next n bytes into p.buf. The buffer grows with what arrives, not with what a
// length claims, so a corrupt length near the end of a small file costs no more than the file.
func (p *PcapngReader) read(n int) ([]byte, error) {
	b := p.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), max(cap(b), 64<<10)))
		}
		k, err := io.ReadFull(p.r, b[len(b):min(n, cap(b))])
		b = b[:len(b)+k]
		if err != nil {
			p.buf = b
			return nil, unexpected(err)
		}
	}
	p.buf = b
	return b, nil
}

// unexpected says that the end of the file within a block is a truncated file.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// iface reads an Interface Description Block: its link type, snap length and time stamps'
// resolution and offset (microseconds since 1970 unless it says otherwise).
func (p *PcapngReader) iface(at int64, b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("pcapng: the interface description block at offset %d is too short", at)
	}
	f := pcapngIface{link: LinkType(p.order.Uint16(b[0:])), snapLen: p.order.Uint32(b[4:]), exp: 6}
	for opts := b[8:]; len(opts) >= 4; {
		code, n := p.order.Uint16(opts[0:]), int(p.order.Uint16(opts[2:]))
		if code == optEnd {
			break
		}
		if 4+n > len(opts) {
			return fmt.Errorf("pcapng: an option of the interface description block at offset %d runs past the block", at)
		}
		v := opts[4 : 4+n]
		switch {
		case code == optTSResol && n == 1:
			f.pow2, f.exp = v[0]&0x80 != 0, v[0]&0x7f
		case code == optTSOffset && n == 8:
			f.offset = int64(p.order.Uint64(v))
		}
		opts = opts[min(4+(n+3)&^3, len(opts)):]
	}
	p.ifaces = append(p.ifaces, f)
	return nil
}

// packet reads an Enhanced Packet Block, or an obsolete Packet Block: the same but for a
// 16-bit interface and a drop count.
func (p *PcapngReader) packet(at int64, typ uint32, b []byte) (Packet, error) {
	if len(b) < 20 {
		return p.fail(fmt.Errorf("pcapng: the packet block at offset %d is too short", at))
	}
	id := p.order.Uint32(b[0:])
	if typ == blockPacket {
		id = uint32(p.order.Uint16(b[0:]))
	}
	if id >= uint32(len(p.ifaces)) {
		return p.fail(fmt.Errorf("pcapng: the packet at offset %d is of interface %d, but its section describes %d", at, id, len(p.ifaces)))
	}
	f := &p.ifaces[id]
	ts := uint64(p.order.Uint32(b[4:]))<<32 | uint64(p.order.Uint32(b[8:]))
	incl, orig := p.order.Uint32(b[12:]), p.order.Uint32(b[16:])
	if incl > uint32(len(b)-20) {
		return p.fail(fmt.Errorf("pcapng: the packet at offset %d says %d bytes captured, more than its block holds", at, incl))
	}
	p.last = f.time(ts)
	return Packet{Time: p.last, Data: b[20 : 20+incl], OrigLen: int(orig), Link: f.link}, nil
}

// simple reads a Simple Packet Block: a packet of interface 0, cut at its snap length, with no
// time stamp. It is given the previous packet's time (the zero Time before any), which keeps
// the capture in order.
func (p *PcapngReader) simple(at int64, b []byte) (Packet, error) {
	if len(b) < 4 {
		return p.fail(fmt.Errorf("pcapng: the simple packet block at offset %d is too short", at))
	}
	if len(p.ifaces) == 0 {
		return p.fail(fmt.Errorf("pcapng: the simple packet at offset %d is of interface 0, but its section describes none", at))
	}
	f := &p.ifaces[0]
	orig := p.order.Uint32(b[0:])
	incl := min(orig, uint32(len(b)-4))
	if f.snapLen != 0 {
		incl = min(incl, f.snapLen)
	}
	return Packet{Time: p.last, Data: b[4 : 4+incl], OrigLen: int(orig), Link: f.link}, nil
}

var pow10 = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// time converts a time stamp of the interface's resolution to a time, to the nanosecond
// (rounded down), without overflow for any resolution the format can say.
func (f *pcapngIface) time(ts uint64) time.Time {
	var sec, nsec uint64
	e := uint(f.exp)
	switch {
	case f.pow2:
		sec = ts >> e // 0 when e >= 64
		hi, lo := bits.Mul64(ts-sec<<e, 1e9)
		if e >= 64 {
			nsec = hi >> (e - 64)
		} else {
			nsec = lo>>e | hi<<(64-e)
		}
	case e <= 9:
		sec, nsec = ts/pow10[e], ts%pow10[e]*pow10[9-e]
	case e < 20:
		sec, nsec = ts/pow10[e], ts%pow10[e]/pow10[e-9]
	case e-9 < 20: // units under 10^-19 s: 2^64 of them make less than 2 s
		nsec = ts / pow10[e-9]
	}
	return time.Unix(int64(sec)+f.offset, int64(nsec)).UTC()
}
