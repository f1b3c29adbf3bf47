package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// ngFile builds a pcapng file block by block, in one byte order per section.
type ngFile struct {
	order binary.AppendByteOrder
	b     []byte
	ends  []int // where each block ends: the only places a file may stop without being cut
}

func (w *ngFile) block(typ uint32, body []byte) *ngFile {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	w.b = w.order.AppendUint32(w.b, typ)
	w.b = w.order.AppendUint32(w.b, n)
	w.b = append(w.b, body...)
	w.b = w.order.AppendUint32(w.b, n)
	w.ends = append(w.ends, len(w.b))
	return w
}

// section starts a section in order.
func (w *ngFile) section(order binary.AppendByteOrder) *ngFile {
	w.order = order
	b := order.AppendUint32(nil, byteOrderMagic)
	b = order.AppendUint16(b, 1)
	b = order.AppendUint16(b, 0)
	b = order.AppendUint64(b, ^uint64(0))                  // the section's length: not given
	b = append(b, w.opt(3, []byte("pgpollwatch test"))...) // shb_userappl, to be skipped
	b = append(b, w.opt(0, nil)...)
	return w.block(blockSection, b)
}

func (w *ngFile) opt(code uint16, v []byte) []byte {
	b := w.order.AppendUint16(nil, code)
	b = w.order.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// iface describes an interface; opts are its options, encoded with opt.
func (w *ngFile) iface(link LinkType, snapLen uint32, opts ...[]byte) *ngFile {
	b := w.order.AppendUint16(nil, uint16(link))
	b = w.order.AppendUint16(b, 0)
	b = w.order.AppendUint32(b, snapLen)
	for _, o := range opts {
		b = append(b, o...)
	}
	return w.block(blockInterface, b)
}

func (w *ngFile) tsresol(v byte) []byte { return w.opt(optTSResol, []byte{v}) }
func (w *ngFile) tsoffset(sec int64) []byte {
	return w.opt(optTSOffset, w.order.AppendUint64(nil, uint64(sec)))
}

// epb writes an Enhanced Packet Block (or an obsolete Packet Block, old) of a packet of orig
// bytes of which data was captured.
func (w *ngFile) epb(id uint32, ts uint64, data string, orig int, old bool) *ngFile {
	var b []byte
	if old {
		b = w.order.AppendUint16(b, uint16(id))
		b = w.order.AppendUint16(b, 0) // drops
	} else {
		b = w.order.AppendUint32(b, id)
	}
	b = w.order.AppendUint32(b, uint32(ts>>32))
	b = w.order.AppendUint32(b, uint32(ts))
	b = w.order.AppendUint32(b, uint32(len(data)))
	b = w.order.AppendUint32(b, uint32(orig))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = append(b, w.opt(2, []byte{0, 0, 0, 1})...) // epb_flags: inbound, to be skipped
	typ := uint32(blockEnhanced)
	if old {
		typ = blockPacket
	}
	return w.block(typ, b)
}

func (w *ngFile) spb(data string, orig int) *ngFile {
	return w.block(blockSimple, append(w.order.AppendUint32(nil, uint32(orig)), data...))
}

type wantPacket struct {
	at   time.Time
	data string
	orig int
	link LinkType
}

// testFile is a pcapng file of two sections with every block the reader reads or skips:
// first in order, the second section in the other byte order.
func testFile(order binary.AppendByteOrder) (*ngFile, []wantPacket) {
	other := binary.AppendByteOrder(binary.BigEndian)
	if order == binary.BigEndian {
		other = binary.LittleEndian
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	w := &ngFile{}
	w.section(order)
	w.iface(LinkEthernet, 65535, w.tsresol(9))
	w.block(4, []byte{1, 0, 4, 0, 127, 0, 0, 1, 'd', 'b', 0, 0, 0, 0, 0, 0}) // name resolution
	// 2^-20 s, an hour ahead: 2^19 units are half a second, 3 units 2861.02 ns.
	w.iface(LinkSLL2, 262144, w.tsresol(0x80|20), w.tsoffset(3600))
	w.epb(0, uint64(at.UnixNano()), "first", 60, false)
	w.epb(1, uint64(at.Unix())<<20|1<<19|3, "second", 6, false)
	w.block(5, make([]byte, 24))         // interface statistics
	w.block(0x0a, make([]byte, 13))      // decryption secrets
	w.block(0x40000bad, []byte("pen=1")) // custom, not to be copied
	w.epb(1, uint64(at.Unix()+1)<<20, "old packet block", 16, true)
	w.iface(LinkRaw, 4)  // a third interface, of a snap length of 4
	w.section(other)     // forgets the three interfaces
	w.iface(LinkLoop, 0) // microseconds by default, and no snap length
	w.spb("simple packet", 13)
	w.epb(0, uint64(at.Add(time.Hour).UnixMicro()), "third", 5, false)
	w.iface(LinkNull, 8)
	w.spb("simple again", 13) // of interface 0: no snap length, and 13 was the length on the wire
	return w, []wantPacket{
		{at, "first", 60, LinkEthernet},
		{time.Unix(at.Unix()+3600, 500002861).UTC(), "second", 6, LinkSLL2},
		{time.Unix(at.Unix()+3601, 0).UTC(), "old packet block", 16, LinkSLL2},
		{time.Unix(at.Unix()+3601, 0).UTC(), "simple packet", 13, LinkLoop},
		{at.Add(time.Hour).Truncate(time.Microsecond), "third", 5, LinkLoop},
		{at.Add(time.Hour).Truncate(time.Microsecond), "simple again", 13, LinkLoop},
	}
}

func readAll(t *testing.T, s Source) ([]wantPacket, error) {
	t.Helper()
	var got []wantPacket
	for range 1000 {
		p, err := s.Next()
		if err != nil {
			return got, err
		}
		got = append(got, wantPacket{p.Time, string(p.Data), p.OrigLen, p.Link})
	}
	t.Fatal("more than 1000 packets")
	return nil, nil
}

func samePackets(t *testing.T, what string, got, want []wantPacket) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d packets, want %d: %v", what, len(got), len(want), got)
		return
	}
	for i := range got {
		if !got[i].at.Equal(want[i].at) || got[i].data != want[i].data || got[i].orig != want[i].orig || got[i].link != want[i].link {
			t.Errorf("%s: packet %d: %q of %d bytes, link %d, at %v; want %q of %d, link %d, at %v", what, i,
				got[i].data, got[i].orig, got[i].link, got[i].at, want[i].data, want[i].orig, want[i].link, want[i].at)
		}
	}
}

