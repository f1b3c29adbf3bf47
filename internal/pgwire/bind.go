package pgwire

import "encoding/binary"

// Bind is the body of a Bind message (after the header), read lazily and without allocating.
type Bind []byte

// Params calls fn for each bound parameter with its format code (0 text, 1 binary) and value;
// value is nil for SQL NULL. It stops early when fn returns false, and returns false if the
// message is malformed or truncated.
func (b Bind) Params(fn func(i int, format int16, value []byte) bool) bool {
	p := b
	var ok bool
	if p, ok = SkipCString(p); !ok { // portal
		return false
	}
	if p, ok = SkipCString(p); !ok { // statement
		return false
	}
	if len(p) < 2 {
		return false
	}
	nfmt := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if len(p) < 2*nfmt+2 {
		return false
	}
	formats := p[:2*nfmt]
	p = p[2*nfmt:]
	nparam := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	for i := 0; i < nparam; i++ {
		if len(p) < 4 {
			return false
		}
		n := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		var v []byte
		if n >= 0 {
			if int(n) > len(p) {
				return false
			}
			v, p = p[:n:n], p[n:]
		}
		if !fn(i, formatAt(formats, nfmt, i), v) {
			return true
		}
	}
	return true
}

// NumParams returns the number of bound parameters, or -1 if the message is malformed.
func (b Bind) NumParams() int {
	n := 0
	if !b.Params(func(int, int16, []byte) bool { n++; return true }) {
		return -1
	}
	return n
}

// ResultFormats returns the raw result-column format codes section (count-prefixed format codes
// as the client sent them), or nil if the message is malformed or truncated.
func (b Bind) ResultFormats() []byte {
	p := b
	var ok bool
	if p, ok = SkipCString(p); !ok {
		return nil
	}
	if p, ok = SkipCString(p); !ok {
		return nil
	}
	if len(p) < 2 || len(p) < 2+2*int(binary.BigEndian.Uint16(p)) {
		return nil
	}
	p = p[2+2*int(binary.BigEndian.Uint16(p)):]
	if len(p) < 2 {
		return nil
	}
	nparam := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	for i := 0; i < nparam; i++ {
		if len(p) < 4 {
			return nil
		}
		n := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if n > 0 {
			if int(n) > len(p) {
				return nil
			}
			p = p[n:]
		}
	}
	if len(p) < 2 || len(p) < 2+2*int(binary.BigEndian.Uint16(p)) {
		return nil
	}
	return p
}

// formatAt applies the Bind rule: no codes means text for all, one code applies to all.
func formatAt(formats []byte, n, i int) int16 {
	switch {
	case n == 0:
		return 0
	case n == 1:
		return int16(binary.BigEndian.Uint16(formats))
	case i < n:
		return int16(binary.BigEndian.Uint16(formats[2*i:]))
	}
	return 0
}
