package imap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Live updates: what one session, another store handle (POP3, an MDA) or
// a file dropped into new/ changes reaches the other sessions.

func msg(subject string) string {
	return "From: a@example.org\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n"
}

func TestTwoSessionsSeeEachOther(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	e.appendMsg("alice", "INBOX", msg("two"), 0)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a1 SELECT INBOX")
	b.ok("b1 SELECT INBOX")

	a.ok("a2 STORE 1 +FLAGS.SILENT (\\Flagged)")
	if u := b.ok("b2 NOOP"); len(u) != 1 || u[0] != `* 1 FETCH (UID 1 FLAGS (\Flagged))` {
		t.Errorf("flag change: %q", u)
	}
	// A non-PEEK fetch sets \Seen and tells the other session.
	if u := a.ok("a3 FETCH 2 (BODY[TEXT])"); len(u) != 1 || !strings.Contains(u[0], `FLAGS (\Seen \Recent)`) {
		t.Errorf("fetch with implicit \\Seen: %q", u)
	}
	if u := b.ok("b3 NOOP"); len(u) != 1 || u[0] != `* 2 FETCH (UID 2 FLAGS (\Seen))` {
		t.Errorf("implicit \\Seen: %q", u)
	}
	// A's own change is not echoed back to A.
	if u := a.ok("a4 NOOP"); len(u) != 0 {
		t.Errorf("own change echoed: %q", u)
	}
	// Appends.
	msgThree := msg("three")
	a.send("a5 APPEND INBOX {" + itoa(len(msgThree)) + "+}\r\n" + msgThree)
	u, tagged := a.until("a5")
	if !strings.HasPrefix(tagged, "a5 OK [APPENDUID ") || len(u) != 2 || u[0] != "* 3 EXISTS" || u[1] != "* 3 RECENT" {
		t.Errorf("APPEND to the selected mailbox: %q %q", u, tagged)
	}
	if u := b.ok("b4 NOOP"); len(u) != 1 || u[0] != "* 3 EXISTS" {
		t.Errorf("append seen by the other: %q", u)
	}
	// Expunge: the EXPUNGE is held back during FETCH, STORE and SEARCH, and
	// sequence numbers stay the client's until it is sent (RFC 3501 §7.4.1).
	a.ok("a6 STORE 1 +FLAGS.SILENT (\\Deleted)")
	if u := a.ok("a7 EXPUNGE"); len(u) != 1 || u[0] != "* 1 EXPUNGE" {
		t.Errorf("EXPUNGE: %q", u)
	}
	if u := b.ok("b5 FETCH 1:* (UID)"); strings.Join(u, "|") != `* 2 FETCH (UID 2)|* 3 FETCH (UID 3)|* 1 FETCH (UID 1 FLAGS (\Flagged \Deleted))` {
		t.Errorf("FETCH with an expunge pending: %q", u)
	}
	if u := b.ok("b6 SEARCH ALL"); len(u) != 1 || u[0] != "* SEARCH 2 3" {
		t.Errorf("SEARCH with an expunge pending: %q", u)
	}
	if u := b.ok("b7 NOOP"); strings.Join(u, "|") != `* 1 EXPUNGE` {
		t.Errorf("expunge seen by the other: %q", u)
	}
	if u := b.ok("b8 FETCH 1:* (UID)"); strings.Join(u, "|") != "* 1 FETCH (UID 2)|* 2 FETCH (UID 3)" {
		t.Errorf("after the EXPUNGE: %q", u)
	}
}

func TestUIDFetchStarBeyondHighest(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		e.appendMsg("alice", "INBOX", msg("m"), 0)
	}
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	// RFC 3501 §6.4.8: "n:*" with n above the highest UID still matches it.
	if u := c.ok("b UID FETCH 10:* (FLAGS)"); len(u) != 1 || !strings.Contains(u[0], "UID 3") {
		t.Errorf("UID FETCH 10:*: %q", u)
	}
	if u := c.ok("c UID SEARCH 10:*"); len(u) != 1 || u[0] != "* SEARCH 3" {
		t.Errorf("UID SEARCH 10:*: %q", u)
	}
	if u := c.ok("d FETCH * (UID)"); len(u) != 1 || u[0] != "* 3 FETCH (UID 3)" {
		t.Errorf("FETCH *: %q", u)
	}
	if u := c.ok("e UID FETCH 7 (FLAGS)"); len(u) != 0 {
		t.Errorf("UID FETCH of a UID that does not exist: %q", u)
	}
}

