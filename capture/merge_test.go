package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// fakeSource returns packets at the given seconds, named "<name><n>", then err (io.EOF if nil).
// Like a file reader it reuses one buffer, and spoils it at every Next, so that a packet whose
// source was asked for the next too early is seen.
type fakeSource struct {
	name string
	at   []int
	err  error
	n    int
	buf  []byte
}

func (s *fakeSource) Next() (Packet, error) {
	for i := range s.buf {
		s.buf[i] = '!'
	}
	if s.n == len(s.at) {
		if s.err != nil {
			return Packet{}, s.err
		}
		return Packet{}, io.EOF
	}
	s.buf = fmt.Appendf(s.buf[:0], "%s%d", s.name, s.n)
	p := Packet{Time: time.Unix(int64(s.at[s.n]), 0), Data: s.buf, Link: LinkRaw}
	s.n++
	return p, nil
}

// mergeAll reads m to its end, naming each packet, and each error by its source and cause.
func mergeAll(t *testing.T, m Source) []string {
	t.Helper()
	var got []string
	for range 1000 {
		p, err := m.Next()
		if err == io.EOF {
			if _, err := m.Next(); err != io.EOF {
				t.Errorf("after io.EOF: %v", err)
			}
			return got
		}
		if err != nil {
			var se *SourceError
			if !errors.As(err, &se) {
				t.Fatalf("%v: not a *SourceError", err)
			}
			got = append(got, fmt.Sprintf("error %d: %v", se.Index, se.Err))
			continue
		}
		got = append(got, fmt.Sprintf("%s@%d", p.Data, p.Time.Unix()))
	}
	t.Fatal("no end")
	return nil
}

func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestMerge(t *testing.T) {
	got := mergeAll(t, Merge(
		&fakeSource{name: "a", at: []int{1, 3, 3, 7}},
		&fakeSource{name: "b", at: []int{2, 3, 8}},
		&fakeSource{name: "c"},
		&fakeSource{name: "d", at: []int{0, 3, 9}},
	))
	// Of equal times, the source given first goes first; a source's own keep their order.
	same(t, "interleaved", got, "d0@0", "a0@1", "b0@2", "a1@3", "a2@3", "b1@3", "d1@3", "a3@7", "b2@8", "d2@9")

	same(t, "none", mergeAll(t, Merge()))
	same(t, "one", mergeAll(t, Merge(&fakeSource{name: "a", at: []int{5, 4}})), "a0@5", "a1@4")
}

// A truncated file's error is returned once, and the other sources' packets all follow.
func TestMergeErrors(t *testing.T) {
	bad := errors.New("bad block")
	got := mergeAll(t, Merge(
		&fakeSource{name: "a", at: []int{1, 4, 6}},
		&fakeSource{name: "b", at: []int{2, 3}, err: io.ErrUnexpectedEOF},
		&fakeSource{name: "c", at: []int{5}, err: bad},
		&fakeSource{name: "d", err: bad}, // fails at once
	))
	same(t, "errors", got, "error 3: bad block", "a0@1", "b0@2", "b1@3", "error 1: unexpected EOF", "a1@4", "c0@5", "error 2: bad block", "a2@6")

	// Merges nest: an inner Merge goes on after its error.
	got = mergeAll(t, Merge(
		&fakeSource{name: "a", at: []int{1, 5}},
		Merge(&fakeSource{name: "b", at: []int{2}, err: bad}, &fakeSource{name: "c", at: []int{3, 4}}),
	))
	same(t, "nested", got, "a0@1", "b0@2", "error 1: capture source 0: bad block", "c0@3", "c1@4", "a1@5")

	// errors.Is sees the cause.
	m := Merge(&fakeSource{name: "a", err: io.ErrUnexpectedEOF})
	if _, err := m.Next(); !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "capture source 0: unexpected EOF" {
		t.Errorf("%v", err)
	}
}

// Merge reads files of both formats; a packet keeps its source's link type.
func TestMergeFiles(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	pcap := writePcap(binary.LittleEndian, true, LinkEthernet, [][]byte{[]byte("p0"), []byte("p1"), []byte("p2")}, at.Add(-time.Millisecond/2))
	w := (&ngFile{}).section(binary.BigEndian).iface(LinkSLL2, 0, (&ngFile{order: binary.BigEndian}).tsresol(9))
	for i := range 3 {
		w.epb(0, uint64(at.Add(time.Duration(i)*time.Millisecond).UnixNano()), fmt.Sprintf("n%d", i), 2, false)
	}
	var sources []Source
	for _, f := range [][]byte{pcap, gzipped(t, w.b)} {
		s, err := Open(bytes.NewReader(f))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, s)
	}
	m := Merge(sources...)
	var got []string
	for {
		p, err := m.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d", p.Data, p.Link))
	}
	same(t, "files", got, "p0/1", "n0/276", "p1/1", "n1/276", "p2/1", "n2/276")
}

// endless is a source of packets one second apart, for ever.
type endless struct {
	n   int64
	buf [8]byte
}

func (s *endless) Next() (Packet, error) {
	s.n++
	return Packet{Time: time.Unix(s.n, 0), Data: s.buf[:]}, nil
}

func TestMergeAllocs(t *testing.T) {
	m := Merge(&endless{}, &endless{n: 1}, &endless{n: 2})
	m.Next()
	if n := testing.AllocsPerRun(1000, func() { m.Next() }); n != 0 {
		t.Errorf("Merge's Next allocates %.1f times a packet", n)
	}
}
