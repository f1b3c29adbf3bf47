package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// WriteText writes what a terminal user reads first: the headline (and the busiest window), the
// storms, the job queues polled and the attribution tags (when there are any) and the findings
// with their evidence and fix, as plain text. It is what `pgpollwatch
// analyze` prints when no --report is asked for; the tables are in the full reports.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	v := newHTMLView(r)
	for _, s := range v.Headline {
		b.WriteString(s.Text)
	}
	b.WriteString(v.HeadTail)
	b.WriteString("\n")
	if v.Sub != "" {
		b.WriteString(v.Sub + "\n")
	}
	fmt.Fprintf(&b, "%s → %s (%s)\n", fmtTime(r.StartedAt), fmtTime(r.EndedAt), v.Duration)
	fmt.Fprintf(&b, "%s queries, %s watched polls of %s keys, %s connections\n",
		fmtInt(r.Totals.Queries), fmtInt(r.Totals.WatchedLookups), fmtInt(r.Totals.KeysTracked), fmtInt(r.Totals.Connections))
	if r.NoAnswers {
		b.WriteString("answers are not in a log: unchanged polls and last status are not known\n")
	}

	fmt.Fprintf(&b, "\nStorms (%d)\n", len(r.Storms))
	if len(r.Storms) == 0 {
		b.WriteString("  none: no key, poller or repeated read reached the storm rate\n")
	}
	// Pollers first (one line says a whole loop), then the keys that took most polls.
	storms := slices.Clone(r.Storms)
	slices.SortStableFunc(storms, func(x, y Storm) int {
		return cmp.Or(cmp.Compare(kindRank(x.Kind), kindRank(y.Kind)), cmp.Compare(y.Polls, x.Polls))
	})
	for i, s := range storms {
		if i == 12 {
			fmt.Fprintf(&b, "  … and %d more (see --report or --tui)\n", len(storms)-i)
			break
		}
		b.WriteString("  " + stormLine(s) + "\n")
	}

	if len(r.Queues) > 0 {
		fmt.Fprintf(&b, "\nJob queues (%d)\n", len(r.Queues))
		for _, q := range r.Queues {
			b.WriteString("  " + queueLine(q) + "\n")
		}
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(&b, "\nAttribution tags (%d)\n", len(r.Tags))
		for i, t := range r.Tags {
			if i == textTags {
				fmt.Fprintf(&b, "  … and %d more (see --report or --tui)\n", len(r.Tags)-i)
				break
			}
			b.WriteString("  " + tagLine(t) + "\n")
		}
	}

	fmt.Fprintf(&b, "\nFindings (%d)\n", len(r.Findings))
	if len(r.Findings) == 0 {
		b.WriteString("  none: nothing was polled at the storm rate, no connection churn, no repeated reads\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s %s: %s\n", strings.ToUpper(f.Severity), f.Kind, f.Summary+f.HeldUntil())
		for _, e := range f.Evidence {
			b.WriteString("    - " + e + "\n")
		}
		b.WriteString("    fix: " + f.Fix + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// textTags is how many attribution tags the text names.
const textTags = 10

// stormLine is one storm in a line: what stormed, when, how hard and whether it waited.
func stormLine(s Storm) string {
	var what string
	switch s.Kind {
	case "poller":
		what = fmt.Sprintf("poller %s (%s, %s@%s) over %d keys of %s", s.Address, orDash(s.ApplicationName), s.User, s.Database, s.Keys, s.Table)
	case "repeat":
		what = "repeated read " + s.Query
	default:
		what = s.Table + "." + s.Column + " = " + s.Key
	}
	end := "still on at the end"
	if !s.EndedAt.IsZero() {
		end = "to " + fmtClock(s.EndedAt)
	}
	line := fmt.Sprintf("%s: from %s %s, %s polls, peak %s/s", what, fmtClock(s.StartedAt), end, fmtInt(s.Polls), fmtRate(s.PeakQPS))
	if s.Spin {
		line += ", SPIN"
	}
	if s.MedianIntervalMs >= 0 && s.Kind != "repeat" {
		line += ", median gap " + fmtMs(s.MedianIntervalMs) + ", waited " + fmtWaits(s.WaitsPct)
	}
	if len(s.Tags) > 0 {
		line += "; tags: " + joinItems(tagItems(s.Tags))
	}
	return line
}

func kindRank(kind string) int {
	switch kind {
	case "poller":
		return 0
	case "key":
		return 1
	}
	return 2
}
