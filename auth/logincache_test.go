package auth

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// A repeated login with the same password skips bcrypt within the TTL;
// everything else still pays for one comparison.
func TestLoginCache(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.LoginCacheTTL = 10 * time.Minute })
	step := func(what, user, pass string, wantName string, wantCompares int) {
		t.Helper()
		e.cmp.take()
		name, err := e.auth(user, pass, ip1)
		if name != wantName || (err == nil) != (wantName != "") {
			t.Errorf("%s: Authenticate(%q) = %q, %v; want %q", what, user, name, err, wantName)
		}
		if got := len(e.cmp.take()); got != wantCompares {
			t.Errorf("%s: %d bcrypt comparisons, want %d", what, got, wantCompares)
		}
	}
	step("first login", "alice", "secret", "alice", 1)
	step("again", "alice", "secret", "alice", 0)
	step("other spelling of the name", "ALICE", "secret", "alice", 0)
	step("wrong password", "alice", "secreT", "", 1)
	step("wrong password again", "alice", "secreT", "", 1)
	step("right one still remembered", "alice", "secret", "alice", 0)
	step("other user", "bob@example.org", "secret", "Bob@Example.org", 1)
	e.clock.Advance(10*time.Minute - time.Second)
	step("just before the TTL", "alice", "secret", "alice", 0)
	e.clock.Advance(time.Second)
	step("at the TTL", "alice", "secret", "alice", 1)
	step("remembered anew", "alice", "secret", "alice", 0)

	if s := e.log.allText(); strings.Contains(s, "secret") {
		t.Errorf("a password was logged:\n%s", s)
	}
}

// A password changed or a user removed in the users file takes effect at
// once, whatever the cache holds.
func TestLoginCacheFollowsUsersFile(t *testing.T) {
	e := newEnv(t, "alice:"+testHash(t, "old", bcrypt.MinCost)+"\nbob:"+testHash(t, "pw", bcrypt.MinCost)+"\n",
		func(o *Options) { o.ReloadInterval = -1 })
	for _, u := range [][2]string{{"alice", "old"}, {"bob", "pw"}} {
		if _, err := e.auth(u[0], u[1], ip1); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(e.path, []byte("alice:"+testHash(t, "new", bcrypt.MinCost)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.a.Reload(); err != nil {
		t.Fatal(err)
	}
	e.cmp.take()
	if _, err := e.auth("alice", "old", ip1); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("old password after the change: %v", err)
	}
	if got := e.cmp.take(); len(got) != 1 {
		t.Errorf("old password after the change: %d comparisons, want 1", len(got))
	}
	if _, err := e.auth("alice", "new", ip1); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := e.auth("bob", "pw", ip1); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("removed user: %v", err)
	}
}

// A throttled address is refused even with a remembered password, and a
// cache turned off compares every time.
func TestLoginCacheThrottleAndOff(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.ThrottleFailures = 2 })
	if _, err := e.auth("alice", "secret", ip1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.auth("alice", "guess", ip1)
	}
	if _, err := e.auth("alice", "secret", ip1); !errors.Is(err, ErrThrottled) {
		t.Errorf("remembered password from a throttled address: %v, want ErrThrottled", err)
	}
	if _, err := e.auth("alice", "secret", ip2); err != nil {
		t.Errorf("from another address: %v", err)
	}

	off := newEnv(t, usersFile(t), func(o *Options) { o.LoginCacheTTL = -1 })
	for range 3 {
		if _, err := off.auth("alice", "secret", ip1); err != nil {
			t.Fatal(err)
		}
	}
	if got := off.cmp.take(); len(got) != 3 {
		t.Errorf("cache off: %d comparisons for 3 logins, want 3", len(got))
	}
}

// The cache never holds more than MaxLoginCache users; an expired entry
// goes first.
func TestLoginCacheBound(t *testing.T) {
	c := newLoginCache(time.Minute, 2)
	now := time.Now()
	h := []byte("$2y$04$hash")
	c.remember("a", h, "pw", now.Add(-2*time.Minute)) // expired by now
	c.remember("b", h, "pw", now)
	c.remember("c", h, "pw", now)
	if len(c.m) != 2 || !c.hit("b", h, "pw", now) || !c.hit("c", h, "pw", now) {
		t.Errorf("after three users in a cache of two: %v", slices.Collect(func(yield func(string) bool) {
			for k := range c.m {
				yield(k)
			}
		}))
	}
	c.remember("d", h, "pw", now)
	if len(c.m) != 2 || !c.hit("d", h, "pw", now) {
		t.Errorf("full cache did not make room: %d entries", len(c.m))
	}
	if c.hit("d", h, "pw2", now) || c.hit("d", []byte("$2y$04$other"), "pw", now) {
		t.Error("hit with another password or another stored hash")
	}
}
