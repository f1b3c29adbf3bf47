package pgwire

import (
	"encoding/binary"
	"encoding/hex"
)

// TextArrayElements calls fn with each element of a one-dimensional array in text form
// ({a,"b c",NULL}), unquoted into buf (so valid only during the call); NULL elements are
// skipped, a quoted "NULL" is not.
func TextArrayElements(buf []byte, v []byte, fn func(elem []byte)) {
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return
	}
	v = v[1 : len(v)-1]
	for len(v) > 0 {
		buf = buf[:0]
		quoted := false
		i := 0
		if v[0] == '"' {
			quoted = true
			for i = 1; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				buf = append(buf, v[i])
			}
			i++ // closing quote
		} else {
			for i < len(v) && v[i] != ',' {
				i++
			}
			buf = append(buf, v[:i]...)
		}
		if quoted || string(buf) != "NULL" {
			fn(buf)
		}
		if i < len(v) && v[i] == ',' {
			i++
		}
		v = v[min(i, len(v)):]
	}
}

// BinaryArrayElements calls fn with each non-NULL element of a one-dimensional array in
// PostgreSQL's binary format (ndim, flags, element OID, dimension, lower bound, then
// length-prefixed elements); other arrays and malformed values yield nothing.
func BinaryArrayElements(v []byte, fn func(elem []byte)) {
	if len(v) < 12 {
		return
	}
	ndim := int(binary.BigEndian.Uint32(v))
	if ndim != 1 || len(v) < 20 {
		return
	}
	n := int(binary.BigEndian.Uint32(v[12:]))
	p := v[20:]
	for i := 0; i < n && len(p) >= 4; i++ {
		l := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if l < 0 {
			continue
		}
		if int(l) > len(p) {
			return
		}
		fn(p[:l])
		p = p[l:]
	}
}

// AppendUUID appends the text form of a uuid in binary form (16 bytes).
func AppendUUID(dst []byte, v []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], v[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], v[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], v[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], v[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], v[10:16])
	return append(dst, buf[:]...)
}