func TestPcapng(t *testing.T) {
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		w, want := testFile(order)
		r, err := NewPcapngReader(bytes.NewReader(w.b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r)
		if err != io.EOF {
			t.Errorf("%v: %v after %d packets, want io.EOF", order, err, len(got))
		}
		samePackets(t, order.String(), got, want)
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("%v: again after the end: %v", order, err)
		}
	}
}

// A file cut anywhere is io.ErrUnexpectedEOF, but at a block's end, where it is just shorter.
func TestPcapngTruncated(t *testing.T) {
	w, want := testFile(binary.LittleEndian)
	ends := map[int]bool{}
	for _, e := range w.ends {
		ends[e] = true
	}
	for n := range len(w.b) {
		r, err := NewPcapngReader(bytes.NewReader(w.b[:n]))
		if err != nil {
			if n >= w.ends[0] || (err != ErrNotPcapng && err != io.ErrUnexpectedEOF) {
				t.Errorf("cut at %d: %v", n, err)
			}
			continue
		}
		got, err := readAll(t, r)
		if ends[n] && err != io.EOF || !ends[n] && err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: %v after %d packets", n, err, len(got))
		}
		samePackets(t, "cut", got, want[:len(got)])
	}
}

func TestPcapngCorrupt(t *testing.T) {
	le := binary.LittleEndian
	good := func() *ngFile {
		w := &ngFile{}
		return w.section(le).iface(LinkEthernet, 0)
	}
	setLen := func(b []byte, at int, n uint32) []byte {
		le.PutUint32(b[at+4:], n)
		return b
	}
	off := len(good().b) // where the block after the interface starts
	cases := []struct {
		name string
		file []byte
		want string // in the error
	}{
		{"length under 12", setLen(good().epb(0, 0, "x", 1, false).b, off, 8), "offset 72"},
		{"length not a multiple of 4", setLen(good().epb(0, 0, "x", 1, false).b, off, 37), "not a multiple of 4"},
		{"length of 1 GiB", setLen(good().epb(0, 0, "x", 1, false).b, off, 1<<30), "more than"},
		{"length of 4 GiB - 4", setLen(good().epb(0, 0, "x", 1, false).b, off, 1<<32-4), "more than"},
		{"trailing length differs", setLen(good().epb(0, 0, "x", 1, false).b, off, 32), "ends with"},
		{"captured length past the block", func() []byte {
			b := good().epb(0, 0, "x", 1, false).b
			le.PutUint32(b[off+8+12:], 100)
			return b
		}(), "more than its block holds"},
		{"no such interface", good().epb(1, 0, "x", 1, false).b, "interface 1"},
		{"interfaces forgotten by a new section", good().section(le).epb(0, 0, "x", 1, false).b, "interface 0"},
		{"simple packet with no interface", (&ngFile{}).section(le).spb("x", 1).b, "describes none"},
		{"option past the block", func() []byte {
			w := &ngFile{}
			w.section(le)
			return w.iface(LinkEthernet, 0, w.tsresol(9), le.AppendUint16(le.AppendUint16(nil, 2), 40)).b
		}(), "runs past"},
		{"section of version 2", func() []byte {
			b := good().b
			le.PutUint16(b[12:], 2)
			return b
		}(), "version 2.0"},
		{"second section without byte-order magic", func() []byte {
			b := good().section(le).b
			le.PutUint32(b[off+8:], 0x12345678)
			return b
		}(), "offset 72 has no byte-order magic"},
		{"short packet block", good().block(blockEnhanced, make([]byte, 16)).b, "too short"},
	}
	for _, c := range cases {
		r, err := NewPcapngReader(bytes.NewReader(c.file))
		if err == nil {
			var got []wantPacket
			got, err = readAll(t, r)
			if len(got) != 0 {
				t.Errorf("%s: %d packets", c.name, len(got))
			}
			if _, again := r.Next(); again != err {
				t.Errorf("%s: %v, then %v", c.name, err, again)
			}
		}
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	for _, head := range []string{"", "\n\r\r\n", "\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00", "2026-12-06 10:00:00 UTC LOG:"} {
		if _, err := NewPcapngReader(strings.NewReader(head)); !errors.Is(err, ErrNotPcapng) {
			t.Errorf("%q: %v, want ErrNotPcapng", head, err)
		}
	}
}

func TestPcapngTimeResolutions(t *testing.T) {
	cases := []struct {
		resol byte
		ts    uint64
		want  time.Time
	}{
		{0, 1765015200, time.Unix(1765015200, 0)},                     // seconds
		{3, 1765015200123, time.Unix(1765015200, 123e6)},              // ms
		{6, 1765015200123456, time.Unix(1765015200, 123456e3)},        // µs, the default
		{9, 1765015200123456789, time.Unix(1765015200, 123456789)},    // ns
		{12, 1765015200123456789, time.Unix(1765015, 200123456)},      // ps: 2^64 of them are 213 days
		{19, 1e19 + 5, time.Unix(1, 0)},                               // 10^-19 s
		{24, 1e19, time.Unix(0, 10000)},                               // 10^-24 s
		{127, 1 << 63, time.Unix(0, 0)},                               // as small as the format can say
		{0x80 | 0, 1765015200, time.Unix(1765015200, 0)},              // 2^0 s
		{0x80 | 10, 1765015200<<10 | 512, time.Unix(1765015200, 5e8)}, // 2^-10 s
		{0x80 | 32, 1<<32 | 1, time.Unix(1, 0)},                       // 2^-32 s: 0.23 ns
		{0x80 | 63, 1<<63 | 1<<62, time.Unix(1, 5e8)},
		{0x80 | 64, 1 << 63, time.Unix(0, 5e8)},
		{0x80 | 127, ^uint64(0), time.Unix(0, 0)},
	}
	for _, c := range cases {
		f := pcapngIface{pow2: c.resol&0x80 != 0, exp: c.resol & 0x7f}
		if got := f.time(c.ts); !got.Equal(c.want) {
			t.Errorf("if_tsresol %#x, %d: %v, want %v", c.resol, c.ts, got, c.want.UTC())
		}
	}
	f := pcapngIface{exp: 6, offset: -3600}
	if got := f.time(1765015200e6); !got.Equal(time.Unix(1765015200-3600, 0)) {
		t.Errorf("a negative if_tsoffset: %v", got)
	}
}

// Reading a packet allocates nothing once the buffer has grown.
func TestPcapngAllocs(t *testing.T) {
	w := (&ngFile{}).section(binary.LittleEndian).iface(LinkEthernet, 0, (&ngFile{order: binary.LittleEndian}).tsresol(9))
	for i := range 200 {
		w.epb(0, uint64(i), strings.Repeat("x", 100+i%3), 200, false)
		w.block(5, make([]byte, 24))
	}
	r, err := NewPcapngReader(bytes.NewReader(w.b))
	if err != nil {
		t.Fatal(err)
	}
	r.Next()
	if n := testing.AllocsPerRun(100, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Next allocates %.1f times a packet", n)
	}
}

// Any bytes: packets or an error, never a panic, a hang or memory out of proportion to the
// input; and every packet's data within the file.
func FuzzPcapng(f *testing.F) {
	le, _ := testFile(binary.LittleEndian)
	be, _ := testFile(binary.BigEndian)
	f.Add(le.b)
	f.Add(be.b)
	f.Add(le.b[:len(le.b)-5])
	f.Add((&ngFile{}).section(binary.LittleEndian).iface(LinkEthernet, 0).epb(0, 0, "x", 1, false).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewPcapngReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var seg Segment
		for n := 0; ; n++ {
			if n > len(data)/12 { // a block is at least 12 bytes
				t.Fatalf("%d packets from %d bytes", n, len(data))
			}
			p, err := r.Next()
			if err != nil {
				if _, again := r.Next(); again != err {
					t.Fatalf("%v, then %v", err, again)
				}
				break
			}
			if len(p.Data) > len(data) {
				t.Fatalf("a packet of %d bytes from %d", len(p.Data), len(data))
			}
			_ = Decode(p.Link, p.Data, &seg)
		}
		if cap(r.buf) > 2*len(data)+128<<10 { // it grows by 64 KiB at a time, rounded to a size class
			t.Fatalf("a buffer of %d bytes for a file of %d", cap(r.buf), len(data))
		}
	})
}
