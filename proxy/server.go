package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config shapes a Server. Zero values get the defaults documented on each field.
type Config struct {
	// Upstream is the PostgreSQL server every client connection is forwarded to.
	Upstream *Upstream
	// TLS, when set, terminates TLS for clients that ask for it (SSLRequest answered 'S');
	// without it SSLRequest is answered 'N'.
	TLS *tls.Config
	// Observer hears about connections and statements. Default: NopObserver.
	Observer Observer
	// Cache, when set, answers repeated watched reads (coalescing); nil forwards everything.
	Cache Cache
	// Logger receives connection-level diagnostics. Default: slog.Default().
	Logger *slog.Logger
	// MaxConnections bounds concurrent client connections; the next one is refused with
	// SQLSTATE 53300. 0 means no limit.
	MaxConnections int
	// MaxMessageSize bounds the body of a client message; a larger one closes that connection
	// with SQLSTATE 08P01. Default 1 GiB - 1, PostgreSQL's own limit.
	MaxMessageSize int
	// StartupTimeout bounds how long a client may take to send its startup packet (and finish
	// TLS). Default 10s.
	StartupTimeout time.Duration
	// ConnectTimeout bounds connecting to the upstream. Default 10s.
	ConnectTimeout time.Duration

	// ReuseServerConnections keeps the server connection of a client that leaves cleanly (with
	// Terminate, outside a transaction), resets it with DISCARD ALL and gives it to the next
	// client with the same startup packet, as PgBouncer's session mode does. Only connections
	// the server let in without asking for a password are kept (see reuse.go). Off: every client
	// gets its own new server connection.
	ReuseServerConnections bool
	// ReuseIdleTimeout closes a kept connection nobody took for this long. Default 60s.
	ReuseIdleTimeout time.Duration
	// ReuseMaxAge closes a server connection this old instead of keeping it again, so that
	// ALTER ROLE/DATABASE ... SET and configuration reloads reach every client. Default 10m.
	ReuseMaxAge time.Duration
	// ReuseMaxIdle bounds the connections kept at once. Default 100.
	ReuseMaxIdle int
}

// Buffer sizes: a client mostly sends short statements; the server sends result sets.
const (
	clientBufSize = 8 << 10
	serverBufSize = 32 << 10
	// maxHold is the largest message a pump holds whole to decode it; a larger statement text
	// is observed truncated and streams through.
	maxHold = 1 << 20

	defaultMaxMessageSize = 1<<30 - 1

	// idleWorkers bounds the goroutines kept for the next sessions (two per session).
	idleWorkers = 256
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("proxy: server closed")

// Server accepts client connections and runs a Session for each.
type Server struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{}
	closing   bool
	wg        sync.WaitGroup

	active  atomic.Int64 // client connections being served, cancels included
	nextID  atomic.Uint64
	cancels cancelKeys
	pool    *serverPool // kept server connections; nil without ReuseServerConnections
	workers *workers    // goroutines for sessions, kept between them

	spareMu   sync.Mutex
	spare     *os.File // a descriptor held in reserve to refuse clients with (refuseOutOfFDs)
	spareDone bool     // Shutdown closed the reserve for good
}

// NewServer checks cfg and fills in defaults.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("proxy: no upstream")
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = defaultMaxMessageSize
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 10 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.TLS != nil && cfg.TLS.MinVersion < tls.VersionTLS12 {
		// TLS 1.0 and 1.1 are broken; PostgreSQL's own default minimum is 1.2 too. The caller's
		// config is left as it is.
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.MinVersion = tls.VersionTLS12
	}
	srv := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*Session]struct{}),
		workers:   newWorkers(idleWorkers, 10*time.Second),
	}
	if cfg.ReuseServerConnections {
		srv.pool = newServerPool(&cfg, cfg.Logger)
		srv.pool.serverEnded = func() { srv.forgetAnswers("the server closed a kept connection") }
	}
	srv.spare, _ = os.Open(os.DevNull) // none: out of descriptors, clients wait in the backlog
	return srv, nil
}

// Listen listens on a TCP address for Serve. Accepted connections get TCP keepalive with the
// system's timings, as PostgreSQL and PgBouncer give theirs: Go's own default sets three more
// socket options on every connection, which a program connecting once per statement pays for.
func Listen(address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}
	return lc.Listen(context.Background(), "tcp", address)
}

// Serve accepts connections on ln until Shutdown or Close. It always returns a non-nil error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			outOfFDs := errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
			if outOfFDs && s.refuseOutOfFDs(ln) {
				continue // the next waiting client, refused the same way or served
			}
			if outOfFDs || errors.Is(err, syscall.ECONNABORTED) {
				// Out of file descriptors and none held in reserve, or no client waiting: wait
				// a little, as net/http does, rather than spin on a failing accept.
				if backoff == 0 {
					s.log.Warn("accept failed; refusing new clients until descriptors free up", "err", err)
				}
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.wg.Add(1)
		s.workers.run(func() {
			defer s.wg.Done()
			s.handle(conn)
		})
	}
}

const outOfFDsMessage = "sorry, too many clients already: the proxy is out of file descriptors (raise its limit, ulimit -n)"

