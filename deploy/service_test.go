package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	unitPath   = "systemd/pgpollwatch.service"
	configPath = "systemd/pgpollwatch.toml"
	// Where the unit's ExecStart and the install steps put the binary and the configuration.
	installedBinary = "/usr/bin/pgpollwatch"
	installedConfig = "/etc/pgpollwatch/pgpollwatch.toml"
)

// unit is a systemd unit file: section, then key, then its values in order (a key may repeat).
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: a continued line: keep each setting on one line, so that this test reads what systemd reads", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is no Key=Value in a section", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func (u unit) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func needSystemdAnalyze(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is missing: run scripts/install-test-deps (Debian's systemd package provides it)")
	}
}

// unitForBinary writes the unit into a temporary directory with ExecStart running bin instead
// of /usr/bin/pgpollwatch: systemd-analyze verify checks that the binary exists and is
// executable, and none is installed here.
func unitForBinary(t *testing.T, bin string) string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ExecStart="+installedBinary+" ") {
		t.Fatalf("%s: ExecStart does not run %s", unitPath, installedBinary)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(unitPath)) // verify reads the unit's name from the file's
	data = []byte(strings.ReplaceAll(string(data), "ExecStart="+installedBinary+" ", "ExecStart="+bin+" "))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit and fails on any error or
// warning it prints: an unknown key, a value systemd cannot parse, a missing binary. systemd
// only warns and goes on for most of them, with exit status 0.
func TestSystemdUnitVerifies(t *testing.T) {
	needSystemdAnalyze(t)
	path := unitForBinary(t, buildShipped(t))
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	t.Logf("systemd-analyze verify %s: no error, no warning", unitPath)
}

// allowedExposures are the protections systemd-analyze security checks that the unit leaves
// off, each for a reason; every other one it checks must be on.
var allowedExposures = map[string]string{
	"PrivateNetwork=":                          "a proxy reaches its clients and its server over the host's network",
	"RestrictAddressFamilies=~AF_(INET|INET6)": "clients and the server speak TCP",
	"RestrictAddressFamilies=~AF_UNIX":         "a local server is reached on its Unix socket (upstream host=/var/run/postgresql)",
	"IPAddressDeny=":                           "which clients and which server are the site's to say (README: a drop-in with IPAddressAllow=)",
	"ProcSubset=":                              "the Prometheus process collector reads /proc/stat for the boot time (process_start_time_seconds)",
	"RootDirectory=/RootImage=":                "the binary and its configuration are installed in the host's tree",
	"DeviceAllow=":                             "ProtectClock=yes itself grants read access to the RTC; the proxy opens no device",
}

// exposureBound is the highest overall score accepted. systemd 252 scores the unit with only
// allowedExposures left open at 1.1; the one step above it is for another systemd version's
// weights, not for a protection lost (the check of each item below catches that first).
const exposureBound = 1.2

