package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// Upstream is where sessions connect: the host(s), port(s) and TLS settings of a DSN, in the
// order libpq would try them (sslmode=prefer, for instance, is TLS first and plain second).
// The DSN's user, password and database are not used: every client authenticates itself.
type Upstream struct {
	targets []target
	name    string // host:port of the first target, for messages
}

// target is one way to reach the server.
type target struct {
	network, address string
	tls              *tls.Config // nil: no TLS
}

// ParseUpstream reads a postgres:// URL or a key=value DSN with pgconn, so PG* environment
// variables, service files and sslmode behave as users of libpq expect. "" means the PG*
// defaults.
func ParseUpstream(dsn string) (*Upstream, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("upstream DSN: %w", err)
	}
	u := &Upstream{}
	add := func(host string, port uint16, tc *tls.Config) {
		network, address := pgconn.NetworkAddress(host, port)
		u.targets = append(u.targets, target{network: network, address: address, tls: tc})
	}
	add(cfg.Host, cfg.Port, cfg.TLSConfig)
	for _, fb := range cfg.Fallbacks {
		add(fb.Host, fb.Port, fb.TLSConfig)
	}
	u.name = cfg.Host + ":" + strconv.Itoa(int(cfg.Port))
	if cfg.Host != "" && cfg.Host[0] == '/' {
		u.name = u.targets[0].address
	}
	return u, nil
}

// String names the upstream for logs and error messages.
func (u *Upstream) String() string { return u.name }

// dial connects to the first target that answers, negotiating TLS as that target asks.
func (u *Upstream) dial(ctx context.Context) (net.Conn, *target, error) {
	var errs []error
	for i := range u.targets {
		t := &u.targets[i]
		conn, err := t.dial(ctx)
		if err == nil {
			return conn, t, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, errors.Join(errs...)
}

var errServerRefusedTLS = errors.New("server does not support TLS")

func (t *target) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer // Go sets TCP_NODELAY on every TCP connection: answers are never delayed
	conn, err := d.DialContext(ctx, t.network, t.address)
	if err != nil {
		return nil, err
	}
	if t.tls == nil {
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(noDeadline)
	}
	req := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f} // SSLRequest
	if _, err := conn.Write(req); err != nil {
		conn.Close()
		return nil, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		conn.Close()
		if isTimeout(err) {
			// A frozen or overloaded server: say so, not "read tcp ...: i/o timeout".
			return nil, errors.New("no answer to the SSL request within the connect timeout")
		}
		return nil, err
	}
	if answer[0] != pgwire.EncryptionAccepted {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", t.address, errServerRefusedTLS)
	}
	tconn := tls.Client(conn, t.tls)
	if err := tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: TLS handshake: %w", t.address, err)
	}
	return tconn, nil
}
