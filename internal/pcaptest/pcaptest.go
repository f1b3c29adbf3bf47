// Package pcaptest builds packet captures for tests and benchmarks: Ethernet, IPv4, IPv6 and
// TCP headers around a payload, TCP conversations with the sequence and acknowledgement
// numbers a real one has, and classic pcap files. It deals in bytes only, so that package
// capture's own tests can use it too.
package pcaptest

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// TCP flags.
const (
	FIN uint8 = 0x01
	SYN uint8 = 0x02
	RST uint8 = 0x04
	PSH uint8 = 0x08
	ACK uint8 = 0x10
)

// TCP builds a TCP header (20 bytes, or more with opts bytes of options, zeros) and payload.
func TCP(src, dst uint16, seq, ack uint32, flags uint8, opts int, payload []byte) []byte {
	b := make([]byte, 20+opts, 20+opts+len(payload))
	binary.BigEndian.PutUint16(b[0:], src)
	binary.BigEndian.PutUint16(b[2:], dst)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = byte((20+opts)/4) << 4
	b[13] = flags
	return append(b, payload...)
}

// IPv4 builds an IPv4 header of protocol proto (6: TCP) and flags and fragment offset frag
// (0x4000: don't fragment) before body.
func IPv4(src, dst [4]byte, proto byte, frag uint16, body []byte) []byte {
	b := make([]byte, 20, 20+len(body))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(body)))
	binary.BigEndian.PutUint16(b[6:], frag)
	b[9] = proto
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	return append(b, body...)
}

// IPv6 builds an IPv6 header of a TCP body.
func IPv6(src, dst [16]byte, body []byte) []byte {
	b := make([]byte, 40, 40+len(body))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(body)))
	b[6] = 6
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	return append(b, body...)
}

// Ether builds an Ethernet II header of type typ (0x0800: IPv4) with vlans 802.1Q tags.
func Ether(typ uint16, vlans int, body []byte) []byte {
	b := make([]byte, 12, 14+4*vlans+len(body))
	for range vlans {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = append(b, 0, 7) // the tag
	}
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, body...)
}

// Pcap is a classic pcap file being written: its header, then a record a packet.
type Pcap struct {
	order binary.AppendByteOrder
	nanos bool
	b     []byte
}

// NewPcap starts a pcap file of link type link (1: Ethernet) in the given byte order, its time
// stamps in nanoseconds or microseconds, a snap length of 256 KiB.
func NewPcap(order binary.AppendByteOrder, nanos bool, link uint32) *Pcap {
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	w := &Pcap{order: order, nanos: nanos}
	w.b = order.AppendUint32(w.b, magic)
	w.b = order.AppendUint16(w.b, 2)
	w.b = order.AppendUint16(w.b, 4)
	w.b = order.AppendUint32(w.b, 0)
	w.b = order.AppendUint32(w.b, 0)
	w.b = order.AppendUint32(w.b, 262144)
	w.b = order.AppendUint32(w.b, link)
	return w
}

// Add writes a packet captured whole at at.
func (w *Pcap) Add(at time.Time, data []byte) {
	w.b = w.order.AppendUint32(w.b, uint32(at.Unix()))
	frac := at.Nanosecond()
	if !w.nanos {
		frac /= 1000
	}
	w.b = w.order.AppendUint32(w.b, uint32(frac))
	w.b = w.order.AppendUint32(w.b, uint32(len(data)))
	w.b = w.order.AppendUint32(w.b, uint32(len(data)))
	w.b = append(w.b, data...)
}

// Bytes is the file written so far.
func (w *Pcap) Bytes() []byte { return w.b }

// Conn writes the packets of one TCP connection over IPv4 as Ethernet frames, with the
// sequence and acknowledgement numbers a real one has: every segment acknowledges all the
// peer has sent.
type Conn struct {
	Client, Server netip.AddrPort // IPv4
	// ClientSeq and ServerSeq are the sequence numbers of each side's next byte; a SYN takes
	// the one before it.
	ClientSeq, ServerSeq uint32
	// Options is how many bytes of TCP options each segment carries (12: the time stamps
	// Linux sends).
	Options int
}

// Handshake is the connection's SYN, SYN-ACK and ACK.
func (c *Conn) Handshake() [][]byte {
	return [][]byte{
		c.segment(true, c.ClientSeq-1, 0, SYN, nil),
		c.segment(false, c.ServerSeq-1, c.ClientSeq, SYN|ACK, nil),
		c.segment(true, c.ClientSeq, c.ServerSeq, ACK, nil),
	}
}

// FromClient is one segment of the client's carrying payload.
func (c *Conn) FromClient(payload []byte) []byte {
	p := c.segment(true, c.ClientSeq, c.ServerSeq, PSH|ACK, payload)
	c.ClientSeq += uint32(len(payload))
	return p
}

// FromServer is one segment of the server's carrying payload.
func (c *Conn) FromServer(payload []byte) []byte {
	p := c.segment(false, c.ServerSeq, c.ClientSeq, PSH|ACK, payload)
	c.ServerSeq += uint32(len(payload))
	return p
}

// Close is the client's FIN, the server's FIN and the client's last ACK.
func (c *Conn) Close() [][]byte {
	fin := c.segment(true, c.ClientSeq, c.ServerSeq, FIN|ACK, nil)
	c.ClientSeq++
	finAck := c.segment(false, c.ServerSeq, c.ClientSeq, FIN|ACK, nil)
	c.ServerSeq++
	return [][]byte{fin, finAck, c.segment(true, c.ClientSeq, c.ServerSeq, ACK, nil)}
}

func (c *Conn) segment(fromClient bool, seq, ack uint32, flags uint8, payload []byte) []byte {
	src, dst := c.Client, c.Server
	if !fromClient {
		src, dst = dst, src
	}
	return Ether(0x0800, 0, IPv4(src.Addr().As4(), dst.Addr().As4(), 6, 0x4000,
		TCP(src.Port(), dst.Port(), seq, ack, flags, c.Options, payload)))
}
