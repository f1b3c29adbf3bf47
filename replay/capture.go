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
	capture.FollowStats
	Tracker capture.TrackerStats
	Events  capture.EventStats
}

// Capture follows the PostgreSQL conversations of a packet source for an analyzer running on
// the packets' time. Feed it packets with Packet, then Close it.
type Capture struct {
	clock
	cfg     analyzer.Config
	follow  *capture.Follower
	started bool
	Stats   CaptureStats
	// head holds the first packets until the digest key is made from them (see begin).
	head []capture.Packet
}

// NewCapture follows conversations with servers on ports (5432 when none).
func NewCapture(cfg analyzer.Config, ports ...uint16) *Capture {
	// A capture's findings of an hour ago matter as much as those of its last second.
	cfg.KeepFindings = true
	return &Capture{cfg: cfg, follow: capture.NewFollower(nil, ports...)}
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
		c.follow.Events.Observer = c.an
		return
	}
	key := xxhash.New()
	for _, p := range c.head {
		key.Write(p.Data)
	}
	cfg := c.cfg
	cfg.DigestKey = key.Sum64() | 1 // never 0, which asks for a random key
	c.start(cfg, c.head[0].Time)
	c.follow.Events.Observer = c.an
	for _, p := range c.head {
		c.packet(p)
	}
	c.head = nil
}

func (c *Capture) packet(p capture.Packet) {
	if p.Time.After(c.now) {
		c.tickTo(p.Time)
	}
	c.follow.Packet(p)
}

// Close ends every conversation (the end of the capture) and returns the analyzer with its
// time at the end of the last second.
func (c *Capture) Close() *analyzer.Analyzer {
	if !c.started {
		c.begin()
	}
	c.follow.Close()
	c.Stats = CaptureStats{FollowStats: c.follow.Stats, Tracker: c.follow.Tracker.Stats, Events: c.follow.Events.Stats}
	if !c.Stats.Last.IsZero() {
		c.tickTo(c.Stats.Last.Add(time.Second)) // the last second, complete
	}
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

// Packets is how many packets were read so far (for a progress bar, on the reading goroutine).
func (c *Capture) Packets() int64 { return c.follow.Stats.Packets + int64(len(c.head)) }
