package capture

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// play feeds segments of text (each [from, to) of it, at sequence base+from) to a halfStream
// and returns what came out, with "<gap N>" where a hole was given up.
func play(h *halfStream, base uint32, text string, segs [][2]int, flush bool) string {
	h.syn(base - 1)
	var b strings.Builder
	out := func(p []byte) { b.Write(p) }
	gap := func(n int64) { b.WriteString("<gap " + itoa(n) + ">") }
	for _, s := range segs {
		h.add(base+uint32(s[0]), []byte(text[s[0]:s[1]]), out, gap)
	}
	if flush {
		h.flush(out, gap)
	}
	return b.String()
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func TestHalfStream(t *testing.T) {
	const text = "abcdefghijklmnopqrstuvwxyz"
	cases := []struct {
		name  string
		base  uint32
		segs  [][2]int
		flush bool
		want  string
		retx  int64
	}{
		{"in order", 1000, [][2]int{{0, 5}, {5, 10}, {10, 26}}, false, text, 0},
		{"out of order", 1000, [][2]int{{5, 10}, {0, 5}, {20, 26}, {10, 20}}, false, text, 0},
		{"retransmitted whole", 1000, [][2]int{{0, 10}, {0, 10}, {10, 26}}, false, text, 10},
		{"retransmitted overlapping", 1000, [][2]int{{0, 10}, {5, 15}, {15, 26}}, false, text, 5},
		{"held twice", 1000, [][2]int{{0, 5}, {10, 15}, {10, 15}, {5, 10}, {15, 26}}, false, text, 5},
		{"across the wrap of 2^32", 1<<32 - 7, [][2]int{{0, 5}, {10, 26}, {5, 10}}, false, text, 0},
		{"a hole never filled", 1000, [][2]int{{0, 5}, {10, 26}}, true, "abcde<gap 5>klmnopqrstuvwxyz", 0},
		{"a hole at the end is no gap", 1000, [][2]int{{0, 5}}, true, "abcde", 0},
	}
	for _, c := range cases {
		h := &halfStream{}
		if got := play(h, c.base, text, c.segs, c.flush); got != c.want || h.Retransmitted != c.retx {
			t.Errorf("%s: %q, %d retransmitted bytes; want %q, %d", c.name, got, h.Retransmitted, c.want, c.retx)
		}
	}

	// A capture that lost a segment and goes on: the hole is given up once the held segments
	// pass the bound, and everything after it comes out.
	h := &halfStream{}
	var got []byte
	gaps := int64(0)
	out := func(p []byte) { got = append(got, p...) }
	h.add(0, []byte("start"), out, func(n int64) { gaps += n })
	for i := range maxPendingSegs + 1 {
		h.add(uint32(10+i), []byte{'x'}, out, func(n int64) { gaps += n })
	}
	if gaps != 5 || string(got) != "start"+strings.Repeat("x", maxPendingSegs+1) || h.Gaps != 1 {
		t.Errorf("lost segment: %d gap bytes, %d gaps, delivered %q", gaps, h.Gaps, got)
	}
}

// Any shuffle, duplication and loss of segments: the bytes that come out are the text's, in
// order, each once, with every lost byte counted in a gap.
func TestHalfStreamShuffled(t *testing.T) {
	text := strings.Repeat("0123456789", 300)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var segs [][2]int
		for i := 0; i < len(text); {
			n := 1 + rng.IntN(40)
			segs = append(segs, [2]int{i, min(i+n, len(text))})
			i += n
		}
		lost := map[int]bool{}
		if trial%2 == 1 && len(segs) > 2 {
			for range 3 {
				lost[rng.IntN(len(segs))] = true
			}
		}
		var played [][2]int
		lostBytes := 0
		for i, s := range segs {
			if lost[i] {
				lostBytes += s[1] - s[0]
				continue
			}
			played = append(played, s)
			if rng.IntN(5) == 0 {
				played = append(played, s) // a retransmission
			}
		}
		for i := 0; i < len(played); i += 8 { // reorder within blocks of 8, as a network does
			blk := played[i:min(i+8, len(played))]
			rng.Shuffle(len(blk), func(a, b int) { blk[a], blk[b] = blk[b], blk[a] })
		}
		h := &halfStream{}
		h.syn(6)
		var got []byte
		gapBytes := int64(0)
		out := func(p []byte) { got = append(got, p...) }
		for _, s := range played {
			h.add(uint32(s[0])+7, []byte(text[s[0]:s[1]]), out, func(n int64) { gapBytes += n })
		}
		h.flush(out, func(n int64) { gapBytes += n })
		want := len(text) - lostBytes
		tail := 0 // lost bytes at the very end come out as nothing, not as a gap
		for i := len(segs) - 1; i >= 0 && lost[i]; i-- {
			tail += segs[i][1] - segs[i][0]
		}
		if len(got) != want || gapBytes != int64(lostBytes-tail) {
			t.Fatalf("trial %d: %d bytes out, %d gap bytes; want %d and %d", trial, len(got), gapBytes, want, lostBytes-tail)
		}
		if lostBytes == 0 && string(got) != text {
			t.Fatalf("trial %d: the bytes came out changed", trial)
		}
	}
}

// Any sequence of segments (sequence numbers anywhere, wrapping, overlapping): no panic, and
// what a direction holds stays within its bounds.
func FuzzHalfStream(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 5, 0, 0, 0, 10, 5, 0, 0, 0, 5, 5})
	f.Add([]byte{0xff, 0xff, 0xff, 0xfe, 9, 0, 0, 0, 7, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		h := &halfStream{}
		payload := make([]byte, 256)
		var out int64
		for len(ops) >= 5 {
			seq := uint32(ops[0])<<24 | uint32(ops[1])<<16 | uint32(ops[2])<<8 | uint32(ops[3])
			h.add(seq, payload[:ops[4]], func(p []byte) { out += int64(len(p)) }, func(int64) {})
			if len(h.pending) > maxPendingSegs || h.held > maxPendingBytes+len(payload) {
				t.Fatalf("holding %d segments, %d bytes", len(h.pending), h.held)
			}
			ops = ops[5:]
		}
		h.flush(func(p []byte) { out += int64(len(p)) }, func(int64) {})
		if out != h.Delivered || len(h.pending) != 0 {
			t.Fatalf("delivered %d, counted %d, %d left", out, h.Delivered, len(h.pending))
		}
	})
}
