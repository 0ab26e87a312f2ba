package store_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Tests on two mounts of one shared file system (two hosts, as far as the
// store can tell): deploy/glusterfs/test.sh sets LETTERBOX_TEST_SHARED_ROOTS
// to the two mount points and runs
//
//	deploy/glusterfs/test.sh -- go test -count=1 -run TestShared ./store
func sharedRoots(t *testing.T) (string, string) {
	v := os.Getenv("LETTERBOX_TEST_SHARED_ROOTS")
	a, b, ok := strings.Cut(v, ":")
	if !ok {
		t.Skip("LETTERBOX_TEST_SHARED_ROOTS=<mount 1>:<mount 2> not set (deploy/glusterfs/test.sh sets it)")
	}
	dir := fmt.Sprintf("store-%s-%d", t.Name(), time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(a, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(a, dir)) })
	return filepath.Join(a, dir), filepath.Join(b, dir)
}

// The lock and the files it guards, seen from two mounts: a counter kept
// in a file and incremented under the lock by both sides ends at the sum.
func TestSharedLockAndData(t *testing.T) {
	a, b := sharedRoots(t)
	var wg sync.WaitGroup
	const n = 200
	for _, root := range []string{a, b} {
		wg.Add(1)
		go func(root string) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := store.WithFolderLockForTest(root, func() error {
					p := filepath.Join(root, "counter")
					data, _ := os.ReadFile(p)
					v, _ := strconv.Atoi(strings.TrimSpace(string(data)))
					f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = fmt.Fprintf(f, "%d\n", v+1)
					if err == nil {
						err = f.Sync()
					}
					// Keep only the last line: read what we wrote back.
					all, _ := os.ReadFile(p)
					lines := strings.Split(strings.TrimSpace(string(all)), "\n")
					return os.WriteFile(p, []byte(lines[len(lines)-1]+"\n"), 0o600)
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}(root)
	}
	wg.Wait()
	data, _ := os.ReadFile(filepath.Join(a, "counter"))
	if v, _ := strconv.Atoi(strings.TrimSpace(string(data))); v != 2*n {
		t.Errorf("counter %d, want %d", v, 2*n)
	}
}

// Two stores, one on each mount, do what TestInstancesAgree does.
func TestSharedInstances(t *testing.T) {
	a, b := sharedRoots(t)
	ctx := context.Background()
	l := newLedger()
	var insts []*workload
	var mirrors []*mirror
	for i, root := range []string{a, b} {
		_, u := newUser(t, store.Options{PathTemplate: filepath.Join(root, "{user}", "Maildir"), PollInterval: 20 * time.Millisecond})
		w := &workload{t: t, u: u, inbox: openBox(t, u, "INBOX"), archive: openBox(t, u, "Archive"), l: l, tag: fmt.Sprintf("m%d", i)}
		insts = append(insts, w)
		mirrors = append(mirrors, watch(t, w.inbox, fmt.Sprintf("mount %d", i)))
	}
	var wg sync.WaitGroup
	for i, w := range insts {
		wg.Add(1)
		go func(w *workload, seed int64) {
			defer wg.Done()
			if err := w.run(60, seed); err != nil {
				t.Error(err)
			}
		}(w, int64(i))
	}
	wg.Wait()
	sa, _ := snapshotOf(t, insts[0].inbox)
	sb, _ := snapshotOf(t, insts[1].inbox)
	if sa != sb {
		t.Errorf("mounts disagree:\n%s\nvs\n%s", sa, sb)
	}
	for i, w := range insts {
		mirrors[i].check(t, w.inbox)
	}
	l.check(t, insts[0].inbox, insts[0].archive)
	checkUidlist(t, insts[0].u.Root())
	_ = ctx
}

// One at a time, from either side: each must see the other's last append.
func TestSharedAlternate(t *testing.T) {
	a, b := sharedRoots(t)
	ctx := context.Background()
	var boxes []*store.Mailbox
	for _, root := range []string{a, b} {
		_, u := newUser(t, store.Options{PathTemplate: filepath.Join(root, "{user}", "Maildir"), NoWatch: true})
		boxes = append(boxes, openBox(t, u, "INBOX"))
	}
	var want []uint32
	for i := 0; i < 20; i++ {
		m := boxes[i%2]
		uid, err := m.Append(ctx, strings.NewReader(mailText(fmt.Sprint("<", i, "@alt>"))), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, uid)
		other := boxes[(i+1)%2]
		if got := uids(t, other); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after append %d (UID %d) on mount %d, mount %d sees %v, want %v", i, uid, i%2, (i+1)%2, got, want)
		}
	}
}

// What a reader on the other mount sees of a file just appended to under
// the lock: its size by stat and fstat, and its bytes read to the end. This
// fails on a GlusterFS volume with its client-side caches on (the default):
// the store cannot be shared on such a volume (README "Scaling out").
func TestSharedAppendVisibility(t *testing.T) {
	a, b := sharedRoots(t)
	p := filepath.Join(a, "f")
	os.WriteFile(p, nil, 0o600)
	staleStat, staleRead := 0, 0
	want := 0
	const rounds = 60
	for i := 0; i < rounds; i++ {
		writer, reader := a, b
		if os.Getenv("ALTERNATE") != "" && i%2 == 1 {
			writer, reader = b, a
		}
		if i%3 == 0 {
			os.Stat(filepath.Join(reader, "f")) // the reader looked a moment ago
		}
		store.WithFolderLockForTest(writer, func() error {
			f, _ := os.OpenFile(filepath.Join(writer, "f"), os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("0123456789"))
			f.Close()
			return nil
		})
		want += 10
		store.WithFolderLockForTest(reader, func() error {
			f, _ := os.Open(filepath.Join(reader, "f"))
			defer f.Close()
			fi, _ := f.Stat()
			if int(fi.Size()) != want {
				staleStat++
			}
			if pfi, _ := os.Stat(filepath.Join(reader, "f")); int(pfi.Size()) != want {
				staleStat += 1000
			}
			data, _ := io.ReadAll(f)
			if len(data) != want {
				staleRead++
			}
			return nil
		})
	}
	t.Logf("of %d appends: %d stale sizes by fstat (+1000 by stat), %d short reads", rounds, staleStat, staleRead)
	if staleStat+staleRead > 0 {
		t.Errorf("stale views across mounts")
	}
}

// POP3's maildrop lock (an flock) holds across mounts: a second session on
// another host gets ErrLocked.
func TestSharedTryLock(t *testing.T) {
	a, b := sharedRoots(t)
	_, ua := newUser(t, store.Options{PathTemplate: filepath.Join(a, "{user}", "Maildir"), NoWatch: true})
	_, ub := newUser(t, store.Options{PathTemplate: filepath.Join(b, "{user}", "Maildir"), NoWatch: true})
	release, err := ua.TryLock("pop3")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ub.TryLock("pop3"); err == nil {
		r()
		t.Error("the other mount took the lock too")
	}
	release()
	r, err := ub.TryLock("pop3")
	if err != nil {
		t.Errorf("after release: %v", err)
	} else {
		r()
	}
}
