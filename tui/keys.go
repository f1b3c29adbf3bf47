package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every binding of the UI; the help overlay lists them all.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding

	NextView, PrevView, JumpView, Open, Back key.Binding

	Sort, Reverse, Filter key.Binding

	Pause, Export, Coalesce, Help, Quit key.Binding

	// While the filter input has the focus.
	FilterApply, FilterClear key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "move up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "move down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f", " "), key.WithHelp("pgdn", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home/g", "first row")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end/G", "last row")),

		NextView: key.NewBinding(key.WithKeys("tab", "right", "l"), key.WithHelp("tab", "next view")),
		PrevView: key.NewBinding(key.WithKeys("shift+tab", "left", "h"), key.WithHelp("shift+tab", "previous view")),
		JumpView: key.NewBinding(key.WithKeys("1", "2", "3", "4", "5"), key.WithHelp("1-5", "jump to a view")),
		Open:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open the row's detail")),
		Back:     key.NewBinding(key.WithKeys("esc", "backspace"), key.WithHelp("esc", "back / clear filter")),

		Sort:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "next sort column")),
		Reverse: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reverse sort")),
		Filter:  key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter rows")),

		Pause:    key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause display")),
		Export:   key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "export report")),
		Coalesce: key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "toggle coalescing")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

		FilterApply: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply filter")),
		FilterClear: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
	}
}

// FullHelp groups the bindings for the help overlay.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Home, k.End},
		{k.NextView, k.PrevView, k.JumpView, k.Open, k.Back},
		{k.Sort, k.Reverse, k.Filter},
		{k.Pause, k.Export, k.Coalesce, k.Help, k.Quit},
	}
}

// short relabels a binding for the footer, where room is scarce.
func short(b key.Binding, desc string) key.Binding {
	return key.NewBinding(key.WithKeys(b.Keys()...), key.WithHelp(b.Help().Key, desc))
}

// ShortHelp is the footer of the list views, most needed first: the footer drops what does
// not fit from the end, and ? lists everything.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{short(k.Help, "help"), short(k.Quit, "quit"), short(k.NextView, "view"),
		short(k.Open, "detail"), short(k.Sort, "sort"), short(k.Reverse, "reverse"), short(k.Filter, "filter"),
		short(k.Pause, "pause"), short(k.Export, "export"), short(k.Coalesce, "coalesce")}
}

func (k keyMap) detailHelp() []key.Binding {
	return []key.Binding{short(k.Help, "help"), short(k.Quit, "quit"), short(k.Back, "back"),
		short(k.NextView, "view"), short(k.Pause, "pause"), short(k.Export, "export"), short(k.Coalesce, "coalesce")}
}

func (k keyMap) filterHelp() []key.Binding { return []key.Binding{k.FilterApply, k.FilterClear} }

func (k keyMap) overlayHelp() []key.Binding {
	closeKey := key.NewBinding(key.WithKeys("?"), key.WithHelp("any key", "close help"))
	return []key.Binding{closeKey, k.Quit}
}
