package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

func names(t *testing.T, u *store.User) []string {
	t.Helper()
	list, err := u.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mi := range list {
		s := mi.Name
		if mi.NoSelect {
			s += "(noselect)"
		}
		if mi.SpecialUse != "" {
			s += "(" + string(mi.SpecialUse) + ")"
		}
		out = append(out, s)
	}
	return out
}

func TestNewUserGetsSpecialFolders(t *testing.T) {
	_, u := newUser(t, store.Options{})
	got := strings.Join(names(t, u), " ")
	if got != "INBOX Archive(Archive) Drafts(Drafts) Junk(Junk) Sent(Sent) Trash(Trash)" {
		t.Errorf("folders: %s", got)
	}
	subs, _ := u.Subscriptions()
	if fmt.Sprint(subs) != "[INBOX Drafts Sent Trash Junk Archive]" {
		t.Errorf("subscriptions: %v", subs)
	}
	for _, f := range []string{".Sent/maildirfolder", ".Sent/cur", ".Sent/new", ".Sent/tmp", "cur", "new", "tmp"} {
		if _, err := os.Stat(filepath.Join(u.Root(), f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if !strings.HasSuffix(u.Root(), "alice@example.org/Maildir") {
		t.Errorf("root %s", u.Root())
	}
}

func TestPathTemplate(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(store.Options{PathTemplate: dir + "/{domain}/{localpart}/Maildir"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for user, want := range map[string]string{
		"bob@example.org": dir + "/example.org/bob/Maildir",
		"bob":             dir + "/bob/Maildir",
	} {
		if got, err := s.UserRoot(user); err != nil || got != want {
			t.Errorf("UserRoot(%q) = %q, %v; want %q", user, got, err, want)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "x@y@z", "a\x00b", "a b", "@example.org", "bob@", "bob@..", strings.Repeat("a", 256)} {
		if _, err := s.User(bad); !errors.Is(err, store.ErrInvalidUser) {
			t.Errorf("User(%q): %v, want ErrInvalidUser", bad, err)
		}
	}
	if _, err := store.Open(store.Options{PathTemplate: dir + "/all/Maildir"}); err == nil {
		t.Error("a template without {user} puts everybody in one Maildir")
	}
}

func TestMailboxNamesRefused(t *testing.T) {
	_, u := newUser(t, store.Options{})
	for _, bad := range []string{
		"", "/", "/etc", "a/", "a//b", "..", "../x", "a/../../etc", "a.b", ".hidden",
		"nul\x00x", "tab\tx", "new\nline", "wild*", "wild%", `back\slash`, "\xff\xfe",
		strings.Repeat("x", 300), strings.Repeat("ü", 100),
	} {
		if err := u.Create(bad, ""); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", bad, err)
		}
		if _, err := u.Open(context.Background(), bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Open(%q): %v, want ErrInvalidName", bad, err)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(u.Root()))
	if len(ents) != 1 {
		t.Errorf("something was created next to the Maildir: %v", ents)
	}
}

func TestCreateDeleteRename(t *testing.T) {
	_, u := newUser(t, store.Options{})
	ctx := context.Background()
	if err := u.Create("Work/Projects/Ärger & Co", store.UseNone); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(u.Root(), ".Work.Projects.&AMQ-rger &- Co", "maildirfolder")); err != nil {
		t.Errorf("on-disk name: %v", err)
	}
	for _, dup := range []string{"Work/Projects/Ärger & Co", "inbox", "INBOX", "Sent"} {
		if err := u.Create(dup, ""); !errors.Is(err, store.ErrExists) {
			t.Errorf("Create(%q) again: %v", dup, err)
		}
	}
	got := names(t, u)
	if !slices.Contains(got, "Work(noselect)") || !slices.Contains(got, "Work/Projects(noselect)") {
		t.Errorf("parents: %v", got)
	}
	m := openBox(t, u, "Work/Projects/Ärger & Co")
	uid, _ := m.Append(ctx, strings.NewReader("keep me\n"), store.AppendOptions{})
	if err := u.Subscribe("Work/Projects/Ärger & Co"); err != nil {
		t.Fatal(err)
	}

	if err := u.Rename(ctx, "Work", "Jobs/Old"); err != nil {
		t.Fatal(err)
	}
	if err := u.Rename(ctx, "Jobs", "Jobs/Inner"); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("rename into itself: %v", err)
	}
	if err := u.Rename(ctx, "Nope", "Other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rename of nothing: %v", err)
	}
	if err := u.Rename(ctx, "Sent", "Drafts"); !errors.Is(err, store.ErrExists) {
		t.Errorf("rename onto existing: %v", err)
	}
	// A handle open on the old name learns the folder is gone.
	if err := m.Read(ctx, func(*store.View) {}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read of a renamed folder: %v", err)
	}
	moved := openBox(t, u, "Jobs/Old/Projects/Ärger & Co")
	if got := body(t, moved, uid); got != "keep me\r\n" {
		t.Errorf("renamed folder lost its message: %q", got)
	}
	subs, _ := u.Subscriptions()
	if !slices.Contains(subs, "Jobs/Old/Projects/Ärger & Co") {
		t.Errorf("subscription not renamed: %v", subs)
	}

	if err := u.Delete("INBOX"); !errors.Is(err, store.ErrInboxOperation) {
		t.Errorf("delete INBOX: %v", err)
	}
	if err := u.Delete("Jobs/Old/Projects/Ärger & Co"); err != nil {
		t.Fatal(err)
	}
	if err := u.Delete("Jobs/Old/Projects/Ärger & Co"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if slices.Contains(names(t, u), "Jobs") {
		t.Errorf("parents of a deleted folder still listed: %v", names(t, u))
	}
	// Deleted and created again: a new UIDVALIDITY, so clients drop
	// their caches.
	var v1, v2 uint32
	x := openBox(t, u, "Sent")
	x.Read(ctx, func(v *store.View) { v1 = v.UIDValidity() })
	x.Close()
	u.Delete("Sent")
	u.Create("Sent", "")
	y := openBox(t, u, "Sent")
	y.Read(ctx, func(v *store.View) { v2 = v.UIDValidity() })
	if v1 == v2 || v1 == 0 {
		t.Errorf("UIDVALIDITY %d then %d", v1, v2)
	}
	if !slices.Contains(names(t, u), "Sent(Sent)") {
		t.Errorf("re-created Sent lost its special use: %v", names(t, u))
	}
}

func TestRenameInboxMovesMessages(t *testing.T) {
	_, u := newUser(t, store.Options{})
	ctx := context.Background()
	in := openBox(t, u, "INBOX")
	in.Append(ctx, strings.NewReader("one\n"), store.AppendOptions{})
	in.Append(ctx, strings.NewReader("two\n"), store.AppendOptions{})
	if err := u.Rename(ctx, "inbox", "Old Inbox"); err != nil {
		t.Fatal(err)
	}
	if got := uids(t, in); len(got) != 0 {
		t.Errorf("INBOX still has %v", got)
	}
	if got := uids(t, openBox(t, u, "Old Inbox")); len(got) != 2 {
		t.Errorf("Old Inbox has %v", got)
	}
}

func TestSpecialUseOnCreate(t *testing.T) {
	_, u := newUser(t, store.Options{})
	if err := u.Create("Everything", store.UseAll); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names(t, u), "Everything(All)") {
		t.Errorf("%v", names(t, u))
	}
	if err := u.Unsubscribe("Never"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unsubscribe of a name never subscribed: %v", err)
	}
}

func TestTryLock(t *testing.T) {
	_, u := newUser(t, store.Options{})
	release, err := u.TryLock("pop3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.TryLock("pop3"); !errors.Is(err, store.ErrLocked) {
		t.Errorf("second lock: %v", err)
	}
	release()
	r2, err := u.TryLock("pop3")
	if err != nil {
		t.Errorf("lock after release: %v", err)
	} else {
		r2()
	}
}
