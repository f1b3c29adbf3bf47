// Package cli holds what pgpollwatch's subcommands share in reading their command lines.
package cli

import (
	"flag"
	"slices"
)

// ParseInterspersed parses flags placed before, between or after the positional arguments
// (`analyze a.log --report r.json b.log`), which the flag package alone stops at; everything
// after "--" is positional, and "-" (standard input) is a positional argument.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
