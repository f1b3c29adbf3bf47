// Package fuzzseed writes a recorded client/server session as seed corpus files of the proxy's
// fuzz targets (proxy/testdata/fuzz/<Target>/capture-<name>...), so every real client the tests
// drive can feed the fuzzers: psql, pgx and pgbench from the proxy's capture test, psycopg2 and
// JDBC from the coalescing client tests.
package fuzzseed

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/internal/pgwire"
)

// limit bounds each seed: the fuzzers mutate small inputs best.
const limit = 24 << 10

// Write writes the seeds of one session (client: everything the client sent, from its startup
// packet on; server: everything the server sent) into dir, named after name. It returns how
// many distinct Bind messages it wrote as FuzzBindMessage seeds.
func Write(dir, name string, client, server []byte) (binds int, err error) {
	startupEnd := 0
	for startupEnd+8 <= len(client) {
		n := int(binary.BigEndian.Uint32(client[startupEnd:]))
		code := binary.BigEndian.Uint32(client[startupEnd+4:])
		startupEnd += n
		if code != pgwire.SSLRequestCode && code != pgwire.GSSEncRequestCode {
			break
		}
	}
	startupEnd = min(startupEnd, len(client))
	typed := client[startupEnd:]
	spec := []byte{13, 40, 7, 63, 1}
	write := func(target, file string, args ...any) {
		if err != nil {
			return
		}
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", v)
			}
		}
		d := filepath.Join(dir, target)
		if err = os.MkdirAll(d, 0o755); err == nil {
			err = os.WriteFile(filepath.Join(d, file), []byte(b.String()), 0o644)
		}
	}
	write("FuzzReadStartup", "capture-"+name, client[:min(len(client), startupEnd+64)], false)
	write("FuzzFramer", "capture-"+name+"-client", cutMessages(typed, limit), spec)
	write("FuzzFramer", "capture-"+name+"-server", cutMessages(server, limit), spec)
	write("FuzzInspectors", "capture-"+name, cutMessages(typed, limit), cutMessages(server, limit), []byte{})
	write("FuzzInspectors", "capture-"+name+"-chunked", cutMessages(typed, limit), cutMessages(server, limit), spec)
	write("FuzzCoalescing", "capture-"+name, cutMessages(typed, limit), []byte{1, 0, 1}, spec)
	seen := map[string]bool{}
	for p := typed; len(p) >= pgwire.HeaderLen && binds < 4; {
		n := 1 + int(binary.BigEndian.Uint32(p[1:]))
		if n > len(p) || n < pgwire.HeaderLen {
			break
		}
		if body := p[pgwire.HeaderLen:n]; p[0] == pgwire.FrontendBind && !seen[string(body)] {
			seen[string(body)] = true
			write("FuzzBindMessage", fmt.Sprintf("capture-%s-%d", name, binds), body)
			binds++
		}
		p = p[n:]
	}
	return binds, err
}

// cutMessages returns the longest prefix of whole messages of p within limit bytes.
func cutMessages(p []byte, limit int) []byte {
	end := 0
	for end+5 <= len(p) {
		n := 1 + int(binary.BigEndian.Uint32(p[end+1:]))
		if n < 5 || end+n > limit || end+n > len(p) {
			break
		}
		end += n
	}
	return p[:end]
}
