package auth

import (
	"net/netip"
	"sync"
	"time"
)

// throttle counts failed logins per client address and refuses an address
// that failed too often, before any bcrypt work is spent on it.
//
// An address is blocked for window after its limit-th failure within window
// of its first one. Memory is bounded: expired entries are pruned, and at
// maxEntries the entry closest to expiry is dropped. Attempts in flight from
// an address that has already failed count against its budget, so opening
// many connections at once buys no extra guesses.
type throttle struct {
	limit      int // failures before blocking; <= 0 disables throttling
	window     time.Duration
	maxEntries int

	mu        sync.Mutex
	entries   map[netip.Addr]*throttleEntry
	lastPrune time.Time
}

type throttleEntry struct {
	failures     int
	pending      int       // admitted attempts not yet finished
	start        time.Time // first failure of the current window
	blockedUntil time.Time // set when failures reaches the limit
}

func newThrottle(limit int, window time.Duration, maxEntries int) *throttle {
	// At least one entry, or insert could never make room.
	maxEntries = max(maxEntries, 1)
	return &throttle{
		limit:      limit,
		window:     window,
		maxEntries: maxEntries,
		entries:    make(map[netip.Addr]*throttleEntry),
	}
}

// throttleKey maps a client address to its throttle bucket. IPv6 clients are
// grouped by /64: one host or home network normally owns a whole /64, so
// counting single IPv6 addresses would let it rotate through 2^64 fresh ones.
// An IPv4 address mapped into IPv6 counts as the IPv4 address.
func throttleKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return ip
}

// expiry is when the entry stops mattering.
func (e *throttleEntry) expiry(window time.Duration) time.Time {
	if !e.blockedUntil.IsZero() {
		return e.blockedUntil
	}
	return e.start.Add(window)
}

// live reports whether the entry still holds failures that count at now.
func (e *throttleEntry) live(now time.Time, window time.Duration) bool {
	return e.failures > 0 && now.Before(e.expiry(window))
}

func (e *throttleEntry) reset() {
	e.failures = 0
	e.start = time.Time{}
	e.blockedUntil = time.Time{}
}

// admit decides whether an attempt from key may run. When it returns true the
// caller must call done with the returned entry (which may be nil).
func (t *throttle) admit(key netip.Addr, now time.Time) (*throttleEntry, bool) {
	if t.limit <= 0 {
		return nil, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		// No failures on record: nothing to limit, and no entry is
		// made, so successful logins from many addresses cost no
		// memory. (A burst of simultaneous first attempts is not
		// counted; each still pays bcrypt and the failure delay.)
		return nil, true
	}
	if !e.live(now, t.window) {
		e.reset()
	}
	if !e.blockedUntil.IsZero() {
		return nil, false
	}
	if e.failures > 0 && e.failures+e.pending >= t.limit {
		return nil, false
	}
	e.pending++
	return e, true
}

// done records the outcome of an admitted attempt. A success clears nothing:
// an attacker holding one valid account must not be able to reset the count
// for the guesses made at other accounts from the same address.
func (t *throttle) done(key netip.Addr, e *throttleEntry, failed bool, now time.Time) {
	if t.limit <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e != nil {
		// e may have been evicted meanwhile; then this only updates
		// an unreachable struct, which is harmless.
		e.pending--
	}
	if !failed {
		if e != nil && e.failures == 0 && e.pending == 0 && t.entries[key] == e {
			delete(t.entries, key)
		}
		return
	}
	cur := t.entries[key]
	if cur == nil {
		cur = &throttleEntry{}
		t.insert(key, cur, now)
	}
	if !cur.live(now, t.window) {
		cur.reset()
	}
	if cur.failures == 0 {
		cur.start = now
	}
	cur.failures++
	if cur.failures >= t.limit {
		cur.blockedUntil = now.Add(t.window)
	}
	if now.Sub(t.lastPrune) >= t.window {
		t.prune(now)
	}
}

// insert adds an entry, making room first if the map is full.
func (t *throttle) insert(key netip.Addr, e *throttleEntry, now time.Time) {
	if len(t.entries) >= t.maxEntries {
		t.prune(now)
	}
	for len(t.entries) >= t.maxEntries {
		// Still full of live entries (many addresses failing at
		// once): drop the one that would expire first, the least
		// valuable to keep. O(n), but only after a failed bcrypt,
		// which costs far more.
		var victim netip.Addr
		var victimExp time.Time
		first := true
		for k, v := range t.entries {
			if exp := v.expiry(t.window); first || exp.Before(victimExp) {
				victim, victimExp, first = k, exp, false
			}
		}
		delete(t.entries, victim)
	}
	t.entries[key] = e
}

// prune drops entries whose failures have expired and that have no attempt
// in flight.
func (t *throttle) prune(now time.Time) {
	t.lastPrune = now
	for k, e := range t.entries {
		if e.pending <= 0 && !e.live(now, t.window) {
			delete(t.entries, k)
		}
	}
}

// size returns the number of tracked addresses (for tests).
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
