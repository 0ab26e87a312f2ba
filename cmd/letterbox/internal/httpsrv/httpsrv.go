// Package httpsrv runs Letterbox's small HTTP endpoints (metrics,
// autoconfig) with the limits every listener of Letterbox has: a cap on
// connections in all and per client, a deadline for the whole request
// line and headers, small headers, and deadlines for the rest.
package httpsrv

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/connlimit"
)

// Defaults of the Server fields.
const (
	DefaultMaxConnections      = 64
	DefaultMaxConnectionsPerIP = 8
	DefaultHeaderTimeout       = 10 * time.Second
	DefaultReadTimeout         = 30 * time.Second
	DefaultWriteTimeout        = time.Minute
	DefaultIdleTimeout         = time.Minute
	DefaultMaxHeaderBytes      = 16 << 10
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// Server is an http.Server with limits. Set the fields, then call Serve
// or ServeTLS (once per listener; the listeners share the caps). Zero
// values mean the documented default.
type Server struct {
	// Handler answers the requests. Required.
	Handler http.Handler
	// TLSConfig is used by ServeTLS.
	TLSConfig *tls.Config

	// MaxConnections caps simultaneous connections; more are closed at
	// once. Default 64; negative means no cap.
	MaxConnections int
	// MaxConnectionsPerIP caps them per client address. Default 8;
	// negative means no cap.
	MaxConnectionsPerIP int
	// HeaderTimeout bounds the request line and headers, whole, from
	// the first byte of the request. Default 10 seconds.
	HeaderTimeout time.Duration
	// ReadTimeout bounds a whole request, body included. Default 30
	// seconds.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response. Default 1 minute.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a new request.
	// Default 1 minute.
	IdleTimeout time.Duration

	// Logger gets refusals as warnings (at most one a minute) and
	// net/http's own messages at debug level. Default slog.Default().
	Logger *slog.Logger

	once    sync.Once
	srv     *http.Server
	limiter *connlimit.Limiter
}

func (s *Server) init() {
	s.once.Do(func() {
		log := s.Logger
		if log == nil {
			log = slog.Default()
		}
		s.limiter = &connlimit.Limiter{
			Max:       cmp.Or(s.MaxConnections, DefaultMaxConnections),
			PerClient: cmp.Or(s.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP),
			Logger:    log,
		}
		s.srv = &http.Server{
			Handler:           s.Handler,
			TLSConfig:         s.TLSConfig,
			ReadHeaderTimeout: cmp.Or(s.HeaderTimeout, DefaultHeaderTimeout),
			ReadTimeout:       cmp.Or(s.ReadTimeout, DefaultReadTimeout),
			WriteTimeout:      cmp.Or(s.WriteTimeout, DefaultWriteTimeout),
			IdleTimeout:       cmp.Or(s.IdleTimeout, DefaultIdleTimeout),
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
	})
}

// Serve serves plain HTTP on l until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	return s.srv.Serve(s.limiter.Listener(l))
}

// ServeTLS serves HTTPS on l with TLSConfig until Shutdown or Close.
func (s *Server) ServeTLS(l net.Listener) error {
	s.init()
	if s.TLSConfig == nil {
		l.Close()
		return errors.New("httpsrv: ServeTLS needs TLSConfig")
	}
	return s.srv.Serve(tls.NewListener(s.limiter.Listener(l), s.TLSConfig))
}

// Shutdown stops accepting, lets requests in progress finish, and waits
// for them or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	return s.srv.Shutdown(ctx)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.init()
	return s.srv.Close()
}
