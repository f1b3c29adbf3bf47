package pglog

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// read reads text as standard input with opt and returns every record and the stats.
func read(t *testing.T, text string, opt Options) ([]Record, Stats) {
	t.Helper()
	r, err := open([]string{"-"}, opt, strings.NewReader(text))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return drain(t, r)
}

func drain(t testing.TB, r *Reader) ([]Record, Stats) {
	t.Helper()
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec)
	}
	return out, r.Stats()
}

// statements returns the records of kind Statement.
func statements(recs []Record) []Record {
	var out []Record
	for _, r := range recs {
		if r.Kind == Statement {
			out = append(out, r)
		}
	}
	return out
}

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.000", s)
	if err != nil {
		panic(err)
	}
	return t
}

// debian is a log with Debian's prefix: a session connecting, running simple and extended
// statements (one failing), and leaving; a background process's lines in between.
const debian = `2024-03-01 10:00:00.100 UTC [100] LOG:  database system is ready to accept connections
2024-03-01 10:00:01.000 UTC [200] LOG:  connection received: host=10.1.2.3 port=50000
2024-03-01 10:00:01.002 UTC [200] app@appdb LOG:  connection authorized: user=app database=appdb application_name=celery worker SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)
2024-03-01 10:00:01.010 UTC [200] app@appdb LOG:  statement: SELECT 1
2024-03-01 10:00:01.020 UTC [200] app@appdb LOG:  statement: SELECT 'it''s', E'a\'b\\', $fn$ it's $x$ $fn$, -- a comment; 'not a literal'
	  "Col""x" /* block
	 comment */ FROM t;
	SELECT 2
2024-03-01 10:00:01.025 UTC [101] LOG:  checkpoint starting: time
2024-03-01 10:00:01.030 UTC [200] app@appdb LOG:  execute stmtcache_1: SELECT * FROM celery_taskmeta WHERE task_id = $1 AND x = $2 AND y = $3
2024-03-01 10:00:01.030 UTC [200] app@appdb DETAIL:  parameters: $1 = 'ab''c', $2 = NULL, $3 = ''
2024-03-01 10:00:01.035 UTC [200] app@appdb LOG:  execute <unnamed>: SELECT $1::text
2024-03-01 10:00:01.035 UTC [200] app@appdb DETAIL:  parameters: $1 = 'line one
	line two, $2 = ''x'''
2024-03-01 10:00:01.040 UTC [200] app@appdb LOG:  statement: SELECT 1/0
2024-03-01 10:00:01.041 UTC [200] app@appdb ERROR:  division by zero
2024-03-01 10:00:01.041 UTC [200] app@appdb STATEMENT:  SELECT 1/0
2024-03-01 10:00:01.050 UTC [200] app@appdb LOG:  statement: SELECT 3
2024-03-01 10:00:02.000 UTC [200] app@appdb LOG:  disconnection: session time: 0:00:01.000 user=app database=appdb host=10.1.2.3 port=50000
`

func TestDebianPrefix(t *testing.T) {
	recs, st := read(t, debian, Options{})
	if st.BadLines != 0 || st.Files[0].Prefix != "%m [%p] %q%u@%d " || st.Files[0].Format != "stderr" {
		t.Fatalf("stats %+v", st)
	}
	base := Record{Session: "65e1a721.c8", PID: 200, Host: "10.1.2.3", Port: 50000, User: "app", Database: "appdb", App: "celery worker", Duration: -1}
	rec := func(kind Kind, at string, f func(*Record)) Record {
		r := base
		r.Kind, r.Time = kind, ts(at)
		if f != nil {
			f(&r)
		}
		return r
	}
	want := []Record{
		rec(Connection, "2024-03-01 10:00:01.000", nil),
		rec(Statement, "2024-03-01 10:00:01.010", func(r *Record) { r.Text = "SELECT 1" }),
		rec(Statement, "2024-03-01 10:00:01.020", func(r *Record) {
			r.Text = "SELECT 'it''s', E'a\\'b\\\\', $fn$ it's $x$ $fn$, -- a comment; 'not a literal'\n  \"Col\"\"x\" /* block\n comment */ FROM t;\nSELECT 2"
		}),
		rec(Statement, "2024-03-01 10:00:01.030", func(r *Record) {
			r.Protocol, r.Name = Extended, "stmtcache_1"
			r.Text = "SELECT * FROM celery_taskmeta WHERE task_id = $1 AND x = $2 AND y = $3"
			r.Params = []Param{{Value: "ab'c"}, {Null: true}, {Value: ""}}
		}),
		rec(Statement, "2024-03-01 10:00:01.035", func(r *Record) {
			r.Protocol, r.Text = Extended, "SELECT $1::text"
			r.Params = []Param{{Value: "line one\nline two, $2 = 'x'"}}
		}),
		rec(Statement, "2024-03-01 10:00:01.040", func(r *Record) { r.Text, r.Failed = "SELECT 1/0", true }),
		rec(Statement, "2024-03-01 10:00:01.050", func(r *Record) { r.Text = "SELECT 3" }),
		rec(Disconnection, "2024-03-01 10:00:02.000", func(r *Record) { r.Duration = time.Second }),
	}
	compare(t, recs, want)
	if st.Statements != 6 || st.Connections != 1 || st.Disconnections != 1 || st.Records != 8 {
		t.Errorf("counts %+v", st)
	}
}

