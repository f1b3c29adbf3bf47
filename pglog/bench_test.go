package pglog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// cpuTime is the CPU time this process used so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// celeryPoll is SQLAlchemy's poll of Celery's result table as psycopg2 sends it (captured in
// internal/storm): three lines in the log.
const celeryPoll = "SELECT celery_taskmeta.id AS celery_taskmeta_id, celery_taskmeta.task_id AS celery_taskmeta_task_id, celery_taskmeta.status AS celery_taskmeta_status, celery_taskmeta.result AS celery_taskmeta_result, celery_taskmeta.date_done AS celery_taskmeta_date_done, celery_taskmeta.traceback AS celery_taskmeta_traceback \nFROM celery_taskmeta \nWHERE celery_taskmeta.task_id = '%s'"

const celeryPollParam = "SELECT celery_taskmeta.id, celery_taskmeta.task_id, celery_taskmeta.status, celery_taskmeta.result, celery_taskmeta.date_done, celery_taskmeta.traceback FROM celery_taskmeta WHERE celery_taskmeta.task_id = $1"

// stormLog writes what PostgreSQL logs (log_statement = 'all', Debian's log_line_prefix,
// log_connections) while `pgpollwatch storm` runs: sessions pollers interleaved, each polling
// ten task ids in BEGIN; SELECT; ROLLBACK (psycopg2) or as one extended-protocol execute with
// its parameter (pgx). It stops after about lines physical lines and returns the log and the
// exact number of lines. Statements come about 7,000 a second (storm's spin loops on one
// machine), so the log spans many times Options.Window.
func stormLog(lines, sessions int, extended bool) ([]byte, int) {
	return stormLogAs("stderr", lines, sessions, extended)
}

// stormLogAs is stormLog in format ("stderr", "csvlog" or "jsonlog").
func stormLogAs(format string, lines, sessions int, extended bool) ([]byte, int) {
	var b bytes.Buffer
	t := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	n := 0
	stamp := func() string {
		t = t.Add(137 * time.Microsecond)
		return t.Format("2006-01-02 15:04:05.000") + " UTC"
	}
	start := "2026-11-24 08:00:00 UTC"
	// msg writes one message of session s; user and db empty before authorization.
	msg := func(at string, s int, user, sev, text, detail string) {
		pid := 4000 + s
		switch format {
		case "stderr":
			who := ""
			if user != "" {
				who = user + "@app "
			}
			fmt.Fprintf(&b, "%s [%d] %s%s:  %s\n", at, pid, who, sev, strings.ReplaceAll(text, "\n", "\n\t"))
			n += 1 + strings.Count(text, "\n")
			if detail != "" {
				fmt.Fprintf(&b, "%s [%d] %s%s:  %s\n", at, pid, who, "DETAIL", detail)
				n++
			}
		case "csvlog":
			q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
			db, app := "", ""
			if user != "" {
				db, app = "app", "storm"
			}
			fmt.Fprintf(&b, "%s,%s,%s,%d,\"127.0.0.1:%d\",6b054400.%x,1,\"idle\",%s,3/1,0,%s,00000,%s,%s,,,,,,,,%s,\"client backend\",,0\n",
				at, q(user), q(db), pid, 40000+s, pid, start, sev, q(text), q(detail), q(app))
			n += 1 + strings.Count(text, "\n")
		case "jsonlog":
			js := func(s string) string { v, _ := json.Marshal(s); return string(v) }
			fmt.Fprintf(&b, `{"timestamp":%s,"user":%s,"dbname":"app","pid":%d,"remote_host":"127.0.0.1","remote_port":%d,"session_id":"6b054400.%x","line_num":1,"ps":"idle","session_start":%s,"vxid":"3/1","txid":0,"error_severity":%s,"message":%s`,
				js(at), js(user), pid, 40000+s, pid, js(start), js(sev), js(text))
			if detail != "" {
				fmt.Fprintf(&b, `,"detail":%s`, js(detail))
			}
			b.WriteString(`,"application_name":"storm","backend_type":"client backend","query_id":0}` + "\n")
			n++
		}
	}
	for s := 0; s < sessions; s++ {
		msg(stamp(), s, "", "LOG", fmt.Sprintf("connection received: host=127.0.0.1 port=%d", 40000+s), "")
		msg(stamp(), s, "celery", "LOG", "connection authorized: user=celery database=app application_name=storm", "")
	}
	for i := 0; n < lines; i++ {
		s := i % sessions
		id := fmt.Sprintf("%08d-1111-1111-1111-111111111111", i%10)
		if extended {
			msg(stamp(), s, "celery", "LOG", "execute stmtcache_7f3a: "+celeryPollParam, "parameters: $1 = '"+id+"'")
			continue
		}
		at := stamp()
		msg(at, s, "celery", "LOG", "statement: BEGIN", "")
		msg(at, s, "celery", "LOG", "statement: "+fmt.Sprintf(celeryPoll, id), "")
		msg(stamp(), s, "celery", "LOG", "statement: ROLLBACK", "")
	}
	return b.Bytes(), n
}

