package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// A loginCache remembers for a while that a user logged in with a given
// password, so that a client logging in for every mail check (phones,
// fetchmail on a timer, webmails) pays for bcrypt once per TTL instead of
// at every login: at cost 10 one comparison takes some 60 ms of a core,
// which caps a two-core server at about 30 logins a second.
//
// What it keeps is no password and nothing usable outside this process:
// an HMAC-SHA256, under a key drawn at start and never written anywhere,
// of the password together with the user's stored hash. So a password
// changed in the users file (a new hash) no longer matches at once, and a
// user removed from it is refused before the cache is looked at. Only
// successes are remembered; a wrong password always costs a bcrypt
// comparison, the failure delay and a throttle count, as before.
//
// The price: for a process memory dump, a remembered password is a fast
// hash to attack rather than a bcrypt one. Whoever can read this process's
// memory can also read every mailbox and the TLS keys, so the cache is on
// by default, like an auth cache set up in Dovecot; TTL 0 turns it off.
type loginCache struct {
	key [32]byte
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]loginEntry // by canonical user name
}

type loginEntry struct {
	mac   [sha256.Size]byte
	until time.Time
}

// newLoginCache returns a cache keeping successes for ttl, at most max
// users; nil (no caching) if ttl is not positive.
func newLoginCache(ttl time.Duration, max int) *loginCache {
	if ttl <= 0 || max <= 0 {
		return nil
	}
	c := &loginCache{ttl: ttl, max: max, m: make(map[string]loginEntry)}
	rand.Read(c.key[:]) // never fails (crypto/rand panics instead)
	return c
}

func (c *loginCache) mac(hash []byte, password string) (sum [sha256.Size]byte) {
	h := hmac.New(sha256.New, c.key[:])
	h.Write(hash)
	h.Write([]byte{0}) // a bcrypt hash has no NUL: the two parts cannot run together
	h.Write([]byte(password))
	h.Sum(sum[:0])
	return sum
}

// hit reports whether user logged in with this password (against this
// stored hash) less than ttl ago.
func (c *loginCache) hit(user string, hash []byte, password string, now time.Time) bool {
	if c == nil {
		return false
	}
	sum := c.mac(hash, password)
	c.mu.Lock()
	e, ok := c.m[user]
	c.mu.Unlock()
	return ok && now.Before(e.until) && hmac.Equal(e.mac[:], sum[:])
}

// remember records a successful bcrypt check. A full cache first drops
// what has expired, then, if still full, an arbitrary entry: the cost of
// a wrong guess about which to keep is one bcrypt comparison.
func (c *loginCache) remember(user string, hash []byte, password string, now time.Time) {
	if c == nil {
		return
	}
	e := loginEntry{mac: c.mac(hash, password), until: now.Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[user]; !ok && len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[user] = e
}
