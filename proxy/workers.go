package proxy

import (
	"sync"
	"time"
)

// workers runs functions on goroutines kept from earlier ones. A session's two goroutines grow
// their stacks to several KiB (pumps, inspectors, the analyzer behind the observer); a new
// goroutine starts small and copies its stack each time it doubles. Under connection churn
// (a program that connects once per statement) that copying was 6% of the proxy's CPU. A
// finished goroutine waits here a while for the next function instead, stack already grown.
type workers struct {
	mu   sync.Mutex
	idle []*worker // most recently idle last: its stack is the likeliest to be warm
	max  int       // idle workers kept at most
	wait time.Duration
}

type worker struct {
	fn chan func()
}

func newWorkers(maxIdle int, wait time.Duration) *workers {
	return &workers{max: maxIdle, wait: wait}
}

// run calls fn on an idle worker, or on a new goroutine when none is idle.
func (ws *workers) run(fn func()) {
	ws.mu.Lock()
	if n := len(ws.idle); n > 0 {
		w := ws.idle[n-1]
		ws.idle[n-1] = nil
		ws.idle = ws.idle[:n-1]
		ws.mu.Unlock()
		w.fn <- fn // buffered: never blocks
		return
	}
	ws.mu.Unlock()
	go ws.loop(&worker{fn: make(chan func(), 1)}, fn)
}

func (ws *workers) loop(w *worker, fn func()) {
	var timer *time.Timer
	for {
		fn()
		fn = nil
		ws.mu.Lock()
		if len(ws.idle) >= ws.max {
			ws.mu.Unlock()
			return
		}
		ws.idle = append(ws.idle, w)
		ws.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(ws.wait)
		} else {
			timer.Reset(ws.wait)
		}
		select {
		case fn = <-w.fn:
			timer.Stop()
		case <-timer.C:
			if !ws.remove(w) {
				fn = <-w.fn // taken just now: its function is on the way
				continue
			}
			return
		}
	}
}

// remove takes w off the idle list; false when run has taken it already.
func (ws *workers) remove(w *worker) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i, x := range ws.idle {
		if x == w {
			last := len(ws.idle) - 1
			copy(ws.idle[i:], ws.idle[i+1:])
			ws.idle[last] = nil
			ws.idle = ws.idle[:last]
			return true
		}
	}
	return false
}