func TestIdleSeesOtherSessionsAndTheDisk(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	idler := e.login("alice")
	idler.ok("i1 SELECT INBOX")
	idler.send("i2 IDLE")
	idler.expect("+ ")

	// Another IMAP session appends.
	other := e.login("alice")
	other.ok("o1 SELECT INBOX")
	m := msg("two")
	other.send("o2 APPEND INBOX {" + itoa(len(m)) + "+}\r\n" + m)
	other.until("o2")
	idler.expect("* 2 EXISTS")

	// An MDA delivers into new/ (store.User.Deliver, as `letterbox deliver`
	// does): inotify brings it within moments.
	start := time.Now()
	if err := e.user("alice").Deliver(context.Background(), "", strings.NewReader(msg("delivered"))); err != nil {
		t.Fatal(err)
	}
	idler.expect("* 3 EXISTS")
	t.Logf("delivery reached IDLE after %v", time.Since(start))

	// A plain rename into new/ by another program.
	root := e.user("alice").Root()
	tmp := filepath.Join(root, "tmp", "1795000000.plain.test")
	if err := os.WriteFile(tmp, []byte(msg("renamed")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "new", "1795000000.plain.test")); err != nil {
		t.Fatal(err)
	}
	idler.expect("* 4 EXISTS")

	// A POP3 session's DELE+QUIT is an expunge through another store
	// handle, with no IMAP origin.
	mb, err := e.user("alice").Open(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if _, err := mb.Expunge(context.Background(), store.ExpungeOptions{UIDs: []uint32{1}}); err != nil {
		t.Fatal(err)
	}
	idler.expect("* 1 EXPUNGE")

	// Flags set by another session.
	other.ok("o3 UID STORE 2 +FLAGS (\\Answered)")
	idler.expect(`* 1 FETCH (UID 2 FLAGS (\Answered`)

	idler.send("DONE")
	idler.expect("i2 OK")
	idler.ok("i3 NOOP")
}

func TestSelectedMailboxDeletedByAnother(t *testing.T) {
	e := newEnv(t)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a1 CREATE Doomed")
	b.ok("b1 SELECT Doomed")
	a.ok("a2 DELETE Doomed")
	b.send("b2 NOOP")
	b.expect("* BYE")
	b.closed()
	a.ok("a3 NOOP")
}

func TestExamineIsReadOnly(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), store.FlagDeleted)
	c := e.login("alice")
	u := c.ok("a1 EXAMINE INBOX")
	if f := selectFacts(u); f["PERMANENTFLAGS"] != "()" {
		t.Errorf("PERMANENTFLAGS %q", f["PERMANENTFLAGS"])
	}
	_, tagged := c.cmd("a1b NOOP")
	if !strings.HasPrefix(tagged, "a1b OK") {
		t.Fatal(tagged)
	}
	c.fails("a2 STORE 1 +FLAGS (\\Seen)", "NO")
	c.fails("a3 EXPUNGE", "NO")
	c.fails("a4 UID EXPUNGE 1", "NO")
	c.fails("a5 MOVE 1 Trash", "NO")
	if u := c.ok("a6 FETCH 1 (BODY[])"); len(u) != 1 || strings.Contains(u[0], "FLAGS") {
		t.Errorf("FETCH BODY[] in EXAMINE: %q", u)
	}
	c.ok("a7 CLOSE") // does not expunge
	u = c.ok("a8 SELECT INBOX")
	if f := selectFacts(u); f["EXISTS"] != "1" {
		t.Errorf("CLOSE after EXAMINE expunged: %v", f)
	}
	if u := c.ok("a9 FETCH 1 (FLAGS)"); len(u) != 1 || u[0] != `* 1 FETCH (FLAGS (\Deleted \Recent))` {
		// Recent: EXAMINE does not claim it (RFC 3501 §6.3.2).
		t.Errorf("EXAMINE changed flags: %q", u)
	}
	c.ok("b1 CLOSE") // read-write: expunges, silently
	if u := c.ok("b2 STATUS INBOX (MESSAGES)"); u[0] != "* STATUS INBOX (MESSAGES 0)" {
		t.Errorf("after CLOSE: %q", u)
	}
}

