package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
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
	answer, err := askTLS(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if answer != pgwire.EncryptionAccepted {
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

// sslRequest is the untyped SSLRequest packet: its length, 8, then the request code.
var sslRequest = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), sslRequestCode)

// askTLS sends an SSLRequest on conn and returns the server's one-byte answer.
func askTLS(conn net.Conn) (byte, error) {
	if _, err := conn.Write(sslRequest); err != nil {
		return 0, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		if isTimeout(err) {
			// A frozen or overloaded server: say so, not "read tcp ...: i/o timeout".
			return 0, errors.New("no answer to the SSL request within the connect timeout")
		}
		return 0, err
	}
	return answer[0], nil
}

// Probe says whether a PostgreSQL server answers at the upstream before ctx ends (/readyz). It
// asks as little as a server can be asked: an SSLRequest, whose one-byte answer only PostgreSQL
// gives, and never a startup packet, so no backend logs in, no role or database is needed, and
// the server logs nothing (with log_connections, only the connection received). Each address is
// asked once, in the sessions' order, and the first answer is enough, as it is for a session.
func (u *Upstream) Probe(ctx context.Context) error {
	var errs []error
	asked := make(map[[2]string]bool, len(u.targets))
	for i := range u.targets {
		t := &u.targets[i]
		if asked[[2]string{t.network, t.address}] { // sslmode=prefer: TLS then plain, one address
			continue
		}
		asked[[2]string{t.network, t.address}] = true
		err := t.probe(ctx)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (t *target) probe(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, t.network, t.address)
	if err != nil {
		return err // names the address already
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	answer, err := askTLS(conn)
	if err != nil {
		return fmt.Errorf("%s: %w", t.address, err)
	}
	switch answer {
	case pgwire.EncryptionRefused:
		// A connection that ends before its startup packet is one PostgreSQL does not log.
		return nil
	case pgwire.EncryptionAccepted:
		// Closing now would make the server log "could not accept SSL connection: EOF detected"
		// at every probe; a finished handshake closed with close_notify leaves it nothing to
		// log. It checks the certificate as the sessions do when the target has their TLS
		// settings (a server they would refuse is not ready for them either); with
		// sslmode=disable it checks nothing, since nothing is sent over it.
		conf := t.tls
		if conf == nil {
			conf = &tls.Config{InsecureSkipVerify: true}
		}
		tconn := tls.Client(conn, conf)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("%s: TLS handshake: %w", t.address, err)
		}
		return tconn.Close()
	}
	return fmt.Errorf("%s answered %q to an SSLRequest: not a PostgreSQL server", t.address, answer)
}
