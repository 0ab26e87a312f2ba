package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Errors returned by Authenticate. Callers match them with errors.Is.
var (
	// ErrInvalidCredentials covers unknown users, wrong passwords and
	// users who cannot log in, deliberately without telling which.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrThrottled means the client address failed too often recently.
	ErrThrottled = errors.New("auth: too many failed logins, try again later")
)

// Defaults for the zero values of Options fields.
const (
	DefaultFailDelay          = 2 * time.Second
	DefaultThrottleFailures   = 10
	DefaultThrottleWindow     = 15 * time.Minute
	DefaultMaxThrottleEntries = 100_000
	DefaultReloadInterval     = time.Second
	DefaultLoginCacheTTL      = time.Hour
	DefaultMaxLoginCache      = 100_000
)

// Options configure an Authenticator. Only UsersFile is required; every other
// zero value means the documented default.
type Options struct {
	// UsersFile is the path of the Dovecot-style passwd-file.
	UsersFile string

	// Logger receives the failure lines (see the package doc) and
	// users-file warnings. Default: slog.Default().
	Logger *slog.Logger

	// FailDelay is how long every failed attempt waits before returning,
	// to slow down guessing over one connection. Default 2s; negative
	// means no delay.
	FailDelay time.Duration

	// ThrottleFailures is how many failures from one client address
	// (IPv6: one /64) within ThrottleWindow block it. A blocked address
	// is refused without running bcrypt, for ThrottleWindow after its
	// last counted failure. Default 10; negative disables throttling.
	ThrottleFailures int
	// ThrottleWindow: see ThrottleFailures. Default 15m.
	ThrottleWindow time.Duration
	// MaxThrottleEntries caps how many client addresses the throttle
	// remembers, bounding its memory. Default 100000.
	MaxThrottleEntries int

	// MaxConcurrentHashes caps simultaneous bcrypt comparisons, so a
	// flood of logins queues instead of starving every other goroutine of
	// CPU. Default runtime.GOMAXPROCS(0).
	MaxConcurrentHashes int

	// ReloadInterval is how often, at most, Authenticate stats the users
	// file to pick up changes (compared by inode, size and mtime).
	// Default 1s; negative disables the automatic reload (Reload still
	// works).
	ReloadInterval time.Duration

	// LoginCacheTTL is how long a successful login is remembered, so the
	// same user with the same password is let in again without bcrypt
	// (see loginCache for what is kept and why that is safe). Default 1h,
	// as Dovecot's auth_cache_ttl; negative turns the cache off.
	LoginCacheTTL time.Duration
	// MaxLoginCache caps how many users the login cache remembers.
	// Default 100000.
	MaxLoginCache int

	// Now is the clock for throttling and reload checks.
	// Default time.Now.
	Now func() time.Time
}

// Authenticator checks usernames and passwords against a users file. It is
// safe for concurrent use.
type Authenticator struct {
	file           string
	log            *slog.Logger
	failDelay      time.Duration
	reloadInterval time.Duration
	now            func() time.Time
	throttle       *throttle
	hashSlots      chan struct{}
	logins         *loginCache // nil: off

	// Hooks replaced by tests: every password check goes through compare
	// exactly once, and every failure waits through sleep.
	compare func(hash, password []byte) error
	sleep   func(ctx context.Context, d time.Duration) error

	table atomic.Pointer[userTable]

	loadMu      sync.Mutex // serializes loads; guards the fields below
	loaded      os.FileInfo
	failedStat  os.FileInfo // file version whose automatic reload failed
	statFailing bool        // the last automatic stat failed (and was logged)
	dummies     map[int][]byte

	checkMu   sync.Mutex
	lastCheck time.Time
}

