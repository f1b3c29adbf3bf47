package pgwire

import "bytes"

// CString splits a NUL-terminated string off the front of p.
func CString(p []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(p, 0)
	if i < 0 {
		return nil, nil, false
	}
	return p[:i:i], p[i+1:], true
}

// SkipCString drops a NUL-terminated string off the front of p.
func SkipCString(p []byte) ([]byte, bool) {
	_, rest, ok := CString(p)
	return rest, ok
}
