package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Segment is a TCP segment as captured. Payload aliases the packet's data; Cut says the packet
// was cut by the snap length, so Payload is only the start of what was sent.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Payload  []byte
	Cut      bool
	Len      int // the payload's length on the wire: more than len(Payload) when Cut
}

// TCP flags.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

// Why a packet holds no TCP segment to read; a caller counts them, never stops on them.
var (
	ErrNotTCP    = errors.New("not TCP over IP")
	ErrTruncated = errors.New("headers cut short")
	ErrFragment  = errors.New("an IP fragment")
)

// Ethernet types and IP protocol numbers.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	protoTCP    = 6
	familyInet  = 2
	familyInet6 = 10 // Linux; BSDs use 24, 28 or 30
)

// Decode reads the TCP segment of a packet of link type link into seg. A payload cut by the
// snap length is told from the IP header's length (Segment.Cut).
func Decode(link LinkType, data []byte, seg *Segment) error {
	var ethType uint16
	switch link {
	case LinkEthernet:
		if len(data) < 14 {
			return ErrTruncated
		}
		ethType, data = binary.BigEndian.Uint16(data[12:]), data[14:]
		for ethType == etherVLAN || ethType == etherQinQ {
			if len(data) < 4 {
				return ErrTruncated
			}
			ethType, data = binary.BigEndian.Uint16(data[2:]), data[4:]
		}
	case LinkSLL:
		if len(data) < 16 {
			return ErrTruncated
		}
		ethType, data = binary.BigEndian.Uint16(data[14:]), data[16:]
	case LinkSLL2:
		if len(data) < 20 {
			return ErrTruncated
		}
		ethType, data = binary.BigEndian.Uint16(data[0:]), data[20:]
	case LinkNull, LinkLoop:
		if len(data) < 4 {
			return ErrTruncated
		}
		fam := binary.LittleEndian.Uint32(data)
		if link == LinkLoop || fam > 0xffff { // network order, or a big-endian capturer
			fam = binary.BigEndian.Uint32(data)
		}
		data = data[4:]
		switch fam {
		case familyInet:
			ethType = etherIPv4
		case familyInet6, 24, 28, 30:
			ethType = etherIPv6
		default:
			return ErrNotTCP
		}
	case LinkRaw:
		if len(data) < 1 {
			return ErrTruncated
		}
		ethType = etherIPv4
		if data[0]>>4 == 6 {
			ethType = etherIPv6
		}
	default:
		return ErrNotTCP
	}
	var src, dst netip.Addr
	var ipLen int
	switch ethType {
	case etherIPv4:
		if len(data) < 20 || data[0]>>4 != 4 {
			return ErrTruncated
		}
		ihl := int(data[0]&0x0f) * 4
		if ihl < 20 || len(data) < ihl {
			return ErrTruncated
		}
		if data[9] != protoTCP {
			return ErrNotTCP
		}
		if binary.BigEndian.Uint16(data[6:])&0x3fff != 0 { // more fragments, or an offset
			return ErrFragment
		}
		ipLen = int(binary.BigEndian.Uint16(data[2:]))
		src, dst = netip.AddrFrom4([4]byte(data[12:16])), netip.AddrFrom4([4]byte(data[16:20]))
		ipLen -= ihl
		data = data[ihl:]
	case etherIPv6:
		if len(data) < 40 {
			return ErrTruncated
		}
		if data[6] != protoTCP { // extension headers are not followed: rare on a LAN
			return ErrNotTCP
		}
		ipLen = int(binary.BigEndian.Uint16(data[4:]))
		src, dst = netip.AddrFrom16([16]byte(data[8:24])), netip.AddrFrom16([16]byte(data[24:40]))
		data = data[40:]
	default:
		return ErrNotTCP
	}
	if len(data) < 20 {
		return ErrTruncated
	}
	off := int(data[12]>>4) * 4
	if off < 20 || len(data) < off {
		return ErrTruncated
	}
	seg.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(data[0:]))
	seg.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(data[2:]))
	seg.Seq = binary.BigEndian.Uint32(data[4:])
	seg.Ack = binary.BigEndian.Uint32(data[8:])
	seg.Flags = data[13]
	payload := data[off:]
	want := ipLen - off // the TCP payload's length on the wire, from the IP header
	if ipLen == 0 {     // TSO on the capturing host: the length field may be 0
		want = len(payload)
	}
	seg.Cut = false
	switch {
	case want < len(payload): // Ethernet padding after a short packet
		payload = payload[:max(want, 0)]
	case want > len(payload):
		seg.Cut = true
	}
	seg.Payload = payload
	seg.Len = max(want, len(payload))
	return nil
}