// New loads opts.UsersFile and returns an Authenticator for it. A file that
// cannot be read is an error; lines that cannot be used are logged and
// skipped.
func New(opts Options) (*Authenticator, error) {
	if opts.UsersFile == "" {
		return nil, errors.New("auth: Options.UsersFile is empty")
	}
	a := &Authenticator{
		file:           opts.UsersFile,
		log:            opts.Logger,
		failDelay:      cmp0(opts.FailDelay, DefaultFailDelay),
		reloadInterval: cmp0(opts.ReloadInterval, DefaultReloadInterval),
		now:            opts.Now,
		compare:        bcrypt.CompareHashAndPassword,
		sleep:          sleepCtx,
		dummies:        make(map[int][]byte),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	limit := cmp0(opts.ThrottleFailures, DefaultThrottleFailures)
	window := cmp0(opts.ThrottleWindow, DefaultThrottleWindow)
	if window <= 0 {
		return nil, fmt.Errorf("auth: negative ThrottleWindow %v", window)
	}
	a.throttle = newThrottle(limit, window, cmp0(opts.MaxThrottleEntries, DefaultMaxThrottleEntries))
	a.hashSlots = make(chan struct{}, max(cmp0(opts.MaxConcurrentHashes, runtime.GOMAXPROCS(0)), 1))
	a.logins = newLoginCache(cmp0(opts.LoginCacheTTL, DefaultLoginCacheTTL), cmp0(opts.MaxLoginCache, DefaultMaxLoginCache))

	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	if err := a.loadLocked(); err != nil {
		return nil, err
	}
	return a, nil
}

// cmp0 returns v, or def when v is the zero value.
func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Authenticate checks username and password for a client at remote. It
// returns the canonical username (as written in the users file) or an error
// matching ErrInvalidCredentials, ErrThrottled, or ctx's error.
//
// Unknown users and wrong passwords look the same from outside: the same
// error, one bcrypt comparison of the same cost, the same delay. Each failure
// is logged once at Warn before the delay starts, so fail2ban sees it at
// once even if the client hangs up. A user who logged in with the same
// password within LoginCacheTTL is let in without a comparison.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string, remote netip.Addr) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	a.maybeReload()

	ip := remote.Unmap()
	key := throttleKey(ip)
	slot, ok := a.throttle.admit(key, a.now())
	if !ok {
		return "", a.fail(ctx, username, ip, "throttled", ErrThrottled)
	}
	if u := a.remembered(username, password); u != nil {
		a.throttle.done(key, slot, false, a.now())
		a.log.Debug("authentication succeeded", slog.String("ip", ipString(ip)), slog.String("user", u.name), slog.Bool("cached", true))
		return u.name, nil
	}
	select {
	case a.hashSlots <- struct{}{}:
	case <-ctx.Done():
		// Given up before anything was checked: not a failure.
		a.throttle.done(key, slot, false, a.now())
		return "", ctx.Err()
	}
	u, reason := a.check(username, password)
	<-a.hashSlots
	a.throttle.done(key, slot, reason != "", a.now())

	if reason != "" {
		return "", a.fail(ctx, username, ip, reason, ErrInvalidCredentials)
	}
	a.logins.remember(u.name, u.hash, password, a.now())
	a.log.Debug("authentication succeeded", slog.String("ip", ipString(ip)), slog.String("user", u.name))
	return u.name, nil
}

// remembered returns the user if the login cache says this password was
// right for them within its TTL, against the hash the users file has now.
func (a *Authenticator) remembered(username, password string) *user {
	if a.logins == nil || len(password) > MaxPasswordLength {
		return nil
	}
	u, reason := a.table.Load().login(username)
	if reason != "" || !a.logins.hit(u.name, u.hash, password, a.now()) {
		return nil
	}
	return u
}

// login finds the user a login names, or says why there is none that can
// log in.
func (t *userTable) login(username string) (*user, string) {
	if ValidUsername(username) != nil {
		return nil, "invalid username"
	}
	switch u := t.byKey[foldKey(username)]; {
	case u == nil:
		return nil, "unknown user"
	case u.hash == nil:
		return nil, "login disabled (bad users file entry)"
	default:
		return u, ""
	}
}

// check verifies the password and returns the user, or a reason for the
// log. Every path runs exactly one bcrypt comparison of the usual
// cost, so the time taken does not tell an attacker which reason it was.
func (a *Authenticator) check(username, password string) (_ *user, reason string) {
	t := a.table.Load()
	u, reason := t.login(username)
	hash := t.dummy
	if u != nil {
		hash = u.hash
	}
	pw := password
	if len(pw) > MaxPasswordLength {
		// bcrypt would only look at the first 72 bytes and could say
		// yes; such a password always fails, but still pays for one
		// comparison, without copying a huge input around.
		pw = pw[:MaxPasswordLength]
	}
	err := a.compare(hash, []byte(pw))
	switch {
	case reason != "":
		return nil, reason
	case len(password) > MaxPasswordLength:
		return nil, "password too long"
	case err != nil:
		return nil, "wrong password"
	}
	return u, ""
}

// fail logs one failure line, waits the failure delay and returns err (or
// ctx's error if the wait was cut short).
func (a *Authenticator) fail(ctx context.Context, username string, ip netip.Addr, reason string, err error) error {
	// ip comes first: it is the only attribute a fail2ban filter needs, and
	// placing it before the client-chosen user name means no user name can
	// fake an "ip=" the filter would match first.
	a.log.Warn("authentication failed",
		slog.String("ip", ipString(ip)),
		slog.String("user", logName(username)),
		slog.String("reason", reason))
	if werr := a.sleep(ctx, a.failDelay); werr != nil {
		return werr
	}
	return err
}

