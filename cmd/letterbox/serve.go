package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/metrics"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/systemd"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/tlsconf"
	"github.com/letterbox-mail/letterbox/store"
)

// protoServer is what serve needs of a protocol server. pop3.Server and
// imap.Server are shaped like net/http.Server and tell implicit TLS from a
// plain connection by the conn being a *tls.Conn.
type protoServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// deps is what a protocol server is built from.
type deps struct {
	cfg   *config.Config
	log   *slog.Logger
	tls   *tls.Config           // for STARTTLS/STLS on plain listeners; follows reloads
	auth  metrics.Authenticator // a *liveAuth, which follows reloads; see forProto
	store *store.Store
	ops   *ops // metrics, LMTP, control socket (ops.go); nil in some tests
}

// protocol plugs one protocol into serve. build may return a nil server: the
// protocol is then skipped, with a warning.
type protocol struct {
	name      string
	listen    []string
	listenTLS []string // wrapped in tls.NewListener by serve
	build     func(deps) (protoServer, error)
}

// addrs is p's listen list for implicit TLS (secure) or for plain
// connections.
func (p protocol) addrs(secure bool) []string {
	if secure {
		return p.listenTLS
	}
	return p.listen
}

func protocols(cfg *config.Config) []protocol {
	return []protocol{
		{name: "pop3", listen: cfg.POP3.Listen, listenTLS: cfg.POP3.ListenTLS, build: newPOP3},
		{name: "imap", listen: cfg.IMAP.Listen, listenTLS: cfg.IMAP.ListenTLS, build: newIMAP},
	}
}

func (c *cli) serve(ctx context.Context, args []string) int {
	fs := c.flags("serve", true)
	if code, ok := c.parse(fs, "[FLAGS]", args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.fail(fs, exitUsage, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	cfg, ok := c.loadConfig(fs)
	if !ok {
		return exitConfig
	}
	protos := protocols
	if c.protocols != nil {
		protos = c.protocols
	}
	log, level := newLiveLogger(cfg.Log, c.stderr)
	setGCPercent()
	rl := &reloader{
		load: func() (*config.Config, error) {
			return config.Load(config.Options{Flags: fs, Environ: c.environ, WorkDir: c.workDir})
		},
		level: level,
	}
	return c.runServers(ctx, cfg, log, protos(cfg), rl)
}

// setGCPercent halves the Go runtime's heap headroom unless GOGC is set.
// A mail server's heap is mostly live connection state (TLS, buffers,
// sessions); at Go's default GOGC=100 the heap grows to twice that before
// a collection, and the resident memory stays there. With GOGC=50 10,000
// IDLE sessions over TLS took 23.1 KiB each instead of 32.7 (lbload idle
// -settle 150s), for 3 to 5 % more server CPU per operation under the
// long-lived mixed load (lbload imap -mode long, 10 clients).
func setGCPercent() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
}

// boundListener is a listener with the server that will serve it.
type boundListener struct {
	proto     string
	srv       protoServer
	l         net.Listener
	addr      string // actual address, after port 0 is resolved
	secure    bool   // implicit TLS
	inherited bool   // passed by systemd (socket activation)
}

// runServers sets everything up, serves until ctx is done or SIGTERM/SIGINT
// arrives, then drains; SIGHUP reloads through rl. Everything is bound
// before anything is served, so a port conflict fails the start instead of
// leaving half a server.
func (c *cli) runServers(ctx context.Context, cfg *config.Config, log *slog.Logger, protos []protocol, rl *reloader) int {
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	ops := newOps(cfg)
	log = ops.logger(log)

	log.Info("starting letterbox", "version", versionString(), "config", configName(cfg), "data_dir", cfg.DataDir)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		log.Error("cannot create data directory", "err", err)
		return exitConfig
	}
	certs, err := tlsconf.Load(cfg, log, time.Now)
	if err != nil {
		log.Error("TLS setup failed", "err", err)
		return exitConfig
	}
	st, err := store.Open(store.Options{PathTemplate: cfg.Mail.Path, Logger: ops.storeLogger(log), Hostname: cfg.Hostname})
	if err != nil {
		log.Error("cannot open the mail store", "err", err)
		return exitConfig
	}
	defer st.Close()

	demo, err := firstRun(ctx, cfg, st, c.hashCost)
	if err != nil {
		log.Error("first run: cannot create the demo user", "err", err)
		return exitFailure
	}
	if demo != nil {
		// Shown even if the start fails below: the next start will not
		// create the user again, so this is the only chance to see it.
		defer demo.announce(c.stdout, cfg, nil, false, c.runName())
	}
	if _, err := os.Stat(cfg.Auth.UsersFile); errors.Is(err, fs.ErrNotExist) {
		log.Error("users file does not exist; add a user with: letterbox user add --config FILE NAME", "users_file", cfg.Auth.UsersFile)
		return exitConfig
	}
	authn, err := auth.New(authOptions(cfg, log))
	if err != nil {
		log.Error("cannot load users", "err", err)
		return exitConfig
	}

	la, lt := newLiveAuth(authn), tlsconf.NewLive(certs)
	rl.log, rl.auth, rl.tls, rl.cfg = log, la, lt, cfg

	inherited, err := systemd.Listeners(c.environ)
	if err != nil {
		log.Error("startup failed", "err", err)
		return exitConfig
	}
	if err := ops.bind(ctx, log, la, st, lt.ServerConfig()); err != nil {
		log.Error("startup failed", "err", err)
		return exitFailure
	}
	defer ops.Close()
	d := deps{cfg: cfg, log: log, tls: lt.ServerConfig(), auth: la, store: st, ops: ops}
	listeners, err := bindAll(ctx, d, protos, inherited)
	if err != nil {
		log.Error("startup failed", "err", err)
		if errors.Is(err, errActivation) {
			return exitConfig
		}
		return exitFailure
	}
	if demo != nil {
		demo.announce(c.stdout, cfg, listeners, len(listeners) > 0, c.runName())
	}

	errc := make(chan error, len(listeners))
	for _, b := range listeners {
		tlsMode := "starttls"
		if b.secure {
			tlsMode = "implicit"
		}
		if b.inherited {
			log.Info("listening", "proto", b.proto, "addr", b.addr, "tls", tlsMode, "from", "systemd")
		} else {
			log.Info("listening", "proto", b.proto, "addr", b.addr, "tls", tlsMode)
		}
		go func() {
			err := b.srv.Serve(b.l)
			errc <- fmt.Errorf("%s on %s: %w", b.proto, b.addr, err)
		}()
	}
	ops.serve(errc, listeners)
	if len(listeners) == 0 {
		log.Warn("no protocol server is running; waiting for a signal to stop")
	}
	log.Info("letterbox ready")
	sd := systemd.NewNotifier(c.environ)
	watchdog, stopWatchdog := sd.WatchdogTicks()
	defer stopWatchdog()
	sd.Ready(servingStatus(listeners))

	exit := exitOK
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "reason", context.Cause(ctx))
			break wait
		case s := <-sigc:
			if s == syscall.SIGHUP {
				sd.Reloading()
				sd.Ready(rl.reload())
				continue
			}
			log.Info("shutting down", "signal", s.String(), "drain_timeout", rl.current().Server.DrainTimeout)
			break wait
		case err := <-errc:
			log.Error("server stopped unexpectedly", "err", err)
			exit = exitFailure
			break wait
		case <-watchdog:
			sd.KeepAlive()
		}
	}
	sd.Stopping("Stopping: saying goodbye to clients")
	servers := append(uniqueServers(listeners), ops.servers()...)
	done := make(chan struct{})
	go func() {
		shutdownAll(servers, log, rl.current().Server.DrainTimeout)
		close(done)
	}()
	for {
		select {
		case <-watchdog:
			sd.KeepAlive()
		case <-done:
			log.Info("stopped")
			return exit
		case s := <-sigc:
			if s == syscall.SIGHUP {
				continue
			}
			log.Warn("second signal; exiting without draining", "signal", s.String())
			for _, srv := range servers {
				srv.Close()
			}
			return exitFailure
		}
	}
}

