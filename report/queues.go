package report

import (
	"fmt"
	"strings"
)

// What the HTML, Markdown and text writers say about job queues and attribution tags.

// topShown is how many of a queue's clients or tags, or of a storm's tags, one cell names.
const topShown = 3

// topItems names the first topShown of all, and counts the rest.
func topItems[T any](all []T, name func(T) string) []string {
	var out []string
	for i, v := range all {
		if i == topShown {
			out = append(out, fmt.Sprintf("and %d more", len(all)-i))
			break
		}
		out = append(out, name(v))
	}
	return out
}

// queueClientItems names a queue's busiest clients: application, address, polls and rate.
func queueClientItems(cs []QueueClient) []string {
	return topItems(cs, func(c QueueClient) string {
		return fmt.Sprintf("%s %s: %s polls, %s/s", orDash(c.ApplicationName), c.Address, fmtInt(c.Polls), fmtRate(c.PollsPerSec10))
	})
}

// tagItems names the most counted tags with their counts. A tag holds commas
// ("controller=jobs,action=show"), so joined lists use semicolons.
func tagItems(ts []TagCount) []string {
	return topItems(ts, func(t TagCount) string { return t.Tag + " (" + fmtInt(t.Count) + ")" })
}

// fmtEmpty is a queue's empty share (0-100); -1 is "not in a log".
func fmtEmpty(pct float64) string { return fmtPct(pct, 100) }

// joinItems writes a list of items in one line.
func joinItems(items []string) string { return strings.Join(items, "; ") }

// queueName is what a queue is called: its library, and its name when the two differ.
func queueName(q Queue) string {
	switch {
	case q.Library == "":
		return q.Queue
	case strings.EqualFold(q.Library, q.Queue):
		return q.Library
	}
	return q.Library + " (" + q.Queue + ")"
}

// queueLine is one queue in a line of text: how often it was polled, how often in vain, how
// often work came, and by whom.
func queueLine(q Queue) string {
	empty := fmtEmpty(q.EmptyPct) + " empty"
	if q.EmptyPct < 0 {
		empty = "empty polls " + notInLog
	}
	line := fmt.Sprintf("%s on %s: %s polls, %s/s (avg %s/s), %s, %s enqueued (%s/s), median interval %s",
		queueName(q), q.Tables, fmtInt(q.Polls), fmtRate(q.PollsPerSec10), fmtRate(q.PollsPerSec), empty,
		fmtInt(q.Enqueued), fmtRate(q.EnqueuedPerSec), fmtMs(q.IntervalP50Ms))
	if len(q.Clients) > 0 {
		line += "; clients: " + joinItems(queueClientItems(q.Clients))
	}
	if len(q.Tags) > 0 {
		line += "; tags: " + joinItems(tagItems(q.Tags))
	}
	return line
}

// tagLine is one attribution tag in a line of text.
func tagLine(t Tag) string {
	return fmt.Sprintf("%s: %s queries (%s/s), %s polls (%s/s)", t.Tag, fmtInt(t.Queries), fmtRate(t.QPS10), fmtInt(t.Polls), fmtRate(t.PollsPerSec10))
}

// queuesNote says what the Queues table's columns mean.
const queuesNote = "polls/s over the last 10 s; avg polls/s and enqueued/s from the queue's first poll to its last; " +
	"empty: polls that found no job (of the polls whose answers were seen); interval: median time between two polls of the queue by one client."

// tagsNote says where tags come from.
const tagsNote = "A tag is the key=value pairs of a statement's comment (sqlcommenter, marginalia): which code sent it. " +
	"Polls are watched lookups and job queue polls. Past the analyzer's cap, new tags count as \"other\"."
