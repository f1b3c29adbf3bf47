package tui

import (
	"fmt"
	"os"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
)

// Screen layout, in lines: the header (one more line when there is a cache line, see
// headerHeight), the tab line, the body, the status line and the key hints. Update needs it to
// scroll; the views draw it.
const (
	headerLines = 4
	tabLines    = 1
	footerLines = 2
	statusTTL   = 8 * time.Second
)

// Messages.
type (
	tickMsg     struct{}                          // time to take the next snapshot
	snapshotMsg struct{ snap *analyzer.Snapshot } // a snapshot was taken
	exportMsg   struct {
		path string
		err  error
	}
	coalesceMsg struct {
		on  bool
		err error
	}
	clearStatusMsg struct{ seq int }
)

// tabState is what each view remembers while another one is shown.
type tabState struct {
	sort    int    // index into sorts[view]
	reverse bool   // r flips the sort's natural direction
	filter  string // applied filter, case-insensitive substring
	cursor  int    // selected row, an index into model.rows
	offset  int    // first row shown (Findings: first line shown)
	selID   string // the selected row's identity, to follow it across snapshots
}

// detailState is the detail screen of one row, kept up to date from each snapshot.
type detailState struct {
	open   bool
	view   view
	id     string
	stale  bool // the row is not in the latest snapshot; the last copy is shown
	key    analyzer.KeyStat
	fp     analyzer.FingerprintStat
	client analyzer.ClientStat
	queue  analyzer.QueueStat
}

type model struct {
	src         Source
	refresh     time.Duration
	export      func() (string, error)
	coalesce    func() (bool, error)
	listen      string
	upstream    string
	source      string // Options.Input
	inputStatus func() string

	keys  keyMap
	help  help.Model
	input lineInput
	st    styles

	width, height int

	snap   *analyzer.Snapshot // what is shown
	paused bool               // p: snapshots are not taken and not shown

	view view
	tabs [numViews]tabState
	rows []int // the current view's rows after filter and sort: indexes into snap
	// Findings view: the first line of each row's finding and the lines of them all, at the
	// current width; laid out again only when the rows or the width change.
	findStarts []int
	findTotal  int
	detail     detailState

	filtering bool // the filter input has the focus
	showHelp  bool

	status    string
	statusErr bool
	statusSeq int
}

// newModel builds the model; its styles come from r, forced colourless by opts.NoColor or
// NO_COLOR whatever r detected.
func newModel(opts Options, r *lipgloss.Renderer) model {
	if opts.NoColor || os.Getenv("NO_COLOR") != "" {
		r.SetColorProfile(termenv.Ascii)
	}
	if r.ColorProfile() == termenv.Ascii {
		// Adaptive colours ask the terminal for its background on first use, even when they
		// are not drawn; with no colour there is nothing to ask.
		r.SetHasDarkBackground(true)
	}
	st := newStyles(r)
	m := model{
		src:         opts.Source,
		refresh:     opts.Refresh,
		export:      opts.Export,
		coalesce:    opts.Coalesce,
		listen:      opts.Listen,
		upstream:    opts.Upstream,
		source:      opts.Input,
		inputStatus: opts.InputStatus,
		keys:        newKeyMap(),
		help:        help.New(),
		st:          st,
	}
	if m.refresh <= 0 {
		m.refresh = DefaultRefresh
	}
	// The bubbles take their styles from the default renderer: give them ours.
	m.help.Styles = help.Styles{
		ShortKey: st.helpKey, ShortDesc: st.dim, ShortSeparator: st.dim, Ellipsis: st.dim,
		FullKey: st.helpKey, FullDesc: st.helpDesc, FullSeparator: st.dim,
	}
	m.input = lineInput{
		prompt: "/", hint: "type text to keep the rows that contain it (enter applies, esc clears)", limit: 200,
		promptStyle: st.helpKey, hintStyle: st.dim, cursorStyle: r.NewStyle().Reverse(true),
		plain: st.profile == termenv.Ascii,
	}
	return m
}

