package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func usersFile(t testing.TB) string {
	h := testHash(t, "secret", bcrypt.MinCost)
	return "# test users\n" +
		"alice:" + h + "\n" +
		"Bob@Example.org:" + bare(h) + ":1000:1000::/home/bob::\n" +
		"carol:{SHA512-CRYPT}$6$x$y\n"
}

func TestNewNeedsFile(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without UsersFile succeeded")
	}
	if _, err := New(Options{UsersFile: t.TempDir() + "/missing"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New with a missing file: %v, want ErrNotExist", err)
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, usersFile(t), nil)
	tests := []struct {
		user, pass string
		want       string
		err        error
		reason     string
	}{
		{"alice", "secret", "alice", nil, ""},
		{"ALICE", "secret", "alice", nil, ""},
		{"bob@example.org", "secret", "Bob@Example.org", nil, ""},
		{"alice", "wrong", "", ErrInvalidCredentials, "wrong password"},
		{"alice", "", "", ErrInvalidCredentials, "wrong password"},
		{"alice", "secret" + strings.Repeat("x", 70), "", ErrInvalidCredentials, "password too long"},
		{"nobody", "secret", "", ErrInvalidCredentials, "unknown user"},
		{"carol", "secret", "", ErrInvalidCredentials, "login disabled (bad users file entry)"},
		{"../alice", "secret", "", ErrInvalidCredentials, "invalid username"},
		{"", "secret", "", ErrInvalidCredentials, "invalid username"},
	}
	for _, tt := range tests {
		e.log.reset()
		got, err := e.auth(tt.user, tt.pass, ip1)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("Authenticate(%q, %q) = %q, %v; want %q, %v", tt.user, tt.pass, got, err, tt.want, tt.err)
		}
		fails := e.log.matching("authentication failed")
		if tt.err == nil {
			if len(fails) != 0 {
				t.Errorf("%q: success logged a failure", tt.user)
			}
			continue
		}
		if len(fails) != 1 {
			t.Errorf("%q: %d failure lines, want 1", tt.user, len(fails))
			continue
		}
		if f := fails[0]; f.level != slog.LevelWarn || f.attrs["reason"] != tt.reason ||
			f.attrs["user"] != tt.user || f.attrs["ip"] != "192.0.2.1" ||
			!slices.Equal(f.keys, []string{"ip", "user", "reason"}) {
			t.Errorf("%q: failure line %v %v, want reason %q", tt.user, f.level, f.attrs, tt.reason)
		}
	}
	if strings.Contains(e.log.allText(), "secret") {
		t.Errorf("a password was logged:\n%s", e.log.allText())
	}
}

// Plain $2a$, $2b$ and $2y$ hashes all verify.
func TestAuthenticateBcryptVariants(t *testing.T) {
	h := bare(testHash(t, "pw", bcrypt.MinCost))[3:]
	e := newEnv(t, "a:$2a"+h+"\nb:$2b"+h+"\ny:{BLF-CRYPT}$2y"+h+"\nc:{CRYPT}$2y"+h+"\n", nil)
	for _, u := range []string{"a", "b", "y", "c"} {
		if _, err := e.auth(u, "pw", ip1); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if _, err := e.auth(u, "px", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s with a wrong password: %v", u, err)
		}
	}
}

// Unknown users, wrong passwords and every other credential failure cost
// exactly one bcrypt comparison at the users' cost; throttled attempts none.
func TestOneComparisonAtUsersCost(t *testing.T) {
	const cost = bcrypt.MinCost + 1 // not bcrypt's default, so the dummy must follow the file
	e := newEnv(t, "alice:"+testHash(t, "secret", cost)+"\ncarol:{PLAIN}x\n", func(o *Options) {
		o.ThrottleFailures = 100
	})
	cases := []struct{ name, user, pass string }{
		{"ok", "alice", "secret"},
		{"wrong password", "alice", "nope"},
		{"unknown user", "mallory", "nope"},
		{"invalid username", "a/b", "nope"},
		{"disabled user", "carol", "x"},
		{"too long", "alice", strings.Repeat("p", 100)},
	}
	for _, c := range cases {
		e.cmp.take()
		e.auth(c.user, c.pass, ip1)
		if got := e.cmp.take(); !slices.Equal(got, []int{cost}) {
			t.Errorf("%s: bcrypt comparisons at costs %v, want exactly [%d]", c.name, got, cost)
		}
	}
}

