package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pcaptest"
)

// Packet builders shared with replay's benchmark.
var (
	ipv4  = pcaptest.IPv4
	ipv6  = pcaptest.IPv6
	ether = pcaptest.Ether
)

// tcp builds a TCP header (20 bytes, or more with options) and payload, acknowledging nothing.
func tcp(src, dst uint16, seq uint32, flags uint8, opts int, payload string) []byte {
	return pcaptest.TCP(src, dst, seq, 0, flags, opts, []byte(payload))
}

func TestDecode(t *testing.T) {
	lo := [4]byte{127, 0, 0, 1}
	pg := [4]byte{10, 0, 0, 5}
	v6a, v6b := netip.MustParseAddr("fd00::1").As16(), netip.MustParseAddr("fd00::2").As16()
	seg4 := tcp(40000, 5432, 77, FlagPSH|FlagACK, 12, "Q\x00\x00\x00\x0dSELECT 1\x00")
	sll := make([]byte, 16)
	binary.BigEndian.PutUint16(sll[14:], 0x0800)
	sll2 := make([]byte, 20)
	binary.BigEndian.PutUint16(sll2[0:], 0x86dd)
	null := binary.LittleEndian.AppendUint32(nil, 2)
	loop := binary.BigEndian.AppendUint32(nil, 2)
	padded := ether(0x0800, 0, ipv4(lo, pg, 6, 0x4000, tcp(1, 5432, 1, FlagACK, 0, "")))
	padded = append(padded, 0, 0, 0, 0, 0, 0) // Ethernet pads short frames to 60 bytes
	full := ipv4(lo, pg, 6, 0, seg4)
	cases := []struct {
		name    string
		link    LinkType
		data    []byte
		err     error
		src     string
		payload string
		cut     bool
	}{
		{"ethernet", LinkEthernet, ether(0x0800, 0, full), nil, "127.0.0.1:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"ethernet with two VLAN tags", LinkEthernet, ether(0x0800, 2, full), nil, "127.0.0.1:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"linux cooked", LinkSLL, append(sll, full...), nil, "127.0.0.1:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"linux cooked v2, IPv6", LinkSLL2, append(sll2, ipv6(v6a, v6b, seg4)...), nil, "[fd00::1]:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"BSD loopback", LinkNull, append(null, full...), nil, "127.0.0.1:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"OpenBSD loopback", LinkLoop, append(loop, full...), nil, "127.0.0.1:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"raw IPv6", LinkRaw, ipv6(v6a, v6b, seg4), nil, "[fd00::1]:40000", "Q\x00\x00\x00\x0dSELECT 1\x00", false},
		{"padding is no payload", LinkEthernet, padded, nil, "127.0.0.1:1", "", false},
		{"cut by the snap length", LinkRaw, full[:len(full)-4], nil, "127.0.0.1:40000", "Q\x00\x00\x00\x0dSELEC", true},
		{"UDP", LinkRaw, ipv4(lo, pg, 17, 0, make([]byte, 8)), ErrNotTCP, "", "", false},
		{"a fragment", LinkRaw, ipv4(lo, pg, 6, 0x2000, seg4), ErrFragment, "", "", false},
		{"IP header cut", LinkRaw, full[:19], ErrTruncated, "", "", false},
		{"TCP header cut", LinkRaw, full[:30], ErrTruncated, "", "", false},
		{"unknown link", 999, full, ErrNotTCP, "", "", false},
		{"ARP", LinkEthernet, ether(0x0806, 0, make([]byte, 28)), ErrNotTCP, "", "", false},
	}
	for _, c := range cases {
		var seg Segment
		err := Decode(c.link, c.data, &seg)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if seg.Src.String() != c.src || string(seg.Payload) != c.payload || seg.Cut != c.cut {
			t.Errorf("%s: from %s, payload %q, cut %v; want %s, %q, %v", c.name, seg.Src, seg.Payload, seg.Cut, c.src, c.payload, c.cut)
		}
	}
	var seg Segment
	data := ether(0x0800, 1, full)
	if n := testing.AllocsPerRun(100, func() { _ = Decode(LinkEthernet, data, &seg) }); n != 0 {
		t.Errorf("Decode allocates %.0f times a packet", n)
	}
	if seg.Dst.Port() != 5432 || seg.Seq != 77 || seg.Flags != FlagPSH|FlagACK {
		t.Errorf("segment %+v", seg)
	}
}

// writePcap writes a pcap file of packets in the given byte order and time resolution, a
// millisecond apart from at.
func writePcap(order binary.AppendByteOrder, nanos bool, link LinkType, pkts [][]byte, at time.Time) []byte {
	w := pcaptest.NewPcap(order, nanos, uint32(link))
	for i, p := range pkts {
		w.Add(at.Add(time.Duration(i)*time.Millisecond), p)
	}
	return w.Bytes()
}

