//go:build !linux

package proxy

import (
	"errors"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// The portable path (pump_linux.go has the raw one): rawConn is nil for every connection, so a
// pump reads with net.Conn.Read, which reads an end of stream by itself (no end-of-stream watch,
// no peeking), and writes with net.Conn.Write. awaitAnswer then waits for nothing beyond the
// dial, as for a TLS connection on Linux.
func rawConn(net.Conn) syscall.RawConn { return nil }

// Reached only through a non-nil rawConn, so never here.

const noRawPath = "proxy: no raw socket path on " + runtime.GOOS

func (p *pump) runRaw(inspector) error    { panic(noRawPath) }
func (w *rawWriter) writeFd(uintptr) bool { panic(noRawPath) }
func (p *pump) probeEnd()                 { panic(noRawPath) }
func peek(uintptr) peekResult             { panic(noRawPath) }

// quietConn reports whether c is open with nothing waiting to be read (see keptConn.quiet).
// With no peek, it reads with a deadline a millisecond away: a read that times out found
// nothing; one that returns bytes or an end consumed them, but such a connection is closed
// anyway.
func quietConn(c net.Conn) bool {
	if c.SetReadDeadline(time.Now().Add(time.Millisecond)) != nil {
		return false
	}
	var b [1]byte
	_, err := c.Read(b[:])
	_ = c.SetReadDeadline(noDeadline)
	return errors.Is(err, os.ErrDeadlineExceeded)
}
