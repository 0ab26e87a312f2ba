package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Authenticator checks a user's password. *auth.Authenticator implements
// it; its errors auth.ErrInvalidCredentials and auth.ErrThrottled are
// understood, and it does the delay after a failure.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string, remote netip.Addr) (canonicalUser string, err error)
}

// Store opens users' mail. *store.Store implements it.
type Store interface {
	User(name string) (*store.User, error)
}

// Defaults of the Server fields.
const (
	DefaultMaxLineLength       = 1024
	DefaultMaxBadCommands      = 10
	DefaultIdleTimeout         = 10 * time.Minute
	DefaultCommandTimeout      = time.Minute
	DefaultWriteTimeout        = time.Minute
	DefaultHandshakeTimeout    = 30 * time.Second
	DefaultMaxConnections      = 1000
	DefaultMaxConnectionsPerIP = 20
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or
// Close.
var ErrServerClosed = errors.New("pop3: server closed")

// Observer watches sessions. Its methods are called from the session's
// goroutine and must not block. c is the connection as Serve accepted it
// (before any STLS), so it identifies the session.
type Observer interface {
	// Authenticated: c logged in as user.
	Authenticated(c net.Conn, user string)
	// Command: a command finished after d; ok is false for -ERR.
	Command(c net.Conn, name string, d time.Duration, ok bool)
}

// Server is a POP3 server. Set the fields, then call Serve; do not change
// them afterwards. Zero values mean the documented default.
type Server struct {
	// Auth checks passwords. Required.
	Auth Authenticator
	// Store holds the mail. Required.
	Store Store

	// TLSConfig enables STLS on plain connections, and is used by
	// ListenAndServeTLS. Nil means no STLS. A connection that Serve
	// accepts as a *tls.Conn (from tls.NewListener) is implicit TLS
	// whatever this is.
	TLSConfig *tls.Config

	// AllowInsecureAuth allows USER/PASS and AUTH PLAIN on connections
	// without TLS. Default false: they are refused, and not advertised.
	AllowInsecureAuth bool
	// AllowInsecureLoopback allows them without TLS for clients on a
	// loopback address only. Default false.
	AllowInsecureLoopback bool

	// MaxLineLength is the longest command line accepted, in bytes,
	// CRLF included. Default 1024: RFC 2449 §4 limits commands to 255
	// octets, but clients send longer AUTH PLAIN responses and user
	// names, so be tolerant. A longer line gets "-ERR" and counts as a
	// bad command, and so does every further MaxLineLength bytes of it.
	MaxLineLength int
	// MaxBadCommands is how many unknown, out-of-state or malformed
	// commands (and overlong lines) end a session: the last one gets its
	// "-ERR", then a farewell line, and the connection is closed. Failed
	// logins do not count; auth throttles those. Default 10.
	MaxBadCommands int
	// IdleTimeout closes a session that sent nothing for this long,
	// with a farewell "-ERR". Default 10 minutes, the minimum RFC 1939 §3
	// allows for the autologout timer.
	IdleTimeout time.Duration
	// CommandTimeout bounds a whole command line: once its first byte
	// has arrived, the rest, up to CRLF, must follow within this time, or
	// the session ends with a farewell "-ERR". The idle timeout is reset
	// by every byte a client sends only up to here, so a client that
	// trickles a byte now and then cannot hold a connection. Default 1
	// minute.
	CommandTimeout time.Duration
	// WriteTimeout closes a session whose client stops reading: it
	// bounds each write to the connection, not a whole reply, so a slow
	// download goes on as long as it makes progress. Default 1 minute.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake (implicit TLS and STLS).
	// Default 30 seconds.
	HandshakeTimeout time.Duration

	// MaxConnections limits simultaneous connections; more are answered
	// "-ERR [SYS/TEMP]" and closed. Default 1000; negative means no
	// limit.
	MaxConnections int
	// MaxConnectionsPerIP limits simultaneous connections from one
	// client address. Default 20; negative means no limit.
	MaxConnectionsPerIP int

	// Logger receives the server's log lines, each session's with a
	// "conn" attribute. Default slog.Default().
	Logger *slog.Logger

	// Observer, if set, is told of logins and of every command, for
	// metrics and for listing who is connected. Nil means nobody.
	Observer Observer

	initOnce   sync.Once
	inShutdown atomic.Bool
	nextID     atomic.Uint64
	baseCtx    context.Context
	cancel     context.CancelFunc

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	sessions  map[*session]struct{}
	perIP     map[netip.Addr]int
	admitted  int

	refusalLoggedAt  time.Time
	refusalsUnlogged int
}

func (srv *Server) init() {
	srv.initOnce.Do(func() {
		srv.baseCtx, srv.cancel = context.WithCancel(context.Background())
		srv.listeners = make(map[*net.Listener]struct{})
		srv.sessions = make(map[*session]struct{})
		srv.perIP = make(map[netip.Addr]int)
	})
}

func (srv *Server) logger() *slog.Logger {
	if srv.Logger != nil {
		return srv.Logger
	}
	return slog.Default()
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func (srv *Server) maxLineLength() int {
	// bufio needs at least 16 bytes; no command is shorter than "QUIT\r\n".
	return max(orDefault(srv.MaxLineLength, DefaultMaxLineLength), 16)
}
func (srv *Server) maxBadCommands() int { return orDefault(srv.MaxBadCommands, DefaultMaxBadCommands) }
func (srv *Server) idleTimeout() time.Duration {
	return orDefault(srv.IdleTimeout, DefaultIdleTimeout)
}
func (srv *Server) commandTimeout() time.Duration {
	return orDefault(srv.CommandTimeout, DefaultCommandTimeout)
}
func (srv *Server) writeTimeout() time.Duration {
	return orDefault(srv.WriteTimeout, DefaultWriteTimeout)
}
func (srv *Server) handshakeTimeout() time.Duration {
	return orDefault(srv.HandshakeTimeout, DefaultHandshakeTimeout)
}

// ListenAndServe listens on the TCP address addr (":pop3" if empty) and
// serves plain POP3, with STLS if TLSConfig is set.
func (srv *Server) ListenAndServe(addr string) error {
	if srv.inShutdown.Load() {
		return ErrServerClosed
	}
	if addr == "" {
		addr = ":pop3"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return srv.Serve(l)
}

// ListenAndServeTLS listens on addr (":pop3s" if empty) and serves POP3
// over implicit TLS (RFC 8314) with TLSConfig, which must be set.
func (srv *Server) ListenAndServeTLS(addr string) error {
	if srv.inShutdown.Load() {
		return ErrServerClosed
	}
	if srv.TLSConfig == nil {
		return errors.New("pop3: ListenAndServeTLS needs TLSConfig")
	}
	if addr == "" {
		addr = ":pop3s"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return srv.Serve(tls.NewListener(l, srv.TLSConfig))
}

// Serve accepts connections on l and serves each in its own goroutine. It
// always returns a non-nil error and closes l; after Shutdown or Close the
// error is ErrServerClosed.
func (srv *Server) Serve(l net.Listener) error {
	srv.init()
	if srv.Auth == nil || srv.Store == nil {
		l.Close()
		return errors.New("pop3: Server.Auth and Server.Store must be set")
	}
	if !srv.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer srv.trackListener(&l, false)
	defer l.Close()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if srv.inShutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and
			// retry, as net/http does, 5ms doubling up to 1s.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.logger().Warn("pop3: accept failed, retrying", "err", err, "delay", backoff)
			select {
			case <-time.After(backoff):
			case <-srv.baseCtx.Done():
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s := srv.newSession(c)
		if s == nil {
			c.Close()
			return ErrServerClosed
		}
		go s.serve()
	}
}

func (srv *Server) trackListener(l *net.Listener, add bool) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if add {
		if srv.inShutdown.Load() {
			return false
		}
		srv.listeners[l] = struct{}{}
	} else {
		delete(srv.listeners, l)
	}
	return true
}

// newSession registers a new connection and decides, under the lock, whether
// it is within the connection limits. A session over a limit is still
// served, but only to be told so: the refusal is written from the session's
// own goroutine, because on a TLS connection it needs a handshake first.
func (srv *Server) newSession(c net.Conn) *session {
	remote := addrOf(c.RemoteAddr())
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.inShutdown.Load() {
		return nil
	}
	s := newSession(srv, c, remote)
	maxConns := orDefault(srv.MaxConnections, DefaultMaxConnections)
	maxPerIP := orDefault(srv.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	switch {
	case maxConns > 0 && srv.admitted >= maxConns:
		s.refusal = "Too many connections, try again later."
	case maxPerIP > 0 && srv.perIP[remote] >= maxPerIP:
		s.refusal = "Too many connections from your address, try again later."
	default:
		srv.admitted++
		srv.perIP[remote]++
	}
	if s.refusal != "" {
		s.refusalLogged = srv.sampleRefusal()
	}
	srv.sessions[s] = struct{}{}
	return s
}

// refusedHandshakeTimeout bounds the TLS handshake of a connection over
// a limit, which is only told so and closed.
const refusedHandshakeTimeout = 2 * time.Second

// refusalLogInterval spaces the log lines about refused connections, so
// that a flood of connections is not a flood of log lines.
const refusalLogInterval = time.Minute

// sampleRefusal counts a refused connection and says whether to log it:
// it returns 0 for "no", else 1 + the refusals left unlogged before it.
// Call with srv.mu held.
func (srv *Server) sampleRefusal() int {
	now := time.Now()
	if !srv.refusalLoggedAt.IsZero() && now.Sub(srv.refusalLoggedAt) < refusalLogInterval {
		srv.refusalsUnlogged++
		return 0
	}
	n := srv.refusalsUnlogged + 1
	srv.refusalLoggedAt, srv.refusalsUnlogged = now, 0
	return n
}

// endSession unregisters a session.
func (srv *Server) endSession(s *session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	delete(srv.sessions, s)
	if s.refusal == "" { // counted in newSession
		srv.admitted--
		if srv.perIP[s.remote]--; srv.perIP[s.remote] <= 0 {
			delete(srv.perIP, s.remote)
		}
	}
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Shutdown stops the server gracefully: it closes the listeners, tells every
// session waiting for a command "-ERR [SYS/TEMP] Server shutting down." and
// closes it, lets commands in progress finish (then says the same), and
// waits until all sessions are gone or ctx is done. Sessions end without
// entering the UPDATE state, so nothing is expunged (RFC 1939 §6). On
// ctx's expiry it returns ctx's error and leaves the rest to Close.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.init()
	srv.inShutdown.Store(true)
	err := srv.closeListeners()
	srv.mu.Lock()
	for s := range srv.sessions {
		s.shutdown()
	}
	srv.mu.Unlock()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		srv.mu.Lock()
		n := len(srv.sessions)
		srv.mu.Unlock()
		if n == 0 {
			srv.cancel()
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops the server at once: it closes the listeners and every
// connection, and cancels what sessions are doing. Nothing is expunged.
func (srv *Server) Close() error {
	srv.init()
	srv.inShutdown.Store(true)
	err := srv.closeListeners()
	srv.cancel()
	srv.mu.Lock()
	for s := range srv.sessions {
		s.closeConn()
	}
	srv.mu.Unlock()
	return err
}

func (srv *Server) closeListeners() error {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var err error
	for l := range srv.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	return err
}
