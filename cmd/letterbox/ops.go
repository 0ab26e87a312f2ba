package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/autoconfig"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/conntrack"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/control"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/httpsrv"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lmtp"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/store"
)

// ops is everything serve runs besides the POP3 and IMAP servers: the
// metrics, the connection registry behind "letterbox who", and the LMTP,
// metrics, control and autoconfig listeners. serve uses it in this order:
//
//	o := newOps(cfg)                  // metrics and registry; nothing bound
//	log = o.logger(log)               // count warnings and errors
//	store.Open(... o.storeLogger(log) ...)
//	o.bind(ctx, log, users, st, tls)  // bind LMTP, metrics, control, autoconfig
//	defer o.Close()
//	... bindAll wraps each raw listener in o.track and each server's
//	    Authenticator in o.auth ...
//	o.serve(errc, bound)              // after binding all: start serving
//	... on stop: o.servers() are drained with the protocol servers; metrics,
//	    control and autoconfig stay up until Close, so the drain can be
//	    watched.
//
// Every method is safe on a nil *ops, which then does nothing.
type ops struct {
	cfg     *config.Config
	metrics *metrics.Metrics
	conns   *conntrack.Registry

	log      *slog.Logger
	lmtp     *lmtp.Server
	lmtpL    []net.Listener
	web      *httpsrv.Server // metrics
	webL     net.Listener
	control  *control.Server
	ctrlL    net.Listener
	auto     *httpsrv.Server
	autoL    []net.Listener // plain HTTP
	autoTLSL []net.Listener // HTTPS

	stopped chan struct{} // closed by Close
	wg      sync.WaitGroup
}

func newOps(cfg *config.Config) *ops {
	m := metrics.New(versionString())
	return &ops{cfg: cfg, metrics: m, conns: conntrack.New(m.Conns), stopped: make(chan struct{})}
}

// logger returns log with its warnings and errors counted.
func (o *ops) logger(log *slog.Logger) *slog.Logger {
	if o == nil {
		return log
	}
	return o.metrics.CountLogs(log)
}

// storeLogger returns the logger for the store, whose records count as
// store errors.
func (o *ops) storeLogger(log *slog.Logger) *slog.Logger {
	if o == nil {
		return log
	}
	return o.metrics.StoreLogger(log)
}

// track wraps a protocol's raw listener (before tls.NewListener) to count
// and list its connections.
func (o *ops) track(proto string, l net.Listener, implicitTLS bool) net.Listener {
	if o == nil {
		return l
	}
	return o.conns.Listener(proto, l, implicitTLS)
}

// auth wraps a protocol server's Authenticator to count its logins.
func (o *ops) auth(proto string, a metrics.Authenticator) metrics.Authenticator {
	if o == nil || a == nil {
		return a
	}
	return o.metrics.CountLogins(proto, a)
}

// sessionObserver is the method set of pop3.Observer and imap.Observer.
type sessionObserver interface {
	Authenticated(c net.Conn, user string)
	Command(c net.Conn, name string, d time.Duration, ok bool)
}

// observer returns the hook a protocol server reports sessions and
// commands to (nil without ops); asking for it marks the protocol as one
// whose users "letterbox who" can show.
func (o *ops) observer(proto string) sessionObserver {
	if o == nil {
		return nil
	}
	o.conns.ReportsUsers(proto)
	return o.metrics.Sessions(proto, o.conns)
}

