package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// Server connection reuse (Config.ReuseServerConnections).
//
// A program that opens a connection per statement (Celery's non-worker processes poll that way)
// makes PostgreSQL fork, set up and tear down a backend for each poll: about 4 ms of server CPU,
// a hundred times what the poll itself costs. When a client leaves cleanly, the proxy can keep
// its server connection, reset it as PgBouncer's session mode does (DISCARD ALL), and hand it to
// the next client that sends the very same startup packet.
//
// That is only sound when the server would have let the next client in without asking it
// anything: the proxy never learns a password, so it cannot check one. A server connection is
// kept only when the server answered the startup packet with AuthenticationOk straight away
// (trust: pg_hba.conf decided on user, database and the proxy's own address, all of which are the
// same for the next client). Anything that asked for a password, certificate or SASL exchange
// gets a fresh server connection for every client, as without reuse.

// errTerminated stops the client side at the client's Terminate when the server connection may
// be kept: the Terminate is not forwarded.
var errTerminated = errors.New("client sent Terminate")

// Defaults for the reuse knobs.
const (
	defaultReuseIdleTimeout = 60 * time.Second
	defaultReuseMaxAge      = 10 * time.Minute
	defaultReuseMaxIdle     = 100
	resetTimeout            = 5 * time.Second
)

// ReuseStats counts what server connection reuse did.
type ReuseStats struct {
	Reused    int64 // clients served by a kept server connection instead of a new one
	Kept      int64 // server connections reset and kept after their client left
	Discarded int64 // kept connections closed: expired, found closed or busy, reset failed, pool full
	Idle      int   // kept connections waiting now
}

// reuseKey names the server sessions a startup packet asks for: its protocol version and its
// parameters in name order (pgx sends them in map order, which changes from one connection to
// the next). "" when the packet repeats a parameter: which value the server takes would then
// depend on an order the key no longer has.
func reuseKey(st *startup) string {
	names := make([]string, 0, len(st.params))
	for k := range st.params {
		names = append(names, k)
	}
	pairs := 0
	for p := st.packet[8:]; len(p) > 0 && p[0] != 0; pairs++ {
		p, _ = skipCString(p)
		p, _ = skipCString(p)
	}
	if pairs != len(names) {
		return ""
	}
	slices.Sort(names)
	var b strings.Builder
	b.Write(st.packet[4:8])
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(st.params[k])
		b.WriteByte(0)
	}
	return b.String()
}

// serverParam is one ParameterStatus the server reported, replayed to the next client.
type serverParam struct{ name, value string }

// setParam records a ParameterStatus: a name keeps its first position, as the server's order is
// replayed to the next client.
func setParam(ps []serverParam, body []byte) []serverParam {
	name, rest, ok := cstring(body)
	value, _, ok2 := cstring(rest)
	if !ok || !ok2 {
		return ps
	}
	for i := range ps {
		if ps[i].name == string(name) {
			if ps[i].value != string(value) {
				ps[i].value = string(value)
			}
			return ps
		}
	}
	return append(ps, serverParam{string(name), string(value)})
}

// keptConn is a server connection waiting for its next client.
type keptConn struct {
	conn   net.Conn
	target *target
	key    []byte // BackendKeyData body: the backend's process ID and secret
	params []serverParam
	born   time.Time // when the server connection was made
	since  time.Time // when it was kept
	// What the server said after the startup packet, replayed to the client that gets this
	// connection: AuthenticationOk, every ParameterStatus in effect, BackendKeyData,
	// ReadyForQuery.
	greeting []byte
}

func greeting(key []byte, params []serverParam) []byte {
	b := appendMessage(nil, pgwire.BackendAuthentication, []byte{0, 0, 0, 0}) // AuthenticationOk
	for _, p := range params {
		body := append(append(append([]byte(p.name), 0), p.value...), 0)
		b = appendMessage(b, pgwire.BackendParameterStatus, body)
	}
	if key != nil {
		b = appendMessage(b, pgwire.BackendKeyData, key)
	}
	return pgwire.AppendReadyForQuery(b, pgwire.TxIdle)
}

