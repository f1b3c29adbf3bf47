package proxy

import "github.com/pgpollwatch/pgpollwatch/event"

// What the proxy tells its Observer. The types live in package event, so the analyzer and the
// other sources of events (a server's log) need nothing from the proxy; these aliases keep the
// proxy's own names for them.
type (
	// Observer hears what passes through the proxy; see event.Observer.
	Observer = event.Observer
	// NopObserver ignores everything; see event.NopObserver.
	NopObserver = event.NopObserver
	// ConnInfo identifies one client connection; see event.ConnInfo.
	ConnInfo = event.ConnInfo
	// ConnStats describes a finished connection; see event.ConnStats.
	ConnStats = event.ConnStats
	// Protocol says which flow a statement came through; see event.Protocol.
	Protocol = event.Protocol
	// Event is one statement the server completed or refused; see event.Event.
	Event = event.Event
	// BindMessage is the body of a Bind message, decoded lazily; see event.BindMessage.
	BindMessage = event.BindMessage
)

// The flows a statement comes through; see event.Protocol.
const (
	Simple       = event.Simple
	Extended     = event.Extended
	FunctionCall = event.FunctionCall
)

// FirstRowPrefix is how much of a statement's first DataRow an Event carries.
const FirstRowPrefix = event.FirstRowPrefix
