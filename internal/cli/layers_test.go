package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }
func (l *list) Repeatable()        {}

func flags() (*flag.FlagSet, *float64, *time.Duration, *string, *bool, *list) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	q := fs.Float64("storm-qps", 10, "")
	w := fs.Duration("storm-window", 5*time.Second, "")
	u := fs.String("upstream", "", "")
	c := fs.Bool("coalesce", false, "")
	var l list
	fs.Var(&l, "watch", "")
	return fs, q, w, u, c, &l
}

// The command line wins over the environment, which wins over the file, which wins over the
// default; each value says where it came from.
func TestLayersPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pgpollwatch.toml")
	os.WriteFile(file, []byte("storm-qps = 50\nstorm_window = \"9s\"\nupstream = \"host=db\"\ncoalesce = true\nwatch = [\"jobs.id\", \"orders.id\"]\n"), 0o644)
	fs, q, w, u, c, l := flags()
	if err := fs.Parse([]string{"--storm-qps", "30"}); err != nil {
		t.Fatal(err)
	}
	ly := &Layers{Prefix: "PGPOLLWATCH_", File: file, Environ: []string{"PGPOLLWATCH_STORM_WINDOW=7s", "PGPOLLWATCH_CONFIG=" + file, "HOME=/root"},
		Ignore: []string{"PGPOLLWATCH_CONFIG"}}
	src, err := ly.Apply(fs)
	if err != nil {
		t.Fatal(err)
	}
	if *q != 30 || *w != 7*time.Second || *u != "host=db" || !*c || l.String() != "jobs.id,orders.id" {
		t.Errorf("storm-qps %v, storm-window %v, upstream %q, coalesce %v, watch %v", *q, *w, *u, *c, *l)
	}
	want := map[string]string{"storm-qps": "flag", "storm-window": "environment PGPOLLWATCH_STORM_WINDOW",
		"upstream": "file " + file, "coalesce": "file " + file, "watch": "file " + file}
	for k, v := range want {
		if src[k].String() != v {
			t.Errorf("%s: from %q, want %q", k, src[k], v)
		}
	}
	// A list from the environment is comma-separated, and wins over the file's.
	fs, _, _, _, _, l = flags()
	fs.Parse(nil)
	ly.Environ = []string{"PGPOLLWATCH_WATCH=a.id, b.id"}
	if _, err := ly.Apply(fs); err != nil || l.String() != "a.id,b.id" {
		t.Errorf("watch %v (%v): want a.id,b.id from the environment", *l, err)
	}
}

// Unknown keys and variables and bad values are errors naming the key and the source; the
// other settings are still applied.
func TestLayersErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		file, env string
		want      []string
	}{
		{"storm-qs = 5\n", "", []string{`unknown key "storm-qs"`}},
		{"storm-qps = \"many\"\n", "", []string{"storm-qps", "many"}},
		{"coalesce = [true]\n", "", []string{"coalesce", "takes one value"}},
		{"[proxy]\nlisten = 1\n", "", []string{"[proxy]", "top-level"}},
		{"storm-qps = \n", "", []string{"line 1"}},
		{"", "PGPOLLWATCH_STORM_QPSS=3", []string{"PGPOLLWATCH_STORM_QPSS", "no setting"}},
		{"", "PGPOLLWATCH_STORM_WINDOW=soon", []string{"PGPOLLWATCH_STORM_WINDOW", "soon"}},
	} {
		file := filepath.Join(dir, "c.toml")
		os.WriteFile(file, []byte(c.file), 0o644)
		fs, _, _, _, _, _ := flags()
		fs.Parse(nil)
		_, err := (&Layers{Prefix: "PGPOLLWATCH_", File: file, Environ: []string{c.env}}).Apply(fs)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("file %q, env %q: error %v, want it to say %q", c.file, c.env, err, w)
			}
		}
	}
	fs, _, _, _, _, _ := flags()
	fs.Parse(nil)
	if _, err := (&Layers{Prefix: "PGPOLLWATCH_", File: filepath.Join(dir, "none.toml")}).Apply(fs); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Errorf("a missing file: %v", err)
	}
}
