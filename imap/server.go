package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// Authenticator checks a login. *auth.Authenticator implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string, remote netip.Addr) (string, error)
}

// Store opens a user's mail. *store.Store implements it.
type Store interface {
	User(name string) (*store.User, error)
}

// Observer is told what sessions do, for metrics and for listing and
// kicking users. Its methods are called from the connection's goroutines
// and must not block. c is the connection as Serve accepted it (before
// STARTTLS), so it identifies the session.
type Observer interface {
	// Authenticated: c logged in as user ("" after UNAUTHENTICATE).
	Authenticated(c net.Conn, user string)
	// Command: a command finished after d, its name in upper case ("UID
	// FETCH"); ok is false for NO and BAD.
	Command(c net.Conn, name string, d time.Duration, ok bool)
}

// Defaults of the Server fields.
const (
	DefaultAppendLimit           = 50 << 20
	DefaultMaxConnections        = 5000
	DefaultMaxConnectionsPerIP   = 50
	DefaultMaxConnectionsPerUser = 20
	DefaultIdleTimeout           = 30 * time.Minute
	DefaultLoginTimeout          = time.Minute
	DefaultReadTimeout           = 5 * time.Minute
	DefaultMaxLineLength         = maxCommandSize
	DefaultMaxBadCommands        = 20
)

// maxCommandSize is imapserver's own fixed limit on the bytes of one
// command outside literals (its conn.go). MaxLineLength is capped to it, so
// that our limit, which answers cleanly, is always reached first.
const maxCommandSize = 50 * 1024

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("imap: server closed")

// Server serves IMAP. The zero value of every field but Store and Auth is a
// sane default.
type Server struct {
	// Store and Auth are required.
	Store Store
	Auth  Authenticator

	// TLSConfig is used for STARTTLS on plain connections and by
	// ListenAndServeTLS. Nil disables STARTTLS. A connection accepted as a
	// *tls.Conn (a listener from tls.NewListener) is implicit TLS (RFC 8314).
	TLSConfig *tls.Config

	// AllowInsecureAuth allows LOGIN and AUTHENTICATE without TLS.
	// AllowInsecureLoopback allows them without TLS from loopback only.
	// Otherwise a plain connection advertises LOGINDISABLED (RFC 3501
	// §6.2.3) and refuses them with NO [PRIVACYREQUIRED].
	AllowInsecureAuth     bool
	AllowInsecureLoopback bool

	// AppendLimit is the largest message APPEND takes, in bytes
	// (APPENDLIMIT, RFC 7889). Default DefaultAppendLimit; at most 4 GiB-1.
	AppendLimit int64

	// MaxConnections, MaxConnectionsPerIP and MaxConnectionsPerUser bound
	// the connections at once, in all, from one client address, and
	// logged in as one user. Thunderbird opens up to five per account.
	// Defaults 5000, 50 and 20.
	MaxConnections        int
	MaxConnectionsPerIP   int
	MaxConnectionsPerUser int

	// IdleTimeout is how long a logged-in client may stay silent, in IDLE
	// or between commands. RFC 9051 §5.4 asks for at least 30 minutes,
	// the default.
	IdleTimeout time.Duration
	// LoginTimeout is how long a client that has not logged in may stay
	// silent. Default 1 minute.
	LoginTimeout time.Duration
	// ReadTimeout is how long the rest of a command, or a literal, may
	// stall once its first byte came. Default 5 minutes.
	ReadTimeout time.Duration

	// MaxLineLength is the longest command in bytes, literals excluded.
	// Default and maximum 51200, imapserver's own limit. A longer line
	// gets "* BYE" and the connection is closed.
	MaxLineLength int

	// MaxBadCommands is how many commands answered BAD a connection may
	// send before it is closed. Default 20.
	MaxBadCommands int

	// Logger receives connection and error logs. Default slog.Default().
	Logger *slog.Logger

	// Observer, if set, is told of logins and of every command.
	Observer Observer

	initOnce sync.Once
	lib      *imapserver.Server
	pipe     *pipeListener
	log      *slog.Logger
	boxes    *boxRegistry
	cache    *msgCache
	ctx      context.Context
	cancel   context.CancelFunc
	nextID   atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*wireConn]struct{}
	perIP     map[netip.Addr]int
	perUser   map[string]int
	closing   bool
	libDone   chan struct{}

	// panicHook, if set, is called with every panic imapserver recovers
	// from (tests make it fail).
	panicHook func(v any)
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*wireConn]struct{})
		s.perIP = make(map[netip.Addr]int)
		s.perUser = make(map[string]int)
		s.boxes = newBoxRegistry(s)
		s.cache = newMsgCache(4096)
		s.pipe = newPipeListener()
		s.libDone = make(chan struct{})
		s.lib = imapserver.New(&imapserver.Options{
			NewSession: s.newSession,
			// Everything imapserver should behave as supporting. What is
			// advertised is computed by wireConn.capabilities.
			Caps: imap.CapSet{
				imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
				imap.CapLiteralPlus: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {},
				imap.CapESearch: {}, imap.CapSearchRes: {}, imap.CapListExtended: {},
				imap.CapListStatus: {}, imap.CapMove: {}, imap.CapStatusSize: {},
				imap.CapBinary: {}, imap.CapChildren: {}, imap.CapSpecialUse: {},
				imap.CapCreateSpecialUse: {}, imap.CapUnauthenticate: {},
			},
			Logger: libLogger{s},
			// We decide about TLS ourselves (session.Login); imapserver
			// never sees the *tls.Conn.
			InsecureAuth: true,
		})
		go func() {
			defer close(s.libDone)
			_ = s.lib.Serve(s.pipe)
		}()
	})
}