func compare(t *testing.T, got, want []Record) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("record %d missing: want %+v", i, want[i])
		case i >= len(want):
			t.Errorf("record %d extra: %+v", i, got[i])
		case !reflect.DeepEqual(norm(got[i]), norm(want[i])):
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// norm makes empty and nil Params equal.
func norm(r Record) Record {
	if len(r.Params) == 0 {
		r.Params = nil
	}
	return r
}

// TestDurationOnly: log_min_duration_statement = 0 without log_statement. Each statement is
// logged at its end with its duration; the extended protocol's parse and bind are not
// statements; the record's time is its start.
func TestDurationOnly(t *testing.T) {
	log := `2024-03-01 10:00:01.010 UTC [200] app@db LOG:  duration: 10.500 ms  statement: SELECT pg_sleep(0.01)
2024-03-01 10:00:01.020 UTC [200] app@db LOG:  duration: 0.051 ms  parse stmtcache_9: SELECT $1::int
2024-03-01 10:00:01.021 UTC [200] app@db LOG:  duration: 0.020 ms  bind stmtcache_9: SELECT $1::int
2024-03-01 10:00:01.021 UTC [200] app@db DETAIL:  parameters: $1 = '42'
2024-03-01 10:00:01.022 UTC [200] app@db LOG:  duration: 0.030 ms  execute stmtcache_9: SELECT $1::int
2024-03-01 10:00:01.022 UTC [200] app@db DETAIL:  parameters: $1 = '42'
2024-03-01 10:00:01.030 UTC [200] app@db LOG:  duration: 0.020 ms  bind stmtcache_9: SELECT $1::int
2024-03-01 10:00:01.030 UTC [200] app@db DETAIL:  parameters: $1 = '43'
2024-03-01 10:00:01.031 UTC [200] app@db LOG:  duration: 1.000 ms  execute stmtcache_9: SELECT $1::int
2024-03-01 10:00:01.031 UTC [200] app@db DETAIL:  parameters: $1 = '43'
2024-03-01 10:00:01.040 UTC [200] app@db ERROR:  division by zero
2024-03-01 10:00:01.040 UTC [200] app@db STATEMENT:  SELECT 1/0
`
	recs, st := read(t, log, Options{})
	got := statements(recs)
	if len(got) != 4 || st.BadLines != 0 {
		t.Fatalf("%d statements, %d bad: %+v", len(got), st.BadLines, got)
	}
	if got[0].Text != "SELECT pg_sleep(0.01)" || got[0].Duration != 10500*time.Microsecond || !got[0].Time.Equal(ts("2024-03-01 10:00:00.999").Add(500*time.Microsecond)) {
		t.Errorf("simple: %+v", got[0])
	}
	if got[1].Protocol != Extended || got[1].Name != "stmtcache_9" || got[1].Params[0].Value != "42" || got[1].Duration != 30*time.Microsecond ||
		!got[1].Time.Equal(ts("2024-03-01 10:00:01.022").Add(-30*time.Microsecond)) {
		t.Errorf("extended: %+v", got[1])
	}
	// Ordered by start: the 1 ms execute logged at .031 started at .030.
	if got[2].Params[0].Value != "43" || !got[2].Time.Equal(ts("2024-03-01 10:00:01.030")) {
		t.Errorf("second execute: %+v", got[2])
	}
	if !got[3].Failed || got[3].Text != "SELECT 1/0" {
		t.Errorf("failed: %+v", got[3])
	}
}

