package proxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// The raw path, Linux's: plain sockets read and written with raw system calls (runRaw,
// rawWriter), where it was measured and is tested. Elsewhere (raw_other.go) rawConn is nil and
// every connection takes the portable path, net.Conn's Read and Write, as TLS connections do
// here: Go's raw system calls fail with ENOSYS on OpenBSD, bypass libc on macOS, and do not
// exist on Windows.

// rawConn returns the socket under a plain TCP or Unix connection; nil for anything else
// (TLS, test doubles), which takes the portable path.
func rawConn(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// runRaw is run for a plain socket, without the wasted read. net.Conn.Read always tries the
// read syscall before waiting, and between messages that read fails with EAGAIN: half of a
// Go proxy's reads are such failures. Inside one RawConn.Read call the runtime's readiness
// flag is never reset, so after a read that drained the socket (it returned less than the
// space offered) the loop waits for readiness first and only then reads: one read per arrival,
// and no notification is lost, since any data arriving after the drain raises the flag again.
// An end of stream that came with the last bytes raises nothing after them: endWatch finds it.
func (p *pump) runRaw(ins inspector) error {
	var perr error
	err := p.srcRaw.Read(func(fd uintptr) bool {
		if p.buf == nil {
			p.takeBuf()
		}
		for {
			space := len(p.buf) - p.end
			// Raw, like the write: a non-blocking read never blocks, so no handoff is needed.
			r, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p.buf[p.end])), uintptr(space))
			n := int(r)
			switch {
			case errno == syscall.EINTR:
				continue
			case errno == syscall.EAGAIN:
				p.idleBuf()
				p.shortRead.Store(0) // drained for sure: a FIN from now on raises an edge
				return false         // wait for readiness
			case errno != 0:
				perr = errno
				return true
			case n == 0:
				perr = io.EOF
				return true
			}
			p.end += n
			if perr = p.process(ins); perr != nil {
				return true
			}
			if n < space {
				// The socket is drained, but for an end of stream that may have come in the
				// same edge: endWatch checks for one if nothing arrives for a while.
				p.idleBuf()
				if p.reads++; p.reads == 0 {
					p.reads = 1
				}
				p.shortRead.Store(p.reads)
				if !p.watched.Load() {
					ends.unsettled(p)
				}
				return false // wait for readiness before reading again
			}
		}
	})
	if perr != nil {
		return perr
	}
	return err
}

func (w *rawWriter) writeFd(fd uintptr) bool {
	for w.written < len(w.b) {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.b[w.written])), uintptr(len(w.b)-w.written))
		switch errno {
		case 0:
			w.written += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.err = errno
			return true
		}
	}
	return true
}
