// Package pgwire is what pgpollwatch knows of PostgreSQL's wire protocol (version 3): the
// message type bytes, named per direction since one byte means different messages each way
// ('S' is Sync from a client and ParameterStatus from a server); append-style encoders for the
// messages the proxy writes itself; and allocation-free readers for the parts it inspects: a
// Bind's parameters, a RowDescription's columns, a DataRow's values, array values, an
// ErrorResponse's fields.
//
// It does no I/O and keeps no state: framing a stream (the 1-byte type and the 4-byte length)
// is the proxy's pump, and decoding whole messages into structs, when needed, is pgproto3's.
// Readers return sub-slices of their input and never allocate, so the proxy's hot path and the
// analyzer can use them per message.
package pgwire
