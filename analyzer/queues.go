package analyzer

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
	"github.com/pgpollwatch/pgpollwatch/event"
)

// queueOp is what a statement does to a job queue.
type queueOp uint8

const (
	queueNone    queueOp = iota
	queuePoll            // it looks for work
	queueEnqueue         // it adds work
)

// matchQueue reads the statement the matcher last tokenized (match) and says which queue it
// polls or enqueues to (Queue's rule). It runs once per fingerprint.
func (m *matcher) matchQueue(src []byte) (q int, op queueOp) {
	q = -1
	read, target, returning, insert := -1, -1, false, -1
	pollFn, enqueueFn := -1, -1
	claims, byID, counts := false, false, false // claims: locks, takes the first N or lists
	locks, deletes := false, false
	for i := 0; i < len(m.toks); i++ {
		switch {
		case m.is(src, i, "returning"):
			returning = true
		case m.is(src, i, "for") && (m.is(src, i+1, "update") || m.is(src, i+1, "no") && m.is(src, i+2, "key")),
			m.is(src, i, "skip") && m.is(src, i+1, "locked"),
			(m.is(src, i, "pg_try_advisory_lock") || m.is(src, i, "pg_try_advisory_xact_lock")) && m.punct(src, i+1, '('):
			claims, locks = true, true
		case m.is(src, i, "limit"), m.is(src, i, "distinct"):
			claims = true
		case m.is(src, i, "count") && m.punct(src, i+1, '('):
			counts = true
		case (m.ident(src, i, "id") || m.ident(src, i, "job_id")) && !m.is(src, i-1, "not") && !(m.punct(src, i-1, '.') && m.is(src, i-3, "not")):
			// NOT id = ANY($2): leaving out the jobs it holds is still a look for work.
			byID = byID || m.keyedByID(src, i)
		case m.is(src, i, "insert") && m.is(src, i+1, "into"):
			if t := m.queueTable(src, i+2, true); t >= 0 && insert < 0 && m.enqueueTable(src, i+2, t) {
				insert = t
			}
		case m.is(src, i, "update"):
			j := i + 1
			if m.is(src, j, "only") {
				j++
			}
			if t := m.queueTable(src, j, false); t >= 0 && target < 0 {
				target = t
			}
		case m.is(src, i, "delete") && m.is(src, i+1, "from"):
			j := i + 2
			if m.is(src, j, "only") {
				j++
			}
			if t := m.queueTable(src, j, false); t >= 0 && target < 0 {
				target, deletes = t, true
			}
			i = j // its FROM names the target, not a read
		case m.is(src, i, "from") || m.is(src, i, "join"):
			j := i + 1
			if m.is(src, j, "only") || m.is(src, j, "lateral") {
				j++
			}
			if t := m.queueTable(src, j, false); t >= 0 && read < 0 {
				read = t
			}
		case m.toks[i].Kind == sqlscan.Ident || m.toks[i].Kind == sqlscan.QuotedIdent:
			// A function call: name ( or schema.name (.
			if m.punct(src, i+1, '(') {
				if f, ok := m.queueFunction(src, i); ok {
					if f.enqueue && enqueueFn < 0 {
						enqueueFn = f.queue
					} else if !f.enqueue && pollFn < 0 {
						pollFn = f.queue
					}
				}
			}
		}
	}
	looks := func(q int) bool { // looks for work in q's tables, as Queue says
		return !byID && !counts && (claims || m.queues[q].PlainPolls)
	}
	// An UPDATE or DELETE of the queue that returns nothing gives a worker nothing to do; a
	// DELETE that takes no lock removes old jobs (a pruner), it does not take work.
	givesWork := returning && (!deletes || locks)
	switch {
	case enqueueFn >= 0:
		return enqueueFn, queueEnqueue
	case insert >= 0:
		return insert, queueEnqueue
	case pollFn >= 0:
		return pollFn, queuePoll
	case target >= 0 && !givesWork:
		return -1, queueNone // whatever it reads
	case read >= 0 && looks(read):
		return read, queuePoll
	case target >= 0 && looks(target):
		return target, queuePoll
	}
	return -1, queueNone
}

// keyedByID reports whether the id column at token i (optionally qualified) is compared with
// known values: = $1, = 5, IN ($1, $2), IN (1, 2), = ANY($1), = ANY(ARRAY[...]). A subquery
// (id IN (SELECT ...), id = (SELECT ...)) or a join (j.id = next.id) is not.
func (m *matcher) keyedByID(src []byte, i int) bool {
	j := i + 1
	value := func(k int) bool {
		if k >= len(m.toks) {
			return false
		}
		switch m.toks[k].Kind {
		case sqlscan.Param, sqlscan.Number, sqlscan.String:
			return true
		}
		return m.is(src, k, "array") || m.is(src, k, "unnest")
	}
	switch {
	case m.op(src, j, "=") && m.is(src, j+1, "any") && m.punct(src, j+2, '('):
		return value(j + 3)
	case m.op(src, j, "="):
		return value(j + 1)
	case m.is(src, j, "in") && m.punct(src, j+1, '('):
		return value(j + 2)
	}
	return false
}

