package deploy

// What the deployment tests share: the binary built as the container build builds it (read from
// deploy/container/Containerfile, so the two cannot drift), and the proxy's flags as that
// binary's --help states them. Nothing is imported from cmd/pgpollwatch: the files under test
// configure the program from the outside, and so do these tests.

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// containerfilePath is the container build, relative to this package.
const containerfilePath = "container/Containerfile"

// testBuildArgs stand for the --build-arg values of a real build (deploy/container/README.md);
// TARGETOS and TARGETARCH are this machine's, so that the binary runs here.
var testBuildArgs = map[string]string{
	"VERSION":       "v0.0.0-deploytest",
	"REVISION":      "0123456789abcdef0123456789abcdef01234567",
	"REVISION_TIME": "2026-01-02T03:04:05+02:00",
	"TARGETOS":      runtime.GOOS,
	"TARGETARCH":    runtime.GOARCH,
}

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	from  instruction
	image string // FROM's image, without --platform
	name  string // AS name, or ""
	body  []instruction
}

// parseContainerfile reads the stages of a Containerfile: comments dropped, lines ending in a
// backslash joined with the next.
func parseContainerfile(t *testing.T, path string) []stage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var pending strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		cmd, args, _ := strings.Cut(pending.String(), " ")
		pending.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			words := strings.Fields(in.args)
			st := stage{from: in}
			for i := 0; i < len(words); i++ {
				switch {
				case strings.HasPrefix(words[i], "--"):
				case strings.EqualFold(words[i], "AS") && i+1 < len(words):
					st.name = words[i+1]
					i++
				default:
					st.image = words[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" { // an ARG before the first FROM serves FROM lines only
				continue
			}
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if len(stages) == 0 {
		t.Fatalf("%s: no FROM", path)
	}
	return stages
}

// envPairs reads an ENV instruction's KEY=VALUE pairs (the legacy `ENV KEY VALUE` form is
// refused: it cannot hold two variables, and the tests would have to guess).
func envPairs(t *testing.T, in instruction) [][2]string {
	t.Helper()
	var pairs [][2]string
	for _, w := range shellWords(t, in.args, nil) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			t.Fatalf("line %d: ENV %s: write ENV KEY=VALUE", in.line, in.args)
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs
}

var varRef = regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// shellWords splits s as the shell would split a simple command: whitespace between words,
// single and double quotes, backslash escapes, and $VAR or ${VAR} replaced from vars (a nil vars
// leaves references as they are). Anything that would make it more than one simple command
// fails the test: the test replays the command, it does not run a shell.
func shellWords(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case c == '$' && quote != '\'':
			m := varRef.FindStringSubmatch(s[i:])
			if m == nil {
				t.Fatalf("%q: only $VAR and ${VAR} can be replayed", s)
			}
			if vars == nil {
				w.WriteString(m[0])
			} else {
				name := m[1] + m[2]
				v, ok := vars[name]
				if !ok {
					t.Fatalf("%q: $%s has no value: declare it with ARG or ENV (and give it in testBuildArgs)", s, name)
				}
				w.WriteString(v)
			}
			inWord = true
			i += len(m[0]) - 1
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				i++
				w.WriteByte(s[i])
			case c == '`':
				t.Fatalf("%q: command substitution cannot be replayed", s)
			default:
				w.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>()`", c) >= 0:
			t.Fatalf("%q: %q makes it more than one simple command, which the test cannot replay", s, c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// goBuild is the builder stage's `go build` as the container build runs it.
type goBuild struct {
	env  []string // ENV of the stage, then the command's own assignments
	args []string // after `go`: build, flags, packages
	out  string   // the -o value in the file
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// containerGoBuild reads the stage that runs `go build` (its ENV and ARG values, build
// arguments from testBuildArgs) and the command itself.
func containerGoBuild(t *testing.T, stages []stage) goBuild {
	t.Helper()
	for _, st := range stages {
		vars := map[string]string{}
		var env []string
		for _, in := range st.body {
			switch in.cmd {
			case "ARG":
				for _, decl := range strings.Fields(in.args) {
					name, def, hasDef := strings.Cut(decl, "=")
					if v, ok := testBuildArgs[name]; ok {
						vars[name] = v
					} else if hasDef {
						vars[name] = def
					} else {
						t.Fatalf("line %d: ARG %s has no default and no value in testBuildArgs", in.line, name)
					}
				}
			case "ENV":
				for _, kv := range envPairs(t, in) {
					vars[kv[0]] = kv[1]
					env = append(env, kv[0]+"="+kv[1])
				}
			case "RUN":
				words := shellWords(t, in.args, vars)
				i := 0
				for i < len(words) && assignment.MatchString(words[i]) {
					i++
				}
				if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
					continue
				}
				b := goBuild{env: append(env, words[:i]...), args: words[i+1:]}
				for j, a := range b.args {
					if a == "-o" && j+1 < len(b.args) {
						b.out = b.args[j+1]
					} else if v, ok := strings.CutPrefix(a, "-o="); ok {
						b.out = v
					}
				}
				if b.out == "" {
					t.Fatalf("line %d: go build without -o: the final stage copies a known path", in.line)
				}
				return b
			}
		}
	}
	t.Fatalf("%s: no RUN go build", containerfilePath)
	return goBuild{}
}

// buildShipped builds pgpollwatch into a temporary directory exactly as the Containerfile's
// builder does (same environment, flags and -ldflags; build arguments from testBuildArgs), from
// this module's sources, and returns its path.
func buildShipped(t *testing.T) string {
	t.Helper()
	b := containerGoBuild(t, parseContainerfile(t, containerfilePath))
	bin := filepath.Join(t.TempDir(), "pgpollwatch")
	args := append([]string(nil), b.args...)
	for j, a := range args {
		if a == b.out {
			args[j] = bin
		} else if a == "-o="+b.out {
			args[j] = "-o=" + bin
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("these tests build pgpollwatch: put the Go toolchain (go.mod's version) on PATH")
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".." // the module root: the build context's /src
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building as %s does (env %v, go %s): %v\n%s", containerfilePath, b.env, strings.Join(args, " "), err, out)
	}
	return bin
}

// proxyFlag is one flag of the proxy as its --help states it.
type proxyFlag struct {
	name string
	def  string // the "(default ...)" text, "" when none is shown
}

var (
	flagLine    = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)`)
	defaultText = regexp.MustCompile(`\(default "?([^")]*)"?\)\s*$`)
)

