// Package connlimit caps the connections a server holds open: in all, and
// per client. A client is an IP address on TCP, and a user id on a unix
// socket (the peer's credentials), so one local program cannot take every
// slot of a socket either.
//
// A Limiter sits between a server and its listeners: a connection over a
// cap is never handed to the server. Refuse, if set, may tell the client
// why in the protocol's words, then the connection is closed. One Limiter
// may serve several listeners, which then share its caps.
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Why a connection was refused; Refuse gets one of them.
var (
	ErrTooMany           = errors.New("too many connections")
	ErrTooManyFromClient = errors.New("too many connections from this client")
)

// RefuseTimeout bounds what Refuse may write: a client that does not read
// cannot keep a refused connection open.
const RefuseTimeout = 2 * time.Second

// logInterval spaces the log lines about refusals, so that a flood of
// connections is not a flood of log lines.
const logInterval = time.Minute

// Limiter counts the open connections of the listeners it wraps. Set the
// fields before the first Listener call; its zero value has no caps.
type Limiter struct {
	// Max is the most connections open at once; zero or less: no cap.
	Max int
	// PerClient is the most connections open at once from one client;
	// zero or less: no cap.
	PerClient int
	// Refuse, if set, is called for each refused connection, in a
	// goroutine of its own, with ErrTooMany or ErrTooManyFromClient. It
	// may write a farewell line (the write deadline is set to
	// RefuseTimeout); the connection is closed when it returns.
	Refuse func(c net.Conn, why error)
	// Logger, if set, gets a warning for the first refusal, and then at
	// most one a minute that counts the refusals since the last one.
	Logger *slog.Logger

	mu       sync.Mutex
	open     int
	perKey   map[string]int
	loggedAt time.Time
	unlogged int
}

// Listener wraps l: its Accept returns only connections within the caps.
func (lim *Limiter) Listener(l net.Listener) net.Listener {
	return &listener{Listener: l, lim: lim}
}

// Open returns the number of connections open now.
func (lim *Limiter) Open() int {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	return lim.open
}

// admit counts a new connection from client key, or says why not.
func (lim *Limiter) admit(key string) error {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	switch {
	case lim.Max > 0 && lim.open >= lim.Max:
		return ErrTooMany
	case lim.PerClient > 0 && lim.perKey[key] >= lim.PerClient:
		return ErrTooManyFromClient
	}
	if lim.perKey == nil {
		lim.perKey = make(map[string]int)
	}
	lim.open++
	lim.perKey[key]++
	return nil
}

func (lim *Limiter) release(key string) {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	lim.open--
	if lim.perKey[key]--; lim.perKey[key] <= 0 {
		delete(lim.perKey, key)
	}
}

func (lim *Limiter) refuse(c net.Conn, key string, why error) {
	if lim.Logger != nil {
		lim.mu.Lock()
		now := time.Now()
		quiet := !lim.loggedAt.IsZero() && now.Sub(lim.loggedAt) < logInterval
		n := lim.unlogged + 1
		if quiet {
			lim.unlogged++
		} else {
			lim.loggedAt, lim.unlogged = now, 0
		}
		lim.mu.Unlock()
		if !quiet {
			lim.Logger.Warn("connection refused", "reason", why.Error(), "client", key, "refused_since_last_logged", n)
		}
	}
	go func() {
		defer c.Close()
		if lim.Refuse != nil {
			c.SetWriteDeadline(time.Now().Add(RefuseTimeout))
			lim.Refuse(c, why)
		}
	}()
}

type listener struct {
	net.Listener
	lim *Limiter
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c)
		if err := l.lim.admit(key); err != nil {
			l.lim.refuse(c, key, err)
			continue
		}
		return &conn{Conn: c, lim: l.lim, key: key}, nil
	}
}

// conn gives its slot back on the first Close.
type conn struct {
	net.Conn
	lim  *Limiter
	key  string
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.lim.release(c.key) })
	return c.Conn.Close()
}

// NetConn returns the connection underneath, as tls.Conn's does, for
// code that looks through wrappers.
func (c *conn) NetConn() net.Conn { return c.Conn }

// clientKey names the client of c: its IP address on TCP (an IPv4
// address mapped into IPv6 counts as the IPv4 one), "uid:N" on a unix
// socket whose peer credentials can be read, else the network name.
func clientKey(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap().String()
		}
	}
	// Look through wrappers (a connection registry's) for the socket.
	for raw, i := c, 0; raw != nil && i < 8; i++ {
		if uc, ok := raw.(*net.UnixConn); ok {
			if uid, ok := peerUID(uc); ok {
				return "uid:" + strconv.Itoa(uid)
			}
			break
		}
		w, ok := raw.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		raw = w.NetConn()
	}
	if a := c.RemoteAddr(); a != nil {
		return a.Network()
	}
	return ""
}