// enqueueTable reports whether an insert into the table at token i, queue q's, is a new job.
func (m *matcher) enqueueTable(src []byte, i, q int) bool {
	tables := m.queues[q].EnqueueTables
	if len(tables) == 0 {
		return true
	}
	_, name, _ := m.qualifiedName(src, i)
	for _, t := range tables {
		if m.ident(src, name, t) {
			return true
		}
	}
	return false
}

// queueTable reads [schema.]name at token i and returns the queue whose table it is, or -1.
// A name followed by '(' is a function unless it is INSERT's target (columns).
func (m *matcher) queueTable(src []byte, i int, insert bool) int {
	schema, name, ok := m.qualifiedName(src, i)
	if !ok || !insert && m.punct(src, name+1, '(') {
		return -1
	}
	for q := range m.queues {
		qu := &m.queues[q]
		if qu.Schema != "" && (schema < 0 || !m.ident(src, schema, qu.Schema)) {
			continue
		}
		for _, t := range qu.Tables {
			if m.ident(src, name, t) {
				return q
			}
		}
		if qu.HashedTablePrefix != "" && hashedTable(m.text(src, name), qu.HashedTablePrefix) {
			return q
		}
	}
	return -1
}

// hashedTable reports whether an unquoted name is prefix and 56 lower-case hex digits: the
// name of a table made per queue from a SHA-224 of the queue's name (pg-boss's partitions).
func hashedTable(name []byte, prefix string) bool {
	rest, ok := bytes.CutPrefix(name, []byte(prefix))
	if !ok || len(rest) != 56 {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

type queueFn struct {
	queue   int
	enqueue bool
}

// queueFunction says whether the name ending at token i (followed by '(') is one of a queue's
// functions. i is the name's last token; a schema before it must be the queue's.
func (m *matcher) queueFunction(src []byte, i int) (queueFn, bool) {
	schema := -1
	if i >= 2 && m.punct(src, i-1, '.') {
		schema = i - 2
	}
	for q := range m.queues {
		qu := &m.queues[q]
		if qu.Schema != "" && (schema < 0 || !m.ident(src, schema, qu.Schema)) {
			continue
		}
		for _, f := range qu.PollFunctions {
			if m.ident(src, i, f) {
				return queueFn{queue: q}, true
			}
		}
		for _, f := range qu.EnqueueFunctions {
			if m.ident(src, i, f) {
				return queueFn{queue: q, enqueue: true}, true
			}
		}
	}
	return queueFn{}, false
}

// qualifiedName reads name or schema.name at token i: the tokens of the schema (-1: none) and
// the name.
func (m *matcher) qualifiedName(src []byte, i int) (schema, name int, ok bool) {
	if i >= len(m.toks) || m.toks[i].Kind != sqlscan.Ident && m.toks[i].Kind != sqlscan.QuotedIdent {
		return -1, -1, false
	}
	if m.punct(src, i+1, '.') && i+2 < len(m.toks) && (m.toks[i+2].Kind == sqlscan.Ident || m.toks[i+2].Kind == sqlscan.QuotedIdent) {
		return i, i + 2, true
	}
	return -1, i, true
}

// queueStats counts one queue's polls and enqueues.
type queueStats struct {
	mu        sync.Mutex
	polls     int64
	empty     int64 // polls whose answer had no row
	unknown   int64 // polls whose answer was lost (a capture)
	enqueued  int64
	firstNs   int64 // first poll or enqueue
	lastNs    int64
	ring      wideRing
	intervals [256]uint32 // the latest intervals between two polls of one client, in microseconds
	nInterval int
	clients   map[*clientStats]*queueClient
	tags      tagTop
}

// queueClient is one client identity's polls of a queue.
type queueClient struct {
	polls, empty int64
	lastNs       int64
	ring         wideRing
	intervals    [64]uint32
	nInterval    int
}

// maxQueueClients bounds the clients tracked per queue; polls of the others still count.
const maxQueueClients = 1000

func newQueueStats(n int) []*queueStats {
	out := make([]*queueStats, n)
	for i := range out {
		out[i] = &queueStats{clients: map[*clientStats]*queueClient{}}
	}
	return out
}

// queueEvent accounts a statement that polls or enqueues to queue q.
func (a *Analyzer) queueEvent(cs *connState, ev *event.Event, q int, op queueOp, tag uint16, sec, start, end int64) {
	qs := a.queues[q]
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.firstNs == 0 {
		qs.firstNs = start
	}
	qs.lastNs = max(qs.lastNs, end)
	if op == queueEnqueue {
		qs.enqueued += enqueuedRows(ev)
		return
	}
	qs.polls++
	qs.ring.add(sec, 1)
	qs.tags.add(tag)
	empty := !ev.AnswerLost && (ev.Rows == 0 || ev.Rows == 1 && allNull(ev.FirstRow))
	switch {
	case ev.AnswerLost:
		qs.unknown++
	case empty:
		qs.empty++
	}
	c := qs.clients[cs.client]
	if c == nil {
		if len(qs.clients) >= maxQueueClients {
			return
		}
		c = &queueClient{}
		qs.clients[cs.client] = c
	}
	c.polls++
	if empty {
		c.empty++
	}
	c.ring.add(sec, 1)
	if c.lastNs != 0 && start > c.lastNs {
		us := uint32(min((start-c.lastNs)/1000, int64(^uint32(0))))
		c.intervals[c.nInterval%len(c.intervals)] = us
		c.nInterval++
		qs.intervals[qs.nInterval%len(qs.intervals)] = us
		qs.nInterval++
	}
	c.lastNs = max(c.lastNs, start)
}

// allNull reports whether a DataRow (or the start of one) holds columns and all are NULL: what
// a fetch function returning a composite gives when there is no job (Procrastinate's
// procrastinate_fetch_job, graphile-worker's get_job).
func allNull(row []byte) bool {
	if len(row) < 2 {
		return false
	}
	n := int(binary.BigEndian.Uint16(row))
	if n == 0 || len(row) < 2+4*n {
		return false
	}
	for i := 0; i < n; i++ {
		if int32(binary.BigEndian.Uint32(row[2+4*i:])) != -1 {
			return false
		}
	}
	return true
}

// enqueuedRows is how many jobs an enqueue added: the rows of an INSERT's tag ("INSERT 0 5"),
// else one (a function call, or a source without answers).
func enqueuedRows(ev *event.Event) int64 {
	if tag, ok := bytes.CutPrefix(ev.Tag, []byte("INSERT ")); ok {
		if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
			if n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64); err == nil {
				return n
			}
		}
	}
	return 1
}

