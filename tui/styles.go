package tui

import (
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// styles are made from one renderer, so they follow its colour profile: none at all under
// NO_COLOR or Options.NoColor (every badge and mark is also written as text).
type styles struct {
	profile termenv.Profile

	title, dim, bold, header, colHeader, selected lipgloss.Style
	tabActive, tabInactive                        lipgloss.Style

	storm, spin, paused, alert, calm lipgloss.Style // badges and the alert line
	hot, warn, good                  lipgloss.Style // numbers

	sevHigh, sevMedium, sevLow lipgloss.Style

	spark, sparkWatched, chart lipgloss.Style

	status, statusErr  lipgloss.Style
	helpBox, helpKey   lipgloss.Style
	helpDesc, helpHead lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	var (
		accent = lipgloss.AdaptiveColor{Light: "#5A3FD1", Dark: "#9D8CFF"}
		red    = lipgloss.AdaptiveColor{Light: "#C4152B", Dark: "#FF5F6D"}
		yellow = lipgloss.AdaptiveColor{Light: "#9A6700", Dark: "#F5C451"}
		green  = lipgloss.AdaptiveColor{Light: "#1A7F37", Dark: "#5FD787"}
		subtle = lipgloss.AdaptiveColor{Light: "#8A8A8A", Dark: "#7A7A7A"}
		text   = lipgloss.AdaptiveColor{Light: "#1A1A1A", Dark: "#EEEEEE"}
		selBg  = lipgloss.AdaptiveColor{Light: "#DCD6FF", Dark: "#3B3270"}
		white  = lipgloss.Color("#FFFFFF")
		black  = lipgloss.Color("#000000")
	)
	n := r.NewStyle
	return styles{
		profile: r.ColorProfile(),

		title:       n().Bold(true).Foreground(accent),
		dim:         n().Foreground(subtle),
		bold:        n().Bold(true),
		header:      n().Foreground(text),
		colHeader:   n().Bold(true).Foreground(subtle),
		selected:    n().Background(selBg).Foreground(text),
		tabActive:   n().Bold(true).Foreground(accent),
		tabInactive: n().Foreground(subtle),

		storm:  n().Bold(true).Foreground(red),
		spin:   n().Bold(true).Foreground(white).Background(red),
		paused: n().Bold(true).Foreground(black).Background(yellow),
		alert:  n().Bold(true).Foreground(red),
		calm:   n().Foreground(green),
		hot:    n().Bold(true).Foreground(red),
		warn:   n().Foreground(yellow),
		good:   n().Foreground(green),

		sevHigh:   n().Bold(true).Foreground(red),
		sevMedium: n().Bold(true).Foreground(yellow),
		sevLow:    n().Foreground(subtle),

		spark:        n().Foreground(accent),
		sparkWatched: n().Foreground(red),
		chart:        n().Foreground(accent),

		status:    n().Foreground(green),
		statusErr: n().Bold(true).Foreground(red),
		helpBox:   n().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1),
		helpKey:   n().Bold(true).Foreground(accent),
		helpDesc:  n().Foreground(text),
		helpHead:  n().Bold(true).Foreground(subtle),
	}
}
