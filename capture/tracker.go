package capture

import (
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
	last           time.Time
	toServer       halfStream
	toClient       halfStream
	fromClient     *framer
	fromServer     *framer
}

// TrackerStats counts what a Tracker did; every packet it could not use is counted here.
type TrackerStats struct {
	Packets, Conversations, Closed, Evicted, IdleClosed int64
	NotPostgres                                         int64 // segments of no server port
	Retransmitted, GapBytes, Gaps                       int64
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
	var fromClient bool
	var key [2]netip.AddrPort
	switch {
	case t.ServerPorts[seg.Dst.Port()]:
		fromClient, key = true, [2]netip.AddrPort{seg.Src, seg.Dst}
	case t.ServerPorts[seg.Src.Port()]:
		key = [2]netip.AddrPort{seg.Dst, seg.Src}
	default:
		t.Stats.NotPostgres++
		return
	}
	c := t.conns[key]
	if c == nil {
		if seg.Flags&(FlagFIN|FlagRST) != 0 && len(seg.Payload) == 0 {
			return // the end of a conversation not seen: nothing to close
		}
		if len(t.conns) >= t.MaxConversations {
			t.evictOldest()
		}
		c = &Conversation{Client: key[0], Server: key[1], Opened: at, fromClient: newFramer(true), fromServer: newFramer(false)}
		if seg.Flags&FlagSYN == 0 {
			// Started mid-conversation: the client's side is past its startup packet.
			c.fromClient.startup = false
			c.fromClient.lost, c.fromServer.lost = true, true
		}
		t.conns[key] = c
		t.Stats.Conversations++
	}
	c.last = at
	h, fr := &c.toClient, c.fromServer
	if fromClient {
		h, fr = &c.toServer, c.fromClient
	}
	if seg.Flags&FlagSYN != 0 {
		h.syn(seg.Seq)
	}
	before := h.Retransmitted
	h.add(seg.Seq, seg.Payload, func(p []byte) {
		fr.feed(p, func(typ byte, body []byte) { t.Sink.Message(c, fromClient, typ, body, at) })
	}, func(n int64) {
		t.Stats.Gaps++
		t.Stats.GapBytes += n
		fr.gap(n)
		t.Sink.Gap(c, fromClient, n)
	})
	t.Stats.Retransmitted += h.Retransmitted - before
	if seg.Flags&(FlagFIN|FlagRST) != 0 {
		t.close(key, c)
	}
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
	for _, side := range []struct {
		h          *halfStream
		fr         *framer
		fromClient bool
	}{{&c.toServer, c.fromClient, true}, {&c.toClient, c.fromServer, false}} {
		side.h.flush(func(p []byte) {
			side.fr.feed(p, func(typ byte, body []byte) { t.Sink.Message(c, side.fromClient, typ, body, c.last) })
		}, func(n int64) {
			t.Stats.Gaps++
			t.Stats.GapBytes += n
			side.fr.gap(n)
			t.Sink.Gap(c, side.fromClient, n)
		})
	}
	delete(t.conns, key)
	t.Stats.Closed++
	t.Sink.Closed(c)
}
