package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	a, b := mergeInputs()
	story := FromSnapshot(storySnapshot(t0, 60, incidentKeys(), "app-1"), Source{Host: "app-1"})
	inA, inB, inStory := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "story.json")
	for p, r := range map[string]*Report{inA: a, inB: b, inStory: story} {
		if err := Write(p, r); err != nil {
			t.Fatal(err)
		}
	}
	newer := filepath.Join(dir, "newer.json")
	os.WriteFile(newer, []byte(`{"schema_version": 7}`), 0o644)
	notJSON := filepath.Join(dir, "page.html")
	os.WriteFile(notJSON, []byte(`<html></html>`), 0o644)
	out := func(name string) string { return filepath.Join(dir, name) }

	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
		check  func(t *testing.T)
	}{
		{name: "convert to html", args: []string{inStory, "-o", out("s.html")}, code: 0, stdout: "wrote " + out("s.html"),
			check: func(t *testing.T) {
				doc, err := html.Parse(strings.NewReader(readFile(t, out("s.html"))))
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range story.Keys {
					if !strings.Contains(textOf(doc), k.Key) {
						t.Fatalf("key %s missing", k.Key)
					}
				}
			}},
		{name: "convert to markdown, flag first", args: []string{"-o", out("s.md"), inStory}, code: 0,
			check: func(t *testing.T) {
				if md := readFile(t, out("s.md")); !strings.Contains(md, "**"+mdText(story.Headline)+"**") {
					t.Fatalf("markdown:\n%s", md)
				}
			}},
		{name: "convert to json", args: []string{inStory, "--output=" + out("s2.json")}, code: 0,
			check: func(t *testing.T) {
				if readFile(t, out("s2.json")) != readFile(t, inStory) {
					t.Fatal("JSON to JSON changed the report")
				}
			}},
		{name: "merge to json", args: []string{"merge", inA, inB, "-o", out("m.json")}, code: 0, stdout: "merged 2 reports into",
			check: func(t *testing.T) {
				m, err := Read(out("m.json"))
				if err != nil {
					t.Fatal(err)
				}
				if m.Totals.Queries != 300 || len(m.Proxies) != 2 || len(m.Timeline) != 13 {
					t.Fatalf("merged %+v", m.Totals)
				}
			}},
		{name: "merge to html", args: []string{"merge", "-o", out("m.html"), inA, inB, inStory}, code: 0,
			check: func(t *testing.T) {
				if !strings.Contains(readFile(t, out("m.html")), "3 sources merged") {
					t.Fatal("merged page does not say so")
				}
			}},
		{name: "merge to markdown", args: []string{"merge", inA, inB, "-o", out("m.md")}, code: 0,
			check: func(t *testing.T) {
				if !strings.Contains(readFile(t, out("m.md")), "## Sources (2 proxies)") {
					t.Fatal("no sources table")
				}
			}},
		{name: "help", args: []string{"-h"}, code: 0, stdout: "pgpollwatch report merge A.json B.json"},
		{name: "merge help", args: []string{"merge", "--help"}, code: 0, stdout: "pgpollwatch report IN.json -o"},
		{name: "missing -o", args: []string{inStory}, code: 2, stderr: "missing -o"},
		{name: "missing -o value", args: []string{inStory, "-o"}, code: 2, stderr: "flag needs an argument"},
		{name: "unknown extension", args: []string{inStory, "-o", out("s.pdf")}, code: 2, stderr: `unknown report format ".pdf": use .json, .html, .md or .markdown`},
		{name: "no input", args: []string{"-o", out("x.html")}, code: 2, stderr: "no input"},
		{name: "merge without inputs", args: []string{"merge", "-o", out("x.html")}, code: 2, stderr: "merge needs"},
		{name: "two inputs without merge", args: []string{inA, inB, "-o", out("x.html")}, code: 2, stderr: "use 'pgpollwatch report merge'"},
		{name: "unknown flag", args: []string{"--frobnicate", inA}, code: 2, stderr: "flag provided but not defined"},
		{name: "unreadable input", args: []string{filepath.Join(dir, "missing.json"), "-o", out("x.html")}, code: 1, stderr: "missing.json"},
		{name: "not a json report", args: []string{notJSON, "-o", out("x.md")}, code: 1, stderr: "not a pgpollwatch JSON report"},
		{name: "newer schema", args: []string{newer, "-o", out("x.md")}, code: 1, stderr: "newer than this pgpollwatch reads"},
		{name: "merge with newer schema", args: []string{"merge", inA, newer, "-o", out("x.json")}, code: 1, stderr: "schema_version 7"},
		{name: "output dir missing", args: []string{inA, "-o", filepath.Join(dir, "nope", "x.html")}, code: 1, stderr: "x.html"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Command(c.args, &stdout, &stderr)
			if code != c.code || !strings.Contains(stdout.String(), c.stdout) || !strings.Contains(stderr.String(), c.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, c.code, stdout.String(), stderr.String())
			}
			if code != 0 && stdout.Len() > 0 {
				t.Fatalf("output on stdout on failure: %s", stdout.String())
			}
			if code == 2 && !strings.Contains(stderr.String(), "pgpollwatch report -h") {
				t.Fatal("a usage error without a pointer to -h")
			}
			if c.check != nil {
				c.check(t)
			}
		})
	}
	if _, err := os.Stat(out("x.html")); !os.IsNotExist(err) {
		t.Fatal("a failed command wrote its output")
	}
}
