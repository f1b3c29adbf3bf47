package tui

import (
	"io"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// BenchmarkRefresh is one refresh of the Tasks view at 120x40 in colour: a new snapshot taken in,
// rows rebuilt and sorted, the screen drawn. At the default 4 refreshes a second its cost is
// what the TUI takes from the proxy's CPU.
func BenchmarkRefresh(b *testing.B) {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	src := &fakeSource{snaps: []*analyzer.Snapshot{stormSnapshot()}}
	m := newModel(Options{Source: src, Listen: "127.0.0.1:6543", Upstream: "db:5432"}, r)
	tm, _ := m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	msg := tm.(model).Init()()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tm, _ = tm.Update(msg)
		_ = tm.View()
	}
}