func TestFailDelay(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.FailDelay = 1234 * time.Millisecond })
	var mu sync.Mutex
	var slept []time.Duration
	e.a.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return nil
	}
	e.auth("alice", "secret", ip1)
	e.auth("alice", "wrong", ip1)
	e.auth("nobody", "secret", ip1)
	if want := []time.Duration{1234 * time.Millisecond, 1234 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Errorf("slept %v, want %v (only failures wait)", slept, want)
	}
}

func TestFailDelayDefault(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.FailDelay = 0 })
	if e.a.failDelay != DefaultFailDelay {
		t.Errorf("failDelay = %v, want %v", e.a.failDelay, DefaultFailDelay)
	}
}

// Cancelling the context ends the failure delay early with ctx's error; the
// failure has already been logged by then.
func TestFailDelayCancel(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.FailDelay = time.Hour })
	e.log.notify = make(chan logRecord, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.a.Authenticate(ctx, "alice", "wrong", ip1)
		done <- err
	}()
	for rec := range e.log.notify {
		if rec.msg == "authentication failed" {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestAuthenticateCanceledBefore(t *testing.T) {
	e := newEnv(t, usersFile(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.a.Authenticate(ctx, "alice", "secret", ip1); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(e.cmp.take()); n != 0 {
		t.Errorf("%d bcrypt comparisons for a cancelled context", n)
	}
}

// The log line carries the unmapped IPv4 address and a bounded user name.
func TestFailureLogFields(t *testing.T) {
	e := newEnv(t, usersFile(t), nil)
	e.auth(strings.Repeat("u", 1000)+"\xff", "x", netip.MustParseAddr("::ffff:198.51.100.9"))
	e.auth("nobody", "x", netip.Addr{})
	fails := e.log.matching("authentication failed")
	if len(fails) != 2 {
		t.Fatalf("%d failure lines", len(fails))
	}
	if got := fails[0].attrs["ip"]; got != "198.51.100.9" {
		t.Errorf("ip = %q, want the IPv4 form", got)
	}
	if got := fails[0].attrs["user"]; len(got) != MaxUsernameLength {
		t.Errorf("logged user is %d bytes, want %d", len(got), MaxUsernameLength)
	}
	if got := fails[1].attrs["ip"]; got != "unknown" {
		t.Errorf("ip of a missing address = %q", got)
	}
}

func TestUsers(t *testing.T) {
	e := newEnv(t, usersFile(t), nil)
	if got, want := e.a.Users(), []string{"Bob@Example.org", "alice", "carol"}; !slices.Equal(got, want) {
		t.Errorf("Users() = %v, want %v", got, want)
	}
}

func TestReload(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.ReloadInterval = -1 })
	if err := os.WriteFile(e.path, []byte("dave:"+testHash(t, "pw", bcrypt.MinCost)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.auth("dave", "pw", ip1); err == nil {
		t.Fatal("automatic reload happened with ReloadInterval < 0")
	}
	if err := e.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth("dave", "pw", ip1); err != nil {
		t.Errorf("dave after Reload: %v", err)
	}
	if _, err := e.auth("alice", "secret", ip1); err == nil {
		t.Error("alice still logs in after being removed")
	}

	// A failed reload keeps the users loaded before.
	os.Remove(e.path)
	if err := e.a.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file = %v", err)
	}
	if _, err := e.auth("dave", "pw", ip1); err != nil {
		t.Errorf("dave after a failed reload: %v", err)
	}
}

// A change to the file is picked up by Authenticate itself, stat-ing at most
// once per ReloadInterval.
func TestAutoReload(t *testing.T) {
	e := newEnv(t, usersFile(t), nil)
	e.auth("alice", "secret", ip1) // first check happens here
	if err := AddUser(e.path, "dave", testHash(t, "pw", bcrypt.MinCost)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(500 * time.Millisecond)
	if _, err := e.auth("dave", "pw", ip1); err == nil {
		t.Error("file checked again within ReloadInterval")
	}
	e.clock.Advance(500 * time.Millisecond)
	if _, err := e.auth("dave", "pw", ip1); err != nil {
		t.Errorf("dave after the interval: %v", err)
	}

	// A broken rewrite (unreadable) keeps the old users and is logged
	// once, not on every check.
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.log.reset()
	for range 3 {
		e.clock.Advance(time.Second)
		if _, err := e.auth("dave", "pw", ip1); err != nil {
			t.Errorf("dave while the file is missing: %v", err)
		}
	}
	if n := len(e.log.matching("users file: cannot stat, keeping the loaded users")); n != 1 {
		t.Errorf("missing file logged %d times, want 1", n)
	}

	// An in-place edit (same inode) is noticed through size and mtime.
	if err := os.WriteFile(e.path, []byte("erin:"+testHash(t, "pw", bcrypt.MinCost)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.auth("erin", "pw", ip1); err != nil {
		t.Errorf("erin after rewrite: %v", err)
	}
	f, err := os.OpenFile(e.path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("frank:" + testHash(t, "pw", bcrypt.MinCost) + "\n")
	f.Close()
	e.clock.Advance(time.Second)
	if _, err := e.auth("frank", "pw", ip1); err != nil {
		t.Errorf("frank after in-place append: %v", err)
	}
}

// BenchmarkAuthenticate shows that an unknown user costs what a wrong
// password costs (and what a successful login costs): compare the ns/op of
// the sub-benchmarks.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b, usersFile(b), func(o *Options) { o.ThrottleFailures = -1 })
	e.a.compare = bcrypt.CompareHashAndPassword // no test bookkeeping
	for _, c := range []struct{ name, user, pass string }{
		{"unknown-user", "mallory", "secret"},
		{"wrong-password", "alice", "guess"},
		{"ok", "alice", "secret"},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				e.a.Authenticate(ctx, c.user, c.pass, ip1)
			}
		})
	}
}

// The documented fail2ban filter finds the client address in the real text
// output, even when the user name tries to smuggle in another one.
func TestFailureLineFormat(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)).With("component", "auth")
	e := newEnv(t, usersFile(t), func(o *Options) { o.Logger = logger })
	e.auth(`x ip=6.6.6.6 user=`, "pw", netip.MustParseAddr("203.0.113.7"))
	e.auth("bob", "pw", netip.MustParseAddr("2001:db8::7"))

	// fail2ban's <HOST>, reduced to what the test needs.
	failregex := `msg="authentication failed" (?:\S+ )*?ip=<HOST> user=`
	re := regexp.MustCompile(strings.Replace(failregex, "<HOST>", `(?P<host>[0-9a-fA-F:.]+)`, 1))
	var hosts []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			hosts = append(hosts, m[1])
		}
	}
	if want := []string{"203.0.113.7", "2001:db8::7"}; !slices.Equal(hosts, want) {
		t.Errorf("filter found %v, want %v in:\n%s", hosts, want, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// MaxConcurrentHashes queues logins beyond the limit; a caller that gives up
// while queued gets its context's error and is not counted as a failure.
func TestMaxConcurrentHashes(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) {
		o.MaxConcurrentHashes = 1
		o.ThrottleFailures = 1
	})
	if cap(e.a.hashSlots) != 1 {
		t.Fatalf("%d hash slots, want 1", cap(e.a.hashSlots))
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	e.a.compare = func(hash, password []byte) error {
		close(entered)
		<-release
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	first := make(chan error, 1)
	go func() {
		_, err := e.auth("alice", "secret", ip1)
		first <- err
	}()
	<-entered

	parent, cancel := context.WithCancel(context.Background())
	ctx := &doneSpy{Context: parent, waiting: make(chan struct{})}
	second := make(chan error, 1)
	go func() {
		_, err := e.a.Authenticate(ctx, "alice", "wrong", ip2)
		second <- err
	}()
	<-ctx.waiting // queued for the hash slot
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("queued and cancelled: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first login: %v", err)
	}
	if len(e.log.matching("authentication failed")) != 0 {
		t.Error("a cancelled attempt was logged as a failure")
	}
	e.a.compare = bcrypt.CompareHashAndPassword
	if _, err := e.auth("alice", "secret", ip2); err != nil {
		t.Errorf("ip2 after its cancelled attempt: %v (it must not count as a failure)", err)
	}

	e = newEnv(t, usersFile(t), nil)
	if want := max(runtime.GOMAXPROCS(0), 1); cap(e.a.hashSlots) != want {
		t.Errorf("default %d hash slots, want GOMAXPROCS = %d", cap(e.a.hashSlots), want)
	}
}

// doneSpy reports the first time somebody waits on its Done channel.
type doneSpy struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (d *doneSpy) Done() <-chan struct{} {
	d.once.Do(func() { close(d.waiting) })
	return d.Context.Done()
}
