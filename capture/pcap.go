package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// LinkType is a capture's link-layer header type (LINKTYPE_* of tcpdump.org).
type LinkType uint32

// The link types a capture of PostgreSQL traffic comes with.
const (
	LinkNull     LinkType = 0   // BSD loopback: a 4-byte address family in host order
	LinkEthernet LinkType = 1   // Ethernet II, with 802.1Q VLAN tags
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6
	LinkLoop     LinkType = 108 // OpenBSD loopback: a 4-byte address family in network order
	LinkSLL      LinkType = 113 // Linux cooked capture (tcpdump -i any)
	LinkSLL2     LinkType = 276 // Linux cooked capture v2
)

// Packet is one captured packet. Data is the captured bytes (possibly cut at the snap length:
// OrigLen says how long the packet was), valid until the next call of the source's Next. Link
// is the packet's own link type: a pcapng file may hold interfaces of several.
type Packet struct {
	Time    time.Time
	Data    []byte
	OrigLen int
	Link    LinkType
}

// Source is where packets come from: a capture file, several merged in time order, or a live
// interface. Next returns io.EOF after the last packet of a file.
type Source interface {
	Next() (Packet, error)
}

// Reader reads a classic pcap file.
type Reader struct {
	r       io.Reader
	order   binary.ByteOrder
	nanos   bool // time stamps in nanoseconds (magic a1b23c4d), else microseconds
	link    LinkType
	snapLen int
	hdr     [16]byte
	buf     []byte
}

// ErrNotPcap says the input does not start with a pcap file header.
var ErrNotPcap = errors.New("not a pcap file")

// maxPacket bounds one record's length: a corrupt length must not make the reader allocate
// gigabytes. Captures of loopback traffic hold packets of up to 256 KiB (TSO, GRO).
const maxPacket = 1 << 20

// NewReader reads the file header of a pcap file.
func NewReader(r io.Reader) (*Reader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrNotPcap
		}
		return nil, err
	}
	p := &Reader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[:]) == 0xa1b2c3d4:
		p.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == 0xa1b2c3d4:
		p.order = binary.BigEndian
	case binary.LittleEndian.Uint32(h[:]) == 0xa1b23c4d:
		p.order, p.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[:]) == 0xa1b23c4d:
		p.order, p.nanos = binary.BigEndian, true
	default:
		return nil, ErrNotPcap
	}
	p.snapLen = int(p.order.Uint32(h[16:]))
	p.link = LinkType(p.order.Uint32(h[20:]) & 0x0fffffff) // the upper bits are FCS flags
	return p, nil
}

// Link is the capture's link type.
func (p *Reader) Link() LinkType { return p.link }

// Next returns the next packet, or io.EOF after the last. A record cut short by the end of
// the file is io.ErrUnexpectedEOF: the capture was truncated.
func (p *Reader) Next() (Packet, error) {
	if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Packet{}, io.ErrUnexpectedEOF
		}
		return Packet{}, err // io.EOF at a record boundary: the end
	}
	sec := int64(p.order.Uint32(p.hdr[0:]))
	frac := int64(p.order.Uint32(p.hdr[4:]))
	incl := int(p.order.Uint32(p.hdr[8:]))
	orig := int(p.order.Uint32(p.hdr[12:]))
	if incl > maxPacket || incl < 0 {
		return Packet{}, fmt.Errorf("pcap: a record of %d bytes: the file is corrupt", incl)
	}
	if cap(p.buf) < incl {
		p.buf = make([]byte, incl)
	}
	p.buf = p.buf[:incl]
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Packet{}, err
	}
	if !p.nanos {
		frac *= 1000
	}
	return Packet{Time: time.Unix(sec, frac).UTC(), Data: p.buf, OrigLen: orig, Link: p.link}, nil
}
