package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SlowReaderParams scale the slow-reader case.
type SlowReaderParams struct {
	AnswerBytes int64         // the size of the answer the server has to send
	Rate        int64         // bytes per second the client reads
	For         time.Duration // how long it reads before it leaves
	RSSLimit    int64         // the proxy's RSS must stay under this
}

// SlowReader has a client ask for a huge answer and read it slowly: the server has far more to
// send than the client takes, so the proxy must stop reading from the server (backpressure)
// rather than buffer. Checked: the proxy's RSS, sampled every 250 ms, stays under the limit;
// the server's backend waits on ClientWrite (it is held back) while the client reads; the
// backend is gone soon after the client leaves mid-answer.
func SlowReader(ctx context.Context, e *Env, p SlowReaderParams) *Result {
	r := &Result{Case: "slow reader"}
	start := time.Now()
	defer func() { r.Elapsed = time.Since(start) }()
	const rowBytes = 1000
	rows := p.AnswerBytes / rowBytes
	sql := fmt.Sprintf("SELECT repeat('x', %d) FROM generate_series(1, %d)", rowBytes, rows)
	r.Did = fmt.Sprintf("a client sent `%s` (%d MB of rows) through pgpollwatch and read the answer at %d KB/s for %v, then closed the connection mid-answer; proxy RSS sampled every 250 ms",
		sql, p.AnswerBytes/1_000_000, p.Rate/1000, p.For)
	px, err := e.StartProxy(ctx, "slowreader", ProxyOpts{})
	if !r.Check(err == nil, "starting the proxy: %v", err) {
		return r
	}
	defer px.Stop()
	base, err := px.RSS()
	if !r.Check(err == nil, "RSS: %v", err) {
		return r
	}
	c, err := dialRaw(ctx, px.Addr, 10*time.Second)
	if !r.Check(err == nil, "connecting: %v", err) {
		return r
	}
	defer c.conn.Close()
	// A small receive buffer, so the kernel holds little for the client either.
	c.conn.SetReadBuffer(64 << 10)
	if err := c.send(sql); !r.Check(err == nil, "sending the query: %v", err) {
		return r
	}
	var peak int64
	var read int64
	waits := tally{}
	buf := make([]byte, 16<<10)
	readStart := time.Now()
	nextSample, nextBackends := readStart, readStart.Add(2*time.Second)
	for time.Since(readStart) < p.For && ctx.Err() == nil {
		// Read no faster than Rate: wait until the bytes read so far are due.
		due := readStart.Add(time.Duration(float64(read) / float64(p.Rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			sleep(ctx, min(d, 250*time.Millisecond))
		}
		if time.Now().After(nextSample) {
			if rss, err := px.RSS(); err == nil {
				peak = max(peak, rss)
			}
			nextSample = nextSample.Add(250 * time.Millisecond)
			if time.Now().After(nextBackends) {
				nextBackends = nextBackends.Add(2 * time.Second)
				if bs, err := e.Backends(ctx); err == nil {
					for _, b := range bs {
						if strings.HasPrefix(b.Query, "SELECT repeat") {
							waits.add(b.State+"/"+or(b.WaitEvent, "running"), "")
						}
					}
				}
			}
		}
		if time.Until(due) > 0 {
			continue
		}
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.conn.Read(buf[:min(int64(len(buf)), max(p.Rate/20, 1))])
		read += int64(n)
		if err != nil {
			r.Check(false, "reading the answer after %d bytes: %v", read, err)
			break
		}
	}
	elapsed := time.Since(readStart)
	final, _ := px.RSS()
	peak = max(peak, final)
	c.reset()
	left, took, err := e.waitBackends(ctx, 0, 15*time.Second)
	r.Check(err == nil, "pg_stat_activity: %v", err)
	r.Figure("read %.1f MB in %v (%.0f KB/s) of a %d MB answer", float64(read)/1e6, elapsed.Round(time.Second),
		float64(read)/elapsed.Seconds()/1000, p.AnswerBytes/1_000_000)
	r.Figure("proxy RSS %s before, peak %s while the client read (limit %s)", mib(base), mib(peak), mib(p.RSSLimit))
	r.Figure("server backend while the client read (state/wait event, sampled): %s", waits.String())
	r.Figure("server backends left after the client reset its connection: %d (after %v)", len(left), took.Round(100*time.Millisecond))
	r.Check(peak < p.RSSLimit, "proxy RSS reached %s (limit %s)", mib(peak), mib(p.RSSLimit))
	r.Check(waits.get("active/ClientWrite") > 0, "the server's backend was never seen waiting to write to its client (backpressure): %s", waits.String())
	r.Check(len(left) == 0, "%d backends left 15 s after the client left: %v", len(left), left)
	r.Check(read >= p.Rate*int64(p.For/time.Second)/2, "the client read only %d bytes", read)
	r.Check(px.Alive(), "the proxy exited")
	return r
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
