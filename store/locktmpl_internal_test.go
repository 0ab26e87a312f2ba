package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A folder's dotlock made from its template looks to others exactly like
// a new lock file: filled with our "<pid>:<host>", mtime now however old
// the template is, gone when released; a template cleaned away is made
// again; a lock our release left behind does not stall us; the template
// goes when the store closes.
func TestLockTemplate(t *testing.T) {
	s, err := Open(Options{PathTemplate: filepath.Join(t.TempDir(), "{user}", "Maildir"), NoWatch: true, LockTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := s.User("alice")
	ctx := context.Background()
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, strings.NewReader("Subject: a\n\nx\n"), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	b := m.b
	lockPath := filepath.Join(b.path, uidlistName+".lock")
	take := func(what string) *dotlock {
		t.Helper()
		b.mu.Lock()
		defer b.mu.Unlock()
		l, err := b.lockFolder(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return l
	}
	b.mu.RLock()
	tmpl := b.lockTmpl
	b.mu.RUnlock()
	if !strings.HasPrefix(tmpl, filepath.Join(b.path, "tmp", lockTmplPrefix)) {
		t.Fatalf("no template in tmp/ after a change: %q", tmpl)
	}
	if _, err := os.Stat(lockPath); !os.IsNotExist(err) {
		t.Fatalf("lock left after the append: %v", err)
	}

	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(tmpl, old, old); err != nil {
		t.Fatal(err)
	}
	l := take("first")
	st, err := readLockState(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := (lockOwner{pid: os.Getpid(), host: thisHost()}); !st.known || st.owner != want {
		t.Errorf("lock names %v, want %v", st.owner, want)
	}
	if age := time.Since(st.mtime); age > time.Minute {
		t.Errorf("lock is %v old: other hosts would break it", age)
	}
	if !l.held() {
		t.Error("a lock just taken is not held")
	}
	l.release()
	if _, err := os.Stat(lockPath); !os.IsNotExist(err) {
		t.Fatalf("lock left after release: %v", err)
	}

	// Cleaned away (cleanTmp of another process, an admin): made again.
	if err := os.Remove(tmpl); err != nil {
		t.Fatal(err)
	}
	take("template gone").release()
	b.mu.RLock()
	again := b.lockTmpl
	b.mu.RUnlock()
	if again == "" || again == tmpl {
		t.Errorf("template not made again: %q", again)
	}
	if _, err := os.Stat(again); err != nil {
		t.Error(err)
	}

	// A link of our own template on the lock's name that nobody holds
	// (a release that failed) must not wait for the lock timeout.
	if err := os.Link(again, lockPath); err != nil {
		t.Fatal(err)
	}
	// No time to wait: taking it must not need to.
	b.mu.Lock()
	l, err = acquireDotlockWith(ctx, lockPath, 0, 0o600, b.linkLock)
	b.mu.Unlock()
	if err != nil {
		t.Fatalf("a left-over lock of ours stalled the next taker: %v", err)
	}
	l.release()

	// Someone else's lock, alive, is waited for: not taken over as ours.
	other := []byte("1:" + thisHost() + "\n") // PID 1 is alive
	if err := os.WriteFile(lockPath, other, 0o600); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	_, err = acquireDotlockWith(ctx, lockPath, 300*time.Millisecond, 0o600, b.linkLock)
	b.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("took a lock held by a live process: %v", err)
	}
	os.Remove(lockPath)

	m.Close()
	s.Close()
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Errorf("template left after the store closed: %v", err)
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(lockPath, &sys); err == nil {
		t.Error("lock left after the store closed")
	}
}