// refuseOutOfFDs tells one waiting client why it cannot be served, when the process is out of
// file descriptors: it gives up the descriptor held in reserve, accepts with it, sends the
// client PostgreSQL's "too many clients" error and takes the reserve back. Without it a client
// would wait in the listen backlog, unanswered, until its own timeout. False when there was no
// reserve or no client waiting.
func (s *Server) refuseOutOfFDs(ln net.Listener) bool {
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	if s.spareDone {
		return false
	}
	if s.spare == nil {
		s.spare, _ = os.Open(os.DevNull) // descriptors may have freed up since the last try
		return false
	}
	dl, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return false
	}
	s.spare.Close()
	s.spare = nil
	// Accept only a client already waiting: an error with no one in the backlog says nothing.
	_ = dl.SetDeadline(time.Now().Add(10 * time.Millisecond))
	conn, err := ln.Accept()
	_ = dl.SetDeadline(noDeadline)
	if err == nil {
		s.log.Warn("out of file descriptors: client refused", "client", conn.RemoteAddr().String())
		sendError(conn, "FATAL", codeTooManyConnections, outOfFDsMessage)
		conn.Close()
	}
	s.spare, _ = os.Open(os.DevNull)
	return err == nil
}

// forgetAnswers drops every cached answer when the server may have restarted: it ended a session
// the proxy did not end, closed a kept connection, or cannot be reached. A restarted server can
// have lost commits the cache saw (synchronous_commit = off, a crash, a failover), and the data
// may have changed while it was down: nothing cached before is served after. Rare events, each
// costing one miss per key.
func (s *Server) forgetAnswers(why string) {
	if s.cfg.Cache == nil {
		return
	}
	s.cfg.Cache.Invalidate(Touch{All: true})
	s.log.Debug("cached answers dropped", "why", why)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, lets open sessions finish until ctx is done, then closes the rest,
// telling their clients (SQLSTATE 57P01) as PostgreSQL does on a fast shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.spareMu.Lock()
	if s.spare != nil {
		s.spare.Close()
		s.spare = nil
	}
	s.spareDone = true
	s.spareMu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	if s.pool != nil {
		// After the last session, which may still keep its connection before the pool closes:
		// then keep closes it.
		defer s.pool.close()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sess := range s.sessions {
		sess.kill()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// Close closes the listeners and every session at once.
func (s *Server) Close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Shutdown(ctx)
}

// ReuseStats reports what server connection reuse did; zero without ReuseServerConnections.
func (s *Server) ReuseStats() ReuseStats {
	if s.pool == nil {
		return ReuseStats{}
	}
	return s.pool.stats()
}

// ProbeUpstream says whether a PostgreSQL server answers at the upstream within the connect
// timeout, as a session's connection would have to (Upstream.Probe).
func (s *Server) ProbeUpstream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	return s.cfg.Upstream.Probe(ctx)
}

// ActiveConnections returns the number of client connections being served.
func (s *Server) ActiveConnections() int { return int(s.active.Load()) }

// SetReuseLimits changes the limits of server connection reuse (a configuration reload): the
// idle timeout, the maximum age and how many are kept; zero keeps a limit's default. It does
// nothing when the server does not reuse connections: switching reuse on needs a restart.
func (s *Server) SetReuseLimits(idleTimeout, maxAge time.Duration, maxIdle int) {
	if s.pool != nil {
		s.pool.setLimits(idleTimeout, maxAge, maxIdle)
	}
}

// handle runs one client connection from startup to close.
func (s *Server) handle(conn net.Conn) {
	accepted := time.Now() // the client is busy opening its connection from here on
	defer conn.Close()
	n := s.active.Add(1)
	defer s.active.Add(-1)
	if s.cfg.MaxConnections > 0 && n > 2*int64(s.cfg.MaxConnections) {
		// Far over the limit (a flood of connections that have not even sent their startup
		// packet, each of which may hold a goroutine for StartupTimeout): refuse before reading
		// anything, as the postmaster does past its limit of children.
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		sendError(conn, "FATAL", codeTooManyConnections, "sorry, too many clients already")
		return
	}

	_ = conn.SetDeadline(time.Now().Add(s.cfg.StartupTimeout))
	st, err := readStartup(conn, s.cfg.TLS)
	if err != nil {
		var se *errStartup
		if errors.As(err, &se) {
			sendError(conn, "FATAL", se.code, se.msg)
		}
		if !isClosed(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
			s.log.Info("client startup failed", "client", conn.RemoteAddr().String(), "err", err)
		}
		return
	}
	defer st.conn.Close()
	if st.cancel != nil {
		s.forwardCancel(st.cancel)
		return
	}
	if s.cfg.MaxConnections > 0 && n > int64(s.cfg.MaxConnections) {
		sendError(st.conn, "FATAL", codeTooManyConnections, "sorry, too many clients already")
		return
	}
	_ = st.conn.SetDeadline(noDeadline)

	sess := newSession(s, st, conn.RemoteAddr().String(), accepted)
	if !s.track(sess) {
		sendError(st.conn, "FATAL", codeAdminShutdown, "the proxy is shutting down")
		return
	}
	defer s.untrack(sess)
	sess.run()
}

func (s *Server) track(sess *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) untrack(sess *Session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

// forwardCancel sends a client's CancelRequest to the server that issued its key. Like
// PostgreSQL, it never answers the client: the cancel connection just closes.
func (s *Server) forwardCancel(key []byte) {
	t := s.cancels.lookup(key)
	if t == nil {
		s.log.Debug("CancelRequest with an unknown key dropped")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ConnectTimeout)
	defer cancel()
	if err := sendCancel(ctx, t, key); err != nil {
		s.log.Info("forwarding CancelRequest failed", "upstream", t.address, "err", err)
	}
}