func (s *Server) appendLimit() int64 {
	switch {
	case s.AppendLimit <= 0:
		return DefaultAppendLimit
	case s.AppendLimit > math.MaxUint32:
		return math.MaxUint32
	}
	return s.AppendLimit
}

func (s *Server) maxLine() int {
	if s.MaxLineLength <= 0 || s.MaxLineLength > maxCommandSize {
		return maxCommandSize
	}
	return s.MaxLineLength
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ListenAndServe listens on addr (":143" if empty) and serves plain IMAP
// with STARTTLS if TLSConfig is set.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = ":143"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// ListenAndServeTLS listens on addr (":993" if empty) and serves IMAP over
// implicit TLS with TLSConfig.
func (s *Server) ListenAndServeTLS(addr string) error {
	if s.TLSConfig == nil {
		return errors.New("imap: ListenAndServeTLS without TLSConfig")
	}
	if addr == "" {
		addr = ":993"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(tls.NewListener(l, s.TLSConfig))
}

// Serve accepts connections on l until Shutdown or Close, and returns
// ErrServerClosed then. Connections over a limit are told "* BYE" and
// closed before anything else.
func (s *Server) Serve(l net.Listener) error {
	if s.Store == nil || s.Auth == nil {
		return errors.New("imap: Server.Store and Server.Auth are required")
	}
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		raw, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("imap: accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		wc, reason := s.admit(raw)
		if wc == nil {
			go refuse(raw, reason)
			continue
		}
		if !s.pipe.push(wc) {
			wc.Close()
			return ErrServerClosed
		}
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// admit counts a new connection against the limits.
func (s *Server) admit(raw net.Conn) (*wireConn, string) {
	ip := remoteIP(raw.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return nil, "Server shutting down"
	case len(s.conns) >= orDefault(s.MaxConnections, DefaultMaxConnections):
		s.log.Warn("imap: connection refused: too many connections", "ip", ip)
		return nil, "Too many connections, try again later"
	case s.perIP[ip] >= orDefault(s.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP):
		s.log.Warn("imap: connection refused: too many connections from this address", "ip", ip)
		return nil, "Too many connections from your address"
	}
	wc := newWireConn(s, raw, ip, s.nextID.Add(1))
	s.conns[wc] = struct{}{}
	s.perIP[ip]++
	return wc, ""
}

// refuse says why and hangs up, without ever reading.
func refuse(raw net.Conn, reason string) {
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(raw, "* BYE [UNAVAILABLE] %s\r\n", reason)
	raw.Close()
}

// forget removes a closed connection from the counts.
func (s *Server) forget(wc *wireConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[wc]; !ok {
		return
	}
	delete(s.conns, wc)
	if s.perIP[wc.ip]--; s.perIP[wc.ip] <= 0 {
		delete(s.perIP, wc.ip)
	}
}

// acquireUser counts a login against MaxConnectionsPerUser.
func (s *Server) acquireUser(name string) (release func(), ok bool) {
	key := strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[key] >= orDefault(s.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser) {
		return nil, false
	}
	s.perUser[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.perUser[key]--; s.perUser[key] <= 0 {
				delete(s.perUser, key)
			}
		})
	}, true
}

// Shutdown stops accepting, tells every connection "* BYE" as soon as it
// is between commands (at once if it is waiting for one or in IDLE), and
// waits for them to close or ctx to end, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, wc := range s.stopAccepting() {
		wc.shutdown()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			s.stop()
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	for _, wc := range s.stopAccepting() {
		wc.Close()
	}
	s.stop()
	return nil
}

// stopAccepting closes the listeners and returns the open connections.
func (s *Server) stopAccepting() []*wireConn {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*wireConn, 0, len(s.conns))
	for wc := range s.conns {
		conns = append(conns, wc)
	}
	return conns
}

func (s *Server) stop() {
	s.pipe.Close()
	s.cancel()
	<-s.libDone
}

// pipeListener hands our wrapped connections to imapserver.Server.Serve,
// which has no other way in.
type pipeListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (p *pipeListener) push(c net.Conn) bool {
	select {
	case p.ch <- c:
		return true
	case <-p.done:
		return false
	}
}

func (p *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.ch:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeListener) Close() error {
	p.closed.Do(func() { close(p.done) })
	return nil
}

func (p *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "letterbox-imap" }

// libLogger passes imapserver's log lines on, and its recovered panics to
// panicHook.
type libLogger struct{ s *Server }

func (l libLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, "panic") {
		l.s.log.Error("imap: "+msg, "panic", true)
		if l.s.panicHook != nil {
			l.s.panicHook(msg)
		}
		return
	}
	if strings.HasPrefix(msg, "handling ") {
		// A command failed on arguments imapserver could not decode
		// (our own errors are *imap.Error): the client's fault.
		l.s.log.Debug("imap: " + msg)
		return
	}
	l.s.log.Warn("imap: " + msg)
}

func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
