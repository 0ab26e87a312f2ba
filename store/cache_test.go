package store_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

const (
	keyA store.CacheKey = 16
	keyB store.CacheKey = 17
)

func cacheValue(uid uint32, key store.CacheKey) []byte {
	return []byte(fmt.Sprintf("value of %d for key %d %s", uid, key, strings.Repeat("x", 500+int(uid%50))))
}

func appendN(t *testing.T, m *store.Mailbox, n int) []uint32 {
	t.Helper()
	var out []uint32
	for i := 0; i < n; i++ {
		uid, err := m.Append(context.Background(), strings.NewReader(mailText(fmt.Sprintf("<%d@cache>", i))), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, uid)
	}
	return out
}

// Items cached by one process are there for the next one, merged per
// message, and the internal date is among them.
func TestCacheSurvivesRestart(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	s, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := s.User("alice")
	m, _ := u.Open(context.Background(), "INBOX")
	uids := appendN(t, m, 20)
	for _, uid := range uids {
		m.Cache(uid, store.CacheItem{Key: keyA, Value: cacheValue(uid, keyA)})
	}
	m.Cache(uids[3], store.CacheItem{Key: keyB, Value: cacheValue(uids[3], keyB)})
	if v, ok := m.Cached(uids[3], keyA); !ok || string(v) != string(cacheValue(uids[3], keyA)) {
		t.Errorf("merge lost the first item: %q %v", v, ok)
	}
	m.Close()
	s.Close()

	s2, _ := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	defer s2.Close()
	u2, _ := s2.User("alice")
	m2 := openBox(t, u2, "INBOX")
	for _, uid := range uids {
		v, ok := m2.Cached(uid, keyA)
		if !ok || string(v) != string(cacheValue(uid, keyA)) {
			t.Errorf("UID %d: %q %v after a restart", uid, v, ok)
		}
	}
	if v, ok := m2.Cached(uids[3], keyB); !ok || string(v) != string(cacheValue(uids[3], keyB)) {
		t.Errorf("second item: %q %v", v, ok)
	}
	if _, ok := m2.Cached(uids[4], keyB); ok {
		t.Error("an item nobody cached")
	}
}

// Several processes cache and read the same messages at once: whatever a
// reader gets is the right value or nothing, never another message's or a
// torn one, and the cache can be deleted at any moment meanwhile.
func TestCacheSharedAndDeletable(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	_, u0 := newUser(t, store.Options{PathTemplate: tmpl, NoWatch: true})
	all := appendN(t, openBox(t, u0, "INBOX"), 200)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	cachePath := filepath.Join(u0.Root(), "letterbox-cache")
	wg.Add(1)
	var deleted atomic.Int32
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if os.Remove(cachePath) == nil {
					deleted.Add(1)
				}
			}
		}
	}()
	var work sync.WaitGroup
	for i := 0; i < 3; i++ {
		_, u := newUser(t, store.Options{PathTemplate: tmpl, NoWatch: true})
		m := openBox(t, u, "INBOX")
		for g := 0; g < 2; g++ {
			work.Add(1)
			go func(seed int64) {
				defer work.Done()
				rng := rand.New(rand.NewSource(seed))
				// Until the cache has been deleted under us a few times
				// (a minute at most).
				deadline := time.Now().Add(time.Minute)
				for n := 0; n < 3000 || deleted.Load() < 5 && time.Now().Before(deadline); n++ {
					uid := all[rng.Intn(len(all))]
					key := []store.CacheKey{keyA, keyB}[rng.Intn(2)]
					if v, ok := m.Cached(uid, key); ok {
						if string(v) != string(cacheValue(uid, key)) {
							t.Errorf("UID %d key %d: %q", uid, key, v)
							return
						}
						continue
					}
					m.Cache(uid, store.CacheItem{Key: key, Value: cacheValue(uid, key)})
				}
			}(int64(i*2 + g))
		}
	}
	work.Wait()
	close(stop)
	wg.Wait()
	if deleted.Load() < 5 {
		t.Errorf("the cache was deleted %d times", deleted.Load())
	}
	// The messages themselves are untouched.
	if n := len(uids(t, openBox(t, u0, "INBOX"))); n != 200 {
		t.Errorf("%d messages", n)
	}
}

