// Package tui is pgpollwatch's terminal UI: a live view of the analyzer's snapshots that makes
// a polling storm obvious in seconds (watched polls' share of all queries in the header, the
// storming and spinning keys at the top of the Tasks view, the findings with their fixes).
//
// The model (model.go) holds state and handles messages; the view_*.go files only render it;
// keys.go declares the key bindings. Snapshots are taken off the update loop, one at a time, at
// most once per Options.Refresh.
package tui

import (
	"context"
	"errors"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// Source gives the data to show; analyzer.Analyzer implements it.
type Source interface{ Snapshot() *analyzer.Snapshot }

// DefaultRefresh is how often a snapshot is taken when Options.Refresh is zero.
const DefaultRefresh = 250 * time.Millisecond

// Options configure the UI.
type Options struct {
	Source   Source
	Listen   string // proxy listen address, for the header
	Upstream string // upstream name, for the header
	// Input names what is analysed when it is not a proxy's traffic (a server log); the header
	// shows it in place of Listen -> Upstream.
	Input string
	// InputStatus, when set, is asked at each refresh for a short note after Input: what a
	// live capture lost (kernel drops, gaps). It must be safe to call from another goroutine.
	InputStatus func() string
	Refresh     time.Duration // how often to take a snapshot; default DefaultRefresh
	// Export writes the report now and returns its path (key e). nil: the key says
	// "no report file configured".
	Export func() (string, error)
	// Coalesce toggles coalescing and returns the new state (key c). nil: the key says
	// coalescing needs --coalesce.
	Coalesce func() (bool, error)
	// NoColor turns colour off. It is also off when NO_COLOR is set or the terminal has none.
	NoColor bool
}

// Run runs the UI on the terminal (alternate screen) until the user quits (q or ctrl-c) or ctx
// ends. It returns nil on a normal quit, an interrupt, or when ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Source == nil {
		return errors.New("tui: Options.Source is nil")
	}
	r := lipgloss.NewRenderer(os.Stdout)
	m := newModel(opts, r)
	// Ask the terminal for its background now (newModel settled it when there is no colour):
	// once Bubble Tea reads the input, the query would hang the first render.
	r.HasDarkBackground()
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithAltScreen(), tea.WithOutput(os.Stdout))
	_, err := p.Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled):
		return nil
	}
	return err
}

// NewModel returns the Bubble Tea model Run uses, for tests. Its colours follow the profile of
// standard output (none when it is not a terminal).
func NewModel(opts Options) tea.Model {
	return newModel(opts, lipgloss.NewRenderer(os.Stdout))
}
