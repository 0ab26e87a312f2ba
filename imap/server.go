package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// Commands returns the names of the commands the server knows, as
// Observer.Command gets them ("UID FETCH"), sorted: what a metrics
// exporter may use as label values.
func Commands() []string { return slices.Sorted(maps.Keys(commands)) }

// Defaults of the Server fields.
const (
	DefaultAppendLimit           = 50 << 20
	DefaultMaxConnections        = 5000
	DefaultMaxConnectionsPerIP   = 50
	DefaultMaxConnectionsPerUser = 20
	DefaultIdleTimeout           = 30 * time.Minute
	DefaultIdleKeepalive         = 2 * time.Minute
	DefaultLoginTimeout          = time.Minute
	DefaultReadTimeout           = 5 * time.Minute
	DefaultCommandLineTimeout    = time.Minute
	DefaultWriteTimeout          = time.Minute
	DefaultMaxLineLength         = maxCommandSize
	DefaultMaxLiteralSize        = 4096
	DefaultMaxLiteralDrain       = 1 << 20
	DefaultMaxBadCommands        = 20
	DefaultMaxPendingUpdates     = 100000
	DefaultMaxCachedSortKeys     = 100000
)

// maxCommandSize is the default longest command line, literals excluded.
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

	// QuotaStorage and QuotaMessages limit each user's mail (RFC 9208
	// QUOTA, resources STORAGE in bytes and MESSAGE): an APPEND, COPY or
	// MOVE that would go over gets NO [OVERQUOTA]. Zero means no limit;
	// QUOTA is advertised only if one is set.
	QuotaStorage  int64
	QuotaMessages int64

	// MaxConnections, MaxConnectionsPerIP and MaxConnectionsPerUser bound
	// the connections at once, in all, from one client address, and
	// logged in as one user. Thunderbird opens up to five per account.
	// Defaults 5000, 50 and 20.
	MaxConnections        int
	MaxConnectionsPerIP   int
	MaxConnectionsPerUser int

	// IdleTimeout is how long a logged-in client may stay silent between
	// commands. RFC 9051 §5.4 asks for at least 30 minutes, the default.
	// A client in IDLE is not cut by it: it gets "* OK Still here" every
	// IdleKeepalive (default 2 minutes), so that NAT boxes keep the flow
	// and a dead client is found by the failing write.
	IdleTimeout   time.Duration
	IdleKeepalive time.Duration
	// LoginTimeout is how long a client that has not logged in may stay
	// silent. Default 1 minute.
	LoginTimeout time.Duration
	// CommandLineTimeout is how long a command line may take to arrive
	// once its first byte came (each line of a command with literals).
	// Default 1 minute.
	CommandLineTimeout time.Duration
	// ReadTimeout is how long a literal may stall. Default 5 minutes.
	ReadTimeout time.Duration
	// WriteTimeout bounds every write to the client. Default 1 minute.
	WriteTimeout time.Duration

	// MaxLineLength is the longest command in bytes, literals excluded.
	// Default 51200. A longer line gets "* BYE" and the connection is
	// closed.
	MaxLineLength int
	// MaxLiteralSize is the largest literal a command may carry outside
	// APPEND's message (a mailbox name, a search string, a password).
	// Default 4096. Bigger ones are refused with NO [TOOBIG].
	MaxLiteralSize int64
	// MaxLiteralDrain bounds the bytes of a refused non-synchronizing
	// literal (LITERAL+, RFC 7888) that are read and dropped to keep the
	// connection; beyond it the connection is closed. Default 1 MiB (on
	// top of AppendLimit for an APPEND message).
	MaxLiteralDrain int64

	// MaxBadCommands is how many commands answered BAD a connection may
	// send before it is closed. Default 20.
	MaxBadCommands int

	// MaxPendingUpdates bounds the changes of the selected mailbox queued
	// for a session that does not read them (a client silent for long in
	// a busy mailbox); beyond it the session is ended with BYE. Default
	// 100000.
	MaxPendingUpdates int

	// MaxCachedSortKeys bounds the messages whose SORT and THREAD keys
	// are kept in memory for all sessions (about 500 bytes each), so
	// that sorting a folder again reads nothing; beyond it the least
	// recently sorted mailboxes are dropped. The keys are in the store's
	// cache too, on disk. Default 100000 (about 50 MB when full);
	// negative keeps none.
	MaxCachedSortKeys int

	// Logger receives connection and error logs. Default slog.Default().
	Logger *slog.Logger

	// Observer, if set, is told of logins and of every command.
	Observer Observer

	initOnce sync.Once
	log      *slog.Logger
	keys     *keyCache
	ctx      context.Context
	cancel   context.CancelFunc
	nextID   atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[netip.Addr]int
	// Refusals are logged at most once a minute, with a count: a flood
	// must not turn into a flood of log lines.
	refusedLoggedAt time.Time
	refusedSince    int
	perUser         map[string]int
	closing         bool
	wg              sync.WaitGroup

	// panicHook, if set, is called with every panic recovered in a
	// connection (tests make it fail).
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
		s.conns = make(map[*conn]struct{})
		s.perIP = make(map[netip.Addr]int)
		s.perUser = make(map[string]int)
		if s.MaxCachedSortKeys >= 0 {
			s.keys = newKeyCache(orDefault(s.MaxCachedSortKeys, DefaultMaxCachedSortKeys))
		}
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

