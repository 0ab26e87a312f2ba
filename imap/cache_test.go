package imap

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
	"github.com/letterbox-mail/letterbox/store"
)

// The persistent cache: what clients fetch in bulk, SORT and THREAD, and
// SEARCH of cached header fields are answered from the store's cache, also
// by a new process.

// cachedCommands are answered from the cache once it is filled.
var cachedCommands = []string{
	"UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID References)])",
	"UID FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)",
	"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (X-Mailer List-Id)] BODY.PEEK[HEADER.FIELDS (content-type)])",
	"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (Received X-Custom)])", // not in the default set: kept once asked for
	"SORT (SUBJECT) UTF-8 ALL",
	"SORT (REVERSE DATE) UTF-8 ALL",
	"UID SORT (DISPLAYFROM SIZE) UTF-8 ALL",
	"UID SORT (TO CC ARRIVAL) UTF-8 ALL",
	"THREAD REFERENCES UTF-8 ALL",
	"UID THREAD ORDEREDSUBJECT UTF-8 ALL",
	"UID SEARCH FROM example",
	`SEARCH OR SUBJECT "re:" HEADER Message-ID "@"`,
	"SEARCH SENTSINCE 1-Jan-2000 TO alice",
}

// cacheBox puts the test messages, and the SORT and THREAD ones, into
// alice's INBOX.
func cacheBox(t *testing.T, e *testEnv) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.eml"))
	for i, f := range files {
		raw := readFile(t, f)
		if !strings.Contains(f, "lf-only") {
			raw = onWire(raw)
		}
		e.appendMsgAt("alice", "INBOX", "X-Custom: "+itoa(i)+"\r\n"+string(raw), 0, time.Date(2021, 3, 1+i, 8, 0, 0, 0, time.UTC))
	}
	sortBox(t, e)
}

// answers runs the commands in a new session and returns what each said.
func answers(e *testEnv) []string {
	c := e.login("alice")
	c.ok("s EXAMINE INBOX")
	var out []string
	for i, cmd := range cachedCommands {
		u := c.ok("c" + itoa(i) + " " + cmd)
		out = append(out, strings.Join(u, "\n"))
	}
	c.ok("z LOGOUT")
	return out
}

// scramble replaces every letter and digit of the message files with "z",
// keeping their sizes, line ends and dates: a server that read them again
// would answer differently.
func scramble(t *testing.T, root string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"cur", "new"} {
		files, _ := filepath.Glob(filepath.Join(root, sub, "*"))
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			b := readFile(t, f)
			for i, c := range b {
				if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
					b[i] = 'z'
				}
			}
			if err := os.WriteFile(f, b, fi.Mode()); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

// After a restart (a new store.Store and Server on the same directory),
// header fields, ENVELOPE, BODYSTRUCTURE, SORT, THREAD and header SEARCH
// come from the cache: the message files, scrambled meanwhile, are not
// read. Only what needs the text reads it.
func TestCacheAfterRestart(t *testing.T) {
	e := newEnv(t)
	cacheBox(t, e)
	root := e.user("alice").Root()
	before := answers(e)
	c := e.login("alice")
	c.ok("s EXAMINE INBOX")
	partSizes := literalSizes(c.ok("p UID FETCH 1:7 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[1.MIME])"))
	if len(partSizes) != 21 {
		t.Fatalf("part sizes %v", partSizes)
	}
	for i, a := range before {
		if a == "" && !strings.Contains(cachedCommands[i], "SEARCH") {
			t.Fatalf("%s: nothing", cachedCommands[i])
		}
	}
	e.stop()
	if n := scramble(t, root); n != 12 {
		t.Fatalf("scrambled %d files", n)
	}
	e2 := newEnv(t, withDir(e.dir))
	after := answers(e2)
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("%s after the restart:\n%s\nbefore:\n%s", cachedCommands[i], after[i], before[i])
		}
	}
	// The files are scrambled indeed: the text comes from them, and
	// the parts are found where the cached tree says, not parsed again
	// (a scrambled file has no parts: BODY[1] would be all of it).
	c = e2.login("alice")
	c.ok("s EXAMINE INBOX")
	if got := literalSizes(c.ok("p UID FETCH 1:7 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[1.MIME])")); !slices.Equal(got, partSizes) {
		t.Errorf("part sizes after the restart %v, before %v", got, partSizes)
	}
	if u := c.ok("f FETCH 1 (BODY.PEEK[TEXT]<0.20>)"); len(u) != 1 || !strings.Contains(u[0], "zzzz") {
		t.Errorf("text of a scrambled file: %q", u)
	}
	// "Subject" is "zzzzzzz" now; that name was never asked for, so it
	// is looked for in the file.
	if u := c.ok("f UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (zzzzzzz)])"); !strings.Contains(strings.Join(u, ""), "zzzzzzz: zzz") {
		t.Errorf("a field not kept is read from the file: %q", u)
	}
}

// The cache can be deleted at any time: the answers are made again from
// the files.
func TestCacheDeleted(t *testing.T) {
	e := newEnv(t)
	cacheBox(t, e)
	root := e.user("alice").Root()
	before := answers(e)
	e.stop()
	if err := os.Remove(filepath.Join(root, "letterbox-cache")); err != nil {
		t.Fatal(err)
	}
	after := answers(newEnv(t, withDir(e.dir)))
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("%s without the cache:\n%s\nbefore:\n%s", cachedCommands[i], after[i], before[i])
		}
	}
}

