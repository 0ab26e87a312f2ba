package auth

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Test passwords are hashed at bcrypt.MinCost: the tests are about our logic,
// not about bcrypt being slow.
var (
	hashCache   = map[string]string{}
	hashCacheMu sync.Mutex
)

// testHash returns "{BLF-CRYPT}$2y$..." for password at cost, reusing one
// hash per (password, cost) across tests.
func testHash(t testing.TB, password string, cost int) string {
	t.Helper()
	key := password + "\x00" + string(rune('0'+cost))
	hashCacheMu.Lock()
	defer hashCacheMu.Unlock()
	if h, ok := hashCache[key]; ok {
		return h
	}
	h, err := HashPassword(password, cost)
	if err != nil {
		t.Fatal(err)
	}
	hashCache[key] = h
	return h
}

// bare strips the scheme prefix.
func bare(h string) string { return strings.TrimPrefix(h, blfCryptPrefix) }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logRecord is a captured log record with its attributes flattened.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
	keys  []string // attribute order
}

// recorder is a slog.Handler that keeps every record, for assertions on
// exactly what was logged.
type recorder struct {
	mu      sync.Mutex
	records []logRecord
	notify  chan logRecord // if non-nil, receives each record too
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRecord{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		lr.keys = append(lr.keys, a.Key)
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, lr)
	ch := r.notify
	r.mu.Unlock()
	if ch != nil {
		ch <- lr
	}
	return nil
}

// matching returns the records with the given message.
func (r *recorder) matching(msg string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if rec.msg == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = nil
}

// allText returns every message and attribute value, to check that nothing
// secret was logged.
func (r *recorder) allText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.records {
		b.WriteString(rec.msg)
		for _, k := range rec.keys {
			b.WriteString(" " + k + "=" + rec.attrs[k])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// compareCounter wraps the Authenticator's bcrypt hook and records the cost of
// every hash it is asked to compare against.
type compareCounter struct {
	mu    sync.Mutex
	costs []int
}

func (c *compareCounter) install(a *Authenticator) {
	a.compare = func(hash, password []byte) error {
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			cost = -1
		}
		c.mu.Lock()
		c.costs = append(c.costs, cost)
		c.mu.Unlock()
		return bcrypt.CompareHashAndPassword(hash, password)
	}
}

func (c *compareCounter) take() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.costs
	c.costs = nil
	return out
}

type testEnv struct {
	a     *Authenticator
	path  string
	log   *recorder
	clock *fakeClock
	cmp   *compareCounter
}

// writeFile writes a users file into a temp dir and returns its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newEnv builds an Authenticator over content with no failure delay, a fake
// clock and a recording logger; tweak may change the options first.
func newEnv(t testing.TB, content string, tweak func(*Options)) *testEnv {
	t.Helper()
	e := &testEnv{path: writeFile(t, content), log: &recorder{}, clock: newFakeClock(), cmp: &compareCounter{}}
	opts := Options{
		UsersFile: e.path,
		Logger:    slog.New(e.log),
		FailDelay: -1,
		Now:       e.clock.Now,
	}
	if tweak != nil {
		tweak(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.cmp.install(a)
	e.a = a
	return e
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("192.0.2.2")
)

func (e *testEnv) auth(user, pass string, ip netip.Addr) (string, error) {
	return e.a.Authenticate(context.Background(), user, pass, ip)
}