// TestBothLogged: log_statement = 'all' and log_min_duration_statement = 0. PostgreSQL logs
// the statement when it starts and a bare duration when it ends: one record each.
func TestBothLogged(t *testing.T) {
	log := `2024-03-01 10:00:01.000 UTC [200] app@db LOG:  statement: BEGIN
2024-03-01 10:00:01.001 UTC [201] app@db LOG:  statement: SELECT 'other session'
2024-03-01 10:00:01.001 UTC [200] app@db LOG:  duration: 0.100 ms
2024-03-01 10:00:01.002 UTC [200] app@db LOG:  duration: 0.040 ms  parse <unnamed>: SELECT $1
2024-03-01 10:00:01.003 UTC [200] app@db LOG:  duration: 0.020 ms  bind <unnamed>: SELECT $1
2024-03-01 10:00:01.003 UTC [200] app@db DETAIL:  parameters: $1 = 'k'
2024-03-01 10:00:01.003 UTC [200] app@db LOG:  execute <unnamed>: SELECT $1
2024-03-01 10:00:01.003 UTC [200] app@db DETAIL:  parameters: $1 = 'k'
2024-03-01 10:00:01.004 UTC [201] app@db LOG:  duration: 3.000 ms
2024-03-01 10:00:01.005 UTC [200] app@db LOG:  duration: 2.000 ms
2024-03-01 10:00:01.006 UTC [200] app@db LOG:  statement: ROLLBACK
2024-03-01 10:00:01.006 UTC [200] app@db LOG:  duration: 0.010 ms
`
	recs, st := read(t, log, Options{})
	got := statements(recs)
	want := []struct {
		pid  int
		text string
		d    time.Duration
	}{
		{200, "BEGIN", 100 * time.Microsecond},
		{201, "SELECT 'other session'", 3 * time.Millisecond},
		{200, "SELECT $1", 2 * time.Millisecond},
		{200, "ROLLBACK", 10 * time.Microsecond},
	}
	if len(got) != len(want) || st.Unpaired != 0 {
		t.Fatalf("got %d statements (unpaired %d): %+v", len(got), st.Unpaired, got)
	}
	for i, w := range want {
		if got[i].PID != w.pid || got[i].Text != w.text || got[i].Duration != w.d {
			t.Errorf("%d: %+v, want %+v", i, got[i], w)
		}
	}
	if p := got[2].Params; len(p) != 1 || p[0].Value != "k" || got[2].Protocol != Extended || got[2].Name != "" {
		t.Errorf("extended: %+v", got[2])
	}
}

func TestInterleavedSessionsAndPIDReuse(t *testing.T) {
	log := `2024-03-01 10:00:00.000 UTC [300] LOG:  connection received: host=[local]
2024-03-01 10:00:00.001 UTC [300] a@db1 LOG:  connection authorized: user=a database=db1
2024-03-01 10:00:00.002 UTC [301] LOG:  connection received: host=::1 port=40001
2024-03-01 10:00:00.003 UTC [301] b@db2 LOG:  connection authorized: user=b database=db2 application_name=psql
2024-03-01 10:00:00.004 UTC [300] a@db1 LOG:  statement: SELECT 'a1'
2024-03-01 10:00:00.005 UTC [301] b@db2 LOG:  statement: SELECT 'b1'
2024-03-01 10:00:00.006 UTC [300] a@db1 LOG:  statement: SELECT 'a2'
2024-03-01 10:00:00.007 UTC [300] a@db1 LOG:  disconnection: session time: 0:00:00.007 user=a database=db1 host=[local]
2024-03-01 10:00:05.000 UTC [300] LOG:  connection received: host=10.0.0.9 port=40002
2024-03-01 10:00:05.001 UTC [300] c@db1 LOG:  connection authorized: user=c database=db1
2024-03-01 10:00:05.002 UTC [300] c@db1 LOG:  statement: SELECT 'c1'
2024-03-01 10:00:05.003 UTC [301] b@db2 LOG:  statement: SELECT 'b2'
`
	recs, _ := read(t, log, Options{})
	sess := map[string]string{} // text -> session
	users := map[string]string{}
	for _, r := range statements(recs) {
		sess[r.Text], users[r.Text] = r.Session, r.User+"@"+r.Host+"/"+r.App
	}
	if sess["SELECT 'a1'"] != sess["SELECT 'a2'"] || sess["SELECT 'b1'"] != sess["SELECT 'b2'"] ||
		sess["SELECT 'a1'"] == sess["SELECT 'b1'"] || sess["SELECT 'c1'"] == sess["SELECT 'a1'"] {
		t.Errorf("sessions: %v", sess)
	}
	if users["SELECT 'a1'"] != "a@[local]/" || users["SELECT 'b2'"] != "b@::1/psql" || users["SELECT 'c1'"] != "c@10.0.0.9/" {
		t.Errorf("clients: %v", users)
	}
	if sess["SELECT 'c1'"] != fmt.Sprintf("%x.%x", ts("2024-03-01 10:00:05.000").Unix(), 300) {
		t.Errorf("session id of the reused pid: %s", sess["SELECT 'c1'"])
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind.String())
	}
	if strings.Join(kinds, " ") != "connection connection statement statement statement disconnection connection statement statement" {
		t.Errorf("kinds: %v", kinds)
	}
}

