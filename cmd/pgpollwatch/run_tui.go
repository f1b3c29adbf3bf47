package main

// The run with the terminal UI: the TUI is handed what it shows of the running proxy (its
// listen address and upstream as strings, the e and c keys as funcs) and reads everything else
// from the analyzer's snapshots.

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pgpollwatch/pgpollwatch/tui"
)

// runTUI runs the terminal UI until the user quits, a signal comes, or the demo's time is up,
// and returns which.
func (a *app) runTUI(ctx context.Context, sigs <-chan os.Signal, timeUp <-chan time.Time) string {
	stopped := make(chan string, 1)
	tctx, stopTUI := context.WithCancel(ctx)
	defer stopTUI()
	go func() {
		select {
		case sig := <-sigs:
			stopped <- sig.String()
			stopTUI()
		case <-timeUp:
			stopped <- "time up"
			stopTUI()
		case <-tctx.Done():
		}
	}()
	err := tui.Run(tctx, tui.Options{
		Source: a.an, Listen: a.ln.Addr().String(), Upstream: a.up.String(),
		Refresh: a.o.refresh, Export: a.exportForTUI, Coalesce: a.toggleCoalesce(),
	})
	stopTUI() // and its signal watcher, so a ctrl-c now reaches the shutdown below
	if err != nil {
		a.log.Error("terminal UI failed", "err", err)
	}
	if n := a.srv.ActiveConnections(); n > 0 {
		// The screen is the user's again: say why the prompt does not come back at once.
		fmt.Fprintf(os.Stderr, "pgpollwatch: waiting up to %s for %d open session(s) to finish; ctrl-c closes them now\n", a.o.shutdownGrace, n)
	}
	select {
	case stopped <- "quit":
	default: // a signal ended the TUI and said so already
	}
	return <-stopped
}
