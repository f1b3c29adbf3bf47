package pgwire

import "encoding/binary"

// AppendHeader appends a message header: typ and the length of a body of bodyLen bytes.
func AppendHeader(b []byte, typ byte, bodyLen int) []byte {
	return binary.BigEndian.AppendUint32(append(b, typ), uint32(bodyLen+4))
}

// AppendReadyForQuery appends a ReadyForQuery with the transaction status (TxIdle, TxInBlock
// or TxInFailed).
func AppendReadyForQuery(b []byte, status byte) []byte {
	return append(b, BackendReadyForQuery, 0, 0, 0, 5, status)
}

// AppendTerminate appends a Terminate.
func AppendTerminate(b []byte) []byte { return append(b, FrontendTerminate, 0, 0, 0, 4) }

// AppendBindComplete appends a BindComplete.
func AppendBindComplete(b []byte) []byte { return append(b, BackendBindComplete, 0, 0, 0, 4) }

// AppendCommandComplete appends a CommandComplete with the command tag ("SELECT 1").
func AppendCommandComplete(b []byte, tag []byte) []byte {
	b = AppendHeader(b, BackendCommandComplete, len(tag)+1)
	return append(append(b, tag...), 0)
}

// AppendErrorResponse appends an ErrorResponse with severity (both localized and not), SQLSTATE
// code and message, as the server writes one.
func AppendErrorResponse(b []byte, severity, code, message string) []byte {
	start := len(b)
	b = append(b, BackendErrorResponse, 0, 0, 0, 0)
	b = append(append(append(b, 'S'), severity...), 0)
	b = append(append(append(b, 'V'), severity...), 0)
	b = append(append(append(b, 'C'), code...), 0)
	b = append(append(append(b, 'M'), message...), 0)
	b = append(b, 0)
	binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-1))
	return b
}
