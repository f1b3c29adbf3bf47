package proxy

import (
	"bytes"
	"encoding/binary"
)

// Protocol constants that the startup phase needs. Message type bytes are used as literals
// ('Q', 'Z', ...) as in the protocol documentation, which keeps the switches readable.
const (
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	cancelRequestCode = 80877102
	protocolMajor3    = 3

	headerLen = 5 // 1 type byte + 4 length bytes (the length counts itself, not the type)

	// maxStartupLen bounds the untyped startup packet, as PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
	maxStartupLen = 10000
)

// cstring splits a NUL-terminated string off the front of p.
func cstring(p []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(p, 0)
	if i < 0 {
		return nil, nil, false
	}
	return p[:i:i], p[i+1:], true
}

func skipCString(p []byte) ([]byte, bool) {
	_, rest, ok := cstring(p)
	return rest, ok
}

func be32(p []byte) uint32 { return binary.BigEndian.Uint32(p) }
