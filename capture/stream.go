package capture

// halfStream puts one direction of a TCP connection back in order: segments come in as
// captured (retransmitted, out of order, some never), bytes go out once each, in order, with
// the holes the capture lost said as gaps, so that the protocol decoder above can skip to a
// message boundary rather than read garbage.
type halfStream struct {
	started bool
	next    uint32 // the sequence number of the next byte to deliver
	pending []pendingSeg
	held    int // bytes in pending

	Delivered, Retransmitted, GapBytes int64
	Gaps                               int64
}

type pendingSeg struct {
	seq  uint32
	data []byte // a copy: the packet's buffer is reused
}

// Bounds on what a direction holds while it waits for a missing segment: past them the hole
// is given up as a gap. A capture that lost a segment never sees it come back.
const (
	maxPendingSegs  = 64
	maxPendingBytes = 1 << 20
)

// syn starts the stream at a SYN's sequence number: its first byte is seq+1. Without one (a
// capture started mid-conversation) the first segment seen starts it.
func (h *halfStream) syn(seq uint32) {
	if !h.started {
		h.started, h.next = true, seq+1
	}
}

// seqLess compares sequence numbers modulo 2^32 (RFC 1982 serial arithmetic).
func seqLess(a, b uint32) bool { return int32(a-b) < 0 }

// add takes a segment's payload at seq (after a SYN: its sequence number + 1) and calls out with
// each run of bytes now in order; gap with the size of each hole given up. out's slice is valid
// only during the call.
func (h *halfStream) add(seq uint32, data []byte, out func([]byte), gap func(n int64)) {
	if len(data) == 0 {
		return
	}
	if !h.started { // mid-conversation, or the first segment after the SYN
		h.started, h.next = true, seq
	}
	end := seq + uint32(len(data))
	switch {
	case !seqLess(h.next, end): // all of it delivered before: a retransmission
		h.Retransmitted += int64(len(data))
		return
	case seqLess(seq, h.next): // it overlaps what was delivered: keep the new part
		skip := h.next - seq
		h.Retransmitted += int64(skip)
		data, seq = data[skip:], h.next
	}
	if seq == h.next {
		h.deliver(data, out)
		h.drain(out)
		return
	}
	// A hole before it: hold a copy until the hole is filled, or given up.
	h.hold(seq, data)
	if len(h.pending) > maxPendingSegs || h.held > maxPendingBytes {
		h.skipHole(out, gap)
	}
}

func (h *halfStream) deliver(data []byte, out func([]byte)) {
	h.next += uint32(len(data))
	h.Delivered += int64(len(data))
	out(data)
}

// hold inserts a segment in sequence order (a segment already held at that place is kept).
func (h *halfStream) hold(seq uint32, data []byte) {
	i := len(h.pending)
	for i > 0 && seqLess(seq, h.pending[i-1].seq) {
		i--
	}
	if i > 0 && h.pending[i-1].seq == seq {
		h.Retransmitted += int64(len(data))
		return
	}
	h.pending = append(h.pending, pendingSeg{})
	copy(h.pending[i+1:], h.pending[i:])
	h.pending[i] = pendingSeg{seq: seq, data: append([]byte(nil), data...)}
	h.held += len(data)
}

// drain delivers the held segments the stream has reached.
func (h *halfStream) drain(out func([]byte)) {
	for len(h.pending) > 0 {
		p := h.pending[0]
		end := p.seq + uint32(len(p.data))
		if seqLess(h.next, p.seq) {
			return // still a hole before it
		}
		h.pending = h.pending[1:]
		h.held -= len(p.data)
		if !seqLess(h.next, end) {
			h.Retransmitted += int64(len(p.data))
			continue
		}
		skip := h.next - p.seq
		h.Retransmitted += int64(skip)
		h.deliver(p.data[skip:], out)
	}
}

// skipHole gives up the hole before the first held segment: the bytes are lost to the capture.
func (h *halfStream) skipHole(out func([]byte), gap func(n int64)) {
	if len(h.pending) == 0 {
		return
	}
	lost := int64(h.pending[0].seq - h.next)
	h.Gaps++
	h.GapBytes += lost
	gap(lost)
	h.next = h.pending[0].seq
	h.drain(out)
}

// flush gives up every hole, at the end of the capture or of the conversation.
func (h *halfStream) flush(out func([]byte), gap func(n int64)) {
	for len(h.pending) > 0 {
		h.skipHole(out, gap)
	}
}

// acked takes the other direction's acknowledgement: the peer has received every byte before
// ack. Bytes before it that the capture never had are lost to it, not late: they are given up
// at once (held segments up to ack delivered), so the decoder resynchronises before it reads
// the peer's answer to them rather than 64 segments later.
func (h *halfStream) acked(ack uint32, out func([]byte), gap func(n int64)) {
	for h.started && seqLess(h.next, ack) {
		if len(h.pending) > 0 && !seqLess(ack, h.pending[0].seq) {
			h.skipHole(out, gap) // the hole before the first held segment, then what follows it
			continue
		}
		lost := int64(ack - h.next)
		h.Gaps++
		h.GapBytes += lost
		gap(lost)
		h.next = ack
		h.drain(out)
	}
}

// cut says the segment just added at seq was cut by the snap length: the n bytes after its
// captured part were sent but not captured. Said as a gap at once when the stream has reached
// them; a segment held behind a hole leaves them to the hole's own end.
func (h *halfStream) cut(end uint32, n int, out func([]byte), gap func(n int64)) {
	if n <= 0 || !h.started || h.next != end {
		return
	}
	h.Gaps++
	h.GapBytes += int64(n)
	gap(int64(n))
	h.next += uint32(n)
	h.drain(out)
}

// fin takes the direction's FIN at end (the sequence number after its last byte): it takes one
// sequence number, which the peer acknowledges, and which is no byte lost.
func (h *halfStream) fin(end uint32) {
	if h.started && h.next == end {
		h.next++
	}
}
