package replay_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/pglog"
	"github.com/pgpollwatch/pgpollwatch/replay"
)

// BenchmarkAnalyzeLog is `pgpollwatch analyze` without the command: the 67,543-line stderr log
// of a storm (pglog's test data, decompressed first) read and analysed, per line. The issue's
// goal is 800,000 lines/s on one core (20x pgBadger's single process); scripts/bench-analyze
// compares the command itself with pgBadger on a fresh log.
func BenchmarkAnalyzeLog(b *testing.B) {
	for _, jobs := range []int{1, 2} {
		b.Run(map[int]string{1: "j1", 2: "j2"}[jobs], func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "storm.log")
			zf, err := os.Open("../pglog/testdata/storm.log.zst")
			if err != nil {
				b.Fatal(err)
			}
			z, err := zstd.NewReader(zf)
			if err != nil {
				b.Fatal(err)
			}
			out, err := io.ReadAll(z)
			z.Close()
			zf.Close()
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(path, out, 0o644); err != nil {
				b.Fatal(err)
			}
			var lines int64
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := pglog.Open([]string{path}, pglog.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := replay.RunParallel(r, analyzer.Config{}, jobs); err != nil {
					b.Fatal(err)
				}
				lines += r.Stats().Lines
				r.Close()
			}
			b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
		})
	}
}
