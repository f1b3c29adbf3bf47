package analyzer

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
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
		return pgwire.AppendUUID(dst, v), true
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
func textArrayKeys(dst []byte, v []byte, fn func([]byte)) { pgwire.TextArrayElements(dst, v, fn) }

// binaryArrayKeys reads PostgreSQL's binary array format: each element is a key as a binary
// scalar would be.
func binaryArrayKeys(dst []byte, v []byte, fn func([]byte)) {
	pgwire.BinaryArrayElements(v, func(elem []byte) {
		if k, ok := scalarKey(dst[:0], 1, elem); ok {
			fn(k)
		}
	})
}