// medianMs is the median of the first n (at most len) intervals, in ms; -1 when none.
func medianMs(iv []uint32, n int) float64 {
	n = min(n, len(iv))
	if n == 0 {
		return -1
	}
	s := slices.Clone(iv[:n])
	slices.Sort(s)
	return float64(s[n/2]) / 1000
}

// snapQueues fills the snapshot's queues: those polled or enqueued to, busiest first.
func (a *Analyzer) snapQueues(s *Snapshot, sec int64) {
	for q, qs := range a.queues {
		qu := &a.cfg.Queues[q]
		qs.mu.Lock()
		if qs.polls == 0 && qs.enqueued == 0 {
			qs.mu.Unlock()
			continue
		}
		st := QueueStat{Queue: qu.Name, Library: qu.Library, Tables: strings.Join(qu.Tables, ", "),
			Polls: qs.polls, EmptyPolls: qs.empty, Enqueued: qs.enqueued,
			PollsPerSec10: qs.ring.rate(sec, 10), IntervalP50Ms: medianMs(qs.intervals[:], qs.nInterval),
			Tags: qs.tags.counts(a.tags)}
		span := float64(max(qs.lastNs-qs.firstNs, 1e9)) / 1e9 // at least a second
		st.PollsPerSec, st.EnqueuedPerSec = float64(qs.polls)/span, float64(qs.enqueued)/span
		st.EmptyPct = -1
		if known := qs.polls - qs.unknown; known > 0 {
			st.EmptyPct = 100 * float64(qs.empty) / float64(known)
		}
		for cl, c := range qs.clients {
			qc := QueueClient{Address: cl.key.Host, ApplicationName: cl.key.App, User: cl.key.User, Database: cl.key.Database,
				Polls: c.polls, EmptyPolls: c.empty, PollsPerSec10: c.ring.rate(sec, 10),
				IntervalP50Ms: medianMs(c.intervals[:], c.nInterval)}
			if a.cfg.NoAnswers {
				qc.EmptyPolls = -1
			}
			st.Clients = append(st.Clients, qc)
		}
		qs.mu.Unlock()
		if a.cfg.NoAnswers {
			st.EmptyPolls, st.EmptyPct = -1, -1
		}
		slices.SortFunc(st.Clients, func(x, y QueueClient) int {
			return cmp.Or(cmp.Compare(y.PollsPerSec10, x.PollsPerSec10), cmp.Compare(y.Polls, x.Polls), cmp.Compare(x.Address, y.Address),
				cmp.Compare(x.ApplicationName, y.ApplicationName), cmp.Compare(x.User, y.User), cmp.Compare(x.Database, y.Database))
		})
		if len(st.Clients) > 20 {
			st.Clients = st.Clients[:20]
		}
		s.Queues = append(s.Queues, st)
	}
	slices.SortFunc(s.Queues, func(x, y QueueStat) int {
		return cmp.Or(cmp.Compare(y.PollsPerSec10, x.PollsPerSec10), cmp.Compare(y.Polls, x.Polls), cmp.Compare(x.Queue, y.Queue))
	})
}

