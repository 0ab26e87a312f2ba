package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

func eventsString(ev []store.FolderEvent) string {
	var parts []string
	for _, e := range ev {
		kind := map[store.FolderEventKind]string{store.FolderCreated: "create", store.FolderDeleted: "delete",
			store.FolderRenamed: "rename", store.FolderSubscribed: "sub", store.FolderUnsubscribed: "unsub"}[e.Kind]
		if e.Kind == store.FolderRenamed {
			parts = append(parts, kind+" "+e.OldName+">"+e.Name)
		} else {
			parts = append(parts, kind+" "+e.Name)
		}
	}
	return strings.Join(parts, ", ")
}

// Changes made through the Store wake the watch at once and are reported
// exactly: a rename is one event (children too), a subscription carried
// along by a rename is no change of its own, a folder deleted and made
// again under its name is both.
func TestFolderWatch(t *testing.T) {
	_, u := newUser(t, store.Options{PollInterval: -1})
	woken := make(chan struct{}, 100)
	w, err := u.WatchFolders(func() { woken <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	step := func(what string, do func() error, want string) {
		t.Helper()
		for len(woken) > 0 {
			<-woken
		}
		if err := do(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(woken) == 0 && want != "" {
			t.Errorf("%s: watch not woken", what)
		}
		ev, err := w.Changes()
		if err != nil {
			t.Fatal(err)
		}
		if got := eventsString(ev); got != want {
			t.Errorf("%s: events %q, want %q", what, got, want)
		}
	}
	ctx := context.Background()
	step("create", func() error { return u.Create("Lists/Go", "") }, "create Lists/Go")
	step("subscribe", func() error { return u.Subscribe("Lists/Go") }, "sub Lists/Go")
	step("create parent", func() error { return u.Create("Lists", "") }, "create Lists")
	step("rename with a child", func() error { return u.Rename(ctx, "Lists", "Groups") },
		"rename Lists>Groups, rename Lists/Go>Groups/Go")
	step("unsubscribe", func() error { return u.Unsubscribe("Groups/Go") }, "unsub Groups/Go")
	step("subscribe a missing name", func() error { return u.Subscribe("Nowhere") }, "sub Nowhere")
	step("delete and create again", func() error {
		if err := u.Delete("Groups/Go"); err != nil {
			return err
		}
		return u.Create("Groups/Go", "")
	}, "delete Groups/Go, create Groups/Go")
	step("rename, then a new folder under the old name", func() error {
		if err := u.Rename(ctx, "Drafts", "Old drafts"); err != nil {
			return err
		}
		return u.Create("Drafts", "")
	}, "rename Drafts>Old drafts, create Drafts")
	step("delete", func() error { return u.Delete("Junk") }, "delete Junk")
	step("nothing", func() error { return nil }, "")
}

// Another process (a second Store on the same directory, with its own
// poller) is heard of through the root's change time.
func TestFolderWatchOtherProcess(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	_, u := newUser(t, store.Options{PathTemplate: tmpl, PollInterval: 20 * time.Millisecond})
	_, other := newUser(t, store.Options{PathTemplate: tmpl, PollInterval: -1})
	woken := make(chan struct{}, 1)
	w, err := u.WatchFolders(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	time.Sleep(50 * time.Millisecond) // the poller's first look
	if err := other.Create("Elsewhere", ""); err != nil {
		t.Fatal(err)
	}
	// A program that is not Letterbox: Dovecot renames a folder.
	if err := os.Rename(filepath.Join(u.Root(), ".Archive"), filepath.Join(u.Root(), ".Old")); err != nil {
		t.Fatal(err)
	}
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case <-woken:
		case <-deadline:
			t.Fatalf("not woken for another process's changes; heard %v", got)
		}
		ev, err := w.Changes()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev {
			got = append(got, eventsString([]store.FolderEvent{e}))
		}
	}
	if fmt.Sprint(got) != "[rename Archive>Old create Elsewhere]" {
		t.Errorf("events %v", got)
	}
}