// Init takes the first snapshot at once; the next ones follow at the refresh interval.
func (m model) Init() tea.Cmd { return m.takeSnapshot() }

// takeSnapshot asks the source off the update loop. Only one is ever under way: the next tick
// is scheduled when its answer arrives, so snapshots are at least m.refresh apart.
func (m model) takeSnapshot() tea.Cmd {
	src := m.src
	return func() tea.Msg {
		if src == nil {
			return snapshotMsg{}
		}
		return snapshotMsg{src.Snapshot()}
	}
}

func (m model) tick() tea.Cmd {
	return tea.Tick(m.refresh, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.layoutFindings()
		m.clamp()
		return m, nil

	case tickMsg:
		if m.paused {
			return m, m.tick() // keep the beat, take nothing
		}
		return m, m.takeSnapshot()

	case snapshotMsg:
		if !m.paused && msg.snap != nil {
			m.snap = msg.snap
			m.rebuild()
			m.resolveDetail()
		}
		return m, m.tick()

	case exportMsg:
		if msg.err != nil {
			return m, m.setStatus("export failed: "+msg.err.Error(), true)
		}
		return m, m.setStatus("report written to "+msg.path, false)

	case coalesceMsg:
		switch {
		case msg.err != nil:
			return m, m.setStatus("coalescing: "+msg.err.Error(), true)
		case msg.on:
			return m, m.setStatus("coalescing on: identical polls share one upstream query", false)
		}
		return m, m.setStatus("coalescing off", false)

	case clearStatusMsg:
		if msg.seq == m.statusSeq {
			m.status, m.statusErr = "", false
		}
		return m, nil

	case tea.KeyMsg:
		return m.handleKey(msg)
	}

	return m, nil
}

func (m model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
		// Keys typed quickly arrive together ("pe", "/c0ff"): take them one at a time. A paste
		// is text, for the filter only.
		if msg.Paste {
			if m.filtering {
				m.input = m.input.Update(msg)
			}
			return m, nil
		}
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			next, cmd := m.handleKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
			m = next.(model)
			cmds = append(cmds, cmd)
		}
		return m, tea.Batch(cmds...)
	}
	if m.filtering {
		switch {
		case key.Matches(msg, m.keys.FilterApply):
			m.setFilter(m.input.String())
		case key.Matches(msg, m.keys.FilterClear):
			m.setFilter("")
		default:
			m.input = m.input.Update(msg)
		}
		return m, nil
	}
	if m.showHelp {
		if key.Matches(msg, m.keys.Quit) {
			return m, tea.Quit
		}
		m.showHelp = false // any other key closes the overlay
		return m, nil
	}

	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m, tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.Pause):
		m.paused = !m.paused
	case key.Matches(msg, k.Export):
		return m.startExport()
	case key.Matches(msg, k.Coalesce):
		return m.startCoalesce()
	case key.Matches(msg, k.NextView):
		m.switchView((m.view + 1) % numViews)
	case key.Matches(msg, k.PrevView):
		m.switchView((m.view + numViews - 1) % numViews)
	case key.Matches(msg, k.JumpView):
		m.switchView(view(msg.String()[0] - '1'))
	case m.detail.open:
		if key.Matches(msg, k.Back) {
			m.detail.open = false
		}
	case key.Matches(msg, k.Back):
		if m.tabs[m.view].filter != "" {
			m.setFilter("")
		}
	case key.Matches(msg, k.Open):
		m.openDetail()
	case key.Matches(msg, k.Filter):
		m.filtering = true
		m.input.SetValue(m.tabs[m.view].filter)
	case key.Matches(msg, k.Sort):
		t := &m.tabs[m.view]
		t.sort = (t.sort + 1) % len(sorts[m.view])
		t.reverse = false
		m.rebuild()
	case key.Matches(msg, k.Reverse):
		m.tabs[m.view].reverse = !m.tabs[m.view].reverse
		m.rebuild()
	case key.Matches(msg, k.Up):
		m.move(-1)
	case key.Matches(msg, k.Down):
		m.move(1)
	case key.Matches(msg, k.PageUp):
		m.page(-1)
	case key.Matches(msg, k.PageDown):
		m.page(1)
	case key.Matches(msg, k.Home):
		m.moveTo(0)
	case key.Matches(msg, k.End):
		m.moveTo(len(m.rows) - 1)
	}
	return m, nil
}

