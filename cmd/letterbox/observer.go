package main

import (
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sessionObserver is the hook that pop3.Server and imap.Server need to
// grow for per-command metrics and for "letterbox who" and "letterbox
// kick" to know users. Each package would declare it as an optional field,
// with the same method set as here:
//
//	// Observer, if set, is told what sessions do. Its methods are called
//	// from the session's goroutine and must not block.
//	Observer interface {
//		// Authenticated: the connection c, as Serve accepted it from its
//		// listener, logged in as user ("" after IMAP UNAUTHENTICATE).
//		Authenticated(c net.Conn, user string)
//		// Command: a command finished, with its name in upper case
//		// ("RETR", "UID FETCH"), how long it took, and whether it
//		// succeeded (+OK / OK) or not (-ERR / NO / BAD).
//		Command(c net.Conn, name string, d time.Duration, ok bool)
//	}
//
// protoObserver implements it for one protocol; the server builder asks
// for it with ops.observer("pop3"), which also tells the connection
// registry that the protocol reports its users.
type sessionObserver interface {
	Authenticated(c net.Conn, user string)
	Command(c net.Conn, name string, d time.Duration, ok bool)
}

var _ sessionObserver = (*protoObserver)(nil)

type protoObserver struct {
	proto    string
	reg      *connRegistry
	commands *prometheus.HistogramVec
	known    map[string]bool // command names allowed as label values
}

// Command names become label values only if known, so a client sending
// junk cannot create series without bound; anything else is "OTHER".
var knownCommands = map[string][]string{
	"pop3": {"USER", "PASS", "APOP", "AUTH", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET",
		"QUIT", "TOP", "UIDL", "CAPA", "STLS"},
	"imap": {"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "ENABLE",
		"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST",
		"LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE",
		"SEARCH", "FETCH", "STORE", "COPY", "MOVE", "ID", "UNAUTHENTICATE", "UID FETCH",
		"UID STORE", "UID SEARCH", "UID COPY", "UID MOVE", "UID EXPUNGE"},
}

func newProtoObserver(proto string, reg *connRegistry, m *metrics) *protoObserver {
	o := &protoObserver{proto: proto, reg: reg, commands: m.commands, known: make(map[string]bool)}
	for _, name := range knownCommands[proto] {
		o.known[name] = true
	}
	return o
}

func (o *protoObserver) Authenticated(c net.Conn, user string) {
	if tc := o.reg.lookup(c); tc != nil {
		tc.setUser(user)
	}
}

func (o *protoObserver) Command(_ net.Conn, name string, d time.Duration, ok bool) {
	name = strings.ToUpper(strings.Join(strings.Fields(name), " "))
	if !o.known[name] {
		name = "OTHER"
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	o.commands.WithLabelValues(o.proto, name, result).Observe(d.Seconds())
}