func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	return ip.WithZone("").String()
}

// logName bounds what a client can put into a log line.
func logName(name string) string {
	if len(name) > MaxUsernameLength {
		name = name[:MaxUsernameLength]
	}
	return strings.ToValidUTF8(name, "\uFFFD")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Users returns the names of all users in the users file, sorted, including
// those whose entry cannot currently be used to log in (they still own a
// mailbox).
func (a *Authenticator) Users() []string {
	return a.table.Load().names()
}

// Reload re-reads the users file now (for SIGHUP). On a read error the
// current users stay in force and the error is returned.
func (a *Authenticator) Reload() error {
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	a.failedStat = nil
	return a.loadLocked()
}

// maybeReload reloads the users file if it changed since it was loaded,
// stat-ing it at most once per reloadInterval. It runs on the login path, so
// it never waits: if another goroutine is already loading, it returns and
// the current table is used.
func (a *Authenticator) maybeReload() {
	if a.reloadInterval < 0 {
		return
	}
	now := a.now()
	a.checkMu.Lock()
	due := a.lastCheck.IsZero() || now.Before(a.lastCheck) || now.Sub(a.lastCheck) >= a.reloadInterval
	if due {
		a.lastCheck = now
	}
	a.checkMu.Unlock()
	if !due || !a.loadMu.TryLock() {
		return
	}
	defer a.loadMu.Unlock()
	a.reloadIfChangedLocked()
}

// reloadIfChangedLocked stats the users file and loads it if it changed;
// an error means it cannot be read now (the loaded users stay in force).
// loadMu is held.
func (a *Authenticator) reloadIfChangedLocked() error {
	fi, err := os.Stat(a.file)
	if err != nil {
		// Log when the file goes missing, not every second after.
		if !a.statFailing {
			a.log.Warn("users file: cannot stat, keeping the loaded users",
				slog.String("file", a.file), slog.Any("error", err))
			a.statFailing = true
		}
		return fmt.Errorf("auth: users file: %w", err)
	}
	a.statFailing = false
	if sameVersion(fi, a.loaded) {
		return nil
	}
	if sameVersion(fi, a.failedStat) {
		return errors.New("auth: users file cannot be loaded")
	}
	if err := a.loadLocked(); err != nil {
		a.log.Warn("users file: reload failed, keeping the loaded users",
			slog.String("file", a.file), slog.Any("error", err))
		a.failedStat = fi
		return err
	}
	return nil
}

// Lookup returns the canonical name of a user (matched as logins are), or
// an error matching ErrUnknownUser. A miss checks the users file first, so
// a user added a moment ago is found: mail delivery must not bounce mail
// for them. If the file cannot be read at that moment the error is some
// other one, and a delivery agent should answer with a temporary failure.
func (a *Authenticator) Lookup(name string) (string, error) {
	if ValidUsername(name) != nil {
		return "", fmt.Errorf("%w: %s", ErrUnknownUser, name)
	}
	if u := a.table.Load().byKey[foldKey(name)]; u != nil {
		return u.name, nil
	}
	a.loadMu.Lock()
	err := a.reloadIfChangedLocked()
	a.loadMu.Unlock()
	if err != nil {
		return "", err
	}
	if u := a.table.Load().byKey[foldKey(name)]; u != nil {
		return u.name, nil
	}
	return "", fmt.Errorf("%w: %s", ErrUnknownUser, name)
}

// sameVersion reports whether two stats describe the same version of a file.
// The inode catches an atomic rename (our editors, most tools), size and
// mtime catch an in-place edit.
func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) &&
		a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// loadLocked reads and parses the users file and installs the result.
// loadMu must be held.
func (a *Authenticator) loadLocked() error {
	f, err := os.Open(a.file)
	if err != nil {
		return fmt.Errorf("auth: loading users: %w", err)
	}
	defer f.Close()
	// Stat before reading: if the file changes after this, the next check
	// sees a different stat and loads it again.
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("auth: loading users: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("auth: loading users: %s is not a regular file", a.file)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("auth: loading users: %w", err)
	}
	t, issues := parseUsers(data)
	cost := t.dummyCost()
	if t.dummy = a.dummies[cost]; t.dummy == nil {
		if t.dummy, err = newDummyHash(cost); err != nil {
			return err
		}
		a.dummies[cost] = t.dummy
	}
	logIssues(a.log, a.file, issues)
	a.table.Store(t)
	a.loaded = fi
	a.failedStat = nil
	a.log.Info("users file loaded", slog.String("file", a.file), slog.Int("users", len(t.order)))
	return nil
}
