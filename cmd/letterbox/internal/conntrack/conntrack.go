// Package conntrack keeps the list of a server's client connections: who
// is connected, over which protocol, since when, with how many bytes each
// way, and as which user once logged in. It backs "letterbox who" and
// "letterbox kick", and counts connections and bytes for the metrics.
//
// The protocol servers are not involved: their listeners are wrapped, and
// a server that reports logins (pop3.Observer, imap.Observer) tells
// SetUser which connection logged in as whom.
package conntrack

import (
	"cmp"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Adder is a counter or gauge; prometheus.Counter and prometheus.Gauge
// are Adders.
type Adder interface{ Add(float64) }

// Meter counts one protocol's connections: accepted, open now, and bytes
// each way on the wire (TLS included). Nil fields count nothing.
type Meter struct {
	Accepted, Open, BytesIn, BytesOut Adder
}

// Session is one connection as "letterbox who" shows it, and as the
// control socket sends it.
type Session struct {
	ID          uint64    `json:"id"`
	Proto       string    `json:"proto"`
	User        string    `json:"user,omitempty"`
	Remote      string    `json:"remote"`
	Local       string    `json:"local"`
	ImplicitTLS bool      `json:"implicit_tls"`
	Start       time.Time `json:"start"`
	BytesIn     int64     `json:"bytes_in"`
	BytesOut    int64     `json:"bytes_out"`
}

// Registry knows every connection accepted through its listeners.
type Registry struct {
	meter func(proto string) Meter
	now   func() time.Time

	nextID atomic.Uint64

	mu        sync.Mutex
	conns     map[uint64]*conn
	reporting map[string]bool // protocols whose servers report logins
}

// New returns an empty registry; meter, if not nil, gives each
// protocol's counters.
func New(meter func(proto string) Meter) *Registry {
	if meter == nil {
		meter = func(string) Meter { return Meter{} }
	}
	return &Registry{meter: meter, now: time.Now, conns: make(map[uint64]*conn), reporting: make(map[string]bool)}
}

// Listener wraps l so that its connections are listed as proto's.
// implicitTLS records that the caller puts TLS on top (tls.NewListener
// above this one, so servers still see a *tls.Conn).
func (r *Registry) Listener(proto string, l net.Listener, implicitTLS bool) net.Listener {
	m := r.meter(proto)
	return &listener{Listener: l, reg: r, proto: proto, implicitTLS: implicitTLS,
		accepted: orNop(m.Accepted), open: orNop(m.Open), in: orNop(m.BytesIn), out: orNop(m.BytesOut)}
}

// ReportsUsers records that proto's server reports logins through
// SetUser, so its connections without a user have not logged in.
func (r *Registry) ReportsUsers(proto string) {
	r.mu.Lock()
	r.reporting[proto] = true
	r.mu.Unlock()
}

// Unreported returns the protocols with open connections whose servers
// do not report logins: their users can be neither shown nor kicked.
// LMTP has no users and is never listed.
func (r *Registry) Unreported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.conns {
		if p := c.l.proto; p != "lmtp" && !r.reporting[p] && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// SetUser records that c logged in as user ("" after a logout that keeps
// the connection, such as IMAP UNAUTHENTICATE). c may be the accepted
// connection or a wrapper of it with a NetConn method (*tls.Conn).
func (r *Registry) SetUser(c net.Conn, user string) {
	if tc := lookup(c); tc != nil {
		tc.user.Store(&user)
	}
}

// Sessions returns the open connections, oldest first.
func (r *Registry) Sessions() []Session {
	r.mu.Lock()
	out := make([]Session, 0, len(r.conns))
	for _, c := range r.conns {
		out = append(out, c.info())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Session) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Kick closes every connection logged in as user (letter case ignored,
// as logins do) and returns how many it closed. The protocol servers see
// a dropped connection: POP3 leaves the maildrop unchanged (RFC 1939 §6),
// IMAP ends the session.
func (r *Registry) Kick(user string) int {
	r.mu.Lock()
	var victims []*conn
	for _, c := range r.conns {
		if u := c.userName(); u != "" && strings.EqualFold(u, user) {
			victims = append(victims, c)
		}
	}
	r.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return len(victims)
}

// lookup finds the tracked connection under c: c itself, or what a
// wrapper with a NetConn method was made from.
func lookup(c net.Conn) *conn {
	for range 8 { // wrappers of wrappers, but never a cycle
		switch v := c.(type) {
		case *conn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

type nop struct{}

func (nop) Add(float64) {}

func orNop(a Adder) Adder {
	if a == nil {
		return nop{}
	}
	return a
}

type listener struct {
	net.Listener
	reg                     *Registry
	proto                   string
	implicitTLS             bool
	accepted, open, in, out Adder
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &conn{Conn: c, l: l, id: l.reg.nextID.Add(1), start: l.reg.now()}
	l.accepted.Add(1)
	l.open.Add(1)
	l.reg.mu.Lock()
	l.reg.conns[tc.id] = tc
	l.reg.mu.Unlock()
	return tc, nil
}

// conn counts the bytes of one connection. Close may be called any number
// of times, from any goroutine.
type conn struct {
	net.Conn
	l     *listener
	id    uint64
	start time.Time

	in, out atomic.Int64
	user    atomic.Pointer[string]
	closed  sync.Once
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.in.Add(int64(n))
		c.l.in.Add(float64(n))
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.out.Add(int64(n))
		c.l.out.Add(float64(n))
	}
	return n, err
}

func (c *conn) Close() error {
	c.closed.Do(func() {
		c.l.reg.mu.Lock()
		delete(c.l.reg.conns, c.id)
		c.l.reg.mu.Unlock()
		c.l.open.Add(-1)
	})
	return c.Conn.Close()
}

// NetConn returns the connection underneath.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) userName() string {
	if p := c.user.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *conn) info() Session {
	return Session{
		ID:          c.id,
		Proto:       c.l.proto,
		User:        c.userName(),
		Remote:      addrString(c.RemoteAddr()),
		Local:       addrString(c.LocalAddr()),
		ImplicitTLS: c.l.implicitTLS,
		Start:       c.start,
		BytesIn:     c.in.Load(),
		BytesOut:    c.out.Load(),
	}
}

// addrString is a's text; unix socket peers have no name.
func addrString(a net.Addr) string {
	if a == nil || a.String() == "" {
		return "-"
	}
	return a.String()
}
