package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"regexp"
	"strings"
	"time"
)

//go:embed template.html
var htmlTemplateText string

// visibleRows is how many rows of a long table show before the rest fold into <details>.
const visibleRows = 25

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"int": func(v any) string {
		switch n := v.(type) {
		case int:
			return fmtInt(n)
		case int64:
			return fmtInt(n)
		case uint32:
			return fmtInt(n)
		}
		return fmt.Sprint(v)
	},
	"rate":   fmtRate,
	"ms":     fmtMs,
	"dur":    fmtDur,
	"time":   fmtTime,
	"clock":  fmtClock,
	"orDash": orDash,
	"known":  fmtKnown,
	"status": fmtStatus,
	"pct": func(part, whole int64) string {
		return fmtPct(float64(part), float64(whole))
	},
	"share":       func(f float64) string { return fmtPct(f, 1) },
	"waits":       fmtWaits,
	"overlap":     fmtOverlap,
	"statusClass": keyStatusClass,
	"stormSpan": func(s Storm, end time.Time) string {
		if s.EndedAt.IsZero() {
			return fmtDur(end.Sub(s.StartedAt)) + " so far"
		}
		return fmtDur(s.EndedAt.Sub(s.StartedAt))
	},
	"lower":       strings.ToLower,
	"empty":       fmtEmpty,
	"clientItems": queueClientItems,
	"tagItems":    tagItems,
	"tagList":     func(ts []TagCount) string { return joinItems(tagItems(ts)) },
}).Parse(htmlTemplateText))

type htmlView struct {
	R           *Report
	Headline    []segment
	HeadTail    string // the qualifier after the sentence: "(last 10 s); 3 storming"
	Sub         string
	Cards       []card
	Chart       chart
	Keys        rows[Key]
	FPs         rows[Fingerprint]
	Clients     rows[Client]
	Tags        rows[Tag]
	Duration    string
	SingleProxy *Proxy
	Storming    int

	Coalesce       []measure   // the cache's numbers; nil without a cache
	Reuse          []measure   // server connection reuse's numbers; nil without reuse
	WhatIf         []whatIfRow // nil when the report has no estimate
	WhatIfPolls    int64
	WhatIfSentence string
	WhatIfNote     string

	QueuesNote, TagsNote string
}

// rows splits a long table into the rows shown and the rows folded away.
type rows[T any] struct {
	Top, Rest []T
}

func split[T any](all []T) rows[T] {
	if len(all) <= visibleRows {
		return rows[T]{Top: all}
	}
	return rows[T]{Top: all[:visibleRows], Rest: all[visibleRows:]}
}

// segment is a piece of the headline; numbers are set apart.
type segment struct {
	Text string
	Num  bool
}

type card struct {
	Label, Value, Note string
	Alert              bool
}

var numberRun = regexp.MustCompile(`\d[\d,.]*\d|\d`)

func segments(s string) []segment {
	var out []segment
	last := 0
	for _, m := range numberRun.FindAllStringIndex(s, -1) {
		if rest := s[m[1]:]; rest == " s" || strings.HasPrefix(rest, " s)") || strings.HasPrefix(rest, " s ") {
			continue // a duration ("last 10 s"), not a finding
		}
		if m[0] > last {
			out = append(out, segment{Text: s[last:m[0]]})
		}
		out = append(out, segment{Text: s[m[0]:m[1]], Num: true})
		last = m[1]
	}
	if last < len(s) {
		out = append(out, segment{Text: s[last:]})
	}
	return out
}

// peakSentence describes the busiest window of the timeline.
func peakSentence(p *Peak) string {
	if p == nil || p.QPS == 0 {
		return ""
	}
	return fmt.Sprintf("Busiest 10 s (%s–%s UTC): %s of %s queries/s were polls of watched keys",
		fmtClock(p.From), fmtClock(p.To), fmtRate(p.WatchedQPS), fmtRate(p.QPS))
}

func newHTMLView(r *Report) *htmlView {
	v := &htmlView{R: r, Chart: buildChart(r), Keys: split(r.Keys), FPs: split(r.Fingerprints), Clients: split(r.Clients),
		Tags: split(r.Tags), Duration: fmtDur(r.duration()), QueuesNote: queuesNote, TagsNote: tagsNote}
	head := r.Headline
	if head == "" {
		head = Headline(r)
	}
	v.Sub = peakSentence(r.Peak)
	if r.Rates.QPS10 == 0 && v.Sub != "" {
		// The proxy was idle at the end: the busiest moment says more than the last 10 s.
		head, v.Sub = v.Sub, "At the end: "+head
	}
	if i := strings.Index(head, " ("); i > 0 {
		head, v.HeadTail = head[:i], head[i:]
	}
	v.Headline = segments(head)
	if len(r.Proxies) == 1 {
		v.SingleProxy = &r.Proxies[0]
	}
	if r.Coalesce != nil {
		v.Coalesce = coalesceMeasures(r.Coalesce)
	}
	if r.Reuse != nil {
		v.Reuse = reuseMeasures(r.Reuse, r.Totals.Connections)
	}
	v.WhatIf, v.WhatIfPolls, v.WhatIfSentence, v.WhatIfNote = whatIfRows(r.WhatIf), whatIfPolls(r.WhatIf), whatIfSentence(r.WhatIf), whatIfNote
	for _, k := range r.Keys {
		if k.Storming {
			v.Storming++
		}
	}
	t := r.Totals
	storms := len(r.Storms)
	v.Cards = []card{
		{Label: "queries", Value: fmtInt(t.Queries), Note: fmtRate(r.Rates.QPS10) + "/s in the last 10 s"},
		{Label: "watched polls", Value: fmtInt(t.WatchedLookups), Note: fmtPct(float64(t.WatchedLookups), float64(t.Queries)) + " of all queries",
			Alert: t.Queries > 0 && t.WatchedLookups*2 >= t.Queries},
		{Label: "keys tracked", Value: fmtInt(t.KeysTracked), Note: fmt.Sprintf("%d polled in the last 10 s", r.Rates.KeysPolled10)},
		{Label: "storms", Value: fmtInt(storms), Note: fmt.Sprintf("%d active at the end", t.StormsActive), Alert: storms > 0},
		{Label: "connections", Value: fmtInt(t.Connections), Note: fmt.Sprintf("%s/s in the last 10 s, %d open", fmtRate(r.Rates.ConnsPerSec10), t.OpenConnections)},
		{Label: "statements", Value: fmtInt(t.FingerprintsSeen), Note: fmt.Sprintf("distinct fingerprints; %s failed queries", fmtInt(t.Failed))},
	}
	return v
}

// WriteHTML writes r as one self-contained HTML page: inline CSS and SVG, no script, nothing
// fetched from elsewhere.
func WriteHTML(w io.Writer, r *Report) error {
	return htmlTemplate.Execute(w, newHTMLView(r))
}
