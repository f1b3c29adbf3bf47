package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// Session is one client connection forwarded 1:1 to one upstream connection. Two goroutines
// move the bytes, one per direction; each inspects what it forwards (frontend, backend) and they
// meet only in the queue of expected answers.
type Session struct {
	srv      *Server
	observer Observer
	client   net.Conn
	upstream net.Conn
	target   *target
	startup  *startup
	info     ConnInfo

	txStatus   atomic.Uint32 // the last ReadyForQuery status: 'I', 'T' or 'E'
	cancelKey  []byte        // BackendKeyData: process ID and secret key
	statements atomic.Int64  // statements completed (by the server or the cache)
	s2c        *pump         // server to client: the cache's answers are written between its runs
	co         coalesceState // shared by the two sides when the proxy has a cache

	end  sessionEnd // why the session ends: the first reason, kept for good
	upMu sync.Mutex // guards upstream against kill, which runs on another goroutine

	// Server connection reuse (srv.pool non-nil).
	serverParams []serverParam // ParameterStatus in effect, for the next client (s2c goroutine)
	serverBorn   time.Time     // when the server connection was made
	reuseKey     string        // the startup packet, canonical, when reuse is on and it may be reused; else ""
}

// endReason is why a session ends. Each side and Shutdown say it as it happens, on their own
// goroutines; the first one said is the session's (sessionEnd), and everything that depends on
// how the session ended reads that one value.
type endReason uint32

const (
	running endReason = iota
	// clientTerminated: the client sent Terminate. The server closing after it is expected, not
	// a lost server; a Terminate held back for reuse may leave the server connection kept.
	clientTerminated
	// clientLeft: the client side ended first (the client closed, or broke the protocol) and
	// closes the client itself.
	clientLeft
	// serverLost: reading from the server failed first, not by the proxy's doing: the backend
	// is gone, and the client is told so.
	serverLost
	// shutdown: the proxy's Shutdown closed the session past its grace period.
	shutdown
)

// sessionEnd holds a session's end reason, set once.
type sessionEnd struct{ r atomic.Uint32 }

// set makes r the end reason unless one was set before; it reports whether it did.
func (e *sessionEnd) set(r endReason) bool { return e.r.CompareAndSwap(uint32(running), uint32(r)) }

// reason is the end reason, running while there is none.
func (e *sessionEnd) reason() endReason { return endReason(e.r.Load()) }

func newSession(srv *Server, st *startup, clientAddr string, accepted time.Time) *Session {
	s := &Session{srv: srv, observer: srv.cfg.Observer, client: st.conn, startup: st}
	s.info = ConnInfo{
		ID:              srv.nextID.Add(1),
		ClientAddr:      clientAddr,
		User:            st.params["user"],
		Database:        st.params["database"],
		ApplicationName: st.params["application_name"],
		Params:          st.params,
		Protocol:        st.protocol,
		TLS:             st.tls,
		Replication:     isReplication(st.params),
		OpenedAt:        accepted,
	}
	if s.info.Database == "" {
		s.info.Database = s.info.User // PostgreSQL's default
	}
	return s
}

// Info describes the client connection.
func (s *Session) Info() *ConnInfo { return &s.info }

// run connects upstream, forwards until either side closes, then reports the connection closed.
func (s *Session) run() {
	s.observer.ConnOpened(&s.info)
	stats := ConnStats{}
	defer func() {
		stats.Duration = time.Since(s.info.OpenedAt)
		stats.Statements = s.statements.Load()
		s.observer.ConnClosed(&s.info, stats)
	}()

	up, t, greeting, err := s.connectUpstream()
	if err != nil {
		stats.Err = err
		return
	}
	s.upMu.Lock()
	s.upstream, s.target = up, t
	s.upMu.Unlock()
	if s.end.reason() == shutdown { // Shutdown raced with the dial
		s.kill()
	}
	c := s.plumb(up, greeting)
	clientErr, serverErr, keep := s.forward(c)
	if !s.finish(c, clientErr, serverErr, keep, &stats) {
		up.Close()
	}
	s.logEnd(stats.Err)
}

// conduit is a session's two directions and what inspects each.
type conduit struct {
	up          net.Conn
	q           *queue
	fe          *frontend
	be          *backend
	front, back inspector
	c2s, s2c    *pump
}

