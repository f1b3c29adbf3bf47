package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is a report file format.
type Format string

// The formats Write knows.
const (
	JSON     Format = "json"
	HTML     Format = "html"
	Markdown Format = "markdown"
)

// supported lists the extensions Write accepts, for error messages.
const supported = ".json, .html, .md or .markdown"

// FormatOf picks the format from a file name's extension (case-insensitive).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return JSON, nil
	case ".html":
		return HTML, nil
	case ".md", ".markdown":
		return Markdown, nil
	case "":
		return "", fmt.Errorf("%s: no file extension: name the report file with %s", path, supported)
	default:
		return "", fmt.Errorf("%s: unknown report format %q: use %s", path, filepath.Ext(path), supported)
	}
}

// Encode writes r to w in format f.
func Encode(w io.Writer, f Format, r *Report) error {
	switch f {
	case JSON:
		return WriteJSON(w, r)
	case HTML:
		return WriteHTML(w, r)
	case Markdown:
		return WriteMarkdown(w, r)
	}
	return fmt.Errorf("unknown report format %q", f)
}

// Write writes r to path in the format its extension names (.json, .html, .md or .markdown).
// The file is replaced atomically: readers see the old report or the new one, never half.
func Write(path string, r *Report) error {
	f, err := FormatOf(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := Encode(&buf, f, r); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeAtomic(path, buf.Bytes())
}

// writeAtomic writes data to a temporary file next to path and renames it over path.
func writeAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	return bw.Flush()
}

// Read reads a JSON report. It refuses files that are not pgpollwatch reports and reports of a
// schema version this package does not know.
func Read(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Decode parses a JSON report; see Read.
func Decode(data []byte) (*Report, error) {
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a pgpollwatch JSON report: %w", err)
	}
	switch v := head.SchemaVersion; {
	case v == nil:
		return nil, errors.New("not a pgpollwatch JSON report: no schema_version")
	case *v > SchemaVersion:
		return nil, fmt.Errorf("report has schema_version %d, newer than this pgpollwatch reads (%d): upgrade pgpollwatch", *v, SchemaVersion)
	case *v != SchemaVersion:
		return nil, fmt.Errorf("report has unknown schema_version %d (this pgpollwatch reads %d)", *v, SchemaVersion)
	}
	r := new(Report)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("malformed pgpollwatch report: %w", err)
	}
	// Reports from before queues and tags were reported have neither: written again, they
	// have empty lists, never null.
	if r.Queues == nil {
		r.Queues = []Queue{}
	}
	if r.Tags == nil {
		r.Tags = []Tag{}
	}
	return r, nil
}

// UnmarshalJSON reads a key, with waits_pct -1 when the report has none (reports written before
// pgpollwatch measured waits): absent is unknown, not "never waited".
func (k *Key) UnmarshalJSON(b []byte) error {
	type plain Key
	p := plain{WaitsPct: -1}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*k = Key(p)
	return nil
}

// UnmarshalJSON reads a poller, with waits_pct and key_gap_ms -1 when absent (see Key's).
func (p *Poller) UnmarshalJSON(b []byte) error {
	type plain Poller
	q := plain{WaitsPct: -1, KeyGapMs: -1}
	if err := json.Unmarshal(b, &q); err != nil {
		return err
	}
	*p = Poller(q)
	return nil
}

// UnmarshalJSON reads a storm, with waits_pct -1 when the report has none (see Key's).
func (s *Storm) UnmarshalJSON(b []byte) error {
	type plain Storm
	p := plain{WaitsPct: -1}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Storm(p)
	return nil
}
