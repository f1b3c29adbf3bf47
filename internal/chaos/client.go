package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgpollwatch/pgpollwatch/internal/pgcluster"
)

// Classify names what a client saw: "ok", the SQLSTATE of an error the server or the proxy
// sent, or what the connection did ("EOF", "reset", "refused", "timeout", "other").
func Classify(err error) string {
	if err == nil {
		return "ok"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "unexpected EOF"):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case strings.Contains(err.Error(), "conn closed"), strings.Contains(err.Error(), "closed network connection"):
		return "closed"
	}
	return "other"
}

// connectionLost reports whether outcome is one of the ways real clients report a server
// connection that went away: the server's or the proxy's shutdown and connection-failure
// SQLSTATEs (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 08xxx) or
// the socket closing under them.
func connectionLost(outcome string) bool {
	switch outcome {
	case "57P01", "57P02", "57P03", "EOF", "reset", "closed", "refused":
		return true
	}
	return strings.HasPrefix(outcome, "08")
}

// rawConn is a client that speaks the protocol itself, so that it can read slowly, vanish at a
// chosen moment or reset its connection.
type rawConn struct {
	conn *net.TCPConn
	fe   *pgproto3.Frontend
}

// dialRaw connects to addr as User and completes the startup (trust authentication).
func dialRaw(ctx context.Context, addr string, timeout time.Duration) (*rawConn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &rawConn{conn: c.(*net.TCPConn)}
	r.fe = pgproto3.NewFrontend(r.conn, r.conn)
	r.conn.SetDeadline(time.Now().Add(timeout))
	r.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": User, "database": pgcluster.Database, "application_name": "chaos"}})
	if err := r.fe.Flush(); err != nil {
		r.conn.Close()
		return nil, err
	}
	if err := r.untilReady(); err != nil {
		r.conn.Close()
		return nil, err
	}
	r.conn.SetDeadline(time.Time{})
	return r, nil
}

// untilReady reads messages up to ReadyForQuery; an ErrorResponse becomes a *pgconn.PgError.
func (r *rawConn) untilReady() error {
	var pgErr error
	for {
		m, err := r.fe.Receive()
		if err != nil {
			return errors.Join(pgErr, err)
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			pgErr = &pgconn.PgError{Severity: m.Severity, Code: m.Code, Message: m.Message}
			if m.Severity == "FATAL" {
				return pgErr
			}
		case *pgproto3.AuthenticationOk, *pgproto3.ParameterStatus, *pgproto3.BackendKeyData,
			*pgproto3.RowDescription, *pgproto3.DataRow, *pgproto3.CommandComplete,
			*pgproto3.NoticeResponse, *pgproto3.EmptyQueryResponse:
		case *pgproto3.ReadyForQuery:
			return pgErr
		default:
			return fmt.Errorf("unexpected %T", m)
		}
	}
}

// send sends a simple query without reading its answer.
func (r *rawConn) send(sql string) error {
	r.fe.Send(&pgproto3.Query{String: sql})
	return r.fe.Flush()
}

// query runs a simple query to its ReadyForQuery.
func (r *rawConn) query(sql string, timeout time.Duration) error {
	r.conn.SetDeadline(time.Now().Add(timeout))
	defer r.conn.SetDeadline(time.Time{})
	if err := r.send(sql); err != nil {
		return err
	}
	return r.untilReady()
}

// close leaves politely (Terminate, then close).
func (r *rawConn) close() {
	r.fe.Send(&pgproto3.Terminate{})
	r.fe.Flush()
	r.conn.Close()
}

// reset leaves with a TCP RST (SO_LINGER 0).
func (r *rawConn) reset() {
	r.conn.SetLinger(0)
	r.conn.Close()
}

// errText is what a client would show of err: the server's or the proxy's message when there
// is one, without the driver's prefix.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity + ": " + pe.Message
	}
	return err.Error()
}