// plumb builds the session's conduit over its server connection up; greeting is what a kept
// connection replays to the client in place of the server's.
func (s *Session) plumb(up net.Conn, greeting []byte) *conduit {
	c := &conduit{up: up, q: &queue{}}
	c.fe, c.be = newFrontend(c.q, s.srv.cfg.MaxMessageSize, &s.end), newBackend(s, c.q)
	c.front, c.back = c.fe, c.be
	c.c2s = newPump(s.client, up, clientBufSize, maxHold)
	c.s2c = newPump(up, s.client, serverBufSize, maxHold)
	c.s2c.preload(greeting)
	s.s2c = c.s2c
	c.fe.keepServer = s.reuseKey != "" && c.c2s.dstRaw != nil // only plain sockets are kept
	switch {
	case s.info.Replication:
		// Replication speaks its own sub-protocol inside COPY; it is forwarded untouched.
		c.front, c.back = passthrough{}, passthrough{}
		c.be.cache = nil
	case s.srv.cfg.Cache != nil:
		c.fe.co = newCoalescing(s, c.fe, s.srv.cfg.Cache)
		c.s2c.dstMu = new(sync.Mutex)
	}
	return c
}

// forward runs both directions until both have stopped, and returns why each stopped and
// whether the server connection may serve another client. The client's side runs on this
// goroutine; when it stops, the server's is stopped too (only interrupted, when the client
// said Terminate and its server connection may be kept).
func (s *Session) forward(c *conduit) (clientErr, serverErr error, keep bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	s.srv.workers.run(func() {
		defer wg.Done()
		serverErr = c.s2c.run(c.back)
		var we *errWrite
		if !errors.As(serverErr, &we) && s.end.set(serverLost) {
			// The server ended it, not the client nor the proxy closing up: it may have
			// restarted, and cached answers may be older than its data.
			s.srv.forgetAnswers("the server ended a session")
		}
		s.serverEnded(serverErr, c.back)
	})
	clientErr = c.c2s.run(c.front)
	s.end.set(clientLeft)
	// Nothing the server still sends is for the client now. A write to a client that stopped
	// reading must not hold the server side: the server pump writes from inside its read of the
	// server's socket, so closing that socket takes effect (and frees a backend blocked sending
	// a large answer) only once the write returns.
	_ = s.client.SetWriteDeadline(time.Now())
	keep = errors.Is(clientErr, errTerminated) && s.txStatus.Load() == uint32(pgwire.TxIdle)
	if keep {
		_ = c.up.SetReadDeadline(time.Now())
	} else {
		s.endUpstream(c.fe.keepServer && s.end.reason() == clientTerminated)
	}
	wg.Wait()
	if keep {
		keep = s.end.reason() == clientTerminated && isTimeout(serverErr) && c.s2c.idle() && c.be.reusable()
		if !keep {
			s.endUpstream(true)
		}
	}
	return clientErr, serverErr, keep
}

// finish ends a session whose two directions have stopped: it tells the client why when it
// should know, cancels what the server still runs for a client that vanished, and keeps the
// server connection for another client when keep says it may. It reports whether it kept it;
// if not, the caller closes it.
func (s *Session) finish(c *conduit, clientErr, serverErr error, keep bool, stats *ConnStats) (kept bool) {
	var tooLarge *errTooLarge
	var malformed *errMalformed
	switch {
	case s.end.reason() == shutdown:
		sendError(s.client, "FATAL", codeAdminShutdown, "terminating connection: the proxy is shutting down")
	case errors.As(clientErr, &tooLarge):
		sendError(s.client, "FATAL", codeProtocolViolation, "invalid message: "+tooLarge.Error())
	case errors.As(clientErr, &malformed):
		sendError(s.client, "FATAL", codeProtocolViolation, malformed.Error())
	}
	s.client.Close()
	// Both pumps have stopped, so the queue's counts are settled. Answers still expected mean a
	// statement may be running: closing the connection does not stop it (the server notices a
	// vanished client only when it next reads or writes), so cancel it as the client would have.
	if !s.info.Replication && c.q.published > c.be.cons.popped {
		s.cancelInFlight()
	}
	abandonFills(c.fe, c.be)

	if s.cancelKey != nil {
		s.srv.cancels.remove(s.cancelKey)
	}
	stats.BytesFromClient, stats.BytesFromServer = c.c2s.bytes, c.s2c.bytes
	c.c2s.release() // both pumps have stopped
	c.s2c.release()
	if !keep {
		stats.Err = sessionError(clientErr, serverErr, s.end.reason() == shutdown)
		return false
	}
	stats.Err = nil // the client said goodbye; the server side was only interrupted
	_ = c.up.SetReadDeadline(noDeadline)
	s.srv.pool.keep(s.reuseKey, &keptConn{conn: c.up, target: s.target, key: s.cancelKey,
		params: s.serverParams, born: s.serverBorn})
	return true
}

