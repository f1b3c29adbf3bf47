package report

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pgpollwatch/pgpollwatch/internal/cli"
)

const commandHelp = `Usage:
  pgpollwatch report IN.json -o OUT.html|OUT.md|OUT.json
  pgpollwatch report merge A.json B.json ... -o ALL.json|ALL.html|ALL.md

Convert a JSON report written by pgpollwatch into HTML or Markdown (or re-indented JSON), or
merge the JSON reports of several proxies (one per application host, say) into one report.

The output format follows the extension of -o: .json, .html, .md or .markdown. The HTML page is
self-contained (no script, nothing fetched); the Markdown is meant for an issue tracker.

Merging sums the counters, rates and per-second timelines (aligned by absolute second), unites
keys by (table, column, key), statements by fingerprint and clients by (address,
application_name, user, database), and concatenates storms, findings (deduplicated by id) and
the list of proxies. See docs/report.md for the schema and the merge rules.

Flags:
  -o, --output FILE   the report to write (required); replaced atomically

Exit status: 0 done, 1 a report could not be read, merged or written, 2 usage error.
`

// Command runs "pgpollwatch report ...": args are the arguments after "report". It returns the
// exit status: 0 success, 1 failure, 2 usage error.
func Command(args []string, stdout, stderr io.Writer) int {
	merge := len(args) > 0 && args[0] == "merge"
	if merge {
		args = args[1:]
	}
	fs := flag.NewFlagSet("pgpollwatch report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var out string
	fs.StringVar(&out, "o", "", "output file")
	fs.StringVar(&out, "output", "", "output file")
	inputs, err := cli.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, commandHelp)
		return 0
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "pgpollwatch report: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'pgpollwatch report -h' for usage.")
		return 2
	}
	if err != nil {
		return usage("%v", err)
	}
	switch {
	case len(inputs) == 0 && merge:
		return usage("merge needs the JSON reports to merge")
	case len(inputs) == 0:
		return usage("no input: give a JSON report to convert")
	case len(inputs) > 1 && !merge:
		return usage("%d inputs given: convert takes one JSON report (use 'pgpollwatch report merge' to combine several)", len(inputs))
	case out == "":
		return usage("missing -o OUT.html|OUT.md|OUT.json")
	}
	if _, err := FormatOf(out); err != nil {
		return usage("-o %v", err)
	}

	reports := make([]*Report, 0, len(inputs))
	for _, in := range inputs {
		r, err := Read(in)
		if err != nil {
			fmt.Fprintf(stderr, "pgpollwatch report: cannot read %v\n", err)
			return 1
		}
		reports = append(reports, r)
	}
	r := reports[0]
	if merge {
		if r, err = Merge(reports...); err != nil {
			fmt.Fprintf(stderr, "pgpollwatch report: %v\n", err)
			return 1
		}
	}
	if err := Write(out, r); err != nil {
		fmt.Fprintf(stderr, "pgpollwatch report: %v\n", err)
		return 1
	}
	if merge {
		fmt.Fprintf(stdout, "merged %d reports into %s\n", len(reports), out)
	} else {
		fmt.Fprintf(stdout, "wrote %s\n", out)
	}
	return 0
}
