// Package proxy is pgpollwatch's PostgreSQL proxy: it accepts client connections, forwards each
// one 1:1 to the upstream server, and shows what passes through to an Observer.
//
// A Server (server.go) listens, negotiates the startup phase itself (SSLRequest with TLS
// termination, GSSENCRequest answered 'N', CancelRequest forwarded only with a key a session
// was given: startup.go, cancel.go), dials the Upstream parsed from a DSN (upstream.go) and runs
// a Session per client (session.go). A session forwards with two pumps, one per direction
// (pump.go): each reads into one buffer, walks the message headers in place and writes runs of
// whole messages on unchanged, showing them to an inspector: frontend.go reads what the client
// sends and queues the answers the server owes (queue.go); backend.go pairs the server's answers
// with them, measures every statement and hands the completed ones, as Events, to the Observer
// (observer.go) after they were written. Replication connections are forwarded without a look.
//
// The package also holds the protocol side of two optional features: coalescing (cache.go
// defines the Cache hook; coalescing.go and backend_cache.go decide when a session may be
// answered from it, hold and synthesize the messages, and invalidate on writes) and server
// connection reuse (reuse.go: a trust login's server connection kept with DISCARD ALL for the
// next client with the same startup packet).
//
// What it does not do: it never decodes, logs or stores a password or an authentication
// exchange; it does not read SQL for meaning (the Cache's Classifier does) nor keep statistics
// (the Observer does, see package analyzer); it never holds a whole result set (rows stream
// through); it changes nothing it forwards, except that with a Cache it may answer a read
// itself, and with reuse it withholds a leaving client's Terminate. It imports no other package
// of this module: analyzer, coalesce and replay import it for its types.
//
// docs/architecture.md describes the hot-path rules this package keeps (no allocation and no
// channel send per message) and the coalescing rules in one place.
package proxy