// An item of another version (a format change), or one that does not
// decode, is made again from the file and replaced.
func TestCacheItemVersion(t *testing.T) {
	e := newEnv(t)
	uid := e.appendMsg("alice", "INBOX", "From: Ann <ann@x.test>\r\nSubject: versions\r\n\r\nbody\r\n", 0)
	mbox, err := e.user("alice").Open(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer mbox.Close()
	mbox.Cache(uid,
		store.CacheItem{Key: keyHeader, Value: []byte{cacheVersion + 1, 0, 0, 0}},
		store.CacheItem{Key: keyEnvelope, Value: []byte{cacheVersion, 0xff}},
		store.CacheItem{Key: keySortKeys, Value: nil},
		store.CacheItem{Key: keyStructure, Value: []byte{cacheVersion + 7}})
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	u := c.ok("f FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (Subject)] BODYSTRUCTURE)")
	want := `* 1 FETCH (ENVELOPE (NIL "versions" (("Ann" NIL "ann" "x.test")) (("Ann" NIL "ann" "x.test")) (("Ann" NIL "ann" "x.test")) NIL NIL NIL NIL NIL) ` +
		"BODY[HEADER.FIELDS (Subject)] {21}\r\nSubject: versions\r\n\r\n " +
		`BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL))`
	if len(u) != 1 || u[0] != want {
		t.Errorf("from a stale cache:\n%q\nwant\n%q", u, want)
	}
	c.ok("s SORT (SUBJECT) UTF-8 ALL")
	for _, k := range []store.CacheKey{keyHeader, keyEnvelope, keySortKeys, keyStructure} {
		v, ok := mbox.Cached(uid, k)
		if !ok || len(v) == 0 || v[0] != cacheVersion {
			t.Errorf("item %d not made again: %v", k, v)
		}
	}
}

// The keys kept in memory are bounded, by mailbox, least recently used
// first; a mailbox bigger than the bound keeps what fits.
func TestKeyCacheBound(t *testing.T) {
	c := newKeyCache(5)
	a, b, big := boxID{"a", 1}, boxID{"b", 1}, boxID{"big", 1}
	k := func(s string) *mailsort.Keys { return &mailsort.Keys{Subject: s} }
	c.add(a, []uint32{1, 2}, []*mailsort.Keys{k("a1"), k("a2")})
	c.add(b, []uint32{1, 2, 3}, []*mailsort.Keys{k("b1"), k("b2"), k("b3")})
	keys := make([]mailsort.Keys, 3)
	if miss := c.lookup(a, []uint32{2, 3, 1}, keys); len(miss) != 1 || miss[0] != 1 || keys[0].Subject != "a2" || keys[2].Subject != "a1" {
		t.Fatalf("lookup: missing %v, keys %v", miss, keys)
	}
	// a was used last: b goes when more comes.
	c.add(a, []uint32{3}, []*mailsort.Keys{k("a3")})
	if miss := c.lookup(b, []uint32{1}, keys); len(miss) != 1 {
		t.Errorf("b kept: %v", keys[0])
	}
	if c.n != 3 {
		t.Errorf("%d keys counted, want 3", c.n)
	}
	uids := []uint32{1, 2, 3, 4, 5, 6, 7}
	many := make([]*mailsort.Keys, len(uids))
	for i := range many {
		many[i] = k("x")
	}
	c.add(big, uids, many)
	if c.n != 5 || len(c.boxes) != 1 {
		t.Errorf("%d keys in %d mailboxes, want 5 in 1", c.n, len(c.boxes))
	}
	var off *keyCache
	if miss := off.lookup(a, []uint32{1, 2}, keys); len(miss) != 2 {
		t.Errorf("no cache: missing %v", miss)
	}
	off.add(a, []uint32{1}, many[:1])
}

// MaxCachedSortKeys: the default, a bound, none.
func TestMaxCachedSortKeys(t *testing.T) {
	for _, tt := range []struct{ set, want int }{{0, DefaultMaxCachedSortKeys}, {3, 3}, {-1, 0}} {
		e := newEnv(t, withServer(func(s *Server) { s.MaxCachedSortKeys = tt.set }))
		sortBox(t, e)
		c := e.login("alice")
		c.ok("s SELECT INBOX")
		if u := c.ok("a SORT (SUBJECT) UTF-8 ALL"); u[0] != "* SORT 4 2 5 1 3" {
			t.Errorf("MaxCachedSortKeys %d: %q", tt.set, u)
		}
		got := 0
		if e.srv.keys != nil {
			e.srv.keys.mu.Lock()
			got = e.srv.keys.max
			if e.srv.keys.n > got {
				t.Errorf("MaxCachedSortKeys %d: %d keys kept", tt.set, e.srv.keys.n)
			}
			e.srv.keys.mu.Unlock()
		}
		if got != tt.want {
			t.Errorf("MaxCachedSortKeys %d: bound %d, want %d", tt.set, got, tt.want)
		}
	}
}

var literalRE2 = regexp.MustCompile(`\{(\d+)\}\r\n|\] ""|\] NIL`)

// literalSizes lists the sizes of the literals in FETCH responses, 0 for
// an empty string or NIL.
func literalSizes(untagged []string) []string {
	var out []string
	for _, l := range untagged {
		for _, m := range literalRE2.FindAllStringSubmatch(l, -1) {
			if m[1] == "" {
				m[1] = "0"
			}
			out = append(out, m[1])
		}
	}
	return out
}