// bind creates the LMTP, metrics, control and autoconfig servers and binds
// their listeners. On failure nothing stays bound.
func (o *ops) bind(ctx context.Context, log *slog.Logger, users lmtp.Users, st *store.Store, tlsConfig *tls.Config) (err error) {
	if o == nil {
		return nil
	}
	o.log = log
	defer func() {
		if err != nil {
			o.closeListeners()
		}
	}()
	var lc net.ListenConfig
	listen := func(what, addr string) (net.Listener, error) {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return l, nil
	}
	c := o.cfg
	if c.LMTP.Enabled() {
		o.lmtp = &lmtp.Server{
			Users:               users,
			Store:               st,
			Hostname:            c.Hostname,
			MaxMessageSize:      c.LMTP.MaxMessageSize,
			MaxRecipients:       c.LMTP.MaxRecipients,
			MaxConnections:      c.LMTP.MaxConnections,
			MaxConnectionsPerIP: c.LMTP.MaxConnectionsPerIP,
			IdleTimeout:         c.LMTP.Timeout,
			CommandTimeout:      c.LMTP.CommandTimeout,
			DataTimeout:         c.LMTP.Timeout,
			Logger:              log.With("proto", "lmtp"),
			Observer:            o.metrics.LMTP(),
		}
		if c.LMTP.Socket != "" {
			l, err := listenUnix(c.LMTP.Socket, c.LMTP.SocketMode)
			if err != nil {
				return fmt.Errorf("lmtp: %w", err)
			}
			o.lmtpL = append(o.lmtpL, o.track("lmtp", l, false))
		}
		for _, addr := range c.LMTP.Listen {
			l, err := listen("lmtp", addr)
			if err != nil {
				return err
			}
			o.lmtpL = append(o.lmtpL, o.track("lmtp", l, false))
		}
	}
	if c.Metrics.Listen != "" {
		if o.webL, err = listen("metrics", c.Metrics.Listen); err != nil {
			return err
		}
		mlog := log.With("proto", "metrics")
		o.web = &httpsrv.Server{Handler: o.metrics.Handler(mlog), Logger: mlog}
	}
	if c.Control.Socket != "" {
		if o.ctrlL, err = listenUnix(c.Control.Socket, 0o600); err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		o.control = &control.Server{Registry: o.conns, Logger: log.With("proto", "control")}
	}
	if c.Autoconfig.Enabled() {
		for _, addr := range c.Autoconfig.Listen {
			l, err := listen("autoconfig", addr)
			if err != nil {
				return err
			}
			o.autoL = append(o.autoL, l)
		}
		for _, addr := range c.Autoconfig.ListenTLS {
			l, err := listen("autoconfig", addr)
			if err != nil {
				return err
			}
			o.autoTLSL = append(o.autoTLSL, l)
		}
		// Its Handler is made by serve: the documents name the ports the
		// protocol servers really listen on, known once they are bound.
		o.auto = &httpsrv.Server{TLSConfig: tlsConfig, Logger: log.With("proto", "autoconfig")}
	}
	return nil
}

// autoconfigSettings describes what the protocol servers listen on, for
// mail clients: implicit TLS first, then STARTTLS, IMAP before POP3.
func autoconfigSettings(cfg *config.Config, bound []boundListener) autoconfig.Settings {
	s := autoconfig.Settings{
		Hostname:       cfg.Autoconfig.Hostname,
		SMTP:           autoconfig.Endpoint{Host: cfg.Autoconfig.SMTPHost, Port: cfg.Autoconfig.SMTPPort},
		LocalPartLogin: cfg.Autoconfig.Login == "localpart",
	}
	if cfg.Autoconfig.SMTPPort != 465 {
		s.SMTP.Security = autoconfig.STARTTLS
	}
	for _, secure := range []bool{true, false} {
		for _, b := range bound {
			if b.secure != secure {
				continue
			}
			_, p, err := net.SplitHostPort(b.addr)
			port, _ := strconv.Atoi(p)
			if err != nil || port == 0 {
				continue
			}
			e := autoconfig.Endpoint{Port: port}
			if !secure {
				e.Security = autoconfig.STARTTLS
			}
			list := &s.IMAP
			if b.proto == "pop3" {
				list = &s.POP3
			} else if b.proto != "imap" {
				continue
			}
			if !containsPort(*list, port) {
				*list = append(*list, e)
			}
		}
	}
	return s
}

func containsPort(eps []autoconfig.Endpoint, port int) bool {
	for _, e := range eps {
		if e.Port == port {
			return true
		}
	}
	return false
}

