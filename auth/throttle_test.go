package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestThrottle(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) {
		o.ThrottleFailures = 3
		o.ThrottleWindow = 10 * time.Minute
	})
	loopback := netip.MustParseAddr("127.0.0.1")
	for i := range 3 {
		if _, err := e.auth("alice", "wrong", loopback); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		e.clock.Advance(time.Minute)
	}
	e.cmp.take()
	e.log.reset()

	// Blocked now, even with the right password, and without bcrypt.
	if _, err := e.auth("alice", "secret", loopback); !errors.Is(err, ErrThrottled) {
		t.Fatalf("4th attempt: %v, want ErrThrottled", err)
	}
	if n := len(e.cmp.take()); n != 0 {
		t.Errorf("throttled attempt ran bcrypt %d times", n)
	}
	if f := e.log.matching("authentication failed"); len(f) != 1 || f[0].attrs["reason"] != "throttled" {
		t.Errorf("throttled attempt logged %v", f)
	}
	// Other addresses are not affected, and their success changes
	// nothing for the blocked one.
	if _, err := e.auth("alice", "secret", ip2); err != nil {
		t.Errorf("other address: %v", err)
	}
	if _, err := e.auth("alice", "secret", loopback); !errors.Is(err, ErrThrottled) {
		t.Errorf("after another address logged in: %v, want ErrThrottled", err)
	}

	// The block lasts ThrottleWindow from the last counted failure
	// (at minute 2; the clock is at minute 3).
	e.clock.Advance(9*time.Minute - time.Second)
	if _, err := e.auth("alice", "secret", loopback); !errors.Is(err, ErrThrottled) {
		t.Errorf("just before the window ends: %v, want ErrThrottled", err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.auth("alice", "secret", loopback); err != nil {
		t.Errorf("after the window: %v", err)
	}
	// The count starts afresh.
	for range 2 {
		e.auth("alice", "wrong", loopback)
	}
	if _, err := e.auth("alice", "secret", loopback); err != nil {
		t.Errorf("2 failures into a new window: %v", err)
	}
}

// Failures in different windows never add up to a block.
func TestThrottleWindowExpires(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) {
		o.ThrottleFailures = 3
		o.ThrottleWindow = 10 * time.Minute
	})
	for i := range 10 {
		if _, err := e.auth("alice", "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		if i%2 == 1 {
			e.clock.Advance(10 * time.Minute)
		}
	}
}

func TestThrottleDefaultsAndDisable(t *testing.T) {
	e := newEnv(t, usersFile(t), nil)
	if e.a.throttle.limit != DefaultThrottleFailures || e.a.throttle.window != DefaultThrottleWindow ||
		e.a.throttle.maxEntries != DefaultMaxThrottleEntries {
		t.Errorf("throttle %d/%v/%d, want defaults", e.a.throttle.limit, e.a.throttle.window, e.a.throttle.maxEntries)
	}
	for i := range DefaultThrottleFailures {
		if _, err := e.auth("alice", "wrong", ip1); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := e.auth("alice", "secret", ip1); !errors.Is(err, ErrThrottled) {
		t.Errorf("after %d failures: %v", DefaultThrottleFailures, err)
	}

	e = newEnv(t, usersFile(t), func(o *Options) { o.ThrottleFailures = -1 })
	for range 2 * DefaultThrottleFailures {
		e.auth("alice", "wrong", ip1)
	}
	if _, err := e.auth("alice", "secret", ip1); err != nil {
		t.Errorf("throttling disabled, yet: %v", err)
	}
}

// All addresses of one IPv6 /64 share a budget; an IPv4-mapped address
// counts as the IPv4 address.
func TestThrottleKeys(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) { o.ThrottleFailures = 2 })
	e.auth("alice", "wrong", netip.MustParseAddr("2001:db8:1:2::1"))
	e.auth("alice", "wrong", netip.MustParseAddr("2001:db8:1:2:ffff::99%eth0"))
	if _, err := e.auth("alice", "secret", netip.MustParseAddr("2001:db8:1:2::abcd")); !errors.Is(err, ErrThrottled) {
		t.Errorf("same /64: %v, want ErrThrottled", err)
	}
	if _, err := e.auth("alice", "secret", netip.MustParseAddr("2001:db8:1:3::1")); err != nil {
		t.Errorf("next /64: %v", err)
	}

	e.auth("alice", "wrong", netip.MustParseAddr("198.51.100.1"))
	e.auth("alice", "wrong", netip.MustParseAddr("::ffff:198.51.100.1"))
	if _, err := e.auth("alice", "secret", netip.MustParseAddr("198.51.100.1")); !errors.Is(err, ErrThrottled) {
		t.Errorf("mapped IPv4: %v, want ErrThrottled", err)
	}
	if _, err := e.auth("alice", "secret", netip.MustParseAddr("198.51.100.2")); err != nil {
		t.Errorf("neighbouring IPv4: %v", err)
	}
}

// The throttle's memory stays bounded: expired entries are pruned and at the
// cap the entry closest to expiry makes room.
func TestThrottleBounded(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) {
		o.ThrottleFailures = 2
		o.ThrottleWindow = time.Minute
		o.MaxThrottleEntries = 4
	})
	addr := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", i)) }

	// A blocked address, then many others failing once each.
	e.auth("alice", "wrong", addr(200))
	e.auth("alice", "wrong", addr(200))
	for i := range 20 {
		e.auth("alice", "wrong", addr(i))
		if n := e.a.throttle.size(); n > 4 {
			t.Fatalf("%d entries, cap 4", n)
		}
	}
	// Entries whose window has passed go at the next prune.
	e.clock.Advance(2 * time.Minute)
	e.auth("alice", "wrong", addr(100))
	if n := e.a.throttle.size(); n != 1 {
		t.Errorf("%d entries after expiry, want 1", n)
	}
	// Successful logins from addresses without failures cost nothing.
	for i := range 20 {
		e.auth("alice", "secret", addr(i))
	}
	if n := e.a.throttle.size(); n != 1 {
		t.Errorf("%d entries after successful logins, want 1", n)
	}
}

// Once an address has failed, its attempts in flight count against its
// budget: opening many connections at once buys no extra guesses.
func TestThrottleConcurrentAttempts(t *testing.T) {
	e := newEnv(t, usersFile(t), func(o *Options) {
		o.ThrottleFailures = 3
		o.MaxConcurrentHashes = 10
	})
	e.auth("alice", "wrong", ip1) // one failure on record

	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	e.a.compare = func(hash, password []byte) error {
		entered <- struct{}{}
		<-release
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	const n = 6
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.auth("alice", "wrong", ip1)
			errs <- err
		}()
	}
	// 2 attempts fit in the budget (3 - 1 failure); the other 4 are
	// refused at once, while those 2 are still running.
	for range n - 2 {
		if err := <-errs; !errors.Is(err, ErrThrottled) {
			t.Errorf("err = %v, want ErrThrottled", err)
		}
	}
	<-entered
	<-entered
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("admitted attempt: %v, want ErrInvalidCredentials", err)
		}
	}
	if _, err := e.auth("alice", "secret", ip1); !errors.Is(err, ErrThrottled) {
		t.Errorf("after 3 failures: %v, want ErrThrottled", err)
	}
}
