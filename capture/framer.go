package capture

import (
	"encoding/binary"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// framer cuts one direction of a PostgreSQL conversation into messages: the client's untyped
// startup packets first (SSLRequest, StartupMessage, ...), then typed messages, 1 type byte and a
// 4-byte length each. After a gap (bytes the capture lost) it resynchronises: where the first
// bytes after the gap are whole plausible messages end to end (a segment after a lost one
// mostly starts and ends at message boundaries), there; else the client side on two plausible
// message headers in a row, the server side on the next ReadyForQuery, after which every
// message again belongs to a statement the client sent after it.
type framer struct {
	client  bool // the frontend's direction
	startup bool // the client has not sent its StartupMessage yet: packets are untyped
	lost    bool // after a gap: looking for a boundary
	// answerByte: the client asked for encryption (SSLRequest, GSSENCRequest), and the server's
	// next byte is its one-byte answer, no message.
	answerByte bool
	tls        bool // the client opened with a TLS record (direct SSL): nothing here is readable
	buf        []byte
	bufSeq     uint32 // the TCP sequence number of buf[0]
	msgSeq     uint32 // the sequence number of the message being handed over
	max        int    // the largest message believed (a corrupt length must not be waited for)

	Messages, Resyncs, Skipped int64
}

func newFramer(client bool) *framer {
	return &framer{client: client, startup: client, max: 1 << 30}
}

// feed adds bytes of the direction, in order, ending at TCP sequence number end, and calls msg
// with each whole message (typ 0 for a startup packet, whose body then starts with its 4-byte
// code, or for the server's one-byte answer to an encryption request). body is valid only
// during the call.
func (f *framer) feed(data []byte, end uint32, msg func(typ byte, body []byte)) {
	if f.tls {
		return
	}
	// whole is the bytes to cut, starting at bufSeq: the segment's own when nothing is held
	// (most segments hold whole messages, cut where they lie, with no copy), else what is
	// held and the segment after it.
	whole := data
	if len(f.buf) == 0 {
		f.bufSeq = end - uint32(len(data))
		if f.lost && f.exact(data) { // the first bytes after a gap: whole messages end to end
			f.lost = false
			f.Resyncs++
		}
	} else {
		f.buf = append(f.buf, data...)
		whole = f.buf
	}
	p := whole
	for {
		if f.lost {
			i, wait := f.boundary(p)
			if wait { // a plausible start that more bytes will confirm or not
				f.Skipped += int64(i)
				p = p[i:]
				break
			}
			if i < 0 {
				// Keep the last few bytes: a header may straddle this read and the next.
				keep := min(len(p), pgwire.HeaderLen+1)
				f.Skipped += int64(len(p) - keep)
				p = p[len(p)-keep:]
				break
			}
			f.Skipped += int64(i)
			p, f.lost = p[i:], false
			f.Resyncs++
		}
		f.msgSeq = f.bufSeq + uint32(len(whole)-len(p))
		if f.answerByte {
			if len(p) == 0 {
				break
			}
			f.answerByte = false
			f.Messages++
			msg(0, p[:1])
			p = p[1:]
			continue
		}
		if f.startup {
			if len(p) >= 2 && p[0] == 0x16 && p[1] == 0x03 { // a TLS handshake record
				f.tls = true
				f.buf = f.buf[:0]
				return
			}
			if len(p) < 8 {
				break
			}
			n := int(binary.BigEndian.Uint32(p))
			if n < 8 || n > 10000 { // not a startup packet: lost sync
				f.lost, f.startup = true, false
				continue
			}
			if len(p) < n {
				break
			}
			code := binary.BigEndian.Uint32(p[4:])
			f.Messages++
			msg(0, p[4:n])
			p = p[n:]
			if code>>16 == 3 { // a StartupMessage: typed messages follow
				f.startup = false
			}
			continue
		}
		if len(p) < pgwire.HeaderLen {
			break
		}
		n := int(binary.BigEndian.Uint32(p[1:]))
		if n < 4 || n > f.max {
			f.lost = true
			continue
		}
		if len(p) < 1+n {
			break
		}
		f.Messages++
		msg(p[0], p[pgwire.HeaderLen:1+n])
		p = p[1+n:]
	}
	// What is left, the start of a message, is held for the next bytes.
	f.bufSeq += uint32(len(whole) - len(p))
	f.buf = append(f.buf[:0], p...)
}

// exact reports whether p is whole plausible messages of this direction end to end, nothing
// left over: the bytes after a gap start at a message boundary. Two messages at least, or one
// that fills a segment by itself, are rarely chance.
func (f *framer) exact(p []byte) bool {
	header := serverHeader
	if f.client {
		header = clientHeader
	}
	for len(p) > 0 {
		n, ok := header(p)
		if !ok || 1+n > len(p) {
			return false
		}
		p = p[1+n:]
	}
	return true
}

// gap says n bytes of the direction were lost: what is buffered is cut off mid-message, and the
// framer looks for the next boundary.
func (f *framer) gap(n int64) {
	f.Skipped += int64(len(f.buf))
	f.buf = f.buf[:0]
	f.lost, f.startup, f.answerByte = true, false, false
}

// boundary finds where the next message surely starts in p, after a gap: -1 if not in p, or
// wait with the place of a plausible start that only more bytes can confirm.
func (f *framer) boundary(p []byte) (i int, wait bool) {
	if f.client {
		// A client message whose header is plausible and whose successor's is too: one
		// plausible header alone is found in text by chance.
		for i := 0; i+pgwire.HeaderLen <= len(p); i++ {
			n, ok := clientHeader(p[i:])
			if !ok {
				continue
			}
			if i+1+n+pgwire.HeaderLen > len(p) {
				if n < 1<<16 { // worth waiting for; a huge length is more likely chance
					return i, true
				}
				continue
			}
			if _, ok := clientHeader(p[i+1+n:]); ok {
				return i, false
			}
		}
		return -1, false
	}
	// The server side resumes at a ReadyForQuery ('Z', length 5, a transaction status): every
	// message after it answers something the client sent after it.
	for i := 0; i+6 <= len(p); i++ {
		if p[i] == pgwire.BackendReadyForQuery && binary.BigEndian.Uint32(p[i+1:]) == 5 &&
			(p[i+5] == pgwire.TxIdle || p[i+5] == pgwire.TxInBlock || p[i+5] == pgwire.TxInFailed) {
			return i, false
		}
	}
	return -1, false
}

// clientHeader reads a plausible client message header: a known type and a length that fits
// the type.
func clientHeader(p []byte) (n int, ok bool) {
	if len(p) < pgwire.HeaderLen {
		return 0, false
	}
	n = int(binary.BigEndian.Uint32(p[1:]))
	switch p[0] {
	case pgwire.FrontendSync, pgwire.FrontendFlush, pgwire.FrontendTerminate, pgwire.CopyDone:
		return n, n == 4
	case pgwire.FrontendQuery, pgwire.FrontendParse, pgwire.FrontendBind, pgwire.FrontendExecute,
		pgwire.FrontendDescribe, pgwire.FrontendClose, pgwire.FrontendFunctionCall, pgwire.CopyData,
		pgwire.FrontendCopyFail:
		return n, n > 4 && n < 1<<24
	}
	return 0, false
}

// serverHeader reads a plausible server message header: a known type and a length that fits
// the type.
func serverHeader(p []byte) (n int, ok bool) {
	if len(p) < pgwire.HeaderLen {
		return 0, false
	}
	n = int(binary.BigEndian.Uint32(p[1:]))
	switch p[0] {
	case pgwire.BackendReadyForQuery:
		return n, n == 5
	case pgwire.BackendParseComplete, pgwire.BackendBindComplete, pgwire.BackendCloseComplete,
		pgwire.BackendNoData, pgwire.BackendEmptyQueryResponse, pgwire.BackendPortalSuspended, pgwire.CopyDone:
		return n, n == 4
	case pgwire.BackendKeyData:
		return n, n >= 12 && n <= 4+4+256 // protocol 3.2 keys are up to 256 bytes
	case pgwire.BackendDataRow, pgwire.BackendRowDescription, pgwire.BackendParameterDescription:
		return n, n >= 6 && n < 1<<30
	case pgwire.BackendCommandComplete, pgwire.BackendErrorResponse, pgwire.BackendNoticeResponse,
		pgwire.BackendParameterStatus, pgwire.BackendNotificationResponse, pgwire.BackendAuthentication,
		pgwire.BackendFunctionCallResponse, pgwire.BackendCopyInResponse, pgwire.BackendCopyOutResponse,
		pgwire.BackendCopyBothResponse, pgwire.CopyData, pgwire.BackendNegotiateProtocol:
		return n, n > 4 && n < 1<<30
	}
	return 0, false
}