func TestReader(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	pkts := [][]byte{[]byte("first"), []byte("second packet")}
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nanos := range []bool{false, true} {
			file := writePcap(order, nanos, LinkEthernet, pkts, at)
			r, err := NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Link() != LinkEthernet {
				t.Errorf("link %d", r.Link())
			}
			want := at
			if !nanos {
				want = at.Truncate(time.Microsecond)
			}
			for i, p := range pkts {
				got, err := r.Next()
				if err != nil || string(got.Data) != string(p) || !got.Time.Equal(want.Add(time.Duration(i)*time.Millisecond)) || got.OrigLen != len(p) {
					t.Errorf("%v nanos=%v packet %d: %q at %v (%v)", order, nanos, i, got.Data, got.Time, err)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("after the last packet: %v, want io.EOF", err)
			}
			// A truncated capture: the last record cut short.
			r, _ = NewReader(bytes.NewReader(file[:len(file)-3]))
			r.Next()
			if _, err := r.Next(); err != io.ErrUnexpectedEOF {
				t.Errorf("a record cut short: %v, want io.ErrUnexpectedEOF", err)
			}
		}
	}
	if _, err := NewReader(bytes.NewReader([]byte("2026-12-06 10:00:00 UTC LOG:  statement: SELECT 1"))); err != ErrNotPcap {
		t.Errorf("a log read as pcap: %v", err)
	}
	corrupt := writePcap(binary.LittleEndian, false, LinkEthernet, [][]byte{[]byte("x")}, at)
	binary.LittleEndian.PutUint32(corrupt[24+8:], 1<<30)
	r, _ := NewReader(bytes.NewReader(corrupt))
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("a record of 1 GiB: %v, want an error", err)
	}
}

// Any bytes of any link type: a segment or an error, never a panic.
func FuzzDecode(f *testing.F) {
	lo := [4]byte{127, 0, 0, 1}
	f.Add(uint32(LinkRaw), ipv4(lo, lo, 6, 0, tcp(1, 5432, 1, FlagACK, 0, "Z\x00\x00\x00\x05I")))
	f.Add(uint32(LinkEthernet), ether(0x8100, 1, nil))
	f.Add(uint32(LinkSLL2), make([]byte, 20))
	f.Fuzz(func(t *testing.T, link uint32, data []byte) {
		var seg Segment
		if err := Decode(LinkType(link), data, &seg); err == nil && len(seg.Payload) > len(data) {
			t.Fatalf("payload of %d bytes from a packet of %d", len(seg.Payload), len(data))
		}
	})
}

// BenchmarkReadAndDecode reads a pcap of Ethernet packets of 100-byte PostgreSQL messages and
// decodes each to its TCP segment: the part of issue 17's 1.2 million packets/s on one core
// that is not reassembly or the protocol.
func BenchmarkReadAndDecode(b *testing.B) {
	pkts := make([][]byte, 10000)
	for i := range pkts {
		pkts[i] = benchPacket()
	}
	benchRead(b, writePcap(binary.LittleEndian, false, LinkEthernet, pkts, time.Now()), NewReader)
}

// BenchmarkPcapngRead is BenchmarkReadAndDecode's packets in a pcapng file of nanosecond time
// stamps (if_tsresol 9), in Enhanced Packet Blocks, as Wireshark and dumpcap write.
func BenchmarkPcapngRead(b *testing.B) {
	pkt := string(benchPacket())
	w := (&ngFile{}).section(binary.LittleEndian)
	w.iface(LinkEthernet, 262144, w.tsresol(9))
	start := time.Now()
	for i := range 10000 {
		w.epb(0, uint64(start.Add(time.Duration(i)*time.Microsecond).UnixNano()), pkt, len(pkt), false)
	}
	benchRead(b, w.b, NewPcapngReader)
}

// benchPacket is an Ethernet packet of a 100-byte PostgreSQL message.
func benchPacket() []byte {
	lo := [4]byte{127, 0, 0, 1}
	return ether(0x0800, 0, ipv4(lo, lo, 6, 0x4000, tcp(40000, 5432, 1, FlagPSH|FlagACK, 12, string(make([]byte, 100)))))
}

// benchRead reads file with open, and decodes every packet to its TCP segment, as often as b
// asks.
func benchRead[S Source](b *testing.B, file []byte, open func(io.Reader) (S, error)) {
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	var seg Segment
	n := 0
	for b.Loop() {
		r, err := open(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			p, err := r.Next()
			if err != nil {
				break
			}
			if Decode(p.Link, p.Data, &seg) == nil {
				n++
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}
