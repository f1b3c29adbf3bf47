package proxy

import (
	"net"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// SQLSTATE codes the proxy itself answers with.
const (
	codeProtocolViolation  = "08P01"
	codeConnectionFailure  = "08006"
	codeTooManyConnections = "53300"
	codeAdminShutdown      = "57P01"
)

// sendError writes an ErrorResponse to the client, as the server would. It is best effort: the
// connection is about to close anyway, so it waits at most a second.
func sendError(conn net.Conn, severity, code, msg string) {
	b := pgwire.AppendErrorResponse(nil, severity, code, "pgpollwatch: "+msg)
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = writeTo(conn, b)
}
