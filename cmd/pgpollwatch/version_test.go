package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFromGitCheckout builds pgpollwatch in a git checkout and checks that `version`
// reports what the build stamped: the module's pseudo-version, the commit, its time, whether the
// tree was modified, and the Go version; then that -X main.build* values win.
//
// The checkout is a fresh repository holding a copy of this module's files, committed at a known
// time, because the tree the tests run in cannot be relied on: Go stamps VCS details only where
// .git is a directory (not in a git worktree, whose .git is a file), and this environment sets
// GOFLAGS=-buildvcs=false. The builds pass -buildvcs=true, which wins over GOFLAGS.
func TestVersionFromGitCheckout(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("this test builds in a git checkout: install git (apt-get install -y git)")
	}
	dir := t.TempDir()
	copyModule(t, "../..", dir)
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		// The host's git configuration (signing, hooks, templates) stays out of it.
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.invalid",
			"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.invalid",
			"GIT_AUTHOR_DATE=2026-01-02T03:04:05+02:00", "GIT_COMMITTER_DATE=2026-01-02T03:04:05+02:00")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "version test")
	rev := git("rev-parse", "HEAD")[:12]
	const commitTime = "2026-01-02T01:04:05Z" // the commit's +02:00 time, in UTC as Go stamps it

	build := func(ldflags string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "pgpollwatch")
		// -trimpath: the copy's path changes each run, and would otherwise make every
		// package's compilation new to the build cache.
		cmd := exec.Command("go", "build", "-buildvcs=true", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/pgpollwatch")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build in the checkout: %v\n%s", err, out)
		}
		return bin
	}
	version := func(bin string) (text string, d map[string]any) {
		t.Helper()
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("version: %v\n%s", err, out)
		}
		js, err := exec.Command(bin, "version", "--json").Output()
		if err != nil || json.Unmarshal(js, &d) != nil {
			t.Fatalf("version --json: %v\n%s", err, js)
		}
		t.Logf("version:\n%s", out)
		return string(out), d
	}
	goLine := "  go: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH

	// A clean tree: Go's pseudo-version names the commit's time and revision.
	text, d := version(build(""))
	pseudo := "v0.0.0-20260102010405-" + rev
	want := "pgpollwatch " + pseudo + "\n  revision: " + rev + " (clean)\n  commit time: " + commitTime + "\n" + goLine + "\n"
	if text != want {
		t.Errorf("clean checkout: version printed\n%s\nwant\n%s", text, want)
	}
	if d["version"] != pseudo || d["revision"] != rev || d["revision_time"] != commitTime || d["modified"] != false || d["go"] != runtime.Version() {
		t.Errorf("clean checkout: version --json %v", d)
	}

	// A file the commit does not have: the tree is modified, and Go's version says +dirty.
	if err := os.WriteFile(filepath.Join(dir, "uncommitted.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	text, d = version(build(""))
	want = "pgpollwatch " + pseudo + "+dirty\n  revision: " + rev + " (modified)\n  commit time: " + commitTime + "\n" + goLine + "\n"
	if text != want {
		t.Errorf("modified checkout: version printed\n%s\nwant\n%s", text, want)
	}
	if d["modified"] != true {
		t.Errorf("modified checkout: version --json %v", d)
	}

	// Link-time values win (the container build's): the revision shortened, its time in UTC,
	// and nothing said about modification, which the build arguments do not tell.
	text, d = version(build("-X main.buildVersion=v1.2.3 -X main.buildRevision=fedcba9876543210fedcba9876543210fedcba98 -X main.buildRevisionTime=2026-03-04T05:06:07-01:00"))
	want = "pgpollwatch v1.2.3\n  revision: fedcba987654\n  commit time: 2026-03-04T06:06:07Z\n" + goLine + "\n"
	if text != want {
		t.Errorf("-X values: version printed\n%s\nwant\n%s", text, want)
	}
	if _, ok := d["modified"]; ok || d["version"] != "v1.2.3" {
		t.Errorf("-X values: version --json %v", d)
	}
}

// copyModule copies the module's files from src to dst: everything but VCS metadata and what
// .gitignore keeps out at the top (binaries and scratch space).
func copyModule(t *testing.T, src, dst string) {
	t.Helper()
	skip := map[string]bool{"bin": true, "dist": true, "tmp": true, "pgpollwatch": true}
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if e.Name() == ".git" || (!strings.Contains(rel, string(filepath.Separator)) && skip[rel]) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
