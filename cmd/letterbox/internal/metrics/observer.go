package metrics

import (
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lmtp"
	"github.com/letterbox-mail/letterbox/imap"
	"github.com/letterbox-mail/letterbox/pop3"
)

// UserRecorder learns which connection logged in as whom;
// *conntrack.Registry is one.
type UserRecorder interface {
	SetUser(c net.Conn, user string)
}

// Observer is what pop3.Server and imap.Server report sessions to, through
// their Observer field: logins go to a UserRecorder (so "letterbox who"
// and "letterbox kick" know users), commands to the metrics.
type Observer struct {
	proto    string
	users    UserRecorder
	commands *prometheus.HistogramVec
	known    map[string]bool // command names allowed as label values
}

var (
	_ pop3.Observer = (*Observer)(nil)
	_ imap.Observer = (*Observer)(nil)
)

// Command names become label values only if the server knows them, so a
// client sending junk cannot create series without bound; anything else
// is "OTHER". The servers' own tables say which: a list kept here missed
// every command added since it was written.
var knownCommands = map[string]func() []string{"pop3": pop3.Commands, "imap": imap.Commands}

// Sessions returns the Observer of proto's server; users, if not nil,
// learns its logins.
func (m *Metrics) Sessions(proto string, users UserRecorder) *Observer {
	o := &Observer{proto: proto, users: users, commands: m.commands, known: make(map[string]bool)}
	for _, name := range knownCommands[proto]() {
		o.known[name] = true
	}
	return o
}

// Authenticated implements pop3.Observer and imap.Observer.
func (o *Observer) Authenticated(c net.Conn, user string) {
	if o.users != nil {
		o.users.SetUser(c, user)
	}
}

// Command implements pop3.Observer and imap.Observer.
func (o *Observer) Command(_ net.Conn, name string, d time.Duration, ok bool) {
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

// LMTP returns the observer of the LMTP server: deliveries by result,
// delivered bytes, and failed deliveries as store errors.
func (m *Metrics) LMTP() lmtp.Observer { return lmtpObserver{m} }

type lmtpObserver struct{ m *Metrics }

func (o lmtpObserver) Recipient(r lmtp.Result, size int64) {
	m := o.m
	switch r {
	case lmtp.Delivered:
		m.deliveries.WithLabelValues("delivered").Inc()
		m.deliveredBytes.Add(float64(size))
	case lmtp.UnknownUser:
		m.deliveries.WithLabelValues("unknown_user").Inc()
	case lmtp.TooBig:
		m.deliveries.WithLabelValues("too_big").Inc()
	case lmtp.StoreFailed:
		m.deliveries.WithLabelValues("failed").Inc()
		m.storeErrors.WithLabelValues("lmtp").Inc()
	default:
		m.deliveries.WithLabelValues("failed").Inc()
	}
}
