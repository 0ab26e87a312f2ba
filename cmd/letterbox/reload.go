package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/tlsconf"
)

// Reload (SIGHUP, systemctl reload) re-reads the configuration, the users
// file and the certificate while every session goes on. What the running
// process can take over without dropping anyone is applied; the rest is
// named in the log as needing a restart, and stays as it was:
//
//	log.level, server.drain_timeout              applied
//	auth.users_file, auth.fail_delay,            a new authenticator (and
//	auth.throttle_failures, auth.throttle_window, throttle, and an empty
//	auth.login_cache_ttl                         login cache) for new logins
//	tls.cert_file, tls.key_file, tls.min_version new TLS handshakes
//	everything else                              restart: listeners, the
//	                                             store, and the protocol
//	                                             servers' fields, which
//	                                             may not change while they
//	                                             serve
//
// A configuration that does not load, a users file or a certificate that
// does not load: each is logged, and what was in force stays in force.

// reloader holds what a reload may change.
type reloader struct {
	// load reads the configuration again, from the same file, environment
	// and flags as at start.
	load  func() (*config.Config, error)
	level *slog.LevelVar
	log   *slog.Logger
	auth  *liveAuth
	tls   *tlsconf.Live

	mu  sync.Mutex
	cfg *config.Config // in force: live keys as of the last reload, the rest as started
}

// current returns the configuration in force.
func (r *reloader) current() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// liveKeys are the keys a reload applies; see the top of this file.
var liveKeys = []string{
	"log.level", "server.drain_timeout",
	"auth.users_file", "auth.fail_delay", "auth.throttle_failures", "auth.throttle_window",
	"auth.login_cache_ttl",
	"tls.cert_file", "tls.key_file", "tls.min_version",
}

// reload runs one reload and returns a one-line status for systemd.
func (r *reloader) reload() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	status := r.reloadLocked()
	r.log.Info("SIGHUP: reload finished", "status", status)
	return status
}

func (r *reloader) reloadLocked() string {
	log := r.log
	old := r.cfg
	loaded, err := r.load()
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded; the previous configuration stays in force", "err", err)
		r.reloadUsers()
		r.reloadCert()
		return "Serving; reload failed: configuration error, see the log"
	}

	// next is what will be in force: the old configuration with the keys
	// that can change live taken from the new one.
	next := *old
	next.Log.Level = loaded.Log.Level
	next.Server.DrainTimeout = loaded.Server.DrainTimeout
	next.Auth.UsersFile = loaded.Auth.UsersFile
	next.Auth.FailDelay = loaded.Auth.FailDelay
	next.Auth.ThrottleFailures = loaded.Auth.ThrottleFailures
	next.Auth.ThrottleWindow = loaded.Auth.ThrottleWindow
	next.Auth.LoginCacheTTL = loaded.Auth.LoginCacheTTL
	next.TLS = loaded.TLS

	status := "Serving; configuration reloaded"
	if changed(old, &next, "auth.") != nil {
		a, err := auth.New(authOptions(&next, log))
		if err != nil {
			log.Error("SIGHUP: new [auth] settings do not load; the previous ones stay in force", "err", err)
			next.Auth = old.Auth
			status = "Serving; reload incomplete: users file error, see the log"
		} else {
			r.auth.set(a)
			log.Info("SIGHUP: users file reloaded", "users_file", next.Auth.UsersFile)
		}
	} else if !r.reloadUsers() {
		status = "Serving; reload incomplete: users file error, see the log"
	}
	if changed(old, &next, "tls.") != nil {
		certs, err := tlsconf.Load(&next, log, time.Now)
		if err != nil {
			log.Error("SIGHUP: new [tls] settings do not load; the previous ones stay in force", "err", err)
			next.TLS = old.TLS
			status = "Serving; reload incomplete: TLS error, see the log"
		} else {
			r.tls.Set(certs)
			log.Info("SIGHUP: TLS certificate reloaded", "cert_file", certs.CertFile)
		}
	} else if !r.reloadCert() {
		status = "Serving; reload incomplete: TLS error, see the log"
	}
	r.level.Set(next.Log.Level)
	r.cfg = &next

	if keys := changed(old, &next, ""); len(keys) > 0 {
		log.Info("SIGHUP: configuration changes applied", "keys", keys)
	}
	keys := slices.DeleteFunc(changed(&next, loaded, ""), func(k string) bool {
		return slices.Contains(liveKeys, k) // not applied because it failed, and logged
	})
	if len(keys) > 0 {
		log.Warn("SIGHUP: configuration changes need a restart to take effect (systemctl restart letterbox)", "keys", keys)
		status += "; restart needed for " + strings.Join(keys, ", ")
	}
	return status
}

func (r *reloader) reloadUsers() bool {
	if err := r.auth.Reload(); err != nil {
		r.log.Error("SIGHUP: users file not reloaded; previous users stay in force", "err", err)
		return false
	}
	r.log.Info("SIGHUP: users file reloaded")
	return true
}

func (r *reloader) reloadCert() bool {
	if err := r.tls.Certs().Reload(); err != nil {
		r.log.Error("SIGHUP: TLS certificate not reloaded; previous one stays in force", "err", err)
		return false
	}
	r.log.Info("SIGHUP: TLS certificate reloaded")
	return true
}

// changed lists the keys starting with prefix whose values differ between a
// and b, sorted.
func changed(a, b *config.Config, prefix string) []string {
	av, bv := a.Values(), b.Values()
	var keys []string
	for k, v := range av {
		if strings.HasPrefix(k, prefix) && fmt.Sprint(v) != fmt.Sprint(bv[k]) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// liveAuth is the authenticator the protocol servers use. A reload that
// changes [auth] swaps in a new one: sessions already logged in are not
// affected, the next login uses it. It has the methods of
// *auth.Authenticator that the rest of the command uses.
type liveAuth struct {
	p atomic.Pointer[auth.Authenticator]
}

func newLiveAuth(a *auth.Authenticator) *liveAuth {
	la := &liveAuth{}
	la.p.Store(a)
	return la
}

func (la *liveAuth) set(a *auth.Authenticator) { la.p.Store(a) }

// Authenticate implements pop3.Authenticator and imap.Authenticator.
func (la *liveAuth) Authenticate(ctx context.Context, username, password string, remote netip.Addr) (string, error) {
	return la.p.Load().Authenticate(ctx, username, password, remote)
}

// Lookup finds a user in the users file in force, for LMTP.
func (la *liveAuth) Lookup(name string) (string, error) { return la.p.Load().Lookup(name) }

// Reload re-reads the users file now.
func (la *liveAuth) Reload() error { return la.p.Load().Reload() }