// bindAll builds the protocol servers and binds all their listeners; on any
// failure it closes what it bound. With sockets inherited from systemd it
// serves those instead, and binds nothing itself.
func bindAll(ctx context.Context, d deps, protos []protocol, inherited []systemd.Socket) (bound []boundListener, err error) {
	defer func() {
		if err != nil {
			for _, b := range bound {
				b.l.Close()
			}
			bound = nil
		}
	}()
	if len(inherited) > 0 {
		return bindInherited(d, protos, inherited)
	}
	var lc net.ListenConfig
	for _, p := range protos {
		if len(p.listen)+len(p.listenTLS) == 0 {
			continue
		}
		srv, err := p.build(d.forProto(p.name))
		if err != nil {
			return bound, fmt.Errorf("%s: %w", p.name, err)
		}
		if srv == nil {
			d.log.Warn("protocol server not built yet; its listeners are skipped", "proto", p.name,
				"listen", p.listen, "listen_tls", p.listenTLS)
			continue
		}
		for _, secure := range []bool{false, true} {
			for _, addr := range p.addrs(secure) {
				l, err := lc.Listen(ctx, "tcp", addr)
				if err != nil {
					return bound, fmt.Errorf("%s: %w", p.name, err)
				}
				bound = append(bound, boundListener{proto: p.name, srv: srv, l: d.listener(p.name, l, secure),
					addr: l.Addr().String(), secure: secure})
			}
		}
	}
	return bound, nil
}

func uniqueServers(bound []boundListener) []protoServer {
	var out []protoServer
	seen := make(map[protoServer]bool)
	for _, b := range bound {
		if !seen[b.srv] {
			seen[b.srv] = true
			out = append(out, b.srv)
		}
	}
	return out
}

// shutdownAll drains every server at once within drainTimeout, then cuts
// off whatever is left.
func shutdownAll(servers []protoServer, log *slog.Logger, drainTimeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				log.Warn("drain incomplete; closing remaining connections", "err", err)
				srv.Close()
			}
		})
	}
	wg.Wait()
}

// authOptions maps the config to auth.Options, whose zero values mean
// "default": in the config, 0 means "off".
func authOptions(cfg *config.Config, log *slog.Logger) auth.Options {
	o := auth.Options{
		UsersFile:        cfg.Auth.UsersFile,
		Logger:           log,
		FailDelay:        cfg.Auth.FailDelay,
		ThrottleFailures: cfg.Auth.ThrottleFailures,
		ThrottleWindow:   cfg.Auth.ThrottleWindow,
		LoginCacheTTL:    cfg.Auth.LoginCacheTTL,
	}
	if o.LoginCacheTTL == 0 {
		o.LoginCacheTTL = -1
	}
	if o.FailDelay == 0 {
		o.FailDelay = -1
	}
	if o.ThrottleFailures == 0 {
		o.ThrottleFailures = -1
	}
	return o
}

func configName(cfg *config.Config) string {
	if cfg.File == "" {
		return "(embedded defaults)"
	}
	return cfg.File
}
