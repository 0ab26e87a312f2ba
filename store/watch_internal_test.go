package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The watches of a newly opened folder are added after its first load, on
// their own goroutine. A message delivered after the load looked and
// before the watches are in place must still reach the folder's watchers,
// with nobody reading the folder and no poller: one check is scheduled
// once they are.
func TestChangeBeforeWatchesArrive(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	s, err := Open(Options{PathTemplate: tmpl, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("alice")
	ctx := context.Background()
	// Make the folder and a message with another store, as another
	// process would.
	{
		s2, err := Open(Options{PathTemplate: tmpl, NoWatch: true})
		if err != nil {
			t.Fatal(err)
		}
		u2, _ := s2.User("alice")
		m2, err := u2.Open(ctx, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m2.Append(ctx, strings.NewReader("Subject: 1\n\nx\n"), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		m2.Close()
		s2.Close()
	}
	appended := make(chan uint32, 4)
	s.hooks.watchAdd = func(b *box) {
		for {
			b.mu.RLock()
			loaded := b.loaded
			b.mu.RUnlock()
			if loaded {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.mu.Lock()
		(&Mailbox{b: b}).watchLocked(func(c Change) {
			if c.Kind == Appended {
				appended <- c.UID
			}
		})
		b.mu.Unlock()
		// An MDA delivers now: no watch sees it.
		name := filepath.Join(b.path, "new", "1800000000.M1P1.mda")
		if err := os.WriteFile(name, []byte("Subject: 2\n\ny\n"), 0o600); err != nil {
			t.Error(err)
		}
	}
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	select {
	case uid := <-appended:
		if uid != 2 {
			t.Errorf("appended UID %d, want 2", uid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a delivery between the load and the watches was never noticed")
	}
}
