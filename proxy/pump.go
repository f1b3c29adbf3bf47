package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// inspector is what a pump shows the messages it forwards to. There is one per direction.
type inspector interface {
	// header is called once per message before anything else about it, with its type and full
	// length (including the 4 length bytes). Returning an error stops the pump without
	// forwarding the message: that is how oversized or malformed input is refused.
	header(typ byte, length int) error
	// message is called for each message whose type wantsWhole reports, with its body. The body
	// aliases the read buffer. truncated is true when the message was larger than the pump
	// holds: body is then only the first part; the rest streams through unseen. The verdict
	// says what to do with the message: forward it (0), or hold it back and/or write what
	// injection returns in its place (only the coalescing cache asks for either).
	message(typ byte, body []byte, truncated bool) (verdict, error)
	// injection returns the bytes to write before the current message when message asked for
	// vInject. They are written before the messages that follow, in order.
	injection() []byte
	// part is called, in order, with the pieces of the body of each message that wantsWhole does
	// not report; last marks the final piece. Small messages arrive as one piece.
	part(typ byte, piece []byte, last bool)
	// wantsWhole reports whether messages of this type must be seen whole (up to maxHold).
	wantsWhole(typ byte) bool
	// beforeWrite is called before each run of messages is written on: what the other
	// direction must know before the peer can answer (expected responses) is published here.
	beforeWrite()
	// afterWrite is called after each run of messages has been written on, so work that must
	// not delay forwarding (handing events to the observer) happens here.
	afterWrite()
}

// verdict is what an inspector asks the pump to do with a message. The zero value forwards it.
type verdict uint8

const (
	vWithhold verdict = 1 << iota // do not forward this message
	vInject                       // write injection() where this message stands
)

// errMalformed marks input that breaks the framing; the session answers it with 08P01.
type errMalformed struct{ msg string }

func (e *errMalformed) Error() string { return e.msg }

func malformedf(format string, args ...any) error {
	return &errMalformed{msg: fmt.Sprintf(format, args...)}
}

// pump moves protocol messages from src to dst. It reads as much as the socket has into one
// buffer, walks the message headers in place, shows the inspector what it asks for and writes
// each run of complete messages on with a single Write. Messages larger than the buffer stream
// through piece by piece: a 64 MiB DataRow costs no more memory than a small one.
type pump struct {
	src    net.Conn
	dst    net.Conn
	dstRaw *rawWriter // dst's socket when it is a plain one: written without a scheduler handoff
	// dstMu, when set, is held around every write to dst together with the inspector's
	// beforeWrite: the coalescing cache writes answers to the same client from the other
	// direction, and must see what this pump has published as written.
	dstMu   *sync.Mutex
	partial bool // (under dstMu) a message has been written in part: nothing may be interleaved

	buf     []byte  // nil while idle (see idleBuf)
	bufp    *[]byte // the pool's handle of buf, when it came from the pool
	pool    *sync.Pool
	end     int // buf[:end] holds bytes read and not yet forwarded
	minSize int // the buffer shrinks back to this after holding a large message
	maxHold int // largest message shown whole; larger ones are shown truncated

	// A message that is passing through in pieces.
	streaming int  // bytes of it still to come
	streamTyp byte // its type
	streamWho bool // whether the inspector sees its pieces (false: truncated whole-type message)

	bytes int64 // total bytes forwarded

	// Reading a plain socket (runRaw): the socket, and the number of the latest read that
	// returned less than the space offered while no read since found the socket empty (0 once
	// one did, or the pump stopped). Such a read does not prove the socket drained; endWatch
	// settles it, and watched says whether the pump is in the watch.
	srcRaw    syscall.RawConn
	shortRead atomic.Uint32
	watched   atomic.Bool
	reads     uint32 // numbers the short reads (the pump's goroutine only)
}

func newPump(src, dst net.Conn, size, maxHold int) *pump {
	p := &pump{src: src, dst: dst, dstRaw: newRawWriter(rawConn(dst)), minSize: size, maxHold: maxHold, pool: bufPools[size]}
	p.takeBuf()
	return p
}

// Read buffers are recycled across sessions, and while a connection is idle. A program that
// connects once per statement made the proxy allocate and zero 40 KiB per connection, and the
// garbage collection that followed was a tenth of the proxy's CPU. The pool holds *[]byte, and
// each pump keeps the pointer it got, so that giving a buffer back allocates nothing.
var bufPools = map[int]*sync.Pool{clientBufSize: {}, serverBufSize: {}}

