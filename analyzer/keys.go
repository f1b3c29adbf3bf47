package analyzer

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
)

// maxKeyLen bounds a key kept in memory; longer values are not identifiers anyone polls by.
const maxKeyLen = 256

// literalKey decodes a String or Number token into dst.
func literalKey(dst []byte, src []byte, t sqlscan.Token) ([]byte, bool) {
	tok := src[t.Start:t.End]
	if t.Kind == sqlscan.Number {
		return append(dst, tok...), true
	}
	return sqlscan.Unquote(dst, tok)
}

// paramKeys calls fn with each key carried by a Bind parameter value: the value itself, or each
// element when the parameter is an array (= ANY($1)). Binary values are rendered the way
// PostgreSQL would print them for the types keys use: uuid, int2/4/8, text.
func paramKeys(dst []byte, format int16, v []byte, array bool, fn func(key []byte)) {
	if v == nil {
		return
	}
	if !array {
		if k, ok := scalarKey(dst[:0], format, v); ok {
			fn(k)
		}
		return
	}
	if format == 0 {
		textArrayKeys(dst, v, fn)
		return
	}
	binaryArrayKeys(dst, v, fn)
}

// scalarKey renders one parameter value. A binary value's type is not in the Bind message, so
// it is told from its shape: printable UTF-8 is text (text's binary form is the text itself;
// a binary uuid or integer is never printable), then 16 bytes is a uuid, 8/4/2 an integer.
func scalarKey(dst []byte, format int16, v []byte) ([]byte, bool) {
	if format == 0 || printable(v) {
		return append(dst, v...), true
	}
	switch len(v) {
	case 16: // uuid
		var buf [36]byte
		hex.Encode(buf[0:8], v[0:4])
		buf[8] = '-'
		hex.Encode(buf[9:13], v[4:6])
		buf[13] = '-'
		hex.Encode(buf[14:18], v[6:8])
		buf[18] = '-'
		hex.Encode(buf[19:23], v[8:10])
		buf[23] = '-'
		hex.Encode(buf[24:], v[10:])
		return append(dst, buf[:]...), true
	case 8:
		return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(v)), 10), true
	case 4:
		return strconv.AppendInt(dst, int64(int32(binary.BigEndian.Uint32(v))), 10), true
	case 2:
		return strconv.AppendInt(dst, int64(int16(binary.BigEndian.Uint16(v))), 10), true
	}
	return nil, false
}

func printable(v []byte) bool {
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(v)
}

// textArrayKeys reads a one-dimensional array literal {a,"b c",NULL}.
func textArrayKeys(dst []byte, v []byte, fn func([]byte)) {
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return
	}
	v = v[1 : len(v)-1]
	for len(v) > 0 {
		dst = dst[:0]
		quoted := false
		i := 0
		if v[0] == '"' {
			quoted = true
			for i = 1; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				dst = append(dst, v[i])
			}
			i++ // closing quote
		} else {
			for i < len(v) && v[i] != ',' {
				i++
			}
			dst = append(dst, v[:i]...)
		}
		if quoted || string(dst) != "NULL" {
			fn(dst)
		}
		if i < len(v) && v[i] == ',' {
			i++
		}
		v = v[min(i, len(v)):]
	}
}

// binaryArrayKeys reads PostgreSQL's binary array format (ndim, flags, element OID, dims,
// then length-prefixed elements).
func binaryArrayKeys(dst []byte, v []byte, fn func([]byte)) {
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
		if k, ok := scalarKey(dst[:0], 1, p[:l]); ok {
			fn(k)
		}
		p = p[l:]
	}
}
