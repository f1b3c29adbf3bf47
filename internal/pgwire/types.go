package pgwire

// HeaderLen is the length of a message's header: the type byte and the 4-byte length, which
// counts itself but not the type.
const HeaderLen = 5

// Message types a client (frontend) sends, after the startup packet.
const (
	FrontendBind         byte = 'B'
	FrontendClose        byte = 'C'
	FrontendCopyFail     byte = 'f'
	FrontendDescribe     byte = 'D'
	FrontendExecute      byte = 'E'
	FrontendFlush        byte = 'H'
	FrontendFunctionCall byte = 'F'
	FrontendParse        byte = 'P'
	FrontendPassword     byte = 'p' // also SASLInitialResponse, SASLResponse, GSSResponse
	FrontendQuery        byte = 'Q'
	FrontendSync         byte = 'S'
	FrontendTerminate    byte = 'X'
)

// Message types a server (backend) sends.
const (
	BackendAuthentication       byte = 'R'
	BackendKeyData              byte = 'K'
	BackendBindComplete         byte = '2'
	BackendCloseComplete        byte = '3'
	BackendCommandComplete      byte = 'C'
	BackendCopyBothResponse     byte = 'W'
	BackendCopyInResponse       byte = 'G'
	BackendCopyOutResponse      byte = 'H'
	BackendDataRow              byte = 'D'
	BackendEmptyQueryResponse   byte = 'I'
	BackendErrorResponse        byte = 'E'
	BackendFunctionCallResponse byte = 'V'
	BackendNegotiateProtocol    byte = 'v'
	BackendNoData               byte = 'n'
	BackendNoticeResponse       byte = 'N'
	BackendNotificationResponse byte = 'A'
	BackendParameterDescription byte = 't'
	BackendParameterStatus      byte = 'S'
	BackendParseComplete        byte = '1'
	BackendPortalSuspended      byte = 's'
	BackendReadyForQuery        byte = 'Z'
	BackendRowDescription       byte = 'T'
)

// Message types both sides send during COPY.
const (
	CopyData byte = 'd'
	CopyDone byte = 'c'
)

// What a Describe or Close names: a prepared statement or a portal (the first byte of the body).
const (
	TargetStatement byte = 'S'
	TargetPortal    byte = 'P'
)

// The server's one-byte answers to an SSLRequest or GSSENCRequest: go ahead with the handshake,
// or go on unencrypted.
const (
	EncryptionAccepted byte = 'S'
	EncryptionRefused  byte = 'N'
)

// Transaction status of ReadyForQuery.
const (
	TxIdle     byte = 'I'
	TxInBlock  byte = 'T'
	TxInFailed byte = 'E'
)

// Untyped startup-phase request codes (the 4 bytes after the length of the first packet).
const (
	SSLRequestCode    = 80877103
	GSSEncRequestCode = 80877104
	CancelRequestCode = 80877102
)
