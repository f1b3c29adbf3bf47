package proxy

import (
	"net"
	"syscall"
)

// What the end-of-stream watch (endwatch.go) and the checks on a waiting server connection do
// with a socket on Linux's raw path (pump_linux.go): look at what it has to read, without
// consuming it.

// probeEnd settles whether p's socket has an unread end of stream behind p's latest short read.
func (p *pump) probeEnd() {
	mark := p.shortRead.Load()
	if mark == 0 {
		return
	}
	_ = p.srcRaw.Control(func(fd uintptr) {
		switch peek(fd) {
		case peekData:
			// The pump has an edge to come or is busy: it reads these bytes, and marks again.
		case peekEmpty:
			p.shortRead.CompareAndSwap(mark, 0)
		case peekEnd:
			// Nothing is left to read but the end itself: shutting down the reading side loses
			// nothing, and wakes the pump (the kernel raises readiness for it) to read the end.
			_ = syscall.Shutdown(int(fd), syscall.SHUT_RD)
			p.shortRead.CompareAndSwap(mark, 0)
		}
	})
}

// peek looks at what a non-blocking socket has to read, without consuming it.
func peek(fd uintptr) peekResult {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return peekEmpty
		case n > 0:
			return peekData
		}
		return peekEnd
	}
}

// quietConn reports whether c is a plain socket that is open with nothing waiting to be read
// (see keptConn.quiet); false for anything else.
func quietConn(c net.Conn) bool {
	rc := rawConn(c)
	if rc == nil {
		return false
	}
	quiet := false
	err := rc.Read(func(fd uintptr) bool {
		quiet = peek(fd) == peekEmpty
		return true
	})
	return err == nil && quiet
}
