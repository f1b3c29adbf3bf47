package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pgpollwatch/pgpollwatch/analyzer"
	"github.com/pgpollwatch/pgpollwatch/capture"
	"github.com/pgpollwatch/pgpollwatch/replay"
	"github.com/pgpollwatch/pgpollwatch/report"
)

// portList is a repeatable --port.
type portList []uint16

func (p *portList) String() string {
	var s []string
	for _, v := range *p {
		s = append(s, strconv.Itoa(int(v)))
	}
	return strings.Join(s, ",")
}

func (p *portList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a TCP port", f)
		}
		*p = append(*p, uint16(n))
	}
	return nil
}

// isCaptureFile reports whether path holds a packet capture (pcap or pcapng, gzip-compressed
// or not) rather than a server log: its first bytes say so.
func isCaptureFile(path string) bool {
	if path == "-" {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false // the log reader says why it cannot be read
	}
	defer f.Close()
	head := make([]byte, capture.SniffLen)
	n, _ := io.ReadFull(f, head)
	return capture.IsCapture(head[:n])
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// analyzeCaptures is analyze on packet captures: files read one after the other, every
// PostgreSQL conversation on o.ports decoded into the proxy's events, the same analysis and
// reports. It returns the exit status.
func analyzeCaptures(o analyzeOptions, files []string, cfg analyzer.Config, stdout, stderr io.Writer) int {
	for _, f := range files {
		if !isCaptureFile(f) {
			fmt.Fprintf(stderr, "pgpollwatch analyze: %s is not a packet capture, but %s is: give captures or logs, not both\n", f, files[0])
			return exitUsage
		}
	}
	if o.log.Database != "" || o.log.User != "" || o.log.App != "" {
		fmt.Fprintln(stderr, "pgpollwatch analyze: --dbname, --user and --app filter server logs; a capture is analysed whole")
		return exitUsage
	}
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	bar := newProgressBar(stderr, o.progress == "always" || o.progress == "auto" && isTerminalWriter(stderr))
	bar.unit = "packets"
	var read atomic.Int64
	c := replay.NewCapture(cfg, o.ports...)
	bar.count = c.Packets
	var srcs []capture.Source
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(stderr, "pgpollwatch analyze:", err)
			return exitUsage
		}
		defer f.Close()
		src, err := capture.Open(countingReader{r: f, n: &read})
		if err != nil {
			fmt.Fprintf(stderr, "pgpollwatch analyze: %s: %v\n", path, err)
			return exitUsage
		}
		srcs = append(srcs, src)
	}
	// Several files (rotated with tcpdump -C or -G, or taken on several hosts) are read as one
	// capture, in the time order of their packets.
	src := capture.Merge(srcs...)
	var incomplete []string
	status := exitOK
	for {
		p, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// One file cut short or corrupt: the others are read on.
			var se *capture.SourceError
			if errors.As(err, &se) {
				err = fmt.Errorf("%s: %w", files[se.Index], se.Err)
			}
			incomplete = append(incomplete, err.Error())
			continue
		}
		if p.Time.Before(o.log.Since) || !o.log.Until.IsZero() && !p.Time.Before(o.log.Until) {
			continue
		}
		c.Packet(p)
		bar.update(read.Load(), total)
	}
	an := c.Close()
	bar.done()
	st := c.Stats
	in := captureStats(files, st)
	if len(incomplete) > 0 {
		in.Incomplete = "read in part: " + strings.Join(incomplete, "; ")
		fmt.Fprintf(stderr, "pgpollwatch analyze: the capture could not be read to its end: %s\n", strings.Join(incomplete, "; "))
		fmt.Fprintln(stderr, "pgpollwatch analyze: what follows is the analysis of what was read, marked incomplete")
		status = exitUsage
	}
	fmt.Fprintf(stderr, "pgpollwatch analyze: %s\n", in.Summary())
	if st.Tracker.Conversations == 0 && st.Packets > 0 {
		fmt.Fprintf(stderr, "pgpollwatch analyze: no PostgreSQL conversation on port %s: name the server's port with --port\n", o.ports.String())
	}
	input := "packet capture: " + strings.Join(baseNames(files), ", ")
	host, _ := os.Hostname()
	rep := report.FromSnapshot(an.Snapshot(), report.Source{Host: host, Version: version(), Input: input})
	rep.Capture = in
	return finishAnalysis(o, an, rep, input, status, stdout, stderr)
}

// captureStats is what the report says about the capture files read.
func captureStats(files []string, st replay.CaptureStats) *report.CaptureInput {
	in := captureInput(st.FollowStats, st.Tracker, st.Events)
	in.Files = files
	return in
}

// captureInput is the report's capture section from a Follower's counts.
func captureInput(f capture.FollowStats, t capture.TrackerStats, e capture.EventStats) *report.CaptureInput {
	return &report.CaptureInput{Packets: f.Packets, Conversations: t.Conversations,
		Statements: e.Statements, Gaps: t.Gaps, GapBytes: t.GapBytes,
		Retransmitted: t.Retransmitted, CutPackets: t.CutPackets, AnswersLost: e.AnswersLost,
		Unpaired: e.Unpaired, Encrypted: e.Encrypted, MidStream: e.MidStream,
		NotDecoded: f.NotTCP + f.Truncated + f.Fragments}
}

func baseNames(files []string) []string {
	var names []string
	for i, f := range files {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(files)-3))
			break
		}
		names = append(names, filepath.Base(f))
	}
	return names
}
