package tui

import (
	"strings"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// lineInput is the filter's one-line editor. (bubbles/textinput would pull in a clipboard
// module this project does not require; a filter needs only this much.)
type lineInput struct {
	value  []rune
	pos    int // cursor, in runes
	limit  int
	prompt string
	hint   string // shown while empty

	promptStyle, hintStyle, cursorStyle lipgloss.Style
	plain                               bool // no colour: the cursor at the end is an underscore
}

func (in *lineInput) SetValue(s string) {
	in.value = []rune(s)
	if in.limit > 0 && len(in.value) > in.limit {
		in.value = in.value[:in.limit]
	}
	in.pos = len(in.value)
}

func (in lineInput) Value() string { return string(in.value) }

// Update edits the line: typing and pasting insert, backspace/delete remove, left/right/home/
// end (ctrl+a, ctrl+e) move, ctrl+w removes a word, ctrl+u everything before the cursor.
func (in lineInput) Update(msg tea.KeyMsg) lineInput {
	switch msg.Type {
	case tea.KeyRunes, tea.KeySpace:
		r := msg.Runes
		if msg.Type == tea.KeySpace {
			r = []rune{' '}
		}
		var clean []rune
		for _, c := range r {
			if unicode.IsPrint(c) {
				clean = append(clean, c)
			}
		}
		if in.limit > 0 {
			clean = clean[:max(0, min(len(clean), in.limit-len(in.value)))]
		}
		in.value = splice(in.value, in.pos, in.pos, clean)
		in.pos += len(clean)
	case tea.KeyBackspace:
		if in.pos > 0 {
			in.value = splice(in.value, in.pos-1, in.pos, nil)
			in.pos--
		}
	case tea.KeyDelete:
		if in.pos < len(in.value) {
			in.value = splice(in.value, in.pos, in.pos+1, nil)
		}
	case tea.KeyLeft:
		in.pos = max(0, in.pos-1)
	case tea.KeyRight:
		in.pos = min(len(in.value), in.pos+1)
	case tea.KeyHome, tea.KeyCtrlA:
		in.pos = 0
	case tea.KeyEnd, tea.KeyCtrlE:
		in.pos = len(in.value)
	case tea.KeyCtrlU:
		in.value, in.pos = splice(in.value, 0, in.pos, nil), 0
	case tea.KeyCtrlW:
		i := in.pos
		for i > 0 && in.value[i-1] == ' ' {
			i--
		}
		for i > 0 && in.value[i-1] != ' ' {
			i--
		}
		in.value, in.pos = splice(in.value, i, in.pos, nil), i
	}
	return in
}

// splice returns a new slice: v with v[from:to] replaced by ins. Models are values, so the
// line is never edited in place.
func splice(v []rune, from, to int, ins []rune) []rune {
	out := make([]rune, 0, len(v)-(to-from)+len(ins))
	out = append(out, v[:from]...)
	out = append(out, ins...)
	return append(out, v[to:]...)
}

// View draws the prompt, the text and the cursor, keeping the cursor inside width cells.
func (in lineInput) View(width int) string {
	if len(in.value) == 0 {
		c := " "
		if in.plain {
			c = "_"
		}
		return in.promptStyle.Render(in.prompt) + in.cursorStyle.Render(c) + in.hintStyle.Render(trunc(in.hint, width-len(in.prompt)-1))
	}
	avail := max(1, width-visibleWidth(in.prompt)-1)
	start := 0
	if in.pos > avail {
		start = in.pos - avail
	}
	before := string(in.value[start:in.pos])
	at, after := " ", ""
	if in.plain {
		at = "_"
	}
	if in.pos < len(in.value) {
		at = string(in.value[in.pos])
		after = string(in.value[in.pos+1:])
	}
	line := before + in.cursorStyle.Render(at) + after
	return in.promptStyle.Render(in.prompt) + trunc(line, avail+1)
}

func (in lineInput) String() string { return strings.TrimSpace(string(in.value)) }