// A cache that keeps being rewritten stays within a bound of what the
// folder holds, and drops expunged messages.
func TestCacheBounded(t *testing.T) {
	_, u := newUser(t, store.Options{NoWatch: true})
	m := openBox(t, u, "INBOX")
	all := appendN(t, m, 50)
	big := []byte(strings.Repeat("y", 4000))
	for round := 0; round < 40; round++ {
		for _, uid := range all {
			m.Cache(uid, store.CacheItem{Key: keyA, Value: append([]byte(fmt.Sprint(round)), big...)})
		}
	}
	if _, err := m.Expunge(context.Background(), store.ExpungeOptions{UIDs: all[:40]}); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 40; round++ {
		for _, uid := range all[40:] {
			m.Cache(uid, store.CacheItem{Key: keyA, Value: append([]byte(fmt.Sprint(round)), big...)})
		}
	}
	m.Close()
	fi, err := os.Stat(filepath.Join(u.Root(), "letterbox-cache"))
	if err != nil {
		t.Fatal(err)
	}
	// 10 live messages of 4 KB, written 80 times over: a few MB at most
	// between rewrites, not the 12 MB written.
	if fi.Size() > 3<<20 {
		t.Errorf("cache is %d bytes", fi.Size())
	}
	m2 := openBox(t, u, "INBOX")
	for _, uid := range all[40:] {
		if v, ok := m2.Cached(uid, keyA); !ok || !strings.HasPrefix(string(v), "39y") {
			t.Errorf("UID %d: latest value lost (%d bytes, %v)", uid, len(v), ok)
		}
	}
}

// The internal date is kept in the cache: a new process does not stat the
// file again (its mtime is changed behind our back to prove it).
func TestInternalDateCached(t *testing.T) {
	tmpl := bigInbox(t, 10)
	s, _ := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	u, _ := s.User("big")
	m, _ := u.Open(context.Background(), "INBOX")
	want, err := m.InternalDate(3)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	s.Close()
	names, _ := filepath.Glob(filepath.Join(u.Root(), "cur", "*"))
	for _, n := range names {
		os.Chtimes(n, time.Unix(1, 0), time.Unix(1, 0))
	}
	s2, _ := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	defer s2.Close()
	u2, _ := s2.User("big")
	m2 := openBox(t, u2, "INBOX")
	if got, err := m2.InternalDate(3); err != nil || !got.Equal(want) {
		t.Errorf("internal date %v (%v), want %v", got, err, want)
	}
}

// The save date (RFC 8514) is the time of the commit that added the
// message, the same in every process; unknown for messages a rebuilt log
// found already there.
func TestSaveDate(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	_, u := newUser(t, store.Options{PathTemplate: tmpl, NoWatch: true})
	m := openBox(t, u, "INBOX")
	before := time.Now()
	uid, err := m.Append(context.Background(), strings.NewReader("Subject: x\n\ny\n"), store.AppendOptions{Date: time.Unix(1000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	saved, ok := m.SaveDate(uid)
	if !ok || saved.Before(before) || saved.After(time.Now()) {
		t.Errorf("save date %v %v, want between %v and now", saved, ok, before)
	}
	_, u2 := newUser(t, store.Options{PathTemplate: tmpl, NoWatch: true})
	m2 := openBox(t, u2, "INBOX")
	uids(t, m2)
	if other, ok := m2.SaveDate(uid); !ok || !other.Equal(saved) {
		t.Errorf("another process: %v %v, want %v", other, ok, saved)
	}
	os.Remove(filepath.Join(u.Root(), "letterbox-log"))
	_, u3 := newUser(t, store.Options{PathTemplate: tmpl, NoWatch: true})
	m3 := openBox(t, u3, "INBOX")
	uids(t, m3)
	if d, ok := m3.SaveDate(uid); ok {
		t.Errorf("after a rebuild: %v, want unknown", d)
	}
}

// Expunges older than Options.ExpungeRetention are forgotten when the log
// is next compacted: Expunged then says it cannot list everything since
// an older MODSEQ (complete false), and still lists what it remembers.
func TestExpungeRetention(t *testing.T) {
	_, u := newUser(t, store.Options{NoWatch: true, ExpungeRetention: time.Nanosecond})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	all := appendN(t, m, 5)
	var before uint64
	m.Read(ctx, func(v *store.View) { before = v.HighestModSeq() })
	if _, err := m.Expunge(ctx, store.ExpungeOptions{UIDs: all[:2]}); err != nil {
		t.Fatal(err)
	}
	if got, complete, _ := m.Expunged(ctx, before); !complete || fmt.Sprint(got) != fmt.Sprint(all[:2]) {
		t.Fatalf("before compaction: %v complete=%v", got, complete)
	}
	// Enough records to compact the log (a quarter of a megabyte).
	for i := 0; i < 3000; i++ {
		op := []store.FlagOp{store.FlagsAdd, store.FlagsRemove}[i%2]
		if _, err := m.SetFlags(ctx, all[2:3], op, store.FlagFlagged, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, complete, _ := m.Expunged(ctx, before)
	if complete || len(got) != 0 {
		t.Errorf("after compaction past the retention: %v complete=%v, want nothing remembered and complete=false", got, complete)
	}
	var now uint64
	m.Read(ctx, func(v *store.View) { now = v.HighestModSeq() })
	m.Expunge(ctx, store.ExpungeOptions{UIDs: all[3:4]})
	if got, complete, _ := m.Expunged(ctx, now); !complete || fmt.Sprint(got) != fmt.Sprint(all[3:4]) {
		t.Errorf("a new expunge: %v complete=%v", got, complete)
	}
}
