package proxy

import (
	"sync"
	"time"
)

// On Linux's raw path (pump_linux.go; the portable path needs no watch), a pump reading a plain
// socket skips the read that would only say "nothing more" (see runRaw): after a read that
// returned less than the space offered, it waits for the next readiness edge instead. The
// netpoller's edges are edge-triggered, and a peer's end of stream (FIN) or reset that arrives
// in the same edge as its last bytes raises no edge of its own: the pump would wait for ever on
// a socket whose peer is gone. A client that sends its statement and closes in one go then
// leaves the statement running on the server, and a server's FATAL with its FIN never reaches
// the client as an end of stream.
//
// endWatch pays that skipped read late, and only where it matters: once per tick it looks at
// the pumps whose latest read was short and not yet settled, and peeks at the socket of each one
// that has read nothing since the previous tick, without consuming anything. A quiet socket
// proves the pump drained (any later FIN raises an edge of its own); an end of stream or an
// error wakes the pump by shutting down the socket's reading side, which raises that edge, and
// the pump then reads the end itself. A busy connection is never peeked at, an idle one once per
// idle period, and one idle since then costs nothing: only unsettled pumps are in the watch,
// and the ticking goroutine stops when there are none. An end of stream is noticed between one
// and two ticks after the last bytes that came with it.
const endWatchTick = 50 * time.Millisecond

type endWatch struct {
	mu      sync.Mutex
	pumps   map[*pump]uint32 // unsettled pumps, with the short-read mark seen at the previous tick
	running bool             // the ticking goroutine runs
}

var ends = &endWatch{pumps: make(map[*pump]uint32)}

// unsettled is how a pump that made a short read joins the watch, when it is not in it (the
// pump's watched flag is false). The mark is set before: see loop for why nothing is lost when
// this races with the pump's removal.
func (w *endWatch) unsettled(p *pump) {
	w.mu.Lock()
	p.watched.Store(true)
	if _, ok := w.pumps[p]; !ok {
		w.pumps[p] = 0
	}
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
}

func (w *endWatch) loop() {
	t := time.NewTicker(endWatchTick)
	defer t.Stop()
	var quiet []*pump
	for range t.C {
		quiet = quiet[:0]
		w.mu.Lock()
		if len(w.pumps) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		for p, seen := range w.pumps {
			mark := p.shortRead.Load()
			if mark == 0 {
				// Settled (or stopped): leave the watch. The pump sets its mark before it looks
				// at its flag, and this clears the flag before it looks at the mark again, so a
				// short read racing with this is either seen here or rejoins by itself.
				p.watched.Store(false)
				if mark = p.shortRead.Load(); mark == 0 {
					delete(w.pumps, p)
					continue
				}
				p.watched.Store(true)
			}
			if mark == seen {
				quiet = append(quiet, p)
			}
			w.pumps[p] = mark
		}
		w.mu.Unlock()
		// Outside the lock: a peek is a system call, and pumps come and go meanwhile. A pump
		// that stopped since is harmless to peek at (a closed socket refuses the call).
		for _, p := range quiet {
			p.probeEnd()
		}
		clear(quiet) // hold no stopped pump until the next tick
	}
}

type peekResult uint8

const (
	peekEmpty peekResult = iota // open, nothing to read
	peekData                    // bytes are waiting
	peekEnd                     // end of stream or an error: the peer is gone
)
