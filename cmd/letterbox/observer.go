package main

import (
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/letterbox-mail/letterbox/imap"
	"github.com/letterbox-mail/letterbox/pop3"
)

// sessionObserver is the method set of pop3.Observer and imap.Observer,
// through which the servers report logins (so "letterbox who" and
// "letterbox kick" know users) and commands (for the metrics).
// protoObserver implements it for one protocol; the server builder asks
// for it with ops.observer("pop3"), which also tells the connection
// registry that the protocol reports its users.
type sessionObserver interface {
	Authenticated(c net.Conn, user string)
	Command(c net.Conn, name string, d time.Duration, ok bool)
}

var (
	_ sessionObserver = (*protoObserver)(nil)
	_ pop3.Observer   = sessionObserver(nil)
	_ imap.Observer   = sessionObserver(nil)
)

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
	if !o.known[name] {
		// The servers send names upper case and single-spaced, so only a
		// miss pays for normalizing.
		name = strings.ToUpper(strings.Join(strings.Fields(name), " "))
		if !o.known[name] {
			name = "OTHER"
		}
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	o.commands.WithLabelValues(o.proto, name, result).Observe(d.Seconds())
}