// TestParams covers what log_parameter_max_length does to values.
func TestParams(t *testing.T) {
	for _, c := range []struct {
		detail string
		maxLen int
		want   []Param
	}{
		{"$1 = 'abc', $2 = NULL", 0, []Param{{Value: "abc"}, {Null: true}}},
		{"$1 = 'it''s', $2 = ''''", 0, []Param{{Value: "it's"}, {Value: "'"}}},
		{"$1 = 'abcdefghij...'", 0, []Param{{Value: "abcdefghij", Truncated: true}}},
		{"$1 = 'abcdefghij...'", 10, []Param{{Value: "abcdefghij", Truncated: true}}},
		{"$1 = 'ab...'", 10, []Param{{Value: "ab..."}}},
		{"$1 = 'ab...'", -1, []Param{{Value: "ab..."}}},
		{"$1 = 'éé...'", 2, []Param{{Value: "éé", Truncated: true}}},
		{"$1 = 'x', $2 = 'y...', $3 = NULL", 0, []Param{{Value: "x"}, {Value: "y", Truncated: true}, {Null: true}}},
		{"$1 = 'unterminated", 0, []Param{}},
	} {
		got := parseParams([]byte(c.detail), c.maxLen, &interner{})
		if !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%q max %d: %+v, want %+v", c.detail, c.maxLen, got, c.want)
		}
	}
}

// TestPrefixes reads the same session under many log_line_prefix values, given and
// detected.
func TestPrefixes(t *testing.T) {
	at := ts("2024-03-01 10:00:01.234")
	for _, c := range []struct {
		prefix string
		detect bool
		line   string // with %s for "LOG:  statement: SELECT 1"
		check  func(r Record) bool
	}{
		{"%m [%p] ", true, "2024-03-01 10:00:01.234 UTC [42] %s", nil},
		{"%t [%p] ", true, "2024-03-01 10:00:01 UTC [42] %s", nil},
		{"%t:%r:%u@%d:[%p]:", true, "2024-03-01 10:00:01 UTC:10.0.0.1(5432):app@db:[42]:%s",
			func(r Record) bool {
				return r.Host == "10.0.0.1" && r.Port == 5432 && r.User == "app" && r.Database == "db"
			}},
		{"%t:%r:%u@%d:[%p]:", true, "2024-03-01 10:00:01 UTC:[local]:app@db:[42]:%s",
			func(r Record) bool { return r.Host == "[local]" && r.Port == 0 }},
		{"%m [%p]: [%l-1] db=%d,user=%u ", true, "2024-03-01 10:00:01.234 UTC [42]: [7-1] db=db,user=app %s",
			func(r Record) bool { return r.User == "app" && r.Database == "db" }},
		{"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", true, "2024-03-01 10:00:01 UTC [42]: [3-1] user=app,db=db,app=My App 2.0,client=10.0.0.2 %s",
			func(r Record) bool { return r.App == "My App 2.0" && r.Host == "10.0.0.2" }},
		{"%t-%c-", true, "2024-03-01 10:00:01 UTC-65e1a721.2a-%s", func(r Record) bool { return r.Session == "65e1a721.2a" }},
		{"%m [%p] %q%u@%d/%a ", true, "2024-03-01 10:00:01.234 UTC [42] app@db/psql %s", func(r Record) bool { return r.App == "psql" }},
		{"%n [%p] ", false, "1709287201.234 [42] %s", nil},
		{"%m %c %s %v %x %e %i %b %Q %P|", false, "2024-03-01 10:00:01.234 UTC 65e1a721.2a 2024-03-01 09:59:00 UTC 3/14 0 00000 SELECT client backend 0 |%s",
			func(r Record) bool { return r.Session == "65e1a721.2a" }},
		{"%s %p %u ", false, "2024-03-01 09:59:00 UTC 42 app %s", func(r Record) bool {
			return r.Session == fmt.Sprintf("%x.2a", ts("2024-03-01 09:59:00.000").Unix()) && r.Time.IsZero()
		}},
		{"%-8p|%10u|%-6d|%m ", false, "42      |       app|db    |2024-03-01 10:00:01.234 UTC %s", func(r Record) bool { return r.User == "app" && r.Database == "db" }},
		{"100%% %m [%p] ", false, "100%% 2024-03-01 10:00:01.234 UTC [42] %s", nil},
		{"%m [%p] %a@@%u ", false, "2024-03-01 10:00:01.234 UTC [42] a@b@@c %s", func(r Record) bool { return r.App == "a@b" && r.User == "c" }},
		{"%m %p %r ", false, "2024-03-01 10:00:01.234 UTC 42 db.example.com(61000) %s", func(r Record) bool { return r.Host == "db.example.com" && r.Port == 61000 }},
		{"%m %p %z %y ", false, "2024-03-01 10:00:01.234 UTC 42   %s", nil}, // unknown escapes print nothing
	} {
		t.Run(c.prefix, func(t *testing.T) {
			log := "\n" + fmt.Sprintf(c.line, "LOG:  statement: SELECT 1") + "\n"
			opt := Options{Prefix: c.prefix}
			if c.detect {
				opt.Prefix = ""
			}
			recs, st := read(t, log, opt)
			if len(recs) != 1 || st.BadLines != 0 {
				t.Fatalf("%d records, stats %+v", len(recs), st)
			}
			r := recs[0]
			if c.detect && st.Files[0].Prefix != c.prefix {
				t.Errorf("detected %q", st.Files[0].Prefix)
			}
			if r.Text != "SELECT 1" || (r.PID != 42 && !strings.Contains(c.prefix, "%c")) {
				t.Errorf("record %+v", r)
			}
			if strings.ContainsAny(c.prefix[:min(2, len(c.prefix))], "mtn") && strings.Contains(c.prefix, "%m") && !r.Time.Equal(at) {
				t.Errorf("time %v, want %v", r.Time, at)
			}
			if c.check != nil && !c.check(r) {
				t.Errorf("record %+v", r)
			}
		})
	}
}

