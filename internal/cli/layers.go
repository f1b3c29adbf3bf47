package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Where a flag's value came from, in order of precedence.
const (
	FromFlag    = "flag"
	FromEnv     = "environment"
	FromFile    = "file"
	FromDefault = "default"
)

// Source says where one flag's value came from: FromFlag, FromEnv (Detail: the variable),
// FromFile (Detail: the file) or FromDefault.
type Source struct {
	Kind   string
	Detail string
}

func (s Source) String() string {
	if s.Detail == "" {
		return s.Kind
	}
	return s.Kind + " " + s.Detail
}

// Repeatable is a flag.Value that takes several values (--watch a --watch b): from the
// environment it takes a comma-separated list, from a file an array.
type Repeatable interface {
	flag.Value
	Repeatable()
}

// Layers gives a FlagSet's flags that the command line left unset their values from the
// environment (Prefix and the flag's name in upper snake case: --storm-qps is
// PGPOLLWATCH_STORM_QPS) and from a TOML file whose keys are the flags' names (storm-qps or
// storm_qps). Precedence: the command line, then the environment, then the file, then the
// default. Unknown keys and variables, and values a flag refuses, are errors that name the key
// and where it came from: a typo in a service's configuration must not pass unseen.
type Layers struct {
	Prefix string
	// Environ is the environment as os.Environ gives it (nil: os.Environ()).
	Environ []string
	// File is the configuration file; "" for none.
	File string
	// Ignore names variables with Prefix that are no flag but are read elsewhere (the file's
	// own variable, PGPOLLWATCH_CONFIG).
	Ignore []string
}

// EnvName is the variable that sets flag name.
func (l *Layers) EnvName(name string) string {
	return l.Prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Apply fills fs, already parsed from the command line, and returns where each flag's value
// came from.
func (l *Layers) Apply(fs *flag.FlagSet) (map[string]Source, error) {
	src := map[string]Source{}
	fs.VisitAll(func(f *flag.Flag) { src[f.Name] = Source{Kind: FromDefault} })
	fs.Visit(func(f *flag.Flag) { src[f.Name] = Source{Kind: FromFlag} })

	env := map[string]string{}
	environ := l.Environ
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, l.Prefix) {
			env[k] = v
		}
	}
	var errs []error
	byEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { byEnv[l.EnvName(f.Name)] = f.Name })
	for _, k := range sortedKeys(env) {
		name, ok := byEnv[k]
		switch {
		case !ok && !contains(l.Ignore, k):
			errs = append(errs, fmt.Errorf("environment: %s is no setting of pgpollwatch (see --help)", k))
		case ok && src[name].Kind == FromDefault:
			if err := set(fs.Lookup(name), splitList(fs.Lookup(name), env[k])); err != nil {
				errs = append(errs, fmt.Errorf("environment: %s=%q: %v", k, env[k], err))
			}
			src[name] = Source{Kind: FromEnv, Detail: k}
		}
	}
	if l.File != "" {
		values, err := readTOML(l.File)
		if err != nil {
			return src, errors.Join(append(errs, err)...)
		}
		for _, key := range sortedKeys(values) {
			name := strings.ReplaceAll(key, "_", "-")
			f := fs.Lookup(name)
			if f == nil {
				errs = append(errs, fmt.Errorf("%s: unknown key %q (no such setting; see --help)", l.File, key))
				continue
			}
			if src[name].Kind != FromDefault {
				continue // the command line or the environment wins
			}
			vals, err := fileValues(f, values[key])
			if err == nil {
				err = set(f, vals)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s = %#v: %v", l.File, key, values[key], err))
				continue
			}
			src[name] = Source{Kind: FromFile, Detail: l.File}
		}
	}
	return src, errors.Join(errs...)
}

// readTOML reads the file's top-level keys.
func readTOML(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if _, err := toml.Decode(string(b), &values); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range values {
		if _, ok := v.(map[string]any); ok {
			return nil, fmt.Errorf("%s: [%s]: the settings are top-level keys, without tables", path, k)
		}
	}
	return values, nil
}

// fileValues turns a TOML value into the strings the flag's Set takes.
func fileValues(f *flag.Flag, v any) ([]string, error) {
	if list, ok := v.([]any); ok {
		if _, rep := f.Value.(Repeatable); !rep {
			return nil, errors.New("takes one value, not a list")
		}
		var out []string
		for _, x := range list {
			s, err := scalar(x)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(v)
	return []string{s}, err
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Time:
		return "", fmt.Errorf("a date is no value of this setting")
	}
	return "", fmt.Errorf("%v is no value of this setting", v)
}

// splitList cuts a variable's value into a repeatable flag's values.
func splitList(f *flag.Flag, v string) []string {
	if _, rep := f.Value.(Repeatable); rep {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{v}
}

func set(f *flag.Flag, vals []string) error {
	for _, v := range vals {
		if err := f.Value.Set(v); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
