package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

func gzipped(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	z := gzip.NewWriter(&out)
	z.Name = "capture.pcap" // gzip(1) keeps the file's name in the header
	if _, err := z.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestOpen(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	pkts := [][]byte{[]byte("first"), []byte("second")}
	ng, ngWant := testFile(binary.BigEndian)
	pcapWant := func(nanos bool) []wantPacket {
		first := at
		if !nanos {
			first = at.Truncate(time.Microsecond)
		}
		return []wantPacket{{first, "first", 5, LinkSLL}, {first.Add(time.Millisecond), "second", 6, LinkSLL}}
	}
	cases := []struct {
		name string
		file []byte
		kind Kind
		want []wantPacket
	}{
		{"pcap, µs, little-endian", writePcap(binary.LittleEndian, false, LinkSLL, pkts, at), KindPcap, pcapWant(false)},
		{"pcap, ns, big-endian", writePcap(binary.BigEndian, true, LinkSLL, pkts, at), KindPcap, pcapWant(true)},
		{"pcap, ns, little-endian", writePcap(binary.LittleEndian, true, LinkSLL, pkts, at), KindPcap, pcapWant(true)},
		{"pcap, µs, big-endian", writePcap(binary.BigEndian, false, LinkSLL, pkts, at), KindPcap, pcapWant(false)},
		{"pcapng", ng.b, KindPcapng, ngWant},
	}
	for _, c := range cases {
		for _, z := range []bool{false, true} {
			file, kind, name := c.file, c.kind, c.name
			if z {
				file, kind, name = gzipped(t, file), KindGzip, "gzip of "+name
			}
			if got := Sniff(file); got != kind {
				t.Errorf("%s: Sniff says %v, want %v", name, got, kind)
			}
			if !IsCapture(file[:min(len(file), SniffLen)]) {
				t.Errorf("%s: IsCapture says no", name)
			}
			s, err := Open(bytes.NewReader(file))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			got, err := readAll(t, s)
			if err != io.EOF {
				t.Errorf("%s: %v after %d packets", name, err, len(got))
			}
			samePackets(t, name, got, c.want)
		}
	}
	// A gzip cut short is a capture cut short.
	z := gzipped(t, ng.b)
	s, err := Open(bytes.NewReader(z[:len(z)/2]))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("half a gzip of a pcapng: %v after %d packets, want io.ErrUnexpectedEOF", err, len(got))
	}
}

func TestOpenNotACapture(t *testing.T) {
	log := []byte("2026-12-06 10:00:00.123 UTC [4242] LOG:  statement: SELECT 1\n")
	cases := []struct {
		name string
		file []byte
		kind Kind
		want string // in the error
	}{
		{"a server log", log, KindUnknown, `it starts with "2026"`},
		{"a gzip of a log", gzipped(t, log), KindGzip, `a gzip file, but not a packet capture: pcap, pcapng or a gzip of one (it holds "2026")`},
		{"a gzip of a gzip", gzipped(t, gzipped(t, writePcap(binary.LittleEndian, false, LinkRaw, nil, time.Now()))), KindGzip, "a gzip file, but not"},
		{"empty", nil, KindUnknown, `it starts with ""`},
		{"3 bytes", []byte("\xd4\xc3\xb2"), KindUnknown, "not a packet capture"},
		{"a zstd file", []byte("\x28\xb5\x2f\xfd\x00\x00"), KindUnknown, "not a packet capture"},
	}
	for _, c := range cases {
		if got := Sniff(c.file); got != c.kind {
			t.Errorf("%s: Sniff says %v, want %v", c.name, got, c.kind)
		}
		if IsCapture(c.file) {
			t.Errorf("%s: IsCapture says yes", c.name)
		}
		s, err := Open(bytes.NewReader(c.file))
		if s != nil || !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, %v; want an error saying %q", c.name, s, err, c.want)
		}
	}
	// A pcap magic and nothing more: a pcap, but cut short.
	if _, err := Open(strings.NewReader("\xd4\xc3\xb2\xa1")); err != ErrNotPcap {
		t.Errorf("a pcap magic alone: %v", err)
	}
	// Too little of a gzip to look inside.
	if z := gzipped(t, []byte("\n\r\r\n")); IsCapture(z[:12]) {
		t.Error("IsCapture: yes from 12 bytes of a gzip")
	}
}
