package main

// pgpollwatch version: which build this is, so that a report, a log line or a bug report can be
// traced to the commit that produced it.

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"
)

// Set at link time by builds that have no VCS information to stamp, such as the container build
// (deploy/container/Containerfile): its context has no usable .git, so it passes what git knows
// as build arguments: -ldflags "-X main.buildVersion=v1.2.3 -X main.buildRevision=<hash>
// -X main.buildRevisionTime=<RFC 3339>". Each wins over the build info's own value.
var (
	buildVersion      = ""
	buildRevision     = ""
	buildRevisionTime = ""
)

// buildDetails is what `pgpollwatch version` reports; empty fields were not known at build time.
type buildDetails struct {
	Version      string `json:"version"`
	Revision     string `json:"revision,omitempty"`
	RevisionTime string `json:"revision_time,omitempty"`
	// Modified is nil when nothing says whether the tree had uncommitted changes (a build
	// outside a checkout, or one given its revision at link time).
	Modified  *bool  `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// shortRevision is as long as a Go pseudo-version's, which is what `go build` in a checkout
// puts into the version: the two can be compared at a glance.
const shortRevision = 12

func version() string { return readBuildDetails().Version }

// readBuildDetails merges the link-time values with the build info that `go build` stamps:
// the module version (a pseudo-version in a checkout, the tag with `go install ...@v1.2.3`) and
// the VCS revision, its commit time and whether the tree was modified.
func readBuildDetails() buildDetails {
	d := buildDetails{Version: "dev", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		d.GoVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			d.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				d.Revision = s.Value
			case "vcs.time":
				d.RevisionTime = s.Value
			case "vcs.modified":
				m := s.Value == "true"
				d.Modified = &m
			}
		}
	}
	if buildVersion != "" {
		d.Version = buildVersion
	}
	if buildRevision != "" {
		d.Revision, d.Modified = buildRevision, nil
	}
	if buildRevisionTime != "" {
		d.RevisionTime = buildRevisionTime
	}
	if len(d.Revision) > shortRevision {
		d.Revision = d.Revision[:shortRevision]
	}
	if t, err := time.Parse(time.RFC3339, d.RevisionTime); err == nil {
		d.RevisionTime = t.UTC().Format(time.RFC3339) // git gives the committer's zone; say UTC
	}
	return d
}

// runVersion prints the build details: a first line `pgpollwatch <version>` (what scripts read),
// then one line per known detail; --json prints them as one object.
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pgpollwatch version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the details as a JSON object")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgpollwatch version: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	d := readBuildDetails()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			fmt.Fprintln(stderr, "pgpollwatch version:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stdout, "pgpollwatch", d.Version)
	if d.Revision != "" {
		rev := d.Revision
		if d.Modified != nil {
			rev += map[bool]string{true: " (modified)", false: " (clean)"}[*d.Modified]
		}
		fmt.Fprintln(stdout, "  revision:", rev)
	}
	if d.RevisionTime != "" {
		fmt.Fprintln(stdout, "  commit time:", d.RevisionTime)
	}
	fmt.Fprintln(stdout, "  go:", d.GoVersion, d.Platform)
	return 0
}
