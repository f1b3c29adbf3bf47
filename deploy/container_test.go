package deploy

import (
	"debug/elf"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestContainerBuildIsStaticAndRuns builds pgpollwatch as the Containerfile's builder does
// (there is no container engine or registry here, so the image itself cannot be built) and
// checks what the final stage relies on: a binary with no dynamic loader or libraries, which a
// distroless/static or scratch base can run, carrying the build arguments as its version.
func TestContainerBuildIsStaticAndRuns(t *testing.T) {
	stages := parseContainerfile(t, containerfilePath)
	b := containerGoBuild(t, stages)
	for _, want := range []string{"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false"} {
		if !slices.Contains(b.env, want) {
			t.Errorf("the build's environment lacks %s: %v", want, b.env)
		}
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build without -trimpath (the binary would hold the builder's paths): %v", b.args)
	}

	// The builder's Go is go.mod's: an older one refuses the module, a newer one is not the
	// toolchain the project tests with.
	builder := stages[0].image
	modGo := readModuleGo(t)
	if want := "golang:" + strings.Join(strings.Split(modGo, ".")[:2], "."); !strings.HasPrefix(builder, want) {
		t.Errorf("the builder is %s; go.mod says go %s: use %s", builder, modGo, want)
	}

	bin := buildShipped(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("the binary names a dynamic loader (PT_INTERP): it needs a libc the final image lacks")
		case elf.PT_DYNAMIC:
			t.Error("the binary has a dynamic section (PT_DYNAMIC): it links shared libraries")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("imported libraries: %v %v", libs, err)
	}
	// -s -w: no symbol table, no DWARF. Stack traces keep their function names (pclntab).
	for _, s := range []string{".symtab", ".debug_info"} {
		if f.Section(s) != nil {
			t.Errorf("the binary has %s: -ldflags lost -s -w", s)
		}
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	t.Logf("%s version:\n%s", containerfilePath, out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"pgpollwatch " + testBuildArgs["VERSION"],
		"  revision: " + testBuildArgs["REVISION"][:12],
		"  commit time: 2026-01-02T01:04:05Z", // REVISION_TIME in UTC
	}
	if len(lines) < 4 || !slices.Equal(lines[:3], want) || !strings.HasPrefix(lines[3], "  go: go") {
		t.Errorf("version printed\n%s\nwant the build arguments:\n%s\n  go: ...", out, strings.Join(want, "\n"))
	}
	out, err = exec.Command(bin, "version", "--json").Output()
	var d map[string]any
	if err != nil || json.Unmarshal(out, &d) != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if d["version"] != testBuildArgs["VERSION"] || d["revision"] != testBuildArgs["REVISION"][:12] {
		t.Errorf("version --json: %s", out)
	}
	if _, ok := d["modified"]; ok {
		t.Errorf("version --json claims to know whether the tree was modified, from build arguments alone: %s", out)
	}
}

// TestContainerRunsAsNonRoot checks the final stage: a non-root user, the copied binary as the
// entrypoint, headless, and listeners on the ports it exposes.
func TestContainerRunsAsNonRoot(t *testing.T) {
	stages := parseContainerfile(t, containerfilePath)
	final := stages[len(stages)-1]
	b := containerGoBuild(t, stages)
	var user, entrypoint, copied string
	var exposed []string
	env := map[string]string{}
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENV":
			for _, kv := range envPairs(t, in) {
				env[kv[0]] = kv[1]
			}
		case "COPY":
			w := strings.Fields(in.args)
			if len(w) == 3 && w[0] == "--from="+stages[0].name && w[1] == b.out {
				copied = w[2]
			}
		case "HEALTHCHECK":
			t.Errorf("line %d: a HEALTHCHECK cannot run on a distroless base (no shell, no curl)", in.line)
		}
	}

	// The user: set by the file, not left to the base image's default, and neither root's
	// name nor uid 0.
	name, group, _ := strings.Cut(user, ":")
	switch {
	case user == "":
		t.Error("the final stage sets no USER: it would run as the base image's user, root for scratch")
	case name == "root" || name == "0" || group == "root" || group == "0":
		t.Errorf("USER %s is root", user)
	case name == "nonroot" && !strings.Contains(final.image, "distroless"):
		t.Errorf("USER nonroot is distroless's user; the base %s may not define it: give 65532:65532", final.image)
	}

	if copied == "" {
		t.Fatalf("the final stage does not COPY --from=%s %s", stages[0].name, b.out)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil {
		t.Fatalf("ENTRYPOINT %s: use the exec (JSON) form: there is no shell to run the other: %v", entrypoint, err)
	}
	if len(ep) == 0 || ep[0] != copied || !slices.Contains(ep, "--no-tui") {
		t.Errorf("ENTRYPOINT %v: want [%q ... --no-tui] (headless even when run with -t)", ep, copied)
	}

	// Every PGPOLLWATCH_ variable names a flag with a value it accepts, and the listeners are
	// on the exposed ports.
	bin := buildShipped(t)
	flags := proxyFlags(t, bin)
	var args []string
	for k, v := range env {
		flag, ok := flagForEnv(k)
		if !ok {
			continue
		}
		if _, known := flags[flag]; !known {
			t.Errorf("ENV %s: the proxy has no --%s", k, flag)
			continue
		}
		args = append(args, "--"+flag+"="+v)
	}
	checkFlagValues(t, bin, containerfilePath+" ENV", args)
	for _, k := range []string{"PGPOLLWATCH_LISTEN", "PGPOLLWATCH_METRICS_LISTEN"} {
		addr, ok := env[k]
		if !ok {
			t.Errorf("the final stage does not set %s: the binary's loopback default is unreachable through a published port", k)
			continue
		}
		if p := portOf(t, k, addr); !slices.Contains(exposed, p) && !slices.Contains(exposed, p+"/tcp") {
			t.Errorf("%s=%s, but EXPOSE says %v", k, addr, exposed)
		}
	}
}
