package capture

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"
)

// Sink hears a Tracker's conversations: their messages in order per direction, the gaps the
// capture left, and their ends.
type Sink interface {
	// Message is one whole message of c (typ 0: a client's startup packet), from the client when
	// fromClient, seen at at (the packet that completed it). body is valid only during the call.
	Message(c *Conversation, fromClient bool, typ byte, body []byte, at time.Time)
	// Gap says n bytes of one direction were lost to the capture.
	Gap(c *Conversation, fromClient bool, n int64)
	// Closed ends c: a FIN or RST seen, idle past the timeout, or the end of the capture.
	Closed(c *Conversation)
}

// Conversation is one TCP connection to a PostgreSQL server.
type Conversation struct {
	Client, Server netip.AddrPort
	Opened         time.Time // its SYN, or the first packet seen
	// MidStream says the capture began after the conversation did: no SYN, no startup packet,
	// so who the client is (user, database, application) is not known.
	MidStream bool
	// Encrypted says the conversation is TLS or GSSAPI: counted, not decoded.
	Encrypted bool
	// Local is the Sink's own state for the conversation.
	Local any

	last       time.Time
	clientAck  uint32 // the ack of the client's segment being read: how much of the server's stream it had
	finClient  bool   // the client sent its FIN
	finServer  bool
	toServer   halfStream
	toClient   halfStream
	fromClient *framer
	fromServer *framer
}

// TrackerStats counts what a Tracker did; every packet it could not use is counted here.
type TrackerStats struct {
	Packets, Conversations, Closed, Evicted, IdleClosed int64
	NotPostgres                                         int64 // segments of no server port
	Retransmitted, GapBytes, Gaps                       int64
	CutPackets                                          int64 // payloads cut by the snap length
	PortsFound                                          int64 // server ports found by a startup packet
}

// Tracker follows the PostgreSQL conversations of a capture: which side is the server (its
// port is one of ServerPorts), both directions put back in order and cut into messages.
// Memory is bounded: at most MaxConversations at once (one idle long goes first) and a
// conversation idle for IdleTimeout of capture time is closed.
type Tracker struct {
	ServerPorts      map[uint16]bool
	MaxConversations int
	IdleTimeout      time.Duration
	Sink             Sink

	conns map[[2]netip.AddrPort]*Conversation
	Stats TrackerStats
}

// NewTracker follows conversations with servers on ports.
func NewTracker(sink Sink, ports ...uint16) *Tracker {
	t := &Tracker{ServerPorts: map[uint16]bool{}, MaxConversations: 100_000, IdleTimeout: 10 * time.Minute, Sink: sink,
		conns: map[[2]netip.AddrPort]*Conversation{}}
	for _, p := range ports {
		t.ServerPorts[p] = true
	}
	return t
}

// Add takes one decoded segment, captured at at.
func (t *Tracker) Add(seg *Segment, at time.Time) {
	t.Stats.Packets++
	var fromClient, fresh bool
	var key [2]netip.AddrPort
	switch {
	case t.ServerPorts[seg.Dst.Port()]:
		fromClient, key = true, [2]netip.AddrPort{seg.Src, seg.Dst}
	case t.ServerPorts[seg.Src.Port()]:
		key = [2]netip.AddrPort{seg.Dst, seg.Src}
	case startupPacket(seg.Payload):
		// A server on a port not named: its client's first packet says what it is.
		t.ServerPorts[seg.Dst.Port()] = true
		t.Stats.PortsFound++
		fromClient, key = true, [2]netip.AddrPort{seg.Src, seg.Dst}
		fresh = true
	default:
		t.Stats.NotPostgres++
		return
	}
	c := t.conns[key]
	if c == nil {
		if seg.Flags&FlagSYN == 0 && len(seg.Payload) == 0 {
			// A bare ACK, FIN or RST: the end of a conversation already closed here, or one
			// not seen. Nothing to follow until it carries bytes.
			return
		}
		if len(t.conns) >= t.MaxConversations {
			t.evictOldest()
		}
		c = &Conversation{Client: key[0], Server: key[1], Opened: at, fromClient: newFramer(true), fromServer: newFramer(false)}
		if seg.Flags&FlagSYN == 0 && !fresh {
			// Started mid-conversation: the client's side is past its startup packet.
			c.fromClient.startup = false
			c.fromClient.lost, c.fromServer.lost = true, true
			c.MidStream = true
		}
		t.conns[key] = c
		t.Stats.Conversations++
	}
	c.last = at
	h, fr, other := &c.toClient, c.fromServer, &c.toServer
	if fromClient {
		h, fr, other = &c.toServer, c.fromClient, &c.toClient
		c.clientAck = seg.Ack
	}
	if seg.Flags&FlagSYN != 0 {
		h.syn(seg.Seq)
	}
	if c.Encrypted {
		t.ended(key, c, fromClient, seg.Flags)
		return
	}
	before := h.Retransmitted + other.Retransmitted
	if seg.Flags&FlagACK != 0 {
		// What the peer acknowledged and the capture does not have is lost: said before this
		// segment's bytes, which may be the answer to it.
		t.deliver(c, !fromClient, other, seg.Ack, at)
	}
	t.add(c, fromClient, h, fr, seg, at)
	if seg.Flags&FlagFIN != 0 {
		h.fin(seg.Seq + uint32(len(seg.Payload)))
	}
	t.Stats.Retransmitted += h.Retransmitted + other.Retransmitted - before
	if fr.tls {
		c.Encrypted = true
	}
	t.ended(key, c, fromClient, seg.Flags)
}

