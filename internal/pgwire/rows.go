package pgwire

import "encoding/binary"

// RowDescriptionColumns calls fn with the index and name of each column of a RowDescription
// body, in order, until fn returns false. It returns false if the body is malformed.
func RowDescriptionColumns(body []byte, fn func(i int, name []byte) bool) bool {
	if len(body) < 2 {
		return false
	}
	n := int(binary.BigEndian.Uint16(body))
	p := body[2:]
	for i := 0; i < n; i++ {
		name, rest, ok := CString(p)
		if !ok || len(rest) < 18 { // table OID, attnum, type OID, size, modifier, format
			return false
		}
		if !fn(i, name) {
			return true
		}
		p = rest[18:]
	}
	return true
}

// DataRowValue returns column idx of a DataRow body, or of a prefix of one, when it holds all
// of the value; false for NULL, a column beyond the row, or a value cut off.
func DataRowValue(row []byte, idx int) ([]byte, bool) {
	if len(row) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(row))
	if idx >= n {
		return nil, false
	}
	p := row[2:]
	for i := 0; ; i++ {
		if len(p) < 4 {
			return nil, false
		}
		l := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if l < 0 {
			if i == idx {
				return nil, false
			}
			continue
		}
		if int(l) > len(p) {
			return nil, false
		}
		if i == idx {
			return p[:l], true
		}
		p = p[l:]
	}
}
