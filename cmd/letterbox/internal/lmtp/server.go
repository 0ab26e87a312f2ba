package lmtp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/connlimit"
	"github.com/letterbox-mail/letterbox/store"
)

// Users finds the users mail is accepted for. *auth.Authenticator
// implements it: Lookup returns the user's name as the users file has it,
// an error matching auth.ErrUnknownUser for no such user, or another error
// when the users cannot be read now.
type Users interface {
	Lookup(name string) (string, error)
}

// Store holds the mail. *store.Store implements it.
type Store interface {
	User(name string) (*store.User, error)
}

// Result is what became of one recipient of one message.
type Result string

// Results reported to the Observer.
const (
	Delivered   Result = "delivered"    // on disk; 250
	UnknownUser Result = "unknown_user" // 550 at RCPT TO
	TooBig      Result = "too_big"      // 552
	NotReceived Result = "not_received" // the transfer broke off; 451
	StoreFailed Result = "store_failed" // 451 or 452: the MTA retries
)

// Observer is told what became of each recipient, for metrics. Its method
// is called from the session's goroutine and must not block.
type Observer interface {
	// Recipient: one recipient's outcome; size is the message's size
	// in bytes, 0 for UnknownUser.
	Recipient(r Result, size int64)
}

// Defaults of the Server fields.
const (
	DefaultHostname            = "localhost"
	DefaultMaxMessageSize      = 50 << 20
	DefaultMaxRecipients       = 100
	DefaultMaxConnections      = 100
	DefaultMaxConnectionsPerIP = 50
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultCommandTimeout      = time.Minute
	DefaultDataTimeout         = 10 * time.Minute
	DefaultWriteTimeout        = time.Minute
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("lmtp: server closed")

// Server is an LMTP server. Set the fields, then call Serve (once per
// listener; the listeners share the limits); do not change them
// afterwards. Zero values mean the documented default.
type Server struct {
	// Users says whom mail is accepted for. Required.
	Users Users
	// Store holds the mail. Required.
	Store Store

	// Hostname is the name in the greeting. Default "localhost".
	Hostname string
	// MaxMessageSize is the largest message accepted, in bytes; it is
	// advertised as SIZE and a bigger one gets 552. Default 50 MiB.
	MaxMessageSize int64
	// MaxRecipients is the most recipients of one transaction; more get
	// 452 and the MTA sends them in another. Default 100.
	MaxRecipients int

	// MaxConnections limits simultaneous connections; more are answered
	// "421 4.3.2" and closed. Default 100; negative means no limit.
	MaxConnections int
	// MaxConnectionsPerIP limits simultaneous connections from one
	// client: an IP address, or a user id on a unix socket (where all of
	// Postfix is one client, so keep it above Postfix's
	// lmtp_destination_concurrency_limit, 20 by default). Default 50;
	// negative means no limit.
	MaxConnectionsPerIP int

	// IdleTimeout closes a connection that has not begun a command for
	// this long (MTAs keep connections for reuse). Default 5 minutes.
	IdleTimeout time.Duration
	// CommandTimeout bounds a whole command line: once its first byte
	// has arrived, the rest must follow within this time, however often
	// bytes trickle in. Default 1 minute.
	CommandTimeout time.Duration
	// DataTimeout bounds one whole message transfer, from DATA to the
	// final dot. Default 10 minutes.
	DataTimeout time.Duration
	// WriteTimeout bounds each reply write. Default 1 minute.
	WriteTimeout time.Duration

	// SpoolDir holds messages too big to keep in memory while they are
	// written to each recipient, as unlinked temporary files. Default
	// os.TempDir().
	SpoolDir string

	// Logger receives the server's log lines. Default slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told each recipient's outcome.
	Observer Observer

	initOnce sync.Once
	smtp     *smtp.Server
	limiter  *connlimit.Limiter
	ctx      context.Context // canceled by Close: deliveries stop
	cancel   context.CancelFunc
	nextID   atomic.Uint64
	closed   atomic.Bool

	mu       sync.Mutex
	conns    map[*conn]struct{}
	draining bool
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.conns = make(map[*conn]struct{})
		s.limiter = &connlimit.Limiter{
			Max:       cmp.Or(s.MaxConnections, DefaultMaxConnections),
			PerClient: cmp.Or(s.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP),
			Logger:    s.logger(),
			Refuse: func(c net.Conn, why error) {
				msg := "Too many connections, try again later"
				if errors.Is(why, connlimit.ErrTooManyFromClient) {
					msg = "Too many connections from your address, try again later"
				}
				io.WriteString(c, "421 4.3.2 "+msg+"\r\n")
			},
		}
		hostname := s.Hostname
		if hostname == "" {
			hostname = DefaultHostname
		}
		srv := smtp.NewServer(&backend{s: s})
		srv.LMTP = true
		srv.Domain = hostname
		srv.MaxMessageBytes = cmp.Or(s.MaxMessageSize, DefaultMaxMessageSize)
		srv.MaxRecipients = cmp.Or(s.MaxRecipients, DefaultMaxRecipients)
		// go-smtp sets this before each command line; conn tightens it
		// to CommandTimeout once the line has begun.
		srv.ReadTimeout = cmp.Or(s.IdleTimeout, DefaultIdleTimeout)
		srv.WriteTimeout = cmp.Or(s.WriteTimeout, DefaultWriteTimeout)
		srv.EnableSMTPUTF8 = true // addresses are only looked up, the message is stored as it is
		srv.ErrorLog = errorLog{s.logger()}
		s.smtp = srv
	})
}

