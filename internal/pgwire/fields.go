package pgwire

// Field codes of ErrorResponse and NoticeResponse.
const (
	FieldSeverity            byte = 'S' // localized
	FieldSeverityUnlocalized byte = 'V' // PostgreSQL 9.6 and later
	FieldCode                byte = 'C' // SQLSTATE
	FieldMessage             byte = 'M'
)

// ErrorField returns the value of one field of an ErrorResponse (or NoticeResponse) body; nil
// when absent or when the body is malformed before it.
func ErrorField(body []byte, field byte) []byte {
	for len(body) > 1 && body[0] != 0 {
		f := body[0]
		val, rest, ok := CString(body[1:])
		if !ok {
			break
		}
		if f == field {
			return val
		}
		body = rest
	}
	return nil
}

// Severity returns an ErrorResponse's severity, not localized when the server sends it so.
func Severity(body []byte) []byte {
	if sev := ErrorField(body, FieldSeverityUnlocalized); sev != nil {
		return sev
	}
	return ErrorField(body, FieldSeverity)
}