// Queue findings: a queue polled far more often than work arrives. Each poll that finds
// nothing is a query for nothing; the library's own setting, or LISTEN/NOTIFY, removes them.
const (
	queueMinPolls  = 20  // polls seen before a queue is judged
	queueMinRate   = 0.5 // polls/s over its span: slower polling is no load worth a finding
	queueOverRatio = 10  // polls per job arrived
)

// queueFindings appends a finding per queue polled much faster than jobs arrive.
func queueFindings(s *Snapshot, out []Finding) []Finding {
	for _, q := range s.Queues {
		found := int64(-1) // polls that found work; -1 unknown
		if q.EmptyPolls >= 0 {
			found = q.Polls - q.EmptyPolls
		}
		jobs := max(q.Enqueued, found, 0)
		if q.Polls < queueMinPolls || q.PollsPerSec < queueMinRate || q.Polls < queueOverRatio*max(jobs, 1) {
			continue
		}
		f := Finding{ID: "queue:" + q.Queue, Kind: "queue-poll", Severity: "low", Fix: queueFix(q.Queue)}
		switch {
		case q.PollsPerSec >= 10:
			f.Severity = "high"
		case q.PollsPerSec >= 1:
			f.Severity = "medium"
		}
		f.Summary = fmt.Sprintf("Queue polled much faster than jobs arrive: %s (%s) polled %.1f times/s, %s",
			q.Library, q.Tables, q.PollsPerSec, arrivalPhrase(q))
		if q.EmptyPct >= 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%d polls, %.0f%% of them found nothing", q.Polls, q.EmptyPct))
		} else {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%d polls (whether they found work is not in a log)", q.Polls))
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%d jobs enqueued (%.2f/s); %.0f polls/s in the last 10 s", q.Enqueued, q.EnqueuedPerSec, q.PollsPerSec10))
		if q.IntervalP50Ms >= 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("a client polls it every %s (median)", fmtGap(q.IntervalP50Ms)))
		}
		for i, c := range q.Clients {
			if i == 3 {
				f.Evidence = append(f.Evidence, fmt.Sprintf("… and %d more clients", len(q.Clients)-3))
				break
			}
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %d polls, %.1f/s, every %s",
				clientName(clientKey{Host: c.Address, App: c.ApplicationName, User: c.User, Database: c.Database}), c.Polls, c.PollsPerSec10, fmtGap(c.IntervalP50Ms)))
		}
		if by := polledBy(q.Tags, q.Polls); by != "" {
			f.Evidence = append(f.Evidence, by)
		}
		out = append(out, f)
	}
	return out
}

func arrivalPhrase(q QueueStat) string {
	if q.EmptyPct >= 0 {
		return fmt.Sprintf("%.0f%% of polls found nothing", q.EmptyPct)
	}
	return fmt.Sprintf("while %.2f jobs/s were enqueued", q.EnqueuedPerSec)
}

// polledBy words the top tags of polls: "polled by job=PollJob (93%), ...".
func polledBy(tags []TagCount, polls int64) string {
	if len(tags) == 0 {
		return ""
	}
	var parts []string
	for _, t := range tags {
		parts = append(parts, fmt.Sprintf("%s (%.0f%%)", t.Tag, 100*float64(t.Count)/float64(max(polls, 1))))
	}
	return "polled by " + strings.Join(parts, ", ")
}

// queueFix is the preset's fix by name, else a generic one.
func queueFix(name string) string {
	for _, q := range QueuePresets {
		if q.Name == name && q.Fix != "" {
			return q.Fix
		}
	}
	return "Poll the queue less often (the library's poll interval setting), wake workers with LISTEN/NOTIFY where the " +
		"library supports it, and run fewer workers per queue: every idle worker polls on its own."
}
