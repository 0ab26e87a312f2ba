package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lazyFolder makes a folder of n messages whose log has a snapshot of all
// of them (they were on disk before the first open) and a tail with every
// kind of commit: flags (\Seen on the first unseen one among them),
// keywords, expunges and appends. It returns the path template.
func lazyFolder(t *testing.T, n int) string {
	t.Helper()
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	root := strings.ReplaceAll(tmpl, "{user}", "alice")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		info := ""
		if i%3 != 2 { // every third unseen, from the third on
			info = "S"
		}
		name := fmt.Sprintf("17000%05d.M%dP1.lazy,S=4:2,%s", i, i, info)
		if err := os.WriteFile(filepath.Join(root, "cur", name), []byte("a\r\nb\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(Options{PathTemplate: tmpl, NoWatch: true, LazyLoadMin: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("alice")
	ctx := context.Background()
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.SetFlags(ctx, []uint32{3}, FlagsAdd, FlagSeen, []string{"$Label1"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetFlags(ctx, []uint32{1}, FlagsRemove, FlagSeen, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetFlags(ctx, []uint32{2, 4}, FlagsAdd, FlagDeleted, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Expunge(ctx, ExpungeOptions{OnlyDeleted: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ClaimRecent(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Flag{FlagSeen, 0} {
		if _, err := m.Append(ctx, strings.NewReader("new\n"), AppendOptions{Flags: f, Keywords: []string{"later"}}); err != nil {
			t.Fatal(err)
		}
	}
	return tmpl
}

// selectView is what SELECT takes from a view.
type selectView struct {
	uids                      []uint32
	n, firstUnseen, recent    int
	uidNext, uidValidity      uint32
	highestModSeq             uint64
	keywords                  []string
	seqOf5, searchUID5, uidAt int
}

func takeSelectView(v *View) selectView {
	return selectView{
		uids: v.AppendUIDs(nil), n: v.Len(), firstUnseen: v.FirstUnseen(), recent: v.RecentCount(),
		uidNext: v.UIDNext(), uidValidity: v.UIDValidity(), highestModSeq: v.HighestModSeq(),
		keywords: v.Keywords(), seqOf5: v.Seq(5), searchUID5: v.SearchUID(5), uidAt: int(v.UID(1)),
	}
}

func openLazyTest(t *testing.T, tmpl string, lazyMin int) (*Store, *Mailbox) {
	t.Helper()
	// An hour on: the folder was not changed just now (racy, sync.go).
	later := func() time.Time { return time.Now().Add(time.Hour) }
	s, err := Open(Options{PathTemplate: tmpl, NoWatch: true, LazyLoadMin: lazyMin, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, _ := s.User("alice")
	m, err := u.Open(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return s, m
}

// A lazy first load shows SELECT exactly what a whole one does, and the
// whole index it takes in later is the ordinary one, message for message.
func TestLazyLoadMatchesWhole(t *testing.T) {
	tmpl := lazyFolder(t, 40)
	ctx := context.Background()
	_, whole := openLazyTest(t, tmpl, -1)
	_, lazy := openLazyTest(t, tmpl, 30)
	if whole.b.lazy != nil || lazy.b.lazy == nil {
		t.Fatalf("lazy index: whole store %v, lazy store %v", whole.b.lazy != nil, lazy.b.lazy != nil)
	}
	var want, got selectView
	cancel, err := whole.Subscribe(ctx, func(Change) {}, func(v *View) { want = takeSelectView(v) })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	cancel2, err := lazy.Subscribe(ctx, func(Change) {}, func(v *View) { got = takeSelectView(v) })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel2()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lazy view\n %+v\nwhole view\n %+v", got, want)
	}
	if want.n != 40 || want.firstUnseen != 1 || len(want.keywords) != 2 {
		t.Errorf("the folder is not what the test means: %+v", want)
	}
	if err := lazy.Peek(ctx, func(v *View) { _ = v.HighestModSeq() }); err != nil || lazy.b.lazy == nil {
		t.Errorf("Peek took the whole index in (%v)", err)
	}
	if want.recent != 2 {
		t.Errorf("%d recent, want the 2 appended", want.recent)
	}
	if ids, _ := lazy.ClaimRecent(ctx); fmt.Sprint(ids) != "[41 42]" {
		t.Errorf("ClaimRecent: %v", ids)
	}
	if _, third := openLazyTest(t, tmpl, 30); third.b.lazy == nil {
		t.Error("not lazy after the claim")
	} else if ids, _ := third.ClaimRecent(ctx); len(ids) != 0 || third.b.lazy == nil {
		t.Errorf("ClaimRecent with nothing recent: %v, lazy %v", ids, third.b.lazy != nil)
	}
	var wm, gm []Message
	whole.Read(ctx, func(v *View) {
		for i := range v.Len() {
			wm = append(wm, v.At(i))
		}
	})
	if err := lazy.Read(ctx, func(v *View) {
		for i := range v.Len() {
			gm = append(gm, v.At(i))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if lazy.b.lazy != nil {
		t.Error("Read left the index lazy")
	}
	if fmt.Sprint(gm) != fmt.Sprint(wm) {
		t.Errorf("whole index after a lazy load\n %v\nordinary\n %v", gm, wm)
	}
	// A folder below the threshold loads the ordinary way.
	if _, m := openLazyTest(t, tmpl, 41); m.b.lazy != nil {
		t.Error("a folder below LazyLoadMin was loaded lazily")
	}
}

// Counts answers from a lazy index what Status answers from the whole
// one, and leaves it lazy.
func TestLazyCounts(t *testing.T) {
	tmpl := lazyFolder(t, 40)
	ctx := context.Background()
	_, whole := openLazyTest(t, tmpl, -1)
	_, lazy := openLazyTest(t, tmpl, 30)
	got, err := lazy.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lazy.b.lazy == nil {
		t.Error("Counts took the whole index in")
	}
	want, err := whole.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want.Size, want.Deleted, want.DeletedSize = 0, 0, 0
	if got != want {
		t.Errorf("Counts of a lazy index %+v, Status of the whole one %+v", got, want)
	}
	if wc, _ := whole.Counts(ctx); wc != want {
		t.Errorf("Counts of the whole index %+v, want %+v", wc, want)
	}
	if want.Messages != 40 || want.Unseen != 14 || want.Recent != 2 || want.FirstUnseen != 1 {
		t.Errorf("the folder is not what the test means: %+v", want)
	}
}

// Every way into the index takes the whole of it in first; each of these
// fails if its lock is taken without it.
func TestLazyIndexTakenInByEveryReader(t *testing.T) {
	tmpl := lazyFolder(t, 40)
	ctx := context.Background()
	for name, use := range map[string]func(m *Mailbox) error{
		"Read":         func(m *Mailbox) error { return m.Read(ctx, func(v *View) { _ = v.At(0) }) },
		"Status":       func(m *Mailbox) error { _, err := m.Status(ctx); return err },
		"InternalDate": func(m *Mailbox) error { _, err := m.InternalDate(5); return err },
		"OpenMessage": func(m *Mailbox) error {
			r, err := m.OpenMessage(ctx, 5)
			if err == nil {
				r.Close()
			}
			return err
		},
		"Cached":   func(m *Mailbox) error { m.Cached(5, cacheDate); return nil },
		"SaveDate": func(m *Mailbox) error { m.SaveDate(5); return nil },
		"Copy": func(m *Mailbox) error {
			_, _, err := m.Copy(ctx, []uint32{5}, m)
			return err
		},
		"SetFlags": func(m *Mailbox) error {
			_, err := m.SetFlags(ctx, []uint32{5}, FlagsAdd, FlagFlagged, nil, nil)
			return err
		},
		"Append": func(m *Mailbox) error {
			_, err := m.Append(ctx, strings.NewReader("x\n"), AppendOptions{})
			return err
		},
		"Expunge": func(m *Mailbox) error { _, err := m.Expunge(ctx, ExpungeOptions{UIDs: []uint32{6}}); return err },
		"Rescan":  func(m *Mailbox) error { return m.Rescan(ctx) },
		"At in Subscribe": func(m *Mailbox) error {
			cancel, err := m.Subscribe(ctx, func(Change) {}, func(v *View) { _ = v.At(3) })
			if err == nil {
				cancel()
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, m := openLazyTest(t, tmpl, 30)
			if m.b.lazy == nil {
				t.Fatal("not lazy")
			}
			if err := use(m); err != nil {
				t.Fatal(err)
			}
			if m.b.lazy != nil || len(m.b.msgs) < 39 {
				t.Errorf("index after %s: lazy %v, %d messages", name, m.b.lazy != nil, len(m.b.msgs))
			}
		})
	}
}

// When the whole index cannot be decoded after the lazy look (the file
// failed to read), watchers are told to drop the folder and the index is
// loaded again the ordinary way: nothing is lost.
func TestLazyDecodeFails(t *testing.T) {
	tmpl := lazyFolder(t, 40)
	ctx := context.Background()
	s, m := openLazyTest(t, tmpl, 30)
	s.hooks.lazyDecode = func() error { return errors.New("injected read error") }
	var kinds []ChangeKind
	cancel, err := m.Subscribe(ctx, func(c Change) { kinds = append(kinds, c.Kind) }, func(v *View) {})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	n := 0
	if err := m.Read(ctx, func(v *View) { n = v.Len() }); err != nil {
		t.Fatal(err)
	}
	if n != 40 || !slices.Contains(kinds, Invalidated) {
		t.Errorf("after a failed decode: %d messages, changes %v", n, kinds)
	}
}

// Another process changes the folder, even deletes its log, between the
// lazy look and the first read: the whole index is decoded from the file
// the look read (kept open), then follows what happened since.
func TestLazyThenAnotherProcess(t *testing.T) {
	tmpl := lazyFolder(t, 40)
	ctx := context.Background()
	_, lazy := openLazyTest(t, tmpl, 30)
	_, other := openLazyTest(t, tmpl, -1)
	if _, err := other.Append(ctx, strings.NewReader("other\n"), AppendOptions{Flags: FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetFlags(ctx, []uint32{7}, FlagsAdd, FlagAnswered, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(lazy.b.path, logName)); err != nil {
		t.Fatal(err)
	}
	got, want := uidsAndFlags(t, lazy), uidsAndFlags(t, other)
	if got != want {
		t.Errorf("lazy store after the other's changes\n %s\nother store\n %s", got, want)
	}
}

func uidsAndFlags(t *testing.T, m *Mailbox) string {
	t.Helper()
	var b strings.Builder
	if err := m.Read(context.Background(), func(v *View) {
		for i := range v.Len() {
			msg := v.At(i)
			fmt.Fprintf(&b, "%d:%b%v ", msg.UID, msg.Flags, msg.Keywords)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Sessions racing on a folder just loaded lazily (run with -race): each
// gets either the lazy view or the whole index, never half of one.
func TestLazyConcurrentReaders(t *testing.T) {
	tmpl := lazyFolder(t, 40)
	ctx := context.Background()
	for range 5 {
		_, m := openLazyTest(t, tmpl, 30)
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				switch i % 3 {
				case 0:
					if err := m.Read(ctx, func(v *View) {
						if v.Len() != 40 || v.At(39).UID != 42 {
							t.Errorf("Read: %d messages", v.Len())
						}
					}); err != nil {
						t.Error(err)
					}
				case 1:
					if err := m.Peek(ctx, func(v *View) {
						if v.Len() != 40 || v.UID(39) != 42 {
							t.Errorf("Peek: %d messages", v.Len())
						}
					}); err != nil {
						t.Error(err)
					}
				case 2:
					cancel, err := m.Subscribe(ctx, func(Change) {}, func(v *View) {
						if v.FirstUnseen() != 1 || len(v.AppendUIDs(nil)) != 40 {
							t.Errorf("Subscribe: first unseen %d", v.FirstUnseen())
						}
					})
					if err != nil {
						t.Error(err)
						return
					}
					cancel()
				}
			})
		}
		wg.Wait()
	}
}

// A mapped log cut short under the quick look is a damaged log, not a
// crash.
func TestGuardFault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := syscall.Mmap(int(f.Fd()), 0, 1<<16, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(data)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	sum := 0
	err = guardFault(func() error {
		for _, c := range data[8192:] {
			sum += int(c)
		}
		return nil
	})
	if !errors.Is(err, errBadLog) {
		t.Errorf("reading a mapping past the file's end: %v", err)
	}
	// Other panics are not swallowed.
	defer func() {
		if r := recover(); r == nil {
			t.Error("a panic other than a fault was swallowed")
		}
	}()
	_ = guardFault(func() error { panic("boom") })
}
