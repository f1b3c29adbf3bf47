// Package sqlscan is pgpollwatch's PostgreSQL-aware SQL scanner, normalizer
// and fingerprinter.
//
// It sits on the proxy's hot path: every statement of every application
// passes through [Normalize] or [Fingerprint], so the package is written to
// be single-pass, table driven, linear in the input whatever it contains,
// and allocation free when the caller reuses its output buffers.
//
// Files, one concept each:
//
//   - class.go: byte classes and ASCII case folding, [EqualFold].
//   - scanner.go: [Scanner], a tokenizer that follows the lexical rules of
//     PostgreSQL's own lexer (src/backend/parser/scan.l; PostgreSQL 16
//     number syntax; standard_conforming_strings = on).
//   - unquote.go: [Unquote] and [UnquoteIdent], which decode the values of
//     string-constant and identifier tokens.
//   - keywords.go: the few keywords the normalizer looks at, found with a
//     perfect hash.
//   - normalize.go: [Normalize], its [Result], and the token loop.
//   - rules.go: the grammar-level decisions (is this '-' part of a negative
//     constant? is this NULL a value or part of IS NULL? is this 1 a
//     column number?) approximated from neighbouring tokens.
//   - literal.go: typing numeric and string literals as PostgreSQL does.
//   - emit.go: writing the normalized text.
//   - fingerprint.go: the stable 64-bit token-stream hash, [Fingerprint].
//   - command.go: [Command], the kind of a query's first statement.
//   - split.go: [Split] and [Statements], which cut a simple-query string
//     into top-level statements the way psql does.
//
// Nothing here parses SQL. The doc comment of [Normalize] lists where the
// result deliberately or unavoidably differs from pg_stat_statements; the
// rules were checked against PostgreSQL 15 (see pg15_test.go).
package sqlscan
