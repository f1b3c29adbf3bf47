package capture

import (
	"errors"
	"time"

	"github.com/pgpollwatch/pgpollwatch/event"
)

// Follower reads packets into the events of their PostgreSQL conversations: each packet
// decoded, its segment tracked, the conversations' messages paired for an observer, idle
// conversations closed once a second of packet time. replay drives one on a capture's time;
// `pgpollwatch watch --interface` on a live interface's.
type Follower struct {
	Tracker *Tracker
	Events  *Events
	Stats   FollowStats
	seg     Segment
	expired time.Time
}

// FollowStats counts the packets a Follower read, and those it could not use, by reason.
type FollowStats struct {
	Packets     int64
	First, Last time.Time // the first and last packet times
	// Packets with no TCP segment to read: other protocols, headers cut by the snap length,
	// IP fragments.
	NotTCP, Truncated, Fragments int64
}

// NewFollower follows the conversations with servers on ports (5432 when none) for obs.
func NewFollower(obs event.Observer, ports ...uint16) *Follower {
	if len(ports) == 0 {
		ports = []uint16{5432}
	}
	ev := NewEvents(obs)
	return &Follower{Events: ev, Tracker: NewTracker(ev, ports...)}
}

// Packet reads one packet. Time never runs back: a packet stamped before the last one (merged
// files a hair apart, a clock step) is taken at the last one's time.
func (f *Follower) Packet(p Packet) {
	f.Stats.Packets++
	if f.Stats.First.IsZero() {
		f.Stats.First = p.Time
	}
	if p.Time.Before(f.Stats.Last) {
		p.Time = f.Stats.Last
	}
	f.Stats.Last = p.Time
	if p.Time.Sub(f.expired) >= time.Second {
		f.Tracker.Expire(p.Time)
		f.expired = p.Time
	}
	switch err := Decode(p.Link, p.Data, &f.seg); {
	case err == nil:
		f.Tracker.Add(&f.seg, p.Time)
	case errors.Is(err, ErrTruncated):
		f.Stats.Truncated++
	case errors.Is(err, ErrFragment):
		f.Stats.Fragments++
	default:
		f.Stats.NotTCP++
	}
}

// Close ends every conversation still open: the end of the capture.
func (f *Follower) Close() { f.Tracker.Close() }
