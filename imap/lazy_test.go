package imap

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// After a restart, the first SELECT of a big folder answers from a quick
// look at its change log (store/lazy.go); what it answers, and what FETCH
// answers after it, is exactly what a server with the whole index says.
func TestSelectAfterRestartLazy(t *testing.T) {
	dir := t.TempDir()
	if err := writeBigFolder(dir, 60); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withDir(dir))
	// Changes after the log's snapshot: its tail.
	e.setFlags("alice", "INBOX", store.FlagsRemove, store.FlagSeen, nil, 7, 9)
	e.addFlags("alice", "INBOX", store.FlagFlagged, []string{"$Label1"}, 3)
	e.expungeUIDs("alice", "INBOX", 5, 6)
	e.appendMsg("alice", "INBOX", "Subject: new\r\n\r\nx\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: new\r\n\r\ny\r\n", store.FlagSeen)

	// EXAMINE: neither server claims \Recent for its session.
	script := []string{"a EXAMINE INBOX", "b UID FETCH 1:* (FLAGS)", "c FETCH 1:* (UID FLAGS RFC822.SIZE)", "d UID SEARCH UNSEEN"}
	var c *rawClient
	run := func(e *testEnv) [][]string {
		c = e.login("alice")
		var out [][]string
		for _, cmd := range script {
			out = append(out, c.ok(cmd))
		}
		return out
	}
	// The whole index, loaded the ordinary way.
	e = e.restart(withStore(func(o *store.Options) { o.LazyLoadMin = -1 }))
	want := run(e)
	// A lazy first load (an hour on: the folder was not just changed).
	e = e.restart(withStore(func(o *store.Options) {
		o.LazyLoadMin = 30
		o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	}))
	// STATUS without SIZE or DELETED answers from the lazy index; the
	// FETCHes below take the whole one in.
	st := e.login("alice")
	if u := st.ok(`s STATUS INBOX (MESSAGES UNSEEN UIDNEXT RECENT)`); !slices.Equal(u, []string{"* STATUS INBOX (MESSAGES 60 UIDNEXT 63 UNSEEN 3 RECENT 2)"}) {
		t.Errorf("STATUS after a lazy load: %q", u)
	}
	if strings.Contains(e.logs.String(), "whole index taken in") {
		t.Error("STATUS without sizes took the whole index in")
	}
	got := run(e)
	if !strings.Contains(e.logs.String(), "whole index taken in") {
		t.Error("FETCH answered without the whole index")
	}
	if !strings.Contains(e.logs.String(), "folder loaded lazily") {
		t.Fatal("the folder was not loaded lazily")
	}
	for i := range script {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("%s after a lazy load:\n%s\nafter an ordinary one:\n%s", script[i], strings.Join(got[i], "\n"), strings.Join(want[i], "\n"))
		}
	}
	if !slices.Contains(want[0], "* 60 EXISTS") || !slices.Contains(want[0], "* 2 RECENT") ||
		!slices.Contains(want[0], "* OK [UNSEEN 5] First unseen message") {
		t.Errorf("the folder is not what the test means: %q", want[0])
	}
	// SELECT on the same server claims the two new ones.
	if u := c.ok("e SELECT INBOX"); !slices.Contains(u, "* 2 RECENT") {
		t.Errorf("SELECT after the lazy EXAMINE: %q", u)
	}
	if u := c.ok("f UID FETCH 61:* (FLAGS)"); !slices.Equal(u, []string{"* 59 FETCH (UID 61 FLAGS (\\Recent))", "* 60 FETCH (UID 62 FLAGS (\\Seen \\Recent))"}) {
		t.Errorf("after SELECT: %q", u)
	}
}
