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
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/store"
)

// ops is everything serve runs besides the POP3 and IMAP servers: the
// metrics, the connection registry behind "letterbox who", and the LMTP,
// metrics and control listeners. serve uses it in this order:
//
//	o := newOps(cfg)                  // metrics and registry; nothing bound
//	log = o.logger(log)               // count warnings and errors
//	store.Open(... o.storeLogger(log) ...)
//	o.bind(ctx, log, users, st)       // bind LMTP, metrics, control sockets
//	defer o.Close()
//	... bindAll wraps each raw listener in o.track and each server's
//	    Authenticator in o.auth ...
//	o.serve(errc)                     // after READY: start serving
//	... on stop: o.servers() are drained with the protocol servers; metrics
//	    and control stay up until Close, so the drain can be watched.
//
// Every method is safe on a nil *ops, which then does nothing.
type ops struct {
	cfg     *config.Config
	metrics *metrics
	conns   *connRegistry

	log     *slog.Logger
	lmtp    *lmtpServer
	lmtpL   []net.Listener
	httpSrv *http.Server
	httpL   net.Listener
	control *controlServer
	ctrlL   net.Listener

	stopped chan struct{} // closed by Close
	wg      sync.WaitGroup
}

func newOps(cfg *config.Config) *ops {
	m := newMetrics()
	return &ops{cfg: cfg, metrics: m, conns: newConnRegistry(m), stopped: make(chan struct{})}
}

// logger returns log with its warnings and errors counted.
func (o *ops) logger(log *slog.Logger) *slog.Logger {
	if o == nil {
		return log
	}
	return o.metrics.countLogs(log)
}

// storeLogger returns the logger for the store, whose records count as
// store errors.
func (o *ops) storeLogger(log *slog.Logger) *slog.Logger {
	if o == nil {
		return log
	}
	return o.metrics.storeLogger(log)
}

// track wraps a protocol's raw listener (before tls.NewListener) to count
// and list its connections.
func (o *ops) track(proto string, l net.Listener, implicitTLS bool) net.Listener {
	if o == nil {
		return l
	}
	return o.conns.listener(proto, l, implicitTLS)
}

// auth wraps a protocol server's Authenticator to count its logins.
func (o *ops) auth(proto string, a authenticator) authenticator {
	if o == nil || a == nil {
		return a
	}
	return o.metrics.countLogins(proto, a)
}

// observer returns the hook a protocol server reports sessions and
// commands to (see sessionObserver); asking for it marks the protocol as
// one whose users "letterbox who" can show.
func (o *ops) observer(proto string) sessionObserver {
	if o == nil {
		return nil
	}
	o.conns.reportsUsers(proto)
	return newProtoObserver(proto, o.conns, o.metrics)
}

// bind creates the LMTP server and binds the LMTP, metrics and control
// listeners. On failure nothing stays bound.
func (o *ops) bind(ctx context.Context, log *slog.Logger, users userDirectory, st *store.Store) (err error) {
	if o == nil {
		return nil
	}
	o.log = log
	defer func() {
		if err != nil {
			if o.lmtp != nil {
				o.lmtp.Close()
			}
			o.closeListeners()
		}
	}()
	var lc net.ListenConfig
	c := o.cfg
	if c.LMTP.Enabled() {
		o.lmtp = newLMTPServer(c.LMTP, c.Hostname, users, st, o.metrics, log.With("proto", "lmtp"))
		if c.LMTP.Socket != "" {
			l, err := listenUnix(c.LMTP.Socket, c.LMTP.SocketMode)
			if err != nil {
				return fmt.Errorf("lmtp: %w", err)
			}
			o.lmtpL = append(o.lmtpL, o.track("lmtp", l, false))
		}
		for _, addr := range c.LMTP.Listen {
			l, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("lmtp: %w", err)
			}
			o.lmtpL = append(o.lmtpL, o.track("lmtp", l, false))
		}
	}
	if c.Metrics.Listen != "" {
		l, err := lc.Listen(ctx, "tcp", c.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		o.httpL = l
		o.httpSrv = newMetricsServer(o.metrics, log.With("proto", "metrics"))
	}
	if c.Control.Socket != "" {
		l, err := listenUnix(c.Control.Socket, 0o600)
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		o.ctrlL = l
		o.control = newControlServer(o.conns, log.With("proto", "control"))
	}
	return nil
}

func (o *ops) closeListeners() {
	for _, l := range o.lmtpL {
		l.Close()
	}
	if o.httpL != nil {
		o.httpL.Close()
	}
	if o.ctrlL != nil {
		o.ctrlL.Close()
	}
}

// serve starts serving what bind bound. An unexpected end of a server is
// sent on errc, which serve's main loop reads; once Close has begun nobody
// does, and the error is dropped.
func (o *ops) serve(errc chan<- error) {
	if o == nil {
		return
	}
	run := func(what, addr string, serve func() error) {
		// Not "listening": that message is for the POP3 and IMAP ports.
		o.log.Info(what+" listening", "addr", addr)
		o.wg.Go(func() {
			err := serve()
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) || err == nil {
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
	if o.httpL != nil {
		run("metrics", o.httpL.Addr().String(), func() error { return o.httpSrv.Serve(o.httpL) })
	}
	if o.ctrlL != nil {
		run("control", o.ctrlL.Addr().String(), func() error { return o.control.Serve(o.ctrlL) })
	}
}

// servers are drained along with the protocol servers on stop.
func (o *ops) servers() []protoServer {
	if o == nil || o.lmtp == nil {
		return nil
	}
	return []protoServer{o.lmtp}
}

// Close stops the metrics and control servers, closes whatever is still
// bound, and waits for the serving goroutines.
func (o *ops) Close() {
	if o == nil {
		return
	}
	close(o.stopped)
	if o.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if o.httpSrv.Shutdown(ctx) != nil {
			o.httpSrv.Close()
		}
		cancel()
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
