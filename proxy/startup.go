package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

var noDeadline time.Time

// startup is what a client asked for before the protocol proper begins.
type startup struct {
	conn     net.Conn // the client connection, TLS-wrapped if TLS was negotiated
	packet   []byte   // the StartupMessage as sent (length prefix included), forwarded unchanged
	params   map[string]string
	protocol uint32
	tls      bool
	cancel   []byte // the CancelRequest's process ID and secret key, when this is a cancel
}

// errStartup is a startup packet the proxy refuses; code is the SQLSTATE to answer with.
type errStartup struct {
	code string
	msg  string
}

func (e *errStartup) Error() string { return e.msg }

// readStartup negotiates TLS/GSS encryption and reads the startup packet. Packets are read
// with exact lengths straight from the socket: nothing is ever buffered ahead, so bytes a
// man-in-the-middle injects after SSLRequest are fed to the TLS handshake, which rejects them,
// instead of being taken as if they had arrived encrypted (CVE-2021-23214).
func readStartup(conn net.Conn, tlsConf *tls.Config) (*startup, error) {
	st := &startup{conn: conn}
	// As the postmaster: one SSLRequest and one GSSENCRequest at most (a GSSENCRequest after
	// TLS was set up is refused too); a repeated one is an unsupported protocol code.
	sslDone, gssDone := false, false
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(st.conn, hdr[:]); err != nil {
			return nil, err
		}
		n := int(be32(hdr[:]))
		if n < 8 || n > maxStartupLen {
			return nil, &errStartup{"08P01", fmt.Sprintf("invalid length of startup packet: %d", n)}
		}
		packet := make([]byte, n)
		copy(packet, hdr[:])
		if _, err := io.ReadFull(st.conn, packet[4:]); err != nil {
			return nil, err
		}
		code := be32(packet[4:])
		switch {
		case code == sslRequestCode && st.tls:
			return nil, &errStartup{"08P01", "SSLRequest received on an encrypted connection"}
		case code == sslRequestCode && !sslDone:
			sslDone = true
			if tlsConf == nil {
				if err := writeTo(st.conn, []byte{pgwire.EncryptionRefused}); err != nil {
					return nil, err
				}
				continue
			}
			if err := writeTo(st.conn, []byte{pgwire.EncryptionAccepted}); err != nil {
				return nil, err
			}
			tc := tls.Server(st.conn, tlsConf)
			if err := tc.Handshake(); err != nil {
				return nil, fmt.Errorf("TLS handshake with client: %w", err)
			}
			st.conn, st.tls = tc, true
			gssDone = true
		case code == gssEncRequestCode && !gssDone:
			gssDone = true
			if err := writeTo(st.conn, []byte{pgwire.EncryptionRefused}); err != nil {
				return nil, err
			}
		case code == cancelRequestCode:
			st.cancel = packet[8:]
			return st, nil
		case code>>16 == protocolMajor3:
			st.packet, st.protocol = packet, code
			params, err := parseStartupParams(packet[8:])
			if err != nil {
				return nil, err
			}
			st.params = params
			if st.params["user"] == "" {
				return nil, &errStartup{"28000", "no PostgreSQL user name specified in startup packet"}
			}
			return st, nil
		default:
			return nil, &errStartup{"0A000", fmt.Sprintf("unsupported frontend protocol %d.%d", code>>16, code&0xffff)}
		}
	}
}

func parseStartupParams(p []byte) (map[string]string, error) {
	params := make(map[string]string)
	for len(p) > 0 && p[0] != 0 {
		k, rest, ok := cstring(p)
		if !ok {
			return nil, &errStartup{"08P01", "invalid startup packet layout: expected terminator as last byte"}
		}
		v, rest, ok := cstring(rest)
		if !ok {
			return nil, &errStartup{"08P01", "invalid startup packet layout: expected terminator as last byte"}
		}
		params[string(k)] = string(v)
		p = rest
	}
	if len(p) != 1 {
		return nil, &errStartup{"08P01", "invalid startup packet layout: expected terminator as last byte"}
	}
	return params, nil
}

// isReplication reports whether the startup parameters ask for a replication connection.
func isReplication(params map[string]string) bool {
	switch strings.ToLower(params["replication"]) {
	case "true", "on", "yes", "1", "database":
		return true
	}
	return false
}