func (p *pump) takeBuf() {
	if p.pool != nil {
		if bp, ok := p.pool.Get().(*[]byte); ok {
			p.bufp, p.buf = bp, *bp
			return
		}
	}
	p.buf = make([]byte, p.minSize)
}

// idleBuf gives the buffer back while the pump waits with nothing unforwarded in it, as
// PgBouncer does with its packet buffers: an idle connection then holds no read buffer (2,000
// idle connections held 80 MB of them), and a busy one takes one from the pool again, which
// costs nanoseconds per wait.
func (p *pump) idleBuf() {
	if p.end == 0 {
		p.release()
	}
}

// release gives the buffer back when nothing in it is needed any more: the pump is waiting with
// it empty, or has stopped for good (the inspectors keep copies of what outlives a read).
func (p *pump) release() {
	if p.pool != nil && len(p.buf) == p.minSize {
		if p.bufp == nil {
			p.bufp = new([]byte)
		}
		*p.bufp = p.buf
		p.pool.Put(p.bufp)
	}
	p.bufp, p.buf, p.end = nil, nil, 0
}

// preload puts b in the buffer as if it had been read from src: a kept server connection's
// greeting, replayed to its new client through the same inspector as a server's.
func (p *pump) preload(b []byte) {
	if p.buf == nil {
		p.takeBuf()
	}
	if len(b) > len(p.buf) {
		p.buf = make([]byte, len(b))
	}
	p.end = copy(p.buf, b)
}

// idle reports whether nothing read is left unforwarded, not even part of a message.
func (p *pump) idle() bool { return p.end == 0 && p.streaming == 0 }

