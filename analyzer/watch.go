package analyzer

import (
	"fmt"
	"strings"

	"github.com/pgpollwatch/pgpollwatch/analyzer/sqlscan"
)

// Watch names a result table and the column whose value identifies what is polled: a Celery
// task_id, a group id, a job id.
type Watch struct {
	Schema string // "" matches any schema
	Table  string
	Column string
	// StatusColumn, when set, is read from the first returned row: its value is the key's
	// last status, and TerminalStates end the wait ("time to result").
	StatusColumn   string
	TerminalStates []string
	// Origin says where the watch came from: a preset's name or "--watch".
	Origin string
}

// Name is TABLE.COLUMN (SCHEMA.TABLE.COLUMN when the schema is set).
func (w Watch) Name() string {
	if w.Schema != "" {
		return w.Schema + "." + w.Table + "." + w.Column
	}
	return w.Table + "." + w.Column
}

var celeryTerminal = []string{"SUCCESS", "FAILURE", "REVOKED"}

// Presets are the result tables of the Celery backends people run on PostgreSQL: the
// SQLAlchemy database backend (whose table names the old django-celery shared), and
// django-celery-results.
var Presets = []Watch{
	{Table: "celery_taskmeta", Column: "task_id", StatusColumn: "status", TerminalStates: celeryTerminal, Origin: "celery"},
	{Table: "celery_tasksetmeta", Column: "taskset_id", Origin: "celery"},
	{Table: "django_celery_results_taskresult", Column: "task_id", StatusColumn: "status", TerminalStates: celeryTerminal, Origin: "django-celery-results"},
	{Table: "django_celery_results_groupresult", Column: "group_id", Origin: "django-celery-results"},
}

// ParseWatch reads TABLE.COLUMN or SCHEMA.TABLE.COLUMN as written in SQL: unquoted names are
// folded to lower case, "Quoted" ones kept as they are.
func ParseWatch(s string) (Watch, error) {
	var parts []string
	var sc sqlscan.Scanner
	sc.Reset([]byte(s))
	expectName := true
	for {
		tok := sc.Next()
		if tok.Kind == sqlscan.EOF {
			break
		}
		text := sc.Text(tok)
		switch {
		case expectName && tok.Kind == sqlscan.Ident:
			parts = append(parts, strings.ToLower(string(text)))
		case expectName && tok.Kind == sqlscan.QuotedIdent:
			v, ok := sqlscan.UnquoteIdent(nil, text)
			if !ok {
				return Watch{}, fmt.Errorf("--watch %q: bad quoted name", s)
			}
			parts = append(parts, string(v))
		case !expectName && tok.Kind == sqlscan.Punct && string(text) == ".":
		default:
			return Watch{}, fmt.Errorf("--watch %q: want TABLE.COLUMN or SCHEMA.TABLE.COLUMN", s)
		}
		expectName = !expectName
	}
	switch {
	case expectName || len(parts) < 2 || len(parts) > 3:
		return Watch{}, fmt.Errorf("--watch %q: want TABLE.COLUMN or SCHEMA.TABLE.COLUMN", s)
	case len(parts) == 3:
		return Watch{Schema: parts[0], Table: parts[1], Column: parts[2], Origin: "--watch"}, nil
	}
	return Watch{Table: parts[0], Column: parts[1], Origin: "--watch"}, nil
}

// identMatches compares an identifier token with a name the way PostgreSQL resolves it:
// unquoted identifiers fold to lower case, quoted ones are exact.
func identMatches(kind sqlscan.Kind, text []byte, name string, scratch []byte) bool {
	switch kind {
	case sqlscan.Ident:
		return sqlscan.EqualFold(text, name)
	case sqlscan.QuotedIdent:
		v, ok := sqlscan.UnquoteIdent(scratch[:0], text)
		return ok && string(v) == name
	}
	return false
}