func (s *Server) maxLine() int { return orDefault(s.MaxLineLength, DefaultMaxLineLength) }

func (s *Server) maxLiteral() int64 { return orDefault(s.MaxLiteralSize, DefaultMaxLiteralSize) }

func (s *Server) maxDrain() int64 { return orDefault(s.MaxLiteralDrain, DefaultMaxLiteralDrain) }

func (s *Server) writeTimeout() time.Duration { return orDefault(s.WriteTimeout, DefaultWriteTimeout) }

func orDefault[T int | int64 | time.Duration](v, def T) T {
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
		c, reason := s.admit(raw)
		if c == nil {
			go refuse(raw, reason)
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// admit counts a new connection against the limits.
func (s *Server) admit(raw net.Conn) (*conn, string) {
	ip := remoteIP(raw.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return nil, "Server shutting down"
	case len(s.conns) >= orDefault(s.MaxConnections, DefaultMaxConnections):
		s.logRefusal("too many connections", ip)
		return nil, "Too many connections, try again later"
	case s.perIP[ip] >= orDefault(s.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP):
		s.logRefusal("too many connections from this address", ip)
		return nil, "Too many connections from your address"
	}
	c := newConn(s, raw, ip, s.nextID.Add(1))
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	return c, ""
}

// logRefusal logs a refused connection, or counts it if one was logged
// less than a minute ago. s.mu is held.
func (s *Server) logRefusal(reason string, ip netip.Addr) {
	s.refusedSince++
	if now := time.Now(); s.refusedLoggedAt.IsZero() || now.Sub(s.refusedLoggedAt) >= time.Minute {
		s.log.Warn("imap: connection refused", "reason", reason, "ip", ip, "refused_since_last_logged", s.refusedSince)
		s.refusedLoggedAt, s.refusedSince = now, 0
	}
}

// refuse says why and hangs up, without ever reading.
func refuse(raw net.Conn, reason string) {
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(raw, "* BYE [UNAVAILABLE] %s\r\n", reason)
	raw.Close()
}

// forget removes a closed connection from the counts.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
		delete(s.perIP, c.ip)
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
	for _, c := range s.stopAccepting() {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	for _, c := range s.stopAccepting() {
		c.abort()
	}
	s.cancel()
	return nil
}

// stopAccepting closes the listeners and returns the open connections.
func (s *Server) stopAccepting() []*conn {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
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
