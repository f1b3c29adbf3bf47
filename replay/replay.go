// Package replay feeds recorded traffic to the analyzer as the proxy feeds it live traffic:
// the records of PostgreSQL's server log (package pglog), where sessions become connections
// and logged statements become statement events, and packet captures (package capture), whose
// conversations are decoded into the very events the proxy gives. The analyzer runs on the
// record's own time, ticked each second of it, so that its windows, rates, storms and verdicts
// are those the live proxy would give for the same traffic however fast the record is read.
//
// What a log cannot tell it does not invent: a logged statement carries no answer (no rows, no
// digest, no status), and a parameter the server shortened (log_parameter_max_length) is no key.
package replay

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/event"
	"github.com/pgpollwatch/pgpollwatch/pglog"
)

// Run reads every record of r into a new analyzer made from cfg, whose clock and epoch it sets
// to the log's, and returns the analyzer with its time at the end of the log. On an error
// (a file that could not be read to its end) the analyzer holds what was read before it.
func Run(r *pglog.Reader, cfg analyzer.Config) (*analyzer.Analyzer, error) {
	return run(r.Next, cfg)
}

// RunParallel is Run with the reading and parsing of the log on another goroutine than the
// analysis when jobs is 2 or more: the two stages then use a core each. The analysis itself is
// one stream in the log's order (a poller's gaps, a storm's window), so more jobs add nothing
// yet; r must not be used until RunParallel returns.
func RunParallel(r *pglog.Reader, cfg analyzer.Config, jobs int) (*analyzer.Analyzer, error) {
	if jobs < 2 {
		return Run(r, cfg)
	}
	const batchLen = 256
	type batch struct {
		recs []pglog.Record
		err  error // after the records: io.EOF at the end
	}
	full := make(chan *batch, 8)
	free := make(chan *batch, 8)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for {
			var b *batch
			select {
			case b = <-free:
				b.recs = b.recs[:0]
			default:
				b = &batch{recs: make([]pglog.Record, 0, batchLen)}
			}
			for len(b.recs) < batchLen {
				rec, err := r.Next()
				if err != nil {
					b.err = err
					break
				}
				b.recs = append(b.recs, rec)
			}
			select {
			case full <- b:
			case <-stop:
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	var cur *batch
	i := 0
	next := func() (pglog.Record, error) {
		for {
			if cur != nil && i < len(cur.recs) {
				rec := cur.recs[i]
				cur.recs[i] = pglog.Record{} // the analyzer keeps no reference; let strings go
				i++
				return rec, nil
			}
			if cur != nil {
				if cur.err != nil {
					return pglog.Record{}, cur.err
				}
				select {
				case free <- cur:
				default:
				}
			}
			b, ok := <-full
			if !ok {
				return pglog.Record{}, io.EOF
			}
			cur, i = b, 0
		}
	}
	return run(next, cfg)
}

func run(next func() (pglog.Record, error), cfg analyzer.Config) (*analyzer.Analyzer, error) {
	// A log holds statements, not their answers; and its findings of an hour ago matter as
	// much as those of its last second.
	cfg.NoAnswers, cfg.KeepFindings = true, true
	// The digests of repeated reads' values are keyed by the log's first records: the same
	// log gives the same report, and a report alone cannot be searched for a guessed value.
	var head []pglog.Record
	var err error
	key := xxhash.New()
	for len(head) < 64 {
		var rec pglog.Record
		if rec, err = next(); err != nil {
			break
		}
		head = append(head, rec)
		key.WriteString(rec.Time.String() + "\x00" + rec.Session + "\x00" + rec.Host + "\x00" + rec.Text + "\x00")
		for _, p := range rec.Params {
			key.WriteString(p.Value + "\x00")
		}
	}
	if len(head) == 0 {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return analyzer.New(cfg), err
	}
	cfg.DigestKey = key.Sum64() | 1 // never 0, which asks for a random key
	f := &feed{sessions: map[string]*event.ConnInfo{}}
	f.start(cfg, head[0].Time)
	for i := range head {
		f.record(&head[i])
	}
	for err == nil {
		var rec pglog.Record
		if rec, err = next(); err == nil {
			f.record(&rec)
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	f.tickTo(f.now.Add(time.Second)) // the last second, complete
	return f.an, err
}

type feed struct {
	clock
	sessions map[string]*event.ConnInfo
	bind     []byte
	batch    [1]event.Event
}

// clock runs an analyzer on recorded time: its Now is the latest time the record has reached,
// and it is ticked once per second of that time, however fast the record is read.
type clock struct {
	an       *analyzer.Analyzer
	now      time.Time
	nextTick time.Time
}

// start makes the analyzer of cfg run on the clock, from first on.
func (c *clock) start(cfg analyzer.Config, first time.Time) {
	c.now = first
	cfg.Now = func() time.Time { return c.now }
	cfg.Epoch = first.Truncate(time.Second)
	c.an = analyzer.New(cfg)
	c.nextTick = cfg.Epoch.Add(time.Second)
}

// tickTo runs the analyzer's ticks for every second of recorded time up to t.
func (c *clock) tickTo(t time.Time) {
	for !c.nextTick.After(t) {
		c.now = c.nextTick
		c.an.Tick(c.nextTick)
		c.nextTick = c.nextTick.Add(time.Second)
	}
	if t.After(c.now) {
		c.now = t
	}
}

func (f *feed) record(rec *pglog.Record) {
	if !rec.Time.IsZero() {
		f.tickTo(rec.Time)
	}
	switch rec.Kind {
	case pglog.Connection:
		info := f.open(rec)
		if rec.Failed {
			f.an.ConnAuthenticated(info, false, "")
		}
		// A successful login is not reported: the log dates the connection's arrival, and the
		// session is ready only later (fork, login, the backend's start, tens of ms on a busy
		// server). The analyzer takes the session's first statement for the end of its
		// opening, when it hears of no login.
	case pglog.Disconnection:
		if info := f.sessions[rec.Session]; info != nil {
			f.an.ConnClosed(info, event.ConnStats{Duration: max(rec.Duration, 0)})
			delete(f.sessions, rec.Session)
		}
	case pglog.Statement:
		info := f.sessions[rec.Session]
		if info == nil { // a session that began before the log, or without log_connections
			info = f.open(rec)
		}
		ev := event.Event{Text: []byte(rec.Text), Start: rec.Time, Duration: max(rec.Duration, 0), Failed: rec.Failed,
			Untimed: rec.Duration < 0}
		if rec.Protocol == pglog.Extended {
			ev.Protocol = event.Extended
			f.bind = bindBody(f.bind[:0], rec.Params)
			ev.Bind = event.BindMessage(f.bind)
		}
		f.batch[0] = ev
		f.an.Statements(info, f.batch[:])
	}
}

// open makes the connection of rec's session.
func (f *feed) open(rec *pglog.Record) *event.ConnInfo {
	if old := f.sessions[rec.Session]; old != nil { // a session logged twice: close the first
		f.an.ConnClosed(old, event.ConnStats{})
	}
	info := &event.ConnInfo{ClientAddr: net.JoinHostPort(rec.Host, strconv.Itoa(rec.Port)), User: rec.User,
		Database: rec.Database, ApplicationName: rec.App, OpenedAt: rec.Time}
	if info.OpenedAt.IsZero() {
		info.OpenedAt = f.now
	}
	f.an.ConnOpened(info)
	f.sessions[rec.Session] = info
	return info
}

// bindBody writes the body of a Bind message carrying params in text format, as the client
// sent them: the analyzer reads keys from it as from the proxy's. A shortened value is sent as
// NULL: it is not the key, and no other key either.
func bindBody(b []byte, params []pglog.Param) []byte {
	b = append(b, 0, 0) // portal and statement names: unnamed
	b = append(b, 0, 0) // no format codes: all text
	b = binary.BigEndian.AppendUint16(b, uint16(len(params)))
	for _, p := range params {
		if p.Null || p.Truncated {
			b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // -1: NULL
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Value)))
		b = append(b, p.Value...)
	}
	return append(b, 0, 0) // no result formats
}