// Serve serves LMTP on l until Shutdown or Close, then returns
// ErrServerClosed. l may be a unix socket or TCP.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	if s.Users == nil || s.Store == nil {
		l.Close()
		return errors.New("lmtp: Server.Users and Server.Store must be set")
	}
	if s.closed.Load() {
		l.Close()
		return ErrServerClosed
	}
	err := s.smtp.Serve(&listener{Listener: s.limiter.Listener(l), s: s})
	if s.closed.Load() || err == nil || errors.Is(err, smtp.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting, ends connections waiting for a command
// outside a transaction with "421" at once, lets a transaction in
// progress finish (then ends its connection the same way), and waits for
// all of them or ctx. On ctx's expiry it returns ctx's error and leaves
// the rest to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closed.Store(true)
	s.mu.Lock()
	s.draining = true
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close closes the listeners and every connection at once, and cancels
// deliveries in progress: their recipients get no reply, so the MTA
// retries them.
func (s *Server) Close() error {
	s.init()
	s.closed.Store(true)
	s.cancel()
	err := s.smtp.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) spoolDir() string {
	if s.SpoolDir != "" {
		return s.SpoolDir
	}
	return os.TempDir()
}

func (s *Server) observe(r Result, size int64, n int) {
	if s.Observer != nil {
		for range n {
			s.Observer.Recipient(r, size)
		}
	}
}

// listener registers each accepted connection for Shutdown.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s := l.s
	lc := &conn{Conn: c, s: s, log: s.logger().With("conn", s.nextID.Add(1))}
	s.mu.Lock()
	s.conns[lc] = struct{}{}
	lc.draining = s.draining
	s.mu.Unlock()
	return lc, nil
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// errorLog sends go-smtp's own log lines to slog: a client that hung up
// is no news (debug), a connection that broke otherwise is the client's
// business (info), a recovered panic is ours (error), anything else a
// warning.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) { l.print(fmt.Sprintf(format, v...)) }
func (l errorLog) Println(v ...any)               { l.print(fmt.Sprintln(v...)) }

func (l errorLog) print(msg string) {
	msg = "lmtp: " + strings.TrimSpace(msg)
	switch {
	case strings.Contains(msg, "panic"):
		l.log.Error(msg)
	case strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe"):
		l.log.Debug(msg) // a client that hung up: a port check, a gone MTA
	case strings.Contains(msg, "error handling"):
		l.log.Info(msg)
	default:
		l.log.Warn(msg)
	}
}