// connectUpstream gives the session its server connection: a kept one for the same startup
// packet (with the greeting to replay to the client in place of the server's), or a new one
// with the startup packet sent. On failure the client has been told why.
func (s *Session) connectUpstream() (net.Conn, *target, []byte, error) {
	if s.srv.pool != nil && !s.info.Replication {
		s.reuseKey = reuseKey(s.startup) // "" when the packet is not one to reuse for
	}
	if s.reuseKey != "" {
		if k := s.srv.pool.take(s.reuseKey); k != nil {
			// The greeting's ParameterStatus messages pass through the backend, which finds
			// each of them here already and so allocates nothing for them.
			s.serverBorn, s.serverParams = k.born, k.params
			return k.conn, k.target, k.greeting, nil
		}
	}
	deadline := time.Now().Add(s.srv.cfg.ConnectTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	up, t, err := s.srv.cfg.Upstream.dial(ctx)
	cancel()
	if err != nil {
		s.srv.log.Warn("cannot connect to upstream", "upstream", s.srv.cfg.Upstream.String(), "client", s.info.ClientAddr, "err", err)
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			// The proxy's own limit, not the server's fault: the same answer as at accept.
			sendError(s.client, "FATAL", codeTooManyConnections, outOfFDsMessage)
		} else {
			s.srv.forgetAnswers("cannot connect to the server")
			sendError(s.client, "FATAL", codeConnectionFailure,
				fmt.Sprintf("could not connect to upstream %s: %v", s.srv.cfg.Upstream.String(), err))
		}
		return nil, nil, nil, err
	}
	s.serverBorn = time.Now()
	if err := writeTo(up, s.startup.packet); err != nil {
		up.Close()
		sendError(s.client, "FATAL", codeConnectionFailure, "upstream closed during startup: "+err.Error())
		return nil, nil, nil, err
	}
	if err := awaitAnswer(up, deadline); err != nil {
		up.Close()
		s.srv.log.Warn("upstream did not answer the startup packet", "upstream", t.address, "client", s.info.ClientAddr, "err", err)
		s.srv.forgetAnswers("the server does not answer")
		sendError(s.client, "FATAL", codeConnectionFailure, fmt.Sprintf(
			"could not connect to upstream %s: no answer to the startup packet within %v", t.address, s.srv.cfg.ConnectTimeout))
		return nil, nil, nil, err
	}
	return up, t, nil, nil
}

// awaitAnswer waits until the server has answered the startup packet (or closed), at most until
// deadline. The dial alone bounds nothing once the kernel has completed the TCP handshake: a
// server that is frozen, or too busy to start a backend, left the client waiting far past
// --connect-timeout, where libpq's connect_timeout covers the whole connection. A TLS connection
// has already heard from the server during its handshake, within the same deadline.
func awaitAnswer(c net.Conn, deadline time.Time) error {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	_ = c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(noDeadline)
	return rc.Read(func(fd uintptr) bool { return peek(fd) != peekEmpty })
}

// endUpstream closes the server connection, first sending the Terminate the client sent when
// it was held back for a reuse that did not happen.
func (s *Session) endUpstream(sendTerminate bool) {
	if sendTerminate {
		terminate(s.upstream)
	} else {
		s.upstream.Close()
	}
}