func benchRead(b *testing.B, data []byte, lines int, opt Options) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	records := 0
	cpu0 := cpuTime()
	for b.Loop() {
		r, err := open([]string{"-"}, opt, bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		records = 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			records++
		}
		if st := r.Stats(); st.BadLines != 0 || st.Lines != int64(lines) {
			b.Fatalf("lines %d (want %d), bad %d: %v", st.Lines, lines, st.BadLines, st.BadExamples)
		}
	}
	perLine := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(lines)
	b.ReportMetric(perLine, "ns/line")
	b.ReportMetric(1e9/perLine, "lines/s")
	// On a machine shared with other work, wall time overstates the cost: CPU time (this
	// process's, garbage collection included) says what reading took.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/float64(lines), "cpu-ns/line")
	b.ReportMetric(float64(records), "records/op")
}

// BenchmarkReadStderr reads a psycopg2-style storm log (simple protocol, multi-line polls).
func BenchmarkReadStderr(b *testing.B) {
	data, lines := stormLog(200_000, 20, false)
	benchRead(b, data, lines, Options{Prefix: "%m [%p] %q%u@%d "})
}

// BenchmarkReadStderrExtended reads a pgx-style storm log (execute + parameters).
func BenchmarkReadStderrExtended(b *testing.B) {
	data, lines := stormLog(200_000, 20, true)
	benchRead(b, data, lines, Options{Prefix: "%m [%p] %q%u@%d "})
}

// BenchmarkReadCSV reads BenchmarkReadStderrExtended's log as csvlog.
func BenchmarkReadCSV(b *testing.B) {
	data, lines := stormLogAs("csvlog", 200_000, 20, true)
	benchRead(b, data, lines, Options{})
}

// BenchmarkReadJSON reads BenchmarkReadStderrExtended's log as jsonlog.
func BenchmarkReadJSON(b *testing.B) {
	data, lines := stormLogAs("jsonlog", 200_000, 20, true)
	benchRead(b, data, lines, Options{})
}

// BenchmarkReadStderrDetect is BenchmarkReadStderr with the prefix detected.
func BenchmarkReadStderrDetect(b *testing.B) {
	data, lines := stormLog(200_000, 20, false)
	benchRead(b, data, lines, Options{})
}

// realStormLog is testdata/storm.log.zst uncompressed: what PostgreSQL 15 logged (Debian's
// prefix, log_statement = 'all', log_connections, log_disconnections) while `pgpollwatch
// storm` ran 2 s with two spinning parents on ten tasks each (psycopg2 style, with 50
// background queries/s), then 2 s the same over the extended protocol (pgx style).
func realStormLog(tb testing.TB) []byte {
	tb.Helper()
	z, err := os.ReadFile("testdata/storm.log.zst")
	if err != nil {
		tb.Fatal(err)
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	data, err := d.DecodeAll(z, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkReadStormLog reads a real storm's log.
func BenchmarkReadStormLog(b *testing.B) {
	data := realStormLog(b)
	benchRead(b, data, bytes.Count(data, []byte{'\n'}), Options{})
}
