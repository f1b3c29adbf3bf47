package proxy

import (
	"encoding/binary"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// Protocol constants of the proxy's own; the protocol's are in internal/pgwire, with the
// message types named per direction.
const (
	sslRequestCode    = pgwire.SSLRequestCode
	gssEncRequestCode = pgwire.GSSEncRequestCode
	cancelRequestCode = pgwire.CancelRequestCode
	protocolMajor3    = 3

	headerLen = pgwire.HeaderLen

	// maxStartupLen bounds the untyped startup packet, as PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
	maxStartupLen = 10000
)

// cstring splits a NUL-terminated string off the front of p (pgwire.CString).
func cstring(p []byte) (s, rest []byte, ok bool) { return pgwire.CString(p) }

func skipCString(p []byte) ([]byte, bool) { return pgwire.SkipCString(p) }

func be32(p []byte) uint32 { return binary.BigEndian.Uint32(p) }