// quiet reports whether the connection is open with nothing waiting to be read: a server that
// closed it (idle_session_timeout, pg_terminate_backend, a restart) has sent an error or EOF.
func (k *keptConn) quiet() bool { return quietConn(k.conn) }

func (k *keptConn) close() { terminate(k.conn) }

// terminate ends a server session as a client would, with Terminate, then closes conn: the
// server logs a clean exit rather than an unexpected EOF.
func terminate(conn net.Conn) {
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = writeTo(conn, pgwire.AppendTerminate(nil))
	_ = conn.Close()
}

// serverPool keeps reset server connections by startup packet.
type serverPool struct {
	// Limits a configuration reload may change while sessions run (Server.SetReuseLimits).
	idleTimeout, maxAge atomic.Int64 // time.Duration
	maxIdle             atomic.Int64
	log                 *slog.Logger

	mu       sync.Mutex
	idle     map[string][]*keptConn
	n        int
	closed   bool
	stopReap chan struct{}

	reused, kept, discarded atomic.Int64

	serverEnded func() // told when a kept connection is found closed by the server
}

func newServerPool(cfg *Config, log *slog.Logger) *serverPool {
	p := &serverPool{log: log}
	p.setLimits(cfg.ReuseIdleTimeout, cfg.ReuseMaxAge, cfg.ReuseMaxIdle)
	p.idle = make(map[string][]*keptConn)
	return p
}

// setLimits sets the pool's limits; a zero or negative one gets its default. Connections kept
// already meet the new limits at their next take or reaping.
func (p *serverPool) setLimits(idleTimeout, maxAge time.Duration, maxIdle int) {
	if idleTimeout <= 0 {
		idleTimeout = defaultReuseIdleTimeout
	}
	if maxAge <= 0 {
		maxAge = defaultReuseMaxAge
	}
	if maxIdle <= 0 {
		maxIdle = defaultReuseMaxIdle
	}
	p.idleTimeout.Store(int64(idleTimeout))
	p.maxAge.Store(int64(maxAge))
	p.maxIdle.Store(int64(maxIdle))
}

// take returns a kept connection for this startup packet that is still usable, or nil.
func (p *serverPool) take(key string) *keptConn {
	for {
		p.mu.Lock()
		list := p.idle[key]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		k := list[len(list)-1] // the most recently kept: the likeliest to be warm
		list[len(list)-1] = nil
		if len(list) == 1 {
			delete(p.idle, key)
		} else {
			p.idle[key] = list[:len(list)-1]
		}
		p.n--
		p.mu.Unlock()
		young := time.Since(k.born) < time.Duration(p.maxAge.Load())
		if young && k.quiet() {
			p.reused.Add(1)
			return k
		}
		if young && p.serverEnded != nil {
			p.serverEnded() // not quiet: the server said goodbye, or is gone
		}
		p.discarded.Add(1)
		k.close()
	}
}

// keep resets conn and keeps it for the next client with the same startup packet; it closes
// conn when it cannot.
func (p *serverPool) keep(key string, k *keptConn) {
	if time.Since(k.born) >= time.Duration(p.maxAge.Load()) || p.full() {
		p.discarded.Add(1)
		k.close()
		return
	}
	params, err := resetServer(k.conn, k.params)
	if err != nil {
		p.discarded.Add(1)
		p.log.Debug("server connection not kept: reset failed", "err", err)
		k.close()
		return
	}
	k.params, k.since, k.greeting = params, time.Now(), greeting(k.key, params)
	p.mu.Lock()
	if p.closed || int64(p.n) >= p.maxIdle.Load() {
		p.mu.Unlock()
		p.discarded.Add(1)
		k.close()
		return
	}
	p.idle[key] = append(p.idle[key], k)
	p.n++
	if p.stopReap == nil {
		p.stopReap = make(chan struct{})
		go p.reap(p.stopReap)
	}
	p.mu.Unlock()
	p.kept.Add(1)
}