func TestSeveralAppendsAtOnce(t *testing.T) {
	// One store commit of three messages reaches another session as three
	// EXISTS, one at a time (imapserver's tracker needs it so), and until
	// then they are not the client's.
	e := newEnv(t)
	e.appendMsg("alice", "Archive", msg("a"), 0)
	e.appendMsg("alice", "Archive", msg("b"), 0)
	e.appendMsg("alice", "Archive", msg("c"), 0)
	e.appendMsg("alice", "INBOX", msg("first"), 0)
	b := e.login("alice")
	b.ok("b1 SELECT INBOX")
	a := e.login("alice")
	a.ok("a1 SELECT Archive")
	a.ok("a2 COPY 1:3 INBOX")
	if u := b.ok("b2 UID FETCH 1:* (UID)"); strings.Join(u, "|") != "* 1 FETCH (UID 1)|* 2 EXISTS|* 3 EXISTS|* 4 EXISTS|* 4 RECENT" {
		t.Errorf("before NOOP: %q", u)
	}
	if u := b.ok("b3 FETCH 2:* (UID)"); strings.Join(u, "|") != "* 2 FETCH (UID 2)|* 3 FETCH (UID 3)|* 4 FETCH (UID 4)" {
		t.Errorf("after: %q", u)
	}
}

func TestLiteralGetsItsSizeWhenTheFileShrinks(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("will shrink"), 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	c.ok("b FETCH 1 RFC822.SIZE")
	files, _ := filepath.Glob(filepath.Join(e.user("alice").Root(), "cur", "*"))
	if len(files) != 1 {
		t.Fatal(files)
	}
	if err := os.Truncate(files[0], 10); err != nil {
		t.Fatal(err)
	}
	u := c.ok("c FETCH 1 BODY.PEEK[]")
	// The store pads what is missing with spaces (and logs it).
	if len(u) != 1 || !strings.HasPrefix(u[0], "* 1 FETCH (BODY[] {66}\r\nFrom: a@ex"+strings.Repeat(" ", 56)+")") {
		t.Errorf("%q", u)
	}
	c.ok("d NOOP") // the connection is still in step
}

func TestStatusEveryItem(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("x"), store.FlagDeleted)
	c := e.login("alice")
	// imapserver writes every item asked for without looking: a missing one
	// would be a nil pointer.
	u := c.ok("a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT DELETED-STORAGE)")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ") ||
		!strings.HasSuffix(u[0], "UNSEEN 1 DELETED 1 SIZE 46 APPENDLIMIT 52428800 DELETED-STORAGE 46 RECENT 1)") {
		t.Errorf("%q", u)
	}
	u = c.ok(`b LIST "" "INBOX" RETURN (STATUS (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT DELETED-STORAGE))`)
	if len(u) != 2 || !strings.HasPrefix(u[1], "* STATUS INBOX (MESSAGES 1 ") {
		t.Errorf("%q", u)
	}
	c.fails("c STATUS Nowhere (MESSAGES)", "NO [NONEXISTENT]")
	c.fails("d STATUS INBOX (BOGUS)", "BAD")
}

func TestIdleDoneAnyCase(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	c.send("b IDLE")
	c.expect("+ ")
	c.send("done")
	c.expect("b OK")
}

// A client that drops the connection while IDLEing, again and again, and
// a server shutdown during IDLE: imapserver closes the session without
// waiting for Idle, which must not race with the teardown (-race).
func TestIdleDroppedConnection(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Subject: x\r\n\r\nx\r\n", 0)
	for i := 0; i < 20; i++ {
		c := e.login("alice")
		c.ok("s SELECT INBOX")
		c.send("i IDLE")
		c.expect("+ ")
		c.conn.Close()
	}
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	c.send("i IDLE")
	c.expect("+ ")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown with a session in IDLE: %v", err)
	}
}
