package pglog

import (
	"bytes"
	"io"
	"testing"
)

const csvSeed = `2024-03-01 10:00:01.010 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,3,"idle",2024-03-01 10:00:01 UTC,3/2,0,LOG,00000,"statement: SELECT ""a"",
'x,y'",,,,,,,,,"w","client backend",,0
2024-03-01 10:00:01.020 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,4,"SELECT",2024-03-01 10:00:01 UTC,3/3,0,LOG,00000,"execute S_1: SELECT $1","parameters: $1 = 'a''b'",,,,,,,,"w","client backend",,0
2024-03-01 10:00:01.030 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,5,"SELECT",2024-03-01 10:00:01 UTC,3/4,0,ERROR,22012,"division by zero",,,,,,"SELECT 1/0",,,"w","client backend",,0
`

const jsonSeed = `{"timestamp":"2024-03-01 10:00:01.010 UTC","user":"app","dbname":"appdb","pid":200,"remote_host":"10.1.2.3","remote_port":50000,"session_id":"65e1a721.c8","error_severity":"LOG","message":"statement: SELECT '\u00e9\ud83d\ude00',\n\t1","application_name":"w"}
{"timestamp":"2024-03-01 10:00:01.020 UTC","pid":200,"session_id":"65e1a721.c8","error_severity":"LOG","message":"execute <unnamed>: SELECT $1","detail":"parameters: $1 = NULL","x":[1,{"a":"b"}]}
`

// FuzzReader feeds any bytes to the reader, detected and with each format and a few
// prefixes forced: it must return an error or records, never panic or hang.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		debian, csvSeed, jsonSeed,
		"2024-03-01 10:00:01 UTC:10.0.0.1(5432):app@db:[42]:LOG:  duration: 1.5 ms  execute x/y: SELECT $1\n2024-03-01 10:00:01 UTC:10.0.0.1(5432):app@db:[42]:DETAIL:  parameters: $1 = 'a...'\n",
		"2024-03-01 10:00:01 UTC-65e1a721.2a-LOG:  disconnection: session time: 1:02:03.004 user=u database=d host=h port=1\n",
		"2024-10-27 02:30:00.000 CEST [1] LOG:  connection authorized: user=u database=d application_name=x GSS (authenticated=yes)\n",
		"\t\n\n\t\tx\n",
	} {
		f.Add([]byte(s))
	}
	data, _ := stormLog(60, 3, true)
	f.Add(data)
	opts := []Options{
		{},
		{Format: "csvlog"},
		{Format: "jsonlog"},
		{Prefix: "%m [%p] %q%u@%d "},
		{Prefix: "%t:%r:%u@%d:[%p]:", ParamMaxLength: 3},
		{Prefix: "%-5a|%10u|%c|%s|%n|%l %e %i %b %v %x %Q %P %% %h "},
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lines := int64(bytes.Count(in, []byte{'\n'})) + 1
		for _, opt := range opts {
			r, err := open([]string{"-"}, opt, bytes.NewReader(in))
			if err != nil {
				continue
			}
			var n int64
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if rec.Kind < Statement || rec.Kind > Disconnection {
					t.Fatalf("kind %d", rec.Kind)
				}
				if n++; n > 2*lines {
					t.Fatalf("%d records from %d lines", n, lines)
				}
			}
			if st := r.Stats(); st.Lines > lines || st.Records != n {
				t.Fatalf("stats %+v for %d lines, %d records", st, lines, n)
			}
		}
	})
}