func (o *ops) closeListeners() {
	for _, l := range o.lmtpL {
		l.Close()
	}
	for _, l := range append(o.autoL, o.autoTLSL...) {
		l.Close()
	}
	if o.webL != nil {
		o.webL.Close()
	}
	if o.ctrlL != nil {
		o.ctrlL.Close()
	}
}

// serve starts serving what bind bound; bound are the protocol servers'
// listeners, for the autoconfig documents. An unexpected end of a server
// is sent on errc, which serve's main loop reads; once Close has begun
// nobody does, and the error is dropped.
func (o *ops) serve(errc chan<- error, bound []boundListener) {
	if o == nil {
		return
	}
	run := func(what, addr string, serve func() error) {
		// Not "listening": that message is for the POP3 and IMAP ports.
		o.log.Info(what+" listening", "addr", addr)
		o.wg.Go(func() {
			err := serve()
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, lmtp.ErrServerClosed) ||
				errors.Is(err, control.ErrServerClosed) || errors.Is(err, net.ErrClosed) || err == nil {
				return // stopped by Shutdown or Close
			}
			select {
			case errc <- fmt.Errorf("%s on %s: %w", what, addr, err):
			case <-o.stopped:
			}
		})
	}
	for _, l := range o.lmtpL {
		run("lmtp", l.Addr().String(), func() error { return o.lmtp.Serve(l) })
	}
	if o.webL != nil {
		run("metrics", o.webL.Addr().String(), func() error { return o.web.Serve(o.webL) })
	}
	if o.ctrlL != nil {
		run("control", o.ctrlL.Addr().String(), func() error { return o.control.Serve(o.ctrlL) })
	}
	if o.auto != nil {
		o.auto.Handler = autoconfig.Handler(autoconfigSettings(o.cfg, bound))
		for _, l := range o.autoL {
			run("autoconfig", l.Addr().String(), func() error { return o.auto.Serve(l) })
		}
		for _, l := range o.autoTLSL {
			run("autoconfig (https)", l.Addr().String(), func() error { return o.auto.ServeTLS(l) })
		}
	}
}

// servers are drained along with the protocol servers on stop.
func (o *ops) servers() []protoServer {
	if o == nil || o.lmtp == nil {
		return nil
	}
	return []protoServer{o.lmtp}
}

// Close stops the metrics, control and autoconfig servers, closes
// whatever is still bound, and waits for the serving goroutines.
func (o *ops) Close() {
	if o == nil {
		return
	}
	close(o.stopped)
	for _, s := range []*httpsrv.Server{o.web, o.auto} {
		if s != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if s.Shutdown(ctx) != nil {
				s.Close()
			}
			cancel()
		}
	}
	if o.control != nil {
		o.control.Close()
	}
	if o.lmtp != nil {
		o.lmtp.Close()
	}
	o.closeListeners()
	o.wg.Wait()
}

// maxUnixPath is the longest unix socket path Linux takes (sun_path is
// 108 bytes with the final NUL).
const maxUnixPath = 107

// listenUnix binds a unix socket at path with the given permissions. A
// socket file left behind by a server that died is replaced; one that a
// running server answers on is an error, as a port in use is.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if len(path) > maxUnixPath {
		return nil, fmt.Errorf("socket path %s is %d bytes long, more than the %d a unix socket allows; configure a shorter one", path, len(path), maxUnixPath)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another running server", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Until this chmod the socket has the umask's mode; connecting needs
	// write permission, which no umask grants to others by default.
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// listener is how serve turns a protocol's raw listener into the one its
// server gets: tracked for the metrics and "letterbox who", then, for
// implicit TLS, wrapped in tls.NewListener on top, so that the servers
// still tell implicit TLS by the accepted conn being a *tls.Conn.
func (d deps) listener(proto string, l net.Listener, secure bool) net.Listener {
	l = d.ops.track(proto, l, secure)
	if secure {
		l = tls.NewListener(l, d.tls)
	}
	return l
}

// forProto is d as protocol proto's server is built from: its logins are
// counted under its name.
func (d deps) forProto(proto string) deps {
	d.auth = d.ops.auth(proto, d.auth)
	return d
}
