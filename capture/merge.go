package capture

import (
	"fmt"
	"io"
)

// SourceError is an error of one of Merge's sources, Index counting from 0 in the order given
// to Merge, so that a caller can name the file.
type SourceError struct {
	Index int
	Err   error
}

func (e *SourceError) Error() string { return fmt.Sprintf("capture source %d: %v", e.Index, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

// Merge reads several sources as one, in time order: the rotated files of `tcpdump -C` or
// `-G`, or captures of several hosts. Each Next returns the earliest packet any source has
// pending; of equal times, the source given first goes first, and one source's packets keep
// their order. A packet's Data stays valid until Merge's next Next: Merge asks a source for its
// next packet only when the one it had is returned and Next is called again.
//
// An error ends its source, and the others go on: Next returns it once, as a *SourceError
// (errors.Is(err, io.ErrUnexpectedEOF) for a truncated file), then the other sources' packets,
// then io.EOF after the last of all. A caller that counts errors loses no packet to them; one
// that wants to stop at the first stops calling Next. (A source that is itself a Merge goes on
// after its *SourceError, so Merges nest.)
func Merge(sources ...Source) Source {
	return &merger{src: sources, pkt: make([]Packet, len(sources)), h: make([]int, 0, len(sources))}
}

// merger is a k-way merge: a min-heap of the sources with a packet pending, by (time, index).
// The top is the packet Next returned last until the next Next asks its source for another.
type merger struct {
	src    []Source
	pkt    []Packet // each source's pending packet
	h      []int    // the sources with a packet pending, a heap
	filled int      // sources[:filled] have been asked for their first packet
	top    bool     // h[0]'s packet was returned: ask its source for the next first
}

func (m *merger) Next() (Packet, error) {
	if m.top {
		m.top = false
		i := m.h[0]
		p, err := m.src[i].Next()
		switch {
		case err == nil:
			m.pkt[i] = p
			m.down(0)
		case goesOn(err):
			m.top = true // its pending packet is spent: ask it again
			return Packet{}, &SourceError{Index: i, Err: err}
		default:
			m.pkt[i] = Packet{}
			n := len(m.h) - 1
			m.h[0] = m.h[n]
			m.h = m.h[:n]
			m.down(0)
			if err != io.EOF {
				return Packet{}, &SourceError{Index: i, Err: err}
			}
		}
	}
	for m.filled < len(m.src) {
		i := m.filled
		p, err := m.src[i].Next()
		if err != nil && goesOn(err) {
			return Packet{}, &SourceError{Index: i, Err: err} // ask it again at the next Next
		}
		m.filled++
		if err == io.EOF {
			continue
		}
		if err != nil {
			return Packet{}, &SourceError{Index: i, Err: err}
		}
		m.pkt[i] = p
		m.h = append(m.h, i)
		m.up(len(m.h) - 1)
	}
	if len(m.h) == 0 {
		return Packet{}, io.EOF
	}
	m.top = true
	return m.pkt[m.h[0]], nil
}

// goesOn says a source's error is not its end: a Merge's *SourceError.
func goesOn(err error) bool {
	_, ok := err.(*SourceError)
	return ok
}

func (m *merger) less(a, b int) bool {
	i, j := m.h[a], m.h[b]
	if c := m.pkt[i].Time.Compare(m.pkt[j].Time); c != 0 {
		return c < 0
	}
	return i < j
}

func (m *merger) up(k int) {
	for k > 0 {
		parent := (k - 1) / 2
		if !m.less(k, parent) {
			return
		}
		m.h[k], m.h[parent] = m.h[parent], m.h[k]
		k = parent
	}
}

func (m *merger) down(k int) {
	for {
		c := 2*k + 1
		if c >= len(m.h) {
			return
		}
		if c+1 < len(m.h) && m.less(c+1, c) {
			c++
		}
		if !m.less(c, k) {
			return
		}
		m.h[k], m.h[c] = m.h[c], m.h[k]
		k = c
	}
}