// TestNonSessionLines: %q stops the prefix for background processes.
func TestNonSessionLines(t *testing.T) {
	log := `2024-03-01 10:00:00.000 UTC [10] LOG:  checkpoint complete: wrote 3 buffers
2024-03-01 10:00:00.001 UTC [11] LOG:  automatic vacuum of table "db.public.t": index scans: 0
2024-03-01 10:00:00.002 UTC [12] u@d LOG:  statement: SELECT 'LOG:  x'
2024-03-01 10:00:00.003 UTC [13] [unknown]@[unknown] LOG:  connection received: host=1.2.3.4 port=1
2024-03-01 10:00:00.004 UTC [13] u@d FATAL:  password authentication failed for user "u"
2024-03-01 10:00:00.004 UTC [13] u@d DETAIL:  Connection matched pg_hba.conf line 99: "host all all 0.0.0.0/0 scram-sha-256"
`
	recs, st := read(t, log, Options{})
	if st.BadLines != 0 || len(recs) != 2 {
		t.Fatalf("%+v %+v", recs, st)
	}
	if recs[0].Text != "SELECT 'LOG:  x'" || recs[0].User != "u" {
		t.Errorf("%+v", recs[0])
	}
	if recs[1].Kind != Connection || !recs[1].Failed || recs[1].Host != "1.2.3.4" {
		t.Errorf("failed login: %+v", recs[1])
	}
}

