package tui

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"
)

// TestProgram runs the model in a real Bubble Tea program (teatest): the snapshot loop, the
// keys, the quit.
func TestProgram(t *testing.T) {
	src := storm()
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	m := newModel(Options{Source: src, Listen: "127.0.0.1:6432", Upstream: "db.internal:5432", Refresh: 20 * time.Millisecond}, r)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte("SPIN LOOP")) && bytes.Contains(b, []byte("597 of 683"))
	}, teatest.WithDuration(5*time.Second))
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("4")})
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("fix: Stop busy-waiting")) },
		teatest.WithDuration(5*time.Second))
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("1")})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	final, ok := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(model)
	if !ok {
		t.Fatal("final model is not a model")
	}
	if final.view != viewTasks || final.snap == nil {
		t.Fatalf("final model: view %v, snapshot %v", final.view, final.snap != nil)
	}
	// The program shows what the model draws for the same snapshot and size.
	want := newTestModel(t, storm(), Options{}, 80, 24).View()
	if got := final.View(); got != want {
		t.Errorf("program screen differs from the direct one:\n%s\nwant:\n%s", got, want)
	}
}

// TestRefreshRate checks snapshots are never taken faster than Options.Refresh.
func TestRefreshRate(t *testing.T) {
	src := storm()
	const refresh = 50 * time.Millisecond
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	m := newModel(Options{Source: src, Refresh: refresh}, r)
	start := time.Now()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	time.Sleep(500 * time.Millisecond)
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	elapsed := time.Since(start)
	n := src.count()
	if limit := int(elapsed/refresh) + 1; n > limit {
		t.Errorf("%d snapshots in %v with a %v refresh (at most %d)", n, elapsed, refresh, limit)
	}
	if n < 2 {
		t.Errorf("only %d snapshots in %v: the refresh loop stalls", n, elapsed)
	}
}

func TestDefaultRefresh(t *testing.T) {
	m := NewModel(Options{Source: storm()}).(model)
	if m.refresh != DefaultRefresh || DefaultRefresh != 250*time.Millisecond {
		t.Errorf("default refresh %v", m.refresh)
	}
	if !strings.Contains(m.View(), "starting") {
		t.Errorf("NewModel view before a size: %q", m.View())
	}
}