// run forwards until src or dst fails. It returns io.EOF when src closed cleanly.
func (p *pump) run(ins inspector) error {
	if p.end > 0 {
		if err := p.process(ins); err != nil {
			return err
		}
	}
	if p.srcRaw = rawConn(p.src); p.srcRaw != nil {
		defer p.shortRead.Store(0) // stopped: the watch lets go of it
		return p.runRaw(ins)
	}
	for {
		n, err := p.src.Read(p.buf[p.end:])
		if n > 0 {
			p.end += n
			if perr := p.process(ins); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
	}
}

// process walks buf[:end], forwards every whole message (and any streamed pieces), and keeps
// an incomplete trailing message that must be seen whole. Messages are written in runs: a run
// ends only where the inspector holds a message back or injects bytes.
func (p *pump) process(ins inspector) error {
	buf := p.buf[:p.end]
	pos, run := 0, 0 // buf[run:pos] is the run of messages not yet written
	if p.streaming > 0 {
		k := min(p.streaming, len(buf))
		p.streaming -= k
		if p.streamWho {
			ins.part(p.streamTyp, buf[:k], p.streaming == 0)
		}
		pos = k
	}
	var err error
	for p.streaming == 0 && len(buf)-pos >= headerLen {
		typ := buf[pos]
		length := int(be32(buf[pos+1:]))
		if length < 4 {
			err = malformedf("invalid message length %d for message type %q", length, typ)
			break
		}
		if err = ins.header(typ, length); err != nil {
			break
		}
		size := 1 + length
		whole := ins.wantsWhole(typ)
		if pos+size <= len(buf) {
			body := buf[pos+headerLen : pos+size]
			if !whole {
				ins.part(typ, body, true)
				pos += size
				continue
			}
			v, merr := ins.message(typ, body, false)
			if merr != nil {
				if v&vInject != 0 { // what was held back came before the bad message: it goes
					_ = p.flush(ins, buf[run:pos])
					_ = p.flush(ins, ins.injection())
					run = pos
				}
				err = merr
				break
			}
			if v != 0 {
				if err = p.flush(ins, buf[run:pos]); err != nil {
					return err
				}
				if v&vInject != 0 {
					if err = p.flush(ins, ins.injection()); err != nil {
						return err
					}
				}
				run = pos
				if v&vWithhold != 0 {
					run = pos + size
				}
			}
			pos += size
			continue
		}
		if whole && size <= p.maxHold {
			break // wait for the rest of it
		}
		// Too big to hold (or not needed whole): stream what we have and the rest as it comes.
		body := buf[pos+headerLen:]
		p.streaming = size - (len(buf) - pos)
		p.streamTyp = typ
		p.streamWho = !whole
		if whole {
			// A truncated message is always forwarded (nothing can be decided on part of it),
			// after anything the inspector injects; a malformed one is not forwarded at all.
			v, merr := ins.message(typ, body, true)
			if v&vInject != 0 {
				if err = p.flush(ins, buf[run:pos]); err == nil {
					err = p.flush(ins, ins.injection())
				}
				run = pos
			}
			if err == nil {
				err = merr
			}
			if err != nil {
				p.streaming = 0
				break
			}
		} else {
			ins.part(typ, body, false)
		}
		pos = len(buf)
	}
	if err != nil {
		// Nothing from a bad message on is forwarded; what came before it is.
		_ = p.flush(ins, buf[run:pos])
		return err
	}
	if werr := p.flush(ins, buf[run:pos]); werr != nil {
		return werr
	}
	p.keep(pos)
	return nil
}

// flush writes one run of messages, telling the inspector before and after.
func (p *pump) flush(ins inspector, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if p.dstMu != nil {
		p.dstMu.Lock()
		ins.beforeWrite()
		err := p.write(b)
		p.partial = p.streaming > 0
		p.dstMu.Unlock()
		if err != nil {
			return err
		}
	} else {
		ins.beforeWrite()
		if err := p.write(b); err != nil {
			return err
		}
	}
	ins.afterWrite()
	return nil
}

// writeBetween writes b to dst from outside the pump's goroutine, between two of its runs of
// messages; false (and nothing written) when the pump is in the middle of a message.
func (p *pump) writeBetween(b []byte) (bool, error) {
	p.dstMu.Lock()
	defer p.dstMu.Unlock()
	if p.partial {
		return false, nil
	}
	return true, p.write(b)
}

func (p *pump) write(b []byte) error {
	var n int
	var err error
	if p.dstRaw != nil {
		n, err = p.dstRaw.write(b)
	} else {
		n, err = p.dst.Write(b)
	}
	p.bytes += int64(n)
	if err != nil {
		return &errWrite{err}
	}
	return nil
}

// rawWriter writes to a non-blocking socket with raw system calls. A write to a loopback or
// LAN socket does the receiver's TCP work inline and takes several microseconds; made as an
// ordinary syscall, the runtime's monitor often hands the processor to another thread meanwhile,
// and those thread switches cost more than the write. A non-blocking write never blocks, so it
// needs no handoff; when the socket is full the loop waits for writability in the netpoller.
//
// The callback RawConn.Write takes is made once per socket, with its state in the struct: a
// closure built per write escaped to the heap with its captured variables, three allocations a
// write and the garbage collection they cause.
type rawWriter struct {
	rc      syscall.RawConn
	b       []byte // being written; nil between writes
	written int
	err     error
	fn      func(fd uintptr) bool // w.writeFd, bound once
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	if rc == nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.writeFd
	return w
}

// write writes all of b, waiting for writability when the socket is full.
func (w *rawWriter) write(b []byte) (int, error) {
	w.b, w.written, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	n, werr := w.written, w.err
	w.b, w.err = nil, nil
	if werr != nil {
		return n, werr
	}
	return n, err
}

// writeTo writes b to c, with raw system calls when c is a plain socket (see rawWriter): the
// proxy's own small writes (a startup answer, a reset, a Terminate) cost a thread handoff
// otherwise, and under connection churn those handoffs kept the runtime's monitor busy.
func writeTo(c net.Conn, b []byte) error {
	var err error
	if w := newRawWriter(rawConn(c)); w != nil {
		_, err = w.write(b)
	} else {
		_, err = c.Write(b)
	}
	return err
}

// keep moves the unforwarded tail to the front of the buffer, growing the buffer when the tail
// is a message that must be seen whole and is larger than it, and shrinking it back after.
func (p *pump) keep(pos int) {
	rest := p.end - pos
	need := rest
	if rest >= headerLen {
		need = max(rest, 1+int(be32(p.buf[pos+1:])))
	}
	size := len(p.buf)
	switch {
	case need > size:
		size = need
	case size > p.minSize && need <= p.minSize:
		size = p.minSize
	}
	if size != len(p.buf) {
		nb := make([]byte, size)
		copy(nb, p.buf[pos:p.end])
		p.buf, p.end = nb, rest
		return
	}
	if pos > 0 {
		copy(p.buf, p.buf[pos:p.end])
		p.end = rest
	}
}

// errWrite marks a failure to write to the destination, so the session can tell which side
// went away.
type errWrite struct{ err error }

func (e *errWrite) Error() string { return e.err.Error() }
func (e *errWrite) Unwrap() error { return e.err }

// isClosed reports whether err is the ordinary end of a connection rather than a fault.
func isClosed(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errTerminated)
}