func (m *model) setStatus(s string, isErr bool) tea.Cmd {
	m.statusSeq++
	m.status, m.statusErr = s, isErr
	seq := m.statusSeq
	return tea.Tick(statusTTL, func(time.Time) tea.Msg { return clearStatusMsg{seq} })
}

func (m model) startExport() (tea.Model, tea.Cmd) {
	if m.export == nil {
		return m, m.setStatus("no report file configured", true)
	}
	m.statusSeq++
	m.status, m.statusErr = "writing the report…", false
	export := m.export
	return m, func() tea.Msg {
		path, err := export()
		return exportMsg{path, err}
	}
}

func (m model) startCoalesce() (tea.Model, tea.Cmd) {
	if m.coalesce == nil {
		return m, m.setStatus("coalescing needs --coalesce", true)
	}
	toggle := m.coalesce
	return m, func() tea.Msg {
		on, err := toggle()
		return coalesceMsg{on, err}
	}
}

func (m *model) switchView(v view) {
	if v < 0 || v >= numViews {
		return
	}
	m.view = v
	m.detail.open = false
	m.rebuild()
}

func (m *model) setFilter(f string) {
	m.filtering = false
	t := &m.tabs[m.view]
	t.filter = f
	t.cursor, t.offset, t.selID = 0, 0, ""
	m.rebuild()
}

// rebuild recomputes the current view's rows after a new snapshot, sort or filter, keeping the
// selection on the same row when it was moved off the top.
func (m *model) rebuild() {
	t := &m.tabs[m.view]
	m.rows = selectRows(m.snap, m.view, t.filter, t.sort, t.reverse, nil)
	m.layoutFindings()
	if t.selID != "" && (t.cursor > 0 || t.offset > 0) {
		for i, r := range m.rows {
			if rowID(m.snap, m.view, r) == t.selID {
				t.cursor = i
				break
			}
		}
	}
	m.clamp()
}

// clamp keeps the cursor on a row and the row on the screen.
func (m *model) clamp() {
	t := &m.tabs[m.view]
	t.cursor = max(0, min(t.cursor, len(m.rows)-1))
	if m.view == viewFindings {
		m.clampFindings()
	} else {
		h := m.listHeight()
		if t.cursor < t.offset {
			t.offset = t.cursor
		}
		if t.cursor >= t.offset+h {
			t.offset = t.cursor - h + 1
		}
		t.offset = max(0, min(t.offset, len(m.rows)-h))
	}
	t.selID = ""
	if t.cursor < len(m.rows) {
		t.selID = rowID(m.snap, m.view, m.rows[t.cursor])
	}
}

// bodyHeight is the lines between the tab line and the status line.
func (m model) bodyHeight() int {
	return max(1, m.height-m.headerHeight()-tabLines-footerLines)
}

// headerHeight is the header's lines: four, and the cache line when there is one.
func (m model) headerHeight() int {
	if m.snap != nil && hasCacheLine(m.snap) {
		return headerLines + 1
	}
	return headerLines
}

// listHeight is the table rows shown (the body less the column titles, and in the Clients view
// less the lines kept for the tags under the table).
func (m model) listHeight() int { return max(1, m.bodyHeight()-1-m.tagLines()) }

func (m *model) move(delta int) {
	if m.view == viewFindings {
		m.moveFinding(delta)
		return
	}
	m.moveTo(m.tabs[m.view].cursor + delta)
}

