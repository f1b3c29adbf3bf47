package proxy

import (
	"bytes"
	"errors"
	"testing"
)

// TestNegotiationRequestsAtMostOnceEach: as the postmaster, one SSLRequest and one
// GSSENCRequest in either order, then the startup packet; a repeated request is refused.
func TestNegotiationRequestsAtMostOnceEach(t *testing.T) {
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	gss := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}
	start := startupPacket("user", "u")
	cases := []struct {
		name    string
		packets [][]byte
		code    string // "" when the startup must succeed
		answers string
	}{
		{"ssl then gss", [][]byte{ssl, gss, start}, "", "NN"},
		{"gss then ssl", [][]byte{gss, ssl, start}, "", "NN"},
		{"ssl twice", [][]byte{ssl, ssl, start}, "0A000", "N"},
		{"gss twice", [][]byte{gss, gss, start}, "0A000", "N"},
		{"gss, ssl, gss", [][]byte{gss, ssl, gss, start}, "0A000", "NN"},
	}
	for _, c := range cases {
		conn := &fakeConn{r: bytes.NewReader(bytes.Join(c.packets, nil))}
		st, err := readStartup(conn, nil)
		var se *errStartup
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code == "" && st.params["user"] != "u":
			t.Errorf("%s: params %v", c.name, st.params)
		case c.code != "" && (!errors.As(err, &se) || se.code != c.code):
			t.Errorf("%s: want %s, got %v", c.name, c.code, err)
		}
		if conn.w.String() != c.answers {
			t.Errorf("%s: answered %q, want %q", c.name, conn.w.String(), c.answers)
		}
	}
}