func (p *serverPool) full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed || int64(p.n) >= p.maxIdle.Load()
}

// reap closes connections kept longer than the idle timeout or older than the maximum age, so
// that the server's sessions do not linger and settings changed with ALTER ROLE or ALTER
// DATABASE ... SET reach every client within the maximum age.
func (p *serverPool) reap(stop chan struct{}) {
	tick := time.NewTicker(min(time.Second, time.Duration(p.idleTimeout.Load())/2))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			var old []*keptConn
			p.mu.Lock()
			for key, list := range p.idle {
				live := list[:0]
				for _, k := range list {
					if now.Sub(k.since) >= time.Duration(p.idleTimeout.Load()) || now.Sub(k.born) >= time.Duration(p.maxAge.Load()) {
						old = append(old, k)
					} else {
						live = append(live, k)
					}
				}
				clear(list[len(live):])
				if len(live) == 0 {
					delete(p.idle, key)
				} else {
					p.idle[key] = live
				}
			}
			p.n -= len(old)
			p.mu.Unlock()
			for _, k := range old {
				p.discarded.Add(1)
				k.close()
			}
		}
	}
}

// close ends every kept connection; nothing is kept after it.
func (p *serverPool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var all []*keptConn
	for _, list := range p.idle {
		all = append(all, list...)
	}
	p.idle, p.n = nil, 0
	if p.stopReap != nil {
		close(p.stopReap)
	}
	p.mu.Unlock()
	for _, k := range all {
		k.close()
	}
}

func (p *serverPool) stats() ReuseStats {
	p.mu.Lock()
	n := p.n
	p.mu.Unlock()
	return ReuseStats{Reused: p.reused.Load(), Kept: p.kept.Load(), Discarded: p.discarded.Load(), Idle: n}
}

// resetServer runs DISCARD ALL on an idle server connection: it closes cursors, drops prepared
// statements and temporary tables, releases advisory locks, stops listening, and resets every
// setting (ROLE and SESSION AUTHORIZATION included) to the values the startup packet gave. The
// ParameterStatus messages it brings update params. Anything unexpected fails it, and so does
// data left after its ReadyForQuery, which nothing would be there to read.
func resetServer(conn net.Conn, params []serverParam) ([]serverParam, error) {
	_ = conn.SetDeadline(time.Now().Add(resetTimeout))
	defer func() { _ = conn.SetDeadline(noDeadline) }()
	if err := writeTo(conn, appendMessage(nil, pgwire.FrontendQuery, []byte("DISCARD ALL\x00"))); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 512)
	done := false
	for {
		buf = slices.Grow(buf, 256)
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for len(buf) >= headerLen {
			typ, size := buf[0], 1+int(be32(buf[1:]))
			if size < headerLen || size > maxStartupLen {
				return nil, fmt.Errorf("invalid message length %d in the reset's answer", size)
			}
			if len(buf) < size {
				break
			}
			body := buf[headerLen:size]
			switch typ {
			case pgwire.BackendCommandComplete:
				done = string(body) == "DISCARD ALL\x00"
			case pgwire.BackendParameterStatus:
				params = setParam(params, body)
			case pgwire.BackendNoticeResponse, pgwire.BackendNotificationResponse: // a notice, or a notification that came before UNLISTEN: nobody to tell
			case pgwire.BackendErrorResponse:
				code := errorCode(body)
				return nil, fmt.Errorf("DISCARD ALL failed with SQLSTATE %s", code[:])
			case pgwire.BackendReadyForQuery:
				switch {
				case !done || len(body) != 1 || body[0] != pgwire.TxIdle:
					return nil, errors.New("DISCARD ALL did not complete outside a transaction")
				case len(buf) > size:
					return nil, errors.New("unexpected data after the reset")
				}
				return params, nil
			default:
				return nil, fmt.Errorf("unexpected message %q in the reset's answer", typ)
			}
			buf = append(buf[:0], buf[size:]...)
		}
		if err != nil {
			return nil, err
		}
	}
}