func (m *model) moveTo(i int) {
	t := &m.tabs[m.view]
	if m.view == viewFindings {
		t.cursor = max(0, min(i, len(m.rows)-1))
		starts, _ := m.findingLayout()
		if t.cursor < len(starts) {
			t.offset = starts[t.cursor]
		}
		m.clamp()
		return
	}
	t.cursor = i
	m.clamp()
}

func (m *model) page(dir int) {
	t := &m.tabs[m.view]
	if m.view == viewFindings {
		t.offset += dir * m.bodyHeight()
		starts, total := m.findingLayout()
		t.offset = max(0, min(t.offset, total-m.bodyHeight()))
		t.cursor = findingAt(starts, t.offset)
		m.clamp()
		return
	}
	h := m.listHeight()
	t.cursor += dir * h
	t.offset += dir * h
	m.clamp()
}

// moveFinding selects the next or previous finding and scrolls just enough to show it whole
// (or its top, when it is taller than the body).
func (m *model) moveFinding(delta int) {
	t := &m.tabs[m.view]
	starts, total := m.findingLayout()
	if len(starts) == 0 {
		return
	}
	t.cursor = max(0, min(t.cursor+delta, len(starts)-1))
	start, end := starts[t.cursor], total
	if t.cursor+1 < len(starts) {
		end = starts[t.cursor+1]
	}
	h := m.bodyHeight()
	if end > t.offset+h {
		t.offset = end - h
	}
	if start < t.offset || end-start > h {
		t.offset = start
	}
	m.clamp()
}

func (m *model) clampFindings() {
	t := &m.tabs[viewFindings]
	starts, total := m.findingLayout()
	t.offset = max(0, min(t.offset, total-m.bodyHeight()))
	if len(starts) > 0 && t.cursor < len(starts) {
		// Keep the selection on a finding that is at least partly on the screen.
		end := total
		if t.cursor+1 < len(starts) {
			end = starts[t.cursor+1]
		}
		if end <= t.offset || starts[t.cursor] >= t.offset+m.bodyHeight() {
			t.cursor = findingAt(starts, t.offset)
		}
	}
}

// findingAt is the finding shown at line off.
func findingAt(starts []int, off int) int {
	i := 0
	for j, s := range starts {
		if s <= off {
			i = j
		}
	}
	return i
}

func (m *model) layoutFindings() {
	m.findStarts, m.findTotal = nil, 0
	if m.view == viewFindings && m.snap != nil {
		m.findStarts, m.findTotal = findingsLayout(m.snap, m.rows, m.width)
	}
}

func (m model) findingLayout() ([]int, int) { return m.findStarts, m.findTotal }

func (m *model) openDetail() {
	t := m.tabs[m.view]
	if m.view == viewFindings || t.cursor >= len(m.rows) {
		return
	}
	m.detail = detailState{open: true, view: m.view, id: rowID(m.snap, m.view, m.rows[t.cursor])}
	m.resolveDetail()
}

// resolveDetail copies the detail's row out of the latest snapshot.
func (m *model) resolveDetail() {
	d := &m.detail
	if !d.open || m.snap == nil {
		return
	}
	d.stale = true
	for i := range rowCount(m.snap, d.view) {
		if rowID(m.snap, d.view, i) != d.id {
			continue
		}
		d.stale = false
		switch d.view {
		case viewTasks:
			d.key = m.snap.Keys[i]
		case viewQueries:
			d.fp = m.snap.Fingerprints[i]
		case viewClients:
			d.client = m.snap.Clients[i]
		case viewQueues:
			d.queue = m.snap.Queues[i]
		}
		return
	}
}

// String is for debugging.
func (v view) String() string {
	if v >= 0 && v < numViews {
		return viewNames[v]
	}
	return fmt.Sprintf("view(%d)", int(v))
}
