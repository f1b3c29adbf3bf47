// Package sqlscan is pgpollwatch's PostgreSQL-aware SQL scanner, normalizer
// and fingerprinter.
//
// It sits on the proxy's hot path: every statement of every application
// passes through [Normalize] or [Fingerprint], so the package is written to
// be single-pass, table driven and allocation free (when the caller reuses
// its output buffers).
//
// The package has four parts, one file each:
//
//   - scanner.go: [Scanner], a tokenizer that follows the lexical rules of
//     PostgreSQL's own lexer (src/backend/parser/scan.l, PostgreSQL 16
//     number syntax, standard_conforming_strings = on).
//   - unquote.go: [Unquote] and [UnquoteIdent], which decode the value of
//     string-constant and identifier tokens.
//   - normalize.go: [Normalize], which replaces constants by $n the way
//     pg_stat_statements shows them and computes a fingerprint that groups
//     statements the way pg_stat_statements' queryid does.
//   - split.go: [Split] / [Statements], which cut a simple-query string
//     into its top-level statements the way psql does.
//
// Nothing here parses SQL: decisions that PostgreSQL takes in its grammar
// (is this minus sign part of a negative constant? is this NULL a value or
// part of IS NULL?) are approximated by looking at neighbouring tokens. The
// doc comment of [Normalize] lists where the result deliberately or
// unavoidably differs from pg_stat_statements.
package sqlscan