func TestCSVLog(t *testing.T) {
	log := `2024-03-01 10:00:01.000 UTC,,,200,"10.1.2.3:50000",65e1a721.c8,1,"",2024-03-01 10:00:01 UTC,,0,LOG,00000,"connection received: host=10.1.2.3 port=50000",,,,,,,,,"","client backend",,0
2024-03-01 10:00:01.002 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,2,"authentication",2024-03-01 10:00:01 UTC,3/1,0,LOG,00000,"connection authorized: user=app database=appdb application_name=w",,,,,,,,,"w","client backend",,0
2024-03-01 10:00:01.010 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,3,"idle",2024-03-01 10:00:01 UTC,3/2,0,LOG,00000,"statement: SELECT ""a"",
'x,y'
  -- done",,,,,,,,,"w","client backend",,0
2024-03-01 10:00:01.020 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,4,"SELECT",2024-03-01 10:00:01 UTC,3/3,0,LOG,00000,"execute S_1: SELECT $1","parameters: $1 = 'a''b'",,,,,,,,"w","client backend",,0
2024-03-01 10:00:01.030 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,5,"SELECT",2024-03-01 10:00:01 UTC,3/4,0,ERROR,22012,"division by zero",,,,,,"SELECT 1/0",,,"w","client backend",,0
2024-03-01 10:00:02.000 UTC,"app","appdb",200,"10.1.2.3:50000",65e1a721.c8,6,"idle",2024-03-01 10:00:01 UTC,,0,LOG,00000,"disconnection: session time: 0:00:01.000 user=app database=appdb host=10.1.2.3 port=50000",,,,,,,,,"w","client backend",,0
`
	recs, st := read(t, log, Options{})
	if st.Files[0].Format != "csvlog" || st.BadLines != 0 {
		t.Fatalf("%+v", st)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s %s:%d %s@%s/%s %q %v %v", r.Kind, r.Session, r.Host, r.Port, r.User, r.Database, r.App, r.Text, r.Params, r.Failed))
	}
	want := []string{
		`connection 65e1a721.c8 10.1.2.3:50000 app@appdb/w "" [] false`,
		`statement 65e1a721.c8 10.1.2.3:50000 app@appdb/w "SELECT \"a\",\n'x,y'\n  -- done" [] false`,
		`statement 65e1a721.c8 10.1.2.3:50000 app@appdb/w "SELECT $1" [{a'b false false}] false`,
		`statement 65e1a721.c8 10.1.2.3:50000 app@appdb/w "SELECT 1/0" [] true`,
		`disconnection 65e1a721.c8 10.1.2.3:50000 app@appdb/w "" [] false`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestJSONLog(t *testing.T) {
	log := `{"timestamp":"2024-03-01 10:00:01.000 UTC","pid":200,"remote_host":"10.1.2.3","remote_port":50000,"session_id":"65e1a721.c8","line_num":1,"ps":"","session_start":"2024-03-01 10:00:01 UTC","txid":0,"error_severity":"LOG","message":"connection received: host=10.1.2.3 port=50000","backend_type":"client backend","query_id":0}
{"timestamp":"2024-03-01 10:00:01.010 UTC","user":"app","dbname":"appdb","pid":200,"remote_host":"10.1.2.3","remote_port":50000,"session_id":"65e1a721.c8","line_num":3,"ps":"idle","session_start":"2024-03-01 10:00:01 UTC","vxid":"3/2","txid":0,"error_severity":"LOG","message":"statement: SELECT 'é\u00e9\ud83d\ude00',\n\t\"q\" \\ /","application_name":"w","backend_type":"client backend","query_id":0}
{"timestamp":"2024-03-01 10:00:01.020 UTC","user":"app","dbname":"appdb","pid":200,"remote_host":"10.1.2.3","remote_port":50000,"session_id":"65e1a721.c8","line_num":4,"error_severity":"LOG","message":"execute <unnamed>: SELECT $1, $2","detail":"parameters: $1 = NULL, $2 = 'x'","application_name":"w","extra":{"nested":[1,{"a":"b"}]}}
{"timestamp":"2024-03-01 10:00:01.030 UTC","user":"app","dbname":"appdb","pid":200,"session_id":"65e1a721.c8","error_severity":"ERROR","state_code":"22012","message":"division by zero","statement":"SELECT 1/0","application_name":"w"}
not json at all
`
	recs, st := read(t, log, Options{})
	if st.Files[0].Format != "jsonlog" || st.BadLines != 1 {
		t.Fatalf("%+v", st)
	}
	if len(recs) != 4 || recs[0].Kind != Connection || recs[0].Port != 50000 {
		t.Fatalf("%+v", recs)
	}
	if recs[1].Text != "SELECT 'éé😀',\n\t\"q\" \\ /" || recs[1].App != "w" {
		t.Errorf("%+v", recs[1])
	}
	if p := recs[2].Params; len(p) != 2 || !p[0].Null || p[1].Value != "x" {
		t.Errorf("%+v", recs[2])
	}
	if !recs[3].Failed || recs[3].Text != "SELECT 1/0" {
		t.Errorf("%+v", recs[3])
	}
}

func TestFilters(t *testing.T) {
	log := `2024-03-01 10:00:01.000 UTC [1] a@x LOG:  statement: SELECT 1
2024-03-01 10:00:02.000 UTC [2] b@y LOG:  statement: SELECT 2
2024-03-01 10:00:03.000 UTC [1] a@x LOG:  statement: SELECT 3
2024-03-01 10:00:04.000 UTC [2] b@y LOG:  statement: SELECT 4
`
	texts := func(opt Options) string {
		recs, _ := read(t, log, opt)
		var out []string
		for _, r := range recs {
			out = append(out, r.Text[7:])
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{}, "1,2,3,4"},
		{Options{Since: ts("2024-03-01 10:00:02.000")}, "2,3,4"},
		{Options{Until: ts("2024-03-01 10:00:03.000")}, "1,2"},
		{Options{Database: "x"}, "1,3"},
		{Options{User: "b", Since: ts("2024-03-01 10:00:03.000")}, "4"},
		{Options{App: "nope"}, ""},
	} {
		if got := texts(c.opt); got != c.want {
			t.Errorf("%+v: %s, want %s", c.opt, got, c.want)
		}
	}
}

func TestBadLines(t *testing.T) {
	var b strings.Builder
	b.WriteString("2024-03-01 10:00:01.000 UTC [1] a@x LOG:  statement: SELECT 1\n")
	for i := range 8 {
		fmt.Fprintf(&b, "oops %d password='hunter''%d' and 'x'\n", i, i)
	}
	b.WriteString("2024-03-01 10:00:02.000 UTC [1] a@x LOG:  statement: SELECT 2\n")
	recs, st := read(t, b.String(), Options{MaxBadExamples: 3, Prefix: "%m [%p] %q%u@%d "})
	if len(recs) != 2 || st.BadLines != 8 || len(st.BadExamples) != 3 {
		t.Fatalf("%d records, %+v", len(recs), st)
	}
	if ex := st.BadExamples[1]; ex.Text != "oops 1 password='…' and '…'" || ex.Line != 3 || ex.Path != "-" {
		t.Errorf("example %+v", ex)
	}
}

func TestDetectionFailure(t *testing.T) {
	_, err := open([]string{"-"}, Options{}, strings.NewReader("Mar  1 10:00:01 host postgres[42]: [1-1] LOG:  statement: SELECT 'secret'\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"-:", "jsonlog", "csvlog", "%m [%p] %q%u@%d ", "%t:%r:%u@%d:[%p]:", "--prefix", "'…'", "postgres[42]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows a literal: %v", err)
	}
	_, err = open([]string{"-"}, Options{Prefix: "%m [%p] "}, strings.NewReader("garbage\nmore garbage\n"))
	if err == nil || !strings.Contains(err.Error(), "%m [%p] ") {
		t.Errorf("given prefix: %v", err)
	}
	if _, err := open([]string{"-"}, Options{Prefix: "%m %u "}, strings.NewReader("")); err == nil {
		t.Errorf("a prefix without %%p or %%c was accepted")
	}
}

func TestZones(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stamp string
		loc   *time.Location
		want  string // UTC
	}{
		{"2024-03-01 10:00:01.000 UTC", nil, "2024-03-01 10:00:01"},
		{"2024-03-01 10:00:01.000 +03", nil, "2024-03-01 07:00:01"},
		{"2024-03-01 10:00:01.000 -0330", nil, "2024-03-01 13:30:01"},
		{"2024-03-01 10:00:01.000 CET", nil, "2024-03-01 09:00:01"},
		{"2024-07-01 10:00:01.000 CEST", nil, "2024-07-01 08:00:01"},
		{"2024-07-01 10:00:01.000 CEST", paris, "2024-07-01 08:00:01"},
		// The hour that happens twice when summer time ends: the abbreviation says which.
		{"2024-10-27 02:30:00.000 CEST", paris, "2024-10-27 00:30:00"},
		{"2024-10-27 02:30:00.000 CET", paris, "2024-10-27 01:30:00"},
	} {
		log := c.stamp + " [1] LOG:  statement: SELECT 1\n"
		recs, _ := read(t, log, Options{Location: c.loc, Prefix: "%m [%p] "})
		if len(recs) != 1 {
			t.Fatalf("%s: %d records", c.stamp, len(recs))
		}
		if got := recs[0].Time.UTC().Format("2006-01-02 15:04:05"); got != c.want {
			t.Errorf("%s (%v): %s, want %s", c.stamp, c.loc, got, c.want)
		}
	}
}

// TestOrderWindow: a long statement logged at its end comes out at its start, among the
// statements that started after it.
func TestOrderWindow(t *testing.T) {
	log := `2024-03-01 10:00:01.000 UTC [1] a@x LOG:  statement: SELECT 'short 1'
2024-03-01 10:00:01.500 UTC [3] a@x LOG:  statement: SELECT 'short 2'
2024-03-01 10:00:01.600 UTC [2] a@x LOG:  duration: 300.000 ms  statement: SELECT 'long'
`
	recs, _ := read(t, log, Options{})
	var got []string
	for _, r := range recs {
		got = append(got, r.Text)
	}
	if strings.Join(got, ",") != "SELECT 'short 1',SELECT 'long',SELECT 'short 2'" {
		t.Errorf("order: %v", got)
	}
}

// TestPendingTimeout: with log_statement only, a statement is let go once the log is
// Window past it, even though its session says nothing more.
func TestPendingTimeout(t *testing.T) {
	log := `2024-03-01 10:00:01.000 UTC [1] a@x LOG:  statement: SELECT 'idle after'
2024-03-01 10:00:05.000 UTC [2] a@x LOG:  statement: SELECT 'later'
2024-03-01 10:00:05.001 UTC [1] a@x LOG:  duration: 4001.000 ms
`
	r, err := open([]string{"-"}, Options{}, strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	recs, st := drain(t, r)
	if len(recs) != 2 || recs[0].Duration != -1 || st.Unpaired != 1 {
		t.Errorf("%+v %+v", recs, st)
	}
}

// TestMoreMessages: a portal fetched in pieces is one execution; log_error_verbosity =
// verbose puts the SQLSTATE after the severity and adds LOCATION lines; replication
// connections; what is not a statement is left alone.
func TestMoreMessages(t *testing.T) {
	log := `2024-03-01 10:00:01.000 UTC [1] u@d LOG:  00000: execute S_1/C_2: SELECT * FROM big
2024-03-01 10:00:01.000 UTC [1] u@d LOCATION:  exec_execute_message, postgres.c:2230
2024-03-01 10:00:01.001 UTC [1] u@d LOG:  00000: duration: 0.500 ms
2024-03-01 10:00:01.002 UTC [1] u@d LOG:  00000: execute fetch from S_1/C_2: SELECT * FROM big
2024-03-01 10:00:01.003 UTC [1] u@d LOG:  00000: duration: 0.400 ms
2024-03-01 10:00:01.004 UTC [1] u@d LOG:  00000: duration: 2.000 ms  plan:
	Query Text: SELECT * FROM big
	Seq Scan on big
2024-03-01 10:00:01.005 UTC [1] u@d NOTICE:  00000: a notice does not end a statement
2024-03-01 10:00:01.006 UTC [1] u@d LOG:  00000: statement: SELECT f()
2024-03-01 10:00:01.007 UTC [1] u@d NOTICE:  00000: raised inside f
2024-03-01 10:00:01.008 UTC [1] u@d LOG:  00000: duration: 2.000 ms
2024-03-01 10:00:01.009 UTC [2] LOG:  00000: connection received: host=10.0.0.5 port=5000
2024-03-01 10:00:01.010 UTC [2] repl@[unknown] LOG:  00000: replication connection authorized: user=repl application_name=walreceiver SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)
2024-03-01 10:00:01.011 UTC [1] u@d ERROR:  42P01: relation "nope" does not exist at character 15
2024-03-01 10:00:01.011 UTC [1] u@d LOCATION:  parserOpenTable, parse_relation.c:1392
2024-03-01 10:00:01.011 UTC [1] u@d STATEMENT:  SELECT * FROM nope
`
	recs, st := read(t, log, Options{})
	if st.BadLines != 0 || st.Unpaired != 0 {
		t.Fatalf("stats %+v", st)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s %q %v %v %s/%s", r.Kind, r.Name, r.Text, r.Duration, r.Failed, r.User, r.App))
	}
	want := []string{
		`statement S_1/C_2 "SELECT * FROM big" 500µs false u/`,
		`statement  "SELECT f()" 2ms false u/`,
		`connection  "" -1ns false repl/walreceiver`,
		`statement  "SELECT * FROM nope" -1ns true u/`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestProgressStdin(t *testing.T) {
	var calls [][2]int64
	r, err := open([]string{"-"}, Options{Progress: func(n, total int64) { calls = append(calls, [2]int64{n, total}) }},
		strings.NewReader(debian))
	if err != nil {
		t.Fatal(err)
	}
	drain(t, r)
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{int64(len(debian)), -1} {
		t.Errorf("progress %v", calls)
	}
}