// cancelInFlight sends the server a CancelRequest for the session's backend, when the client
// left without Terminate while the server still owed it answers.
func (s *Session) cancelInFlight() {
	if r := s.end.reason(); s.cancelKey == nil || r == clientTerminated || r == serverLost {
		return // the server has no statement of this client running, or no backend left
	}
	// A CancelRequest that reaches the backend before it has read the statement is dropped (the
	// server ignores a cancel while it waits for a command), and the statement then runs to its
	// end: the server notices the closed connection only when it next reads or writes. The
	// statement and the cancel travel different connections, so the race is real (1 of 100
	// vanishing clients in internal/chaos under -race): a second cancel a moment later finds the
	// statement running. One that reaches a backend already idle or gone is ignored, and the
	// secret key keeps it from any other.
	for _, wait := range [...]time.Duration{0, cancelAgainAfter} {
		time.Sleep(wait)
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.ConnectTimeout)
		err := sendCancel(ctx, s.target, s.cancelKey)
		cancel()
		if err != nil {
			s.srv.log.Info("cancelling the statement of a vanished client failed", "upstream", s.target.address, "err", err)
			return
		}
	}
	s.srv.log.Debug("client left with a statement in flight: cancelled it", "client", s.info.ClientAddr)
}

// cancelAgainAfter is when the statement of a vanished client is cancelled a second time.
const cancelAgainAfter = 100 * time.Millisecond

// serverEnded runs on the server-side goroutine when the upstream stops: the client is told
// when the server vanished without saying why, then closed so the client side stops too.
func (s *Session) serverEnded(err error, back inspector) {
	r := s.end.reason()
	if r == clientLeft || r == shutdown {
		return // the client side is ending the session and speaks for it
	}
	var we *errWrite
	if !errors.As(err, &we) && !lastWasError(back) && r != clientTerminated {
		sendError(s.client, "FATAL", codeConnectionFailure, "lost connection to upstream "+s.srv.cfg.Upstream.String())
	}
	s.client.Close()
}

func lastWasError(ins inspector) bool {
	b, ok := ins.(*backend)
	return ok && b.lastError
}

// kill ends the session from outside (Shutdown past its grace period).
func (s *Session) kill() {
	s.end.set(shutdown)
	s.upMu.Lock()
	up := s.upstream
	s.upMu.Unlock()
	if up != nil { // else run closes it when it gets one
		up.Close()
	}
	_ = s.client.SetReadDeadline(time.Now())
}

// backendKey records BackendKeyData so CancelRequests carrying it can be forwarded.
func (s *Session) backendKey(body []byte) {
	if len(body) < 8 || s.cancelKey != nil {
		return
	}
	s.cancelKey = append([]byte(nil), body...)
	s.srv.cancels.add(s.cancelKey, s.target)
}

func (s *Session) authenticated(ok bool, sqlstate string) {
	if !ok && s.info.TLS && s.target != nil && s.target.tls != nil {
		// The likeliest cause when both legs are TLS: SCRAM channel binding, which ties the login
		// to the certificate the client sees (the proxy's), so the server must refuse it.
		s.srv.log.Warn("client authentication failed with TLS on both sides of the proxy; if the server said "+
			"\"channel binding\", the client must connect with channel_binding=disable (SCRAM channel binding cannot pass "+
			"a TLS-terminating proxy), or the proxy must reach the server with sslmode=disable",
			"client", s.info.ClientAddr, "user", s.info.User, "sqlstate", sqlstate)
	}
	s.observer.ConnAuthenticated(&s.info, ok, sqlstate)
}

// sessionError picks the error that explains the end of a session; nil for an orderly close.
func sessionError(clientErr, serverErr error, killed bool) error {
	switch {
	case killed:
		return errors.New("closed by proxy shutdown")
	case !isClosed(clientErr) && !isTimeout(clientErr):
		var we *errWrite
		if errors.As(clientErr, &we) && isClosed(we.err) {
			return nil
		}
		return fmt.Errorf("client side: %w", clientErr)
	case !isClosed(serverErr):
		var we *errWrite
		if errors.As(serverErr, &we) {
			return nil // the client left while the server was still talking
		}
		return fmt.Errorf("server side: %w", serverErr)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Session) logEnd(err error) {
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	s.srv.log.Debug("session ended", "client", s.info.ClientAddr, "user", s.info.User, "database", s.info.Database, "err", err)
}

// passthrough forwards without looking: replication connections.
type passthrough struct{}

func (passthrough) header(byte, int) error                      { return nil }
func (passthrough) message(byte, []byte, bool) (verdict, error) { return 0, nil }
func (passthrough) injection() []byte                           { return nil }
func (passthrough) part(byte, []byte, bool)                     {}
func (passthrough) wantsWhole(byte) bool                        { return false }
func (passthrough) beforeWrite()                                {}
func (passthrough) afterWrite()                                 {}
