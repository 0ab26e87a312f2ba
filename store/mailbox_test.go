package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// newUser opens a fresh user in a temp dir.
func newUser(t *testing.T, opts store.Options) (*store.Store, *store.User) {
	t.Helper()
	if opts.PathTemplate == "" {
		opts.PathTemplate = filepath.Join(t.TempDir(), "{user}", "Maildir")
	}
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := s.User("alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

func openBox(t *testing.T, u *store.User, name string) *store.Mailbox {
	t.Helper()
	m, err := u.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func uids(t *testing.T, m *store.Mailbox) []uint32 {
	t.Helper()
	var out []uint32
	if err := m.Read(context.Background(), func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			out = append(out, v.At(i).UID)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func body(t *testing.T, m *store.Mailbox, uid uint32) string {
	t.Helper()
	b, err := m.OpenMessage(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != b.Size {
		t.Errorf("read %d bytes, Size says %d", len(data), b.Size)
	}
	return string(data)
}

func TestAppendAndReadCRLF(t *testing.T) {
	_, u := newUser(t, store.Options{})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	cases := []string{
		"Subject: lf\n\nline\n.dot\n",
		"Subject: crlf\r\n\r\nline\r\n",
		"Subject: mixed\r\n\nbare\rcr\n\n",
		"",
		strings.Repeat("x", 40000) + "\n" + strings.Repeat("y\n", 20000),
	}
	for i, msg := range cases {
		uid, err := m.Append(ctx, strings.NewReader(msg), store.AppendOptions{Date: date})
		if err != nil {
			t.Fatal(err)
		}
		if uid != uint32(i+1) {
			t.Errorf("UID = %d, want %d", uid, i+1)
		}
		want := crlf(msg)
		if got := body(t, m, uid); got != want {
			t.Errorf("body %d = %q, want %q", i, clip(got), clip(want))
		}
		var size int64
		m.Read(ctx, func(v *store.View) { size = v.At(v.Seq(uid) - 1).Size })
		if size != int64(len(want)) {
			t.Errorf("size = %d, want %d", size, len(want))
		}
		d, err := m.InternalDate(uid)
		if err != nil || !d.Equal(date) {
			t.Errorf("internal date = %v, %v", d, err)
		}
	}
}

func crlf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := copy(p, bytes.Repeat([]byte("a"), min(len(p), r.n)))
	r.n -= n
	return n, nil
}

// An append cut off halfway (the client went away) leaves nothing: no
// message, no file in tmp/, cur/ or new/, no UID used.
func TestInterruptedAppendLeavesNothing(t *testing.T) {
	_, u := newUser(t, store.Options{})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	if _, err := m.Append(ctx, &failingReader{n: 100000}, store.AppendOptions{}); err == nil {
		t.Fatal("append from a failing reader succeeded")
	}
	if _, err := m.Append(ctx, strings.NewReader(strings.Repeat("x", 2000)), store.AppendOptions{MaxSize: 1000}); !errors.Is(err, store.ErrTooBig) {
		t.Fatalf("over-limit append: %v, want ErrTooBig", err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if left := store.LeftIn(filepath.Join(u.Root(), sub)); len(left) != 0 {
			t.Errorf("%s/ holds %d files: %v", sub, len(left), left)
		}
	}
	if got := uids(t, m); len(got) != 0 {
		t.Errorf("messages: %v", got)
	}
	uid, err := m.Append(ctx, strings.NewReader("ok\n"), store.AppendOptions{})
	if err != nil || uid != 1 {
		t.Errorf("next append: UID %d, %v; want 1", uid, err)
	}
}

// Two Store instances on one directory are two processes as far as the
// disk goes: only the dotlock and the uidlist keep them apart.
func TestConcurrentAppendsFromTwoStores(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	s1, u1 := newUser(t, store.Options{PathTemplate: tmpl})
	s2, u2 := newUser(t, store.Options{PathTemplate: tmpl})
	_, _ = s1, s2
	m1, m2 := openBox(t, u1, "INBOX"), openBox(t, u2, "INBOX")
	const each = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint32]string{}
	for w, m := range []*store.Mailbox{m1, m2, m1, m2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				text := fmt.Sprintf("Subject: %d-%d\n\n", w, i)
				uid, err := m.Append(context.Background(), strings.NewReader(text), store.AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := got[uid]; dup {
					t.Errorf("UID %d given twice: %q and %q", uid, prev, text)
				}
				got[uid] = text
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 4*each {
		t.Fatalf("%d UIDs for %d appends", len(got), 4*each)
	}
	// Both stores, and a third opened cold, agree on every UID.
	_, u3 := newUser(t, store.Options{PathTemplate: tmpl})
	for _, m := range []*store.Mailbox{m1, m2, openBox(t, u3, "INBOX")} {
		list := uids(t, m)
		if len(list) != 4*each {
			t.Fatalf("a store sees %d messages, want %d", len(list), 4*each)
		}
		for _, uid := range list {
			if body(t, m, uid) != crlf(got[uid]) {
				t.Errorf("UID %d has another body in another store", uid)
			}
		}
	}
}

// deliverByRename drops a message into new/ the way Postfix's virtual(8)
// does: write in tmp/, rename into new/, no size fields in the name.
func deliverByRename(t *testing.T, root, base, text string) {
	t.Helper()
	tmp := filepath.Join(root, "tmp", base)
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "new", base)); err != nil {
		t.Fatal(err)
	}
}

func TestPlainRenameIntoNewIsNumbered(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(fmt.Sprintf("inotify=%v", watch), func(t *testing.T) {
			_, u := newUser(t, store.Options{NoWatch: !watch})
			m := openBox(t, u, "INBOX")
			if _, err := m.Append(context.Background(), strings.NewReader("one\n"), store.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			deliverByRename(t, u.Root(), "1800000002.V1I2M3.mx", "Subject: later\n\nb\n")
			deliverByRename(t, u.Root(), "1800000001.V1I2M3.mx", "Subject: earlier\n\na\n")
			got := uids(t, m)
			if len(got) != 3 {
				t.Fatalf("UIDs %v, want 3 messages", got)
			}
			// Arrival order: the time in the name.
			if !strings.Contains(body(t, m, 2), "earlier") || !strings.Contains(body(t, m, 3), "later") {
				t.Errorf("UIDs not in arrival order")
			}
			var size int64
			m.Read(context.Background(), func(v *store.View) { size = v.At(1).Size })
			if size != int64(len(crlf("Subject: earlier\n\na\n"))) {
				t.Errorf("measured size %d", size)
			}
			ul, _ := os.ReadFile(filepath.Join(u.Root(), "dovecot-uidlist"))
			if !strings.Contains(string(ul), "\n2 W23 :1800000001.V1I2M3.mx\n") {
				t.Errorf("uidlist does not keep the measured size:\n%s", ul)
			}
		})
	}
}

// A session watching the feed learns of a delivery without reading.
func TestWatchSeesDeliveryByItself(t *testing.T) {
	_, u := newUser(t, store.Options{})
	m := openBox(t, u, "INBOX")
	changes := make(chan store.Change, 10)
	n, cancel := m.Watch(func(c store.Change) { changes <- c })
	defer cancel()
	if n != 0 {
		t.Fatalf("Watch: %d messages", n)
	}
	if err := u.Deliver(context.Background(), "", strings.NewReader("Subject: hi\n\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if c.Kind != store.Appended || c.UID != 1 || c.Seq != 1 {
			t.Errorf("change = %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change announced for a delivery")
	}
}

func TestChangeFeedBetweenHandlesAndStores(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	_, u1 := newUser(t, store.Options{PathTemplate: tmpl})
	_, u2 := newUser(t, store.Options{PathTemplate: tmpl})
	ctx := context.Background()
	a, b := openBox(t, u1, "INBOX"), openBox(t, u1, "INBOX")
	other := openBox(t, u2, "INBOX")
	for i := 0; i < 3; i++ {
		if _, err := a.Append(ctx, strings.NewReader("m\n"), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []store.Change
	var mu sync.Mutex
	_, cancel := b.Watch(func(c store.Change) { mu.Lock(); seen = append(seen, c); mu.Unlock() })
	defer cancel()

	if _, err := a.SetFlags(ctx, []uint32{2}, store.FlagsAdd, store.FlagSeen, []string{"$Label1"}, "a"); err != nil {
		t.Fatal(err)
	}
	// The other process expunges 1 and 3 and flags... we only see it
	// when we look.
	if _, err := other.Expunge(ctx, store.ExpungeOptions{UIDs: []uint32{1, 3}}); err != nil {
		t.Fatal(err)
	}
	if got := uids(t, b); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after the other store's expunge: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"KeywordsChanged 0 0", "FlagsChanged 2 2", "Expunged 3 3", "Expunged 1 1"}
	var got []string
	for _, c := range seen {
		got = append(got, fmt.Sprintf("%v %d %d", kindName(c.Kind), c.UID, c.Seq))
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("changes = %v, want %v", got, want)
	}
	if seen[1].Origin != "a" || seen[1].Flags != store.FlagSeen || len(seen[1].Keywords) != 1 {
		t.Errorf("flag change = %+v", seen[1])
	}
}

func kindName(k store.ChangeKind) string {
	return map[store.ChangeKind]string{store.Appended: "Appended", store.FlagsChanged: "FlagsChanged",
		store.Expunged: "Expunged", store.KeywordsChanged: "KeywordsChanged", store.Invalidated: "Invalidated"}[k]
}

func TestFlagsKeywordsAndExpunge(t *testing.T) {
	_, u := newUser(t, store.Options{})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		m.Append(ctx, strings.NewReader("x\n"), store.AppendOptions{})
	}
	if _, err := m.SetFlags(ctx, []uint32{1, 2, 99}, store.FlagsAdd, store.FlagDeleted|store.FlagSeen, []string{"Work"}, nil); err != nil {
		t.Fatal(err)
	}
	ch, err := m.SetFlags(ctx, []uint32{2}, store.FlagsRemove, store.FlagDeleted, []string{"WORK", "never-set"}, nil)
	if err != nil || len(ch) != 1 || ch[0].Flags != store.FlagSeen || len(ch[0].Keywords) != 0 {
		t.Fatalf("remove: %+v, %v", ch, err)
	}
	ch, _ = m.SetFlags(ctx, []uint32{3}, store.FlagsReplace, store.FlagFlagged, []string{"work"}, nil)
	if len(ch) != 1 || ch[0].Keywords[0] != "Work" {
		t.Errorf("keywords match case-insensitively and keep their first spelling: %+v", ch)
	}
	files, _ := filepath.Glob(filepath.Join(u.Root(), "cur", "*:2,FSa"))
	if len(files) != 0 {
		t.Errorf("unexpected files %v", files)
	}
	if files, _ := filepath.Glob(filepath.Join(u.Root(), "cur", "*:2,STa")); len(files) != 1 {
		t.Errorf("message 1 should be named ...:2,STa: %v", files)
	}
	got, err := m.Expunge(ctx, store.ExpungeOptions{OnlyDeleted: true})
	if err != nil || len(got) != 1 || got[0] != 1 {
		t.Fatalf("expunge deleted: %v %v", got, err)
	}
	if l := uids(t, m); fmt.Sprint(l) != "[2 3 4]" {
		t.Errorf("left: %v", l)
	}

	// 26 keywords fit (one letter each); the 27th does not.
	var kws []string
	for i := 0; i < 25; i++ {
		kws = append(kws, fmt.Sprintf("k%d", i))
	}
	if _, err := m.SetFlags(ctx, []uint32{4}, store.FlagsAdd, 0, kws, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetFlags(ctx, []uint32{4}, store.FlagsAdd, 0, []string{"one-too-many"}, nil); !errors.Is(err, store.ErrTooManyKeywords) {
		t.Errorf("27th keyword: %v", err)
	}
	m.Read(ctx, func(v *store.View) {
		if v.CanCreateKeywords() || len(v.Keywords()) != 26 {
			t.Errorf("keywords %d, can create %v", len(v.Keywords()), v.CanCreateKeywords())
		}
	})
}

func TestCopyAndMove(t *testing.T) {
	_, u := newUser(t, store.Options{})
	ctx := context.Background()
	in, trash := openBox(t, u, "INBOX"), openBox(t, u, "Trash")
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 3; i++ {
		in.Append(ctx, strings.NewReader(fmt.Sprintf("m%d\n", i)), store.AppendOptions{Date: date, Flags: store.FlagSeen, Keywords: []string{"tag"}})
	}
	src, dst, err := in.Copy(ctx, []uint32{1, 3, 42}, trash)
	if err != nil || fmt.Sprint(src, dst) != "[1 3] [1 2]" {
		t.Fatalf("copy: %v %v %v", src, dst, err)
	}
	src, dst, err = in.Move(ctx, []uint32{2}, trash, nil)
	if err != nil || fmt.Sprint(src, dst) != "[2] [3]" {
		t.Fatalf("move: %v %v %v", src, dst, err)
	}
	if l := uids(t, in); fmt.Sprint(l) != "[1 3]" {
		t.Errorf("INBOX after move: %v", l)
	}
	for uid, want := range map[uint32]string{1: "m0\r\n", 2: "m2\r\n", 3: "m1\r\n"} {
		if got := body(t, trash, uid); got != want {
			t.Errorf("Trash UID %d = %q, want %q", uid, got, want)
		}
		d, _ := trash.InternalDate(uid)
		if !d.Equal(date) {
			t.Errorf("Trash UID %d date %v, want %v", uid, d, date)
		}
	}
	trash.Read(ctx, func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			if msg := v.At(i); msg.Flags != store.FlagSeen || fmt.Sprint(msg.Keywords) != "[tag]" || !msg.Recent {
				t.Errorf("copied message %+v", msg)
			}
		}
	})
}

func TestRecentIsClaimedOnce(t *testing.T) {
	_, u := newUser(t, store.Options{})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	m.Append(ctx, strings.NewReader("a\n"), store.AppendOptions{})
	deliverByRename(t, u.Root(), "1800000001.x.mx", "b\n")
	// Only what the index has is claimed: a session learns of the
	// delivery from its change feed first.
	if got, err := m.ClaimRecent(ctx); err != nil || fmt.Sprint(got) != "[1]" {
		t.Fatalf("claim before the index saw the delivery: %v %v", got, err)
	}
	if _, err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := m.ClaimRecent(ctx)
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	if err != nil || fmt.Sprint(got) != "[2]" {
		t.Fatalf("claim: %v %v", got, err)
	}
	if again, _ := m.ClaimRecent(ctx); len(again) != 0 {
		t.Errorf("claimed twice: %v", again)
	}
}

// \Recent lives in memory only; a folder closed and opened again within
// Options.Linger still has it, as Dovecot's index would.
func TestRecentSurvivesReopen(t *testing.T) {
	_, u := newUser(t, store.Options{})
	ctx := context.Background()
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	m.Append(ctx, strings.NewReader("a\n"), store.AppendOptions{})
	m.Close()
	m2 := openBox(t, u, "INBOX")
	got, _ := m2.ClaimRecent(ctx)
	if fmt.Sprint(got) != "[1]" {
		t.Errorf("recent after reopening: %v", got)
	}
}

// Watchers leave in any order, some twice; the others keep hearing of
// every change, each once.
func TestWatchersLeaveInAnyOrder(t *testing.T) {
	_, u := newUser(t, store.Options{})
	m := openBox(t, u, "INBOX")
	ctx := context.Background()
	var mu sync.Mutex
	heard := make([]int, 6)
	cancels := make([]func(), 6)
	for i := range heard {
		_, cancels[i] = m.Watch(func(c store.Change) {
			if c.Kind == store.Appended {
				mu.Lock()
				heard[i]++
				mu.Unlock()
			}
		})
	}
	for _, i := range []int{1, 5, 1, 0} {
		cancels[i]()
	}
	if _, err := m.Append(ctx, strings.NewReader("m\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(heard) != "[0 0 1 1 1 0]" {
		t.Errorf("appends heard per watcher: %v", heard)
	}
}
