package replay

import (
	"errors"
	"io"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/capture"
)

// CaptureStats is what the replay of a capture read, and what it could not use.
type CaptureStats struct {
	Packets     int64
	First, Last time.Time // the capture's first and last packet times
	// Packets that held no TCP segment to read, by reason: other protocols, headers cut by
	// the snap length, IP fragments.
	NotTCP, Truncated, Fragments int64
	Tracker                      capture.TrackerStats
	Events                       capture.EventStats
}

// Capture follows the PostgreSQL conversations of a packet source for an analyzer running on
// the packets' time. Feed it packets with Packet, then Close it.
type Capture struct {
	clock
	cfg     analyzer.Config
	tracker *capture.Tracker
	events  *capture.Events
	seg     capture.Segment
	started bool
	Stats   CaptureStats
	// head holds the first packets until the digest key is made from them (see RunCapture).
	head    []capture.Packet
	expired time.Time
}

// NewCapture follows conversations with servers on ports (5432 when none).
func NewCapture(cfg analyzer.Config, ports ...uint16) *Capture {
	if len(ports) == 0 {
		ports = []uint16{5432}
	}
	// A capture's findings of an hour ago matter as much as those of its last second.
	cfg.KeepFindings = true
	c := &Capture{cfg: cfg}
	c.events = capture.NewEvents(nil)
	c.tracker = capture.NewTracker(c.events, ports...)
	return c
}

// headPackets is how many packets key the digests of repeated reads: the same capture gives the
// same report, and a report alone cannot be searched for a guessed value.
const headPackets = 64

// Packet takes the next packet (its Data is copied only while the head is gathered).
func (c *Capture) Packet(p capture.Packet) {
	if !c.started {
		p.Data = append([]byte(nil), p.Data...)
		c.head = append(c.head, p)
		if len(c.head) < headPackets {
			return
		}
		c.begin()
		return
	}
	c.packet(p)
}

// begin starts the analyzer, keyed by the head packets, and replays them.
func (c *Capture) begin() {
	c.started = true
	if len(c.head) == 0 {
		c.an = analyzer.New(c.cfg)
		c.events.Observer = c.an
		return
	}
	key := xxhash.New()
	for _, p := range c.head {
		key.Write(p.Data)
	}
	cfg := c.cfg
	cfg.DigestKey = key.Sum64() | 1 // never 0, which asks for a random key
	c.start(cfg, c.head[0].Time)
	c.events.Observer = c.an
	c.Stats.First = c.head[0].Time
	for _, p := range c.head {
		c.packet(p)
	}
	c.head = nil
}

func (c *Capture) packet(p capture.Packet) {
	c.Stats.Packets++
	if p.Time.Before(c.Stats.Last) {
		p.Time = c.Stats.Last // out of order across merged files by a hair: time runs forward
	}
	c.Stats.Last = p.Time
	c.tickTo(p.Time)
	if p.Time.Sub(c.expired) >= time.Second {
		c.tracker.Expire(p.Time)
		c.expired = p.Time
	}
	switch err := capture.Decode(p.Link, p.Data, &c.seg); {
	case err == nil:
		c.tracker.Add(&c.seg, p.Time)
	case errors.Is(err, capture.ErrTruncated):
		c.Stats.Truncated++
	case errors.Is(err, capture.ErrFragment):
		c.Stats.Fragments++
	default:
		c.Stats.NotTCP++
	}
}

// Close ends every conversation (the end of the capture) and returns the analyzer with its
// time at the end of the last second.
func (c *Capture) Close() *analyzer.Analyzer {
	if !c.started {
		c.begin()
	}
	c.tracker.Close()
	if !c.Stats.Last.IsZero() {
		c.tickTo(c.Stats.Last.Add(time.Second)) // the last second, complete
	}
	c.Stats.Tracker = c.tracker.Stats
	c.Stats.Events = c.events.Stats
	return c.an
}

// RunCapture reads every packet of src into a new analyzer made from cfg, running on the
// packets' time, following the conversations with servers on ports. On an error (a file cut
// short) the analyzer holds what was read before it.
func RunCapture(src capture.Source, cfg analyzer.Config, ports ...uint16) (*analyzer.Analyzer, CaptureStats, error) {
	c := NewCapture(cfg, ports...)
	var err error
	for {
		var p capture.Packet
		if p, err = src.Next(); err != nil {
			break
		}
		c.Packet(p)
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	an := c.Close()
	return an, c.Stats, err
}