// ended closes c on a RST, or once both sides have sent their FIN: one side's FIN ends only
// its direction, and the other may still send (a TLS close record, the server's answer to a
// query sent as it terminated the session).
func (t *Tracker) ended(key [2]netip.AddrPort, c *Conversation, fromClient bool, flags uint8) {
	switch {
	case flags&FlagRST != 0:
	case flags&FlagFIN == 0:
		return
	case fromClient:
		c.finClient = true
	default:
		c.finServer = true
	}
	if flags&FlagRST != 0 || c.finClient && c.finServer {
		t.close(key, c)
	}
}

// sides are the callbacks of one direction of c: its bytes into its framer, its messages and
// gaps to the Sink.
func (t *Tracker) sides(c *Conversation, fromClient bool, fr *framer, h *halfStream, at time.Time) (out func([]byte), gap func(int64)) {
	msg := func(typ byte, body []byte) { t.Sink.Message(c, fromClient, typ, body, at) }
	out = func(p []byte) { fr.feed(p, h.next, msg) }
	gap = func(n int64) {
		t.Stats.Gaps++
		t.Stats.GapBytes += n
		fr.gap(n)
		t.Sink.Gap(c, fromClient, n)
	}
	return out, gap
}

// add puts a segment's payload in its direction's stream.
func (t *Tracker) add(c *Conversation, fromClient bool, h *halfStream, fr *framer, seg *Segment, at time.Time) {
	out, gap := t.sides(c, fromClient, fr, h, at)
	h.add(seg.Seq, seg.Payload, out, gap)
	if seg.Cut {
		t.Stats.CutPackets++
		h.cut(seg.Seq+uint32(len(seg.Payload)), seg.Len-len(seg.Payload), out, gap)
	}
}

// deliver takes the acknowledgement ack of the direction h (from the client when fromClient).
func (t *Tracker) deliver(c *Conversation, fromClient bool, h *halfStream, ack uint32, at time.Time) {
	fr := c.fromServer
	if fromClient {
		fr = c.fromClient
	}
	out, gap := t.sides(c, fromClient, fr, h, at)
	h.acked(ack, out, gap)
}

// Expire closes the conversations idle since before now - IdleTimeout.
func (t *Tracker) Expire(now time.Time) {
	for k, c := range t.conns {
		if now.Sub(c.last) > t.IdleTimeout {
			t.Stats.IdleClosed++
			t.close(k, c)
		}
	}
}

// Close ends every conversation: the end of the capture.
func (t *Tracker) Close() {
	for k, c := range t.conns {
		t.close(k, c)
	}
}

// evictOldest closes the conversation idle longest among a sample of 8: a full table of
// 100,000 is not scanned for every new one, and map order makes the sample random.
func (t *Tracker) evictOldest() {
	var oldest *Conversation
	var ok [2]netip.AddrPort
	n := 0
	for k, c := range t.conns {
		if oldest == nil || c.last.Before(oldest.last) {
			oldest, ok = c, k
		}
		if n++; n == 8 {
			break
		}
	}
	if oldest != nil {
		t.Stats.Evicted++
		t.close(ok, oldest)
	}
}

func (t *Tracker) close(key [2]netip.AddrPort, c *Conversation) {
	for _, fromClient := range []bool{true, false} {
		h, fr := &c.toClient, c.fromServer
		if fromClient {
			h, fr = &c.toServer, c.fromClient
		}
		out, gap := t.sides(c, fromClient, fr, h, c.last)
		h.flush(out, gap)
	}
	delete(t.conns, key)
	t.Stats.Closed++
	t.Sink.Closed(c)
}

// startupPacket reports whether a segment's payload is a client's first packet to a
// PostgreSQL server: one whole StartupMessage (protocol 3.x, with a user), SSLRequest or
// GSSENCRequest. Chance makes such 8 exact bytes rare, and the length must match the segment.
func startupPacket(p []byte) bool {
	if len(p) < 8 || int(binary.BigEndian.Uint32(p)) != len(p) {
		return false
	}
	switch code := binary.BigEndian.Uint32(p[4:]); {
	case code == 80877103 || code == 80877104:
		return len(p) == 8
	case code>>16 == 3 && code&0xffff <= 2:
		return bytes.Contains(p[8:], []byte("user\x00")) && p[len(p)-1] == 0
	}
	return false
}