// TestSystemdUnitSecurity runs systemd-analyze security --offline=true on the unit: every
// protection it checks is on except allowedExposures, and the overall score stays within
// exposureBound.
func TestSystemdUnitSecurity(t *testing.T) {
	needSystemdAnalyze(t)
	path := unitForBinary(t, buildShipped(t))
	analyze := func(extra ...string) []byte {
		cmd := exec.Command("systemd-analyze", append([]string{"security", "--offline=true", "--no-pager"}, append(extra, path)...)...)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_COLORS=0")
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("systemd-analyze security --offline=true %v: %v\n%s%s\n(it needs systemd 251 or later: Debian 12's 252 has it)", extra, err, out, stderr)
		}
		return out
	}

	out := analyze()
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+) (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline=true %s: exposure %.1f %s (bound %.1f)", unitPath, score, m[2], exposureBound)
	if score > exposureBound {
		t.Errorf("exposure %.1f is above %.1f:\n%s", score, exposureBound, out)
	}

	var items []struct {
		Set         bool   `json:"set"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Exposure    any    `json:"exposure"`
	}
	if err := json.Unmarshal(analyze("--json=short"), &items); err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, it := range items {
		if it.Set {
			continue
		}
		open++
		if why, ok := allowedExposures[it.Name]; ok {
			t.Logf("open, on purpose: %s (%s): %s", it.Name, it.Description, why)
			continue
		}
		t.Errorf("%s is off: %s (exposure %v). Turn it on, or add it to allowedExposures with the reason", it.Name, it.Description, it.Exposure)
	}
	t.Logf("%d checks, %d open", len(items), open)
	if len(items) < 50 {
		t.Errorf("systemd-analyze security made only %d checks: did its JSON change?", len(items))
	}
}

// TestSystemdUnitSettings checks what the unit promises beyond what systemd can judge: the
// hardening settings themselves (DynamicUser implies some of them, so systemd's score would
// not notice them gone), the report path inside the only writable directory, a stop timeout
// above the shutdown grace, and a command line the binary accepts.
func TestSystemdUnitSettings(t *testing.T) {
	u := readUnit(t, unitPath)
	want := map[string]string{
		"Type":                    "exec",
		"DynamicUser":             "yes",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"RestrictNamespaces":      "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"CapabilityBoundingSet":   "",
		"UMask":                   "0077",
		"StateDirectory":          "pgpollwatch",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"KillSignal":              "SIGTERM",
		"Restart":                 "on-failure",
	}
	for k, v := range want {
		if got, ok := u["Service"][k]; !ok || got[len(got)-1] != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if got := u["Service"]["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("[Service] SystemCallFilter=%q: want the @system-service allow list first", got)
	}
	for _, k := range []string{"Wants", "After"} {
		if !slices.Contains(u["Unit"][k], "network-online.target") {
			t.Errorf("[Unit] %s=%q lacks network-online.target", k, u["Unit"][k])
		}
	}
	if n, err := strconv.Atoi(u.last("Service", "LimitNOFILE")); err != nil || n < 2*5000+1024 {
		t.Errorf("LimitNOFILE=%q: want at least two descriptors per client at the default --max-connections 5000, and some", u.last("Service", "LimitNOFILE"))
	}

	bin := buildShipped(t)
	flags := proxyFlags(t, bin)
	cmdline := shellWords(t, u.last("Service", "ExecStart"), nil)
	if len(cmdline) == 0 || cmdline[0] != installedBinary {
		t.Fatalf("ExecStart=%q: want %s", cmdline, installedBinary)
	}
	if !slices.Contains(cmdline, "--no-tui") {
		t.Error("ExecStart without --no-tui")
	}
	// --config is the configuration work's (issue 18, part 1): whether or not this binary has
	// it yet, the unit must name the installed file; the other arguments must parse today.
	var args []string
	report := ""
	for i := 1; i < len(cmdline); i++ {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(cmdline[i], "--"), "=")
		if name == "config" {
			if !hasValue && i+1 < len(cmdline) {
				value = cmdline[i+1]
				i++
			}
			if value != installedConfig {
				t.Errorf("ExecStart --config %s: the install steps put it at %s", value, installedConfig)
			}
			continue
		}
		if _, ok := flags[name]; !ok {
			t.Errorf("ExecStart: the proxy has no --%s", name)
		}
		args = append(args, cmdline[i])
		if name == "report" {
			if !hasValue && i+1 < len(cmdline) {
				value = cmdline[i+1]
				args = append(args, value)
				i++
			}
			report = value
		}
	}
	checkFlagValues(t, bin, "ExecStart", args)
	if !slices.Contains(cmdline, "--config") {
		t.Errorf("ExecStart=%q: no --config %s", cmdline, installedConfig)
	}
	// ProtectSystem=strict leaves the StateDirectory the only place the service may write.
	stateDir := "/var/lib/" + u.last("Service", "StateDirectory") + "/"
	if !strings.HasPrefix(report, stateDir) {
		t.Errorf("ExecStart --report %q: the service can write only under %s", report, stateDir)
	}

	// On SIGTERM the proxy waits up to --shutdown-grace for sessions, then closes them and
	// writes its exit report; systemd's SIGKILL must not come first.
	grace, err := time.ParseDuration(flags["shutdown-grace"].def)
	if err != nil {
		t.Fatalf("--shutdown-grace's default %q: %v", flags["shutdown-grace"].def, err)
	}
	if v, ok := readConfig(t)["shutdown-grace"]; ok {
		if grace, err = time.ParseDuration(v.values[0]); err != nil {
			t.Fatalf("%s: shutdown-grace %q: %v", configPath, v.values[0], err)
		}
	}
	stop, err := time.ParseDuration(u.last("Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: write it as Go would parse it (30s): %v", u.last("Service", "TimeoutStopSec"), err)
	}
	if stop < grace+5*time.Second {
		t.Errorf("TimeoutStopSec=%v leaves less than 5s after --shutdown-grace %v to close sessions and write the report", stop, grace)
	}
}

// configValue is one key of the example configuration: its values (several for a list) and
// whether it is commented out.
type configValue struct {
	values    []string
	commented bool
	line      int
}

var (
	configLine   = regexp.MustCompile(`^(#\s*)?([a-z][a-z0-9-]*)\s*=\s*(.+?)\s*$`)
	configValue1 = regexp.MustCompile(`^(?:"((?:[^"\\]|\\.)*)"|(-?[0-9][0-9_.]*)|(true|false))$`)
)

// readConfig reads the example configuration's keys, set or commented out. It understands the
// part of TOML the example uses (top-level keys; strings, numbers, booleans and lists of
// strings) and fails on anything else: the configuration's own parser is the binary's.
func readConfig(t *testing.T) map[string]configValue {
	t.Helper()
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]configValue{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		m := configLine.FindStringSubmatch(line)
		if m == nil {
			if line != "" && line[0] != '#' {
				t.Fatalf("%s:%d: %q: the example keeps to top-level key = value lines", configPath, n+1, line)
			}
			continue
		}
		v := configValue{commented: m[1] != "", line: n + 1}
		raw := m[3]
		var items []string
		if inner, ok := strings.CutPrefix(raw, "["); ok {
			inner, ok = strings.CutSuffix(inner, "]")
			if !ok {
				t.Fatalf("%s:%d: a list on one line, please", configPath, n+1)
			}
			for _, s := range strings.Split(inner, ",") {
				items = append(items, strings.TrimSpace(s))
			}
		} else {
			items = []string{raw}
		}
		for _, s := range items {
			vm := configValue1.FindStringSubmatch(s)
			if vm == nil {
				t.Fatalf("%s:%d: %q is no string, number or boolean", configPath, n+1, s)
			}
			// TOML allows 10_000; a flag does not.
			v.values = append(v.values, vm[1]+strings.ReplaceAll(vm[2], "_", "")+vm[3])
		}
		if prev, dup := keys[m[2]]; dup && !prev.commented && !v.commented {
			t.Fatalf("%s:%d: %s is set twice", configPath, n+1, m[2])
		}
		if prev, dup := keys[m[2]]; !dup || prev.commented {
			keys[m[2]] = v
		}
	}
	return keys
}

// TestSystemdExampleConfig checks that every key of the example configuration, set or
// commented out, is one of the proxy's flags and that its value is one the flag accepts: the
// file is what an operator copies, and what they uncomment must work.
func TestSystemdExampleConfig(t *testing.T) {
	bin := buildShipped(t)
	flags := proxyFlags(t, bin)
	keys := readConfig(t)
	var args []string
	for k, v := range keys {
		if _, ok := flags[k]; !ok {
			t.Errorf("%s:%d: %s is no flag of the proxy (pgpollwatch --help)", configPath, v.line, k)
			continue
		}
		for _, x := range v.values {
			args = append(args, "--"+k+"="+x)
		}
	}
	checkFlagValues(t, bin, configPath, args)
	// And as the proxy reads it: its own TOML reader must take the file whole (the commented
	// keys above are checked by readConfig alone).
	if out, err := exec.Command(bin, "config", "--config", configPath).CombinedOutput(); err != nil {
		t.Errorf("pgpollwatch config --config %s: %v\n%s", configPath, err, out)
	} else if !strings.Contains(string(out), "# file "+configPath) {
		t.Errorf("pgpollwatch config took nothing from %s:\n%s", configPath, out)
	}
	for _, k := range []string{"upstream", "listen", "metrics-listen"} {
		if v, ok := keys[k]; !ok || v.commented {
			t.Errorf("%s does not set %s: the service needs it", configPath, k)
		}
	}
	if _, ok := keys["report"]; ok {
		t.Errorf("%s sets report: the unit's ExecStart gives it (a flag wins over the file), beside the StateDirectory it must lie in", configPath)
	}
}
