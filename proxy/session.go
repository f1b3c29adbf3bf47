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

	killed       atomic.Bool
	upMu         sync.Mutex  // guards upstream against kill, which runs on another goroutine
	clientDone   atomic.Bool // the client side ended first and will close the client itself
	terminated   atomic.Bool // the client sent Terminate: the server closing is expected
	upstreamLost atomic.Bool // reading from the server failed: its backend is gone

	// Server connection reuse (srv.pool non-nil).
	serverParams []serverParam // ParameterStatus in effect, for the next client (s2c goroutine)
	serverBorn   time.Time     // when the server connection was made
	reuseKey     string        // the startup packet, canonical, when reuse is on and it may be reused; else ""
}

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
	kept := false
	defer func() {
		if !kept {
			up.Close()
		}
	}()
	if s.killed.Load() { // Shutdown raced with the dial
		s.kill()
	}

	q := &queue{}
	fe, be := newFrontend(q, s.srv.cfg.MaxMessageSize, &s.terminated), newBackend(s, q)
	var front, back inspector = fe, be
	c2s := newPump(s.client, up, clientBufSize, maxHold)
	s2c := newPump(up, s.client, serverBufSize, maxHold)
	s2c.preload(greeting)
	s.s2c = s2c
	fe.keepServer = s.reuseKey != "" && c2s.dstRaw != nil // only plain sockets are kept
	switch {
	case s.info.Replication:
		// Replication speaks its own sub-protocol inside COPY; it is forwarded untouched.
		front, back = passthrough{}, passthrough{}
		be.cache = nil
	case s.srv.cfg.Cache != nil:
		fe.co = newCoalescing(s, fe, s.srv.cfg.Cache)
		s2c.dstMu = new(sync.Mutex)
	}

	var wg sync.WaitGroup
	var serverErr error
	wg.Add(1)
	s.srv.workers.run(func() {
		defer wg.Done()
		serverErr = s2c.run(back)
		var we *errWrite
		if !errors.As(serverErr, &we) && !s.clientDone.Load() && !s.killed.Load() {
			s.upstreamLost.Store(true) // the server ended it, not the proxy closing up
			if !s.terminated.Load() {
				s.srv.forgetAnswers("the server ended a session")
			}
		}
		s.serverEnded(serverErr, back)
	})
	clientErr := c2s.run(front)

	// The client side is done: stop the server side, then say why if the client should know.
	// A server connection that may be kept is only interrupted, not closed.
	s.clientDone.Store(true)
	// Nothing the server still sends is for the client now. A write to a client that stopped
	// reading must not hold the server side: the server pump writes from inside its read of the
	// server's socket, so closing that socket takes effect (and frees a backend blocked sending
	// a large answer) only once the write returns.
	_ = s.client.SetWriteDeadline(time.Now())
	keep := errors.Is(clientErr, errTerminated) && s.txStatus.Load() == uint32(pgwire.TxIdle)
	if keep {
		_ = up.SetReadDeadline(time.Now())
	} else {
		s.endUpstream(fe.keepServer && s.terminated.Load())
	}
	wg.Wait()
	if keep {
		keep = isTimeout(serverErr) && s2c.idle() && q.published == be.cons.popped && be.txStatus == pgwire.TxIdle &&
			be.authOK && !be.authAsked && !s.killed.Load()
		if !keep {
			s.endUpstream(true)
		}
	}
	var tooLarge *errTooLarge
	var malformed *errMalformed
	switch {
	case s.killed.Load():
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
	if !s.info.Replication && q.published > be.cons.popped {
		s.cancelInFlight()
	}
	abandonFills(fe, be)

	if s.cancelKey != nil {
		s.srv.cancels.remove(s.cancelKey)
	}
	stats.BytesFromClient, stats.BytesFromServer = c2s.bytes, s2c.bytes
	c2s.release() // both pumps have stopped
	s2c.release()
	if keep {
		stats.Err = nil // the client said goodbye; the server side was only interrupted
		_ = up.SetReadDeadline(noDeadline)
		s.srv.pool.keep(s.reuseKey, &keptConn{conn: up, target: s.target, key: s.cancelKey,
			params: s.serverParams, born: s.serverBorn})
		kept = true
	} else {
		stats.Err = sessionError(clientErr, serverErr, s.killed.Load())
	}
	s.logEnd(stats.Err)
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
	if s.cancelKey == nil || s.terminated.Load() || s.upstreamLost.Load() {
		return
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
	if s.clientDone.Load() || s.killed.Load() {
		return // the client side is ending the session and speaks for it
	}
	var we *errWrite
	if !errors.As(err, &we) && !lastWasError(back) && !s.terminated.Load() {
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
	s.killed.Store(true)
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
