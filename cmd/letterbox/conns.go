package main

import (
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connRegistry knows every client connection of the running server. serve
// wraps each protocol's raw listener in a trackedListener (below
// tls.NewListener, so the protocol servers still see a *tls.Conn on
// implicit-TLS ports), which counts connections and bytes for the metrics
// and lists connections for "letterbox who". The protocol packages are not
// involved: they only see a net.Conn.
//
// User names are not visible at this level. A protocol server that has an
// Observer (see observer.go) reports its logins through it, and its
// connections then show their user and can be kicked.
type connRegistry struct {
	metrics *metrics
	now     func() time.Time

	nextID atomic.Uint64

	mu        sync.Mutex
	conns     map[uint64]*trackedConn
	reporting map[string]bool // protocols whose servers report logins
}

func newConnRegistry(m *metrics) *connRegistry {
	return &connRegistry{
		metrics:   m,
		now:       time.Now,
		conns:     make(map[uint64]*trackedConn),
		reporting: make(map[string]bool),
	}
}

// listener wraps l so that its connections are tracked as proto's.
// implicitTLS tells that serve wraps l in tls.NewListener.
func (r *connRegistry) listener(proto string, l net.Listener, implicitTLS bool) net.Listener {
	return &trackedListener{Listener: l, reg: r, proto: proto, implicitTLS: implicitTLS, m: r.metrics.forProto(proto)}
}

// reportsUsers records that proto's server reports logins.
func (r *connRegistry) reportsUsers(proto string) {
	r.mu.Lock()
	r.reporting[proto] = true
	r.mu.Unlock()
}

// unreported returns the protocols with connections whose servers do not
// report logins, so their users cannot be shown or kicked.
func (r *connRegistry) unreported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.conns {
		if c.proto != "lmtp" && !r.reporting[c.proto] && !slices.Contains(out, c.proto) {
			out = append(out, c.proto)
		}
	}
	slices.Sort(out)
	return out
}

func (r *connRegistry) add(c *trackedConn) {
	r.mu.Lock()
	r.conns[c.id] = c
	r.mu.Unlock()
}

func (r *connRegistry) remove(c *trackedConn) {
	r.mu.Lock()
	delete(r.conns, c.id)
	r.mu.Unlock()
}

// lookup finds the tracked connection under c: c itself, or the conn a
// wrapper with a NetConn method (*tls.Conn among them) was made from.
func (r *connRegistry) lookup(c net.Conn) *trackedConn {
	for range 8 { // wrappers of wrappers, but never a cycle
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// sessionInfo is one connection as "letterbox who" shows it. It is also
// the JSON of the control socket (control.go).
type sessionInfo struct {
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

// sessions returns the open connections, oldest first.
func (r *connRegistry) sessions() []sessionInfo {
	r.mu.Lock()
	out := make([]sessionInfo, 0, len(r.conns))
	for _, c := range r.conns {
		out = append(out, c.info())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b sessionInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// kick closes every connection logged in as user (letter case ignored,
// as logins do) and returns how many it closed. The protocol servers see a
// dropped connection: POP3 leaves the maildrop unchanged (RFC 1939 §6),
// IMAP ends the session.
func (r *connRegistry) kick(user string) int {
	r.mu.Lock()
	var victims []*trackedConn
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

// trackedListener is a net.Listener whose connections are counted.
type trackedListener struct {
	net.Listener
	reg         *connRegistry
	proto       string
	implicitTLS bool
	m           protoMetrics
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{
		Conn:        c,
		reg:         l.reg,
		id:          l.reg.nextID.Add(1),
		proto:       l.proto,
		implicitTLS: l.implicitTLS,
		start:       l.reg.now(),
		m:           l.m,
	}
	l.m.connsTotal.Inc()
	l.m.connsCurrent.Inc()
	l.reg.add(tc)
	return tc, nil
}

// trackedConn counts the bytes of one connection. Close may be called any
// number of times, from any goroutine.
type trackedConn struct {
	net.Conn
	reg         *connRegistry
	id          uint64
	proto       string
	implicitTLS bool
	start       time.Time
	m           protoMetrics

	in, out atomic.Int64
	user    atomic.Pointer[string]
	closed  sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.in.Add(int64(n))
		c.m.bytesIn.Add(float64(n))
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.out.Add(int64(n))
		c.m.bytesOut.Add(float64(n))
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.closed.Do(func() {
		c.reg.remove(c)
		c.m.connsCurrent.Dec()
	})
	return c.Conn.Close()
}

// setUser records the user the connection logged in as; "" after a logout
// that keeps the connection (IMAP UNAUTHENTICATE).
func (c *trackedConn) setUser(name string) { c.user.Store(&name) }

func (c *trackedConn) userName() string {
	if p := c.user.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *trackedConn) info() sessionInfo {
	return sessionInfo{
		ID:          c.id,
		Proto:       c.proto,
		User:        c.userName(),
		Remote:      addrString(c.RemoteAddr()),
		Local:       addrString(c.LocalAddr()),
		ImplicitTLS: c.implicitTLS,
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

// protoMetrics are one protocol's connection metrics, looked up once per
// listener instead of once per read.
type protoMetrics struct {
	connsTotal, bytesIn, bytesOut prometheus.Counter
	connsCurrent                  prometheus.Gauge
}