// proxyFlags reads the proxy's flags from bin's --help: the names are what configuration files,
// PGPOLLWATCH_ variables and command lines may use.
func proxyFlags(t *testing.T, bin string) map[string]proxyFlag {
	t.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	flags := map[string]proxyFlag{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			flags[cur] = proxyFlag{name: cur}
		}
		if m := defaultText.FindStringSubmatch(line); m != nil && cur != "" {
			f := flags[cur]
			f.def = m[1]
			flags[cur] = f
		}
	}
	for _, want := range []string{"listen", "upstream", "metrics-listen", "shutdown-grace", "report"} {
		if _, ok := flags[want]; !ok {
			t.Fatalf("%s --help lists no -%s: has its format changed? (read %d flags)\n%s", bin, want, len(flags), out)
		}
	}
	return flags
}

// flagForEnv is the flag a PGPOLLWATCH_ variable stands for: PGPOLLWATCH_METRICS_LISTEN is
// metrics-listen.
func flagForEnv(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "PGPOLLWATCH_")
	if !ok || rest == "" {
		return "", false
	}
	return strings.ReplaceAll(strings.ToLower(rest), "_", "-"), true
}

// checkFlagValues fails unless bin's flag parser accepts every --name=value of args: --help
// after them makes the proxy parse them and exit 0 without starting, or exit 2 on a bad value.
func checkFlagValues(t *testing.T, bin, what string, args []string) {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string(nil), args...), "--help")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// The parser's complaint is the first line; the usage text follows it.
		first, _, _ := strings.Cut(string(out), "\n")
		t.Errorf("%s: the proxy refuses %v: %v: %s", what, args, err, first)
	}
}

// readModuleGo is go.mod's go directive, e.g. "1.26.8".
func readModuleGo(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// portOf is addr's port, failing the test when addr is no host:port.
func portOf(t *testing.T, what, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("%s: %q: want host:port (%v)", what, addr, err)
	}
	return port
}
