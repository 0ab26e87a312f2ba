package imap

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// NOTIFY (RFC 5465) transcripts: one session asks, another (or another
// process) changes things, and the first hears of it without sending a
// command.

// heard reads the n lines a session is sent unasked.
func (c *rawClient) heard(n int) []string {
	c.t.Helper()
	var out []string
	for range n {
		out = append(out, c.line())
	}
	return out
}

// same fails unless got equals want line by line.
func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

var uidValidityRE = regexp.MustCompile(`UIDVALIDITY \d+`)

func TestNotifyOtherMailboxes(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	a := e.login("alice")
	u, tagged := a.cmd("n1 NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))")
	for i := range u {
		u[i] = uidValidityRE.ReplaceAllString(u[i], "UIDVALIDITY v")
	}
	same(t, "NOTIFY SET STATUS", append(u, tagged),
		`* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY v UNSEEN 1)`,
		`* STATUS "Archive" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v UNSEEN 0)`,
		`* STATUS "Drafts" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v UNSEEN 0)`,
		`* STATUS "Junk" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v UNSEEN 0)`,
		`* STATUS "Sent" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v UNSEEN 0)`,
		`* STATUS "Trash" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY v UNSEEN 0)`,
		`n1 OK NOTIFY completed`)

	b := e.login("alice")
	b.ok("b1 APPEND Archive {5+}\r\nhello")
	same(t, "append elsewhere", a.heard(1), `* STATUS "Archive" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	b.ok("b2 SELECT Archive")
	b.ok("b3 STORE 1 +FLAGS (\\Seen)")
	same(t, "flag change elsewhere", a.heard(1), `* STATUS "Archive" (UNSEEN 0)`)
	b.ok("b4 STORE 1 +FLAGS (\\Deleted)")
	a.heard(1)
	b.ok("b5 EXPUNGE")
	same(t, "expunge elsewhere", a.heard(1), `* STATUS "Archive" (MESSAGES 0 UIDNEXT 2 UNSEEN 0)`)

	b.ok("b6 CREATE Lists")
	same(t, "create", a.heard(1), `* LIST (\HasNoChildren) "/" "Lists"`)
	b.ok("b7 RENAME Lists Groups")
	same(t, "rename", a.heard(1), `* LIST (\HasNoChildren) "/" "Groups" ("OLDNAME" ("Lists"))`)
	b.ok("b8 SUBSCRIBE Groups")
	same(t, "subscribe", a.heard(1), `* LIST (\HasNoChildren \Subscribed) "/" "Groups"`)
	b.ok("b9 APPEND Groups {5+}\r\nhello")
	same(t, "append to the new folder", a.heard(1), `* STATUS "Groups" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	b.ok("b10 UNSUBSCRIBE Groups")
	same(t, "unsubscribe", a.heard(1), `* LIST (\HasNoChildren) "/" "Groups"`)
	b.ok("b11 DELETE Groups")
	same(t, "delete", a.heard(1), `* LIST (\NonExistent) "/" "Groups"`)

	// The session's own changes are notifications too (§5).
	same(t, "own create", a.ok("a1 CREATE Mine"), `* LIST (\HasNoChildren) "/" "Mine"`)

	a.ok("n2 NOTIFY NONE")
	b.ok("b12 APPEND Archive {5+}\r\nhello")
	b.ok("b13 CREATE Quiet")
	if u := a.ok("n3 NOOP"); len(u) != 0 {
		t.Errorf("after NOTIFY NONE: %q", u)
	}
}

func TestNotifySelected(t *testing.T) {
	e := newEnv(t)
	a := e.login("alice")
	a.ok("s1 SELECT INBOX")
	a.ok("n1 NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge))")
	b := e.login("alice")
	m := "Subject: hi\r\n\r\nbody\r\n"
	b.ok(fmt.Sprintf("b1 APPEND INBOX {%d+}\r\n%s", len(m), m))
	same(t, "new message", a.heard(2), `* 1 EXISTS`,
		"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (Subject)] {15}\r\nSubject: hi\r\n\r\n)")
	// No FlagChange: a flag change waits for a command.
	b.ok("b2 SELECT INBOX")
	b.ok("b3 STORE 1 +FLAGS (\\Flagged)")
	b.ok("b4 STORE 1 +FLAGS (\\Deleted)")
	b.ok("b5 EXPUNGE")
	same(t, "expunge at once (SELECTED)", a.heard(1), `* 1 EXPUNGE`)
	same(t, "NOOP", a.ok("a1 NOOP"))

	// SELECTED-DELAYED: new messages at once, expunges at the next
	// command that may carry them; flag changes asked for this time.
	a.ok("n2 NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))")
	b.ok(fmt.Sprintf("b6 APPEND INBOX {%d+}\r\n%s", len(m), m))
	same(t, "new message", a.heard(1), `* 1 EXISTS`)
	b.ok("b7 STORE 1 +FLAGS (\\Flagged)")
	same(t, "flag change at once", a.heard(1), `* 1 FETCH (UID 2 FLAGS (\Flagged))`)
	b.ok("b8 STORE 1 +FLAGS (\\Deleted)")
	same(t, "flag change at once", a.heard(1), `* 1 FETCH (UID 2 FLAGS (\Flagged \Deleted))`)
	b.ok("b9 EXPUNGE")
	// The message is gone, so FETCH says nothing of it, and no EXPUNGE
	// may come with FETCH (RFC 3501 §7.4.1).
	same(t, "no expunge in FETCH", a.ok("a2 FETCH 1 (UID)"))
	same(t, "expunge at NOOP", a.ok("a3 NOOP"), `* 1 EXPUNGE`)

	// Without SELECTED, the selected mailbox is as without NOTIFY.
	a.ok("n3 NOTIFY SET (PERSONAL (MailboxName))")
	b.ok(fmt.Sprintf("b10 APPEND INBOX {%d+}\r\n%s", len(m), m))
	b.ok("b11 CREATE Other")
	same(t, "folder only", a.heard(1), `* LIST (\HasNoChildren) "/" "Other"`)
	// (b, selected read-write, took \Recent with its own APPEND.)
	same(t, "the new message at NOOP", a.ok("a4 NOOP"), `* 1 EXISTS`)
}

// Another process (a second server with its own store on the same
// Maildir) and a program that is not Letterbox are heard of too.
func TestNotifyOtherProcess(t *testing.T) {
	e := newEnv(t)
	a := e.login("alice")
	a.ok("n1 NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))")
	other := e.secondServer()()
	other.ok("o1 CREATE Elsewhere")
	same(t, "folder made by another process", a.heard(1), `* LIST (\HasNoChildren) "/" "Elsewhere"`)
	other.ok("o2 APPEND Sent {5+}\r\nhello")
	same(t, "message appended by another process", a.heard(1), `* STATUS "Sent" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	// IDLE hears the same.
	a.send("i1 IDLE")
	a.expect("+ ")
	other.ok("o3 RENAME Elsewhere There")
	same(t, "rename during IDLE", a.heard(1), `* LIST (\HasNoChildren) "/" "There" ("OLDNAME" ("Elsewhere"))`)
	a.send("DONE")
	a.expect("i1 OK")
}

func TestNotifyErrors(t *testing.T) {
	e := newEnv(t)
	c := e.dial().greeted()
	c.fails("x1 NOTIFY NONE", "BAD")
	c.ok("l LOGIN alice " + testPassword)
	for _, bad := range []string{
		"x2 NOTIFY",
		"x3 NOTIFY BOGUS",
		"x4 NOTIFY SET",
		"x5 NOTIFY SET (SELECTED (MessageNew))",
		"x6 NOTIFY SET (SELECTED (FlagChange))",
		"x7 NOTIFY SET (PERSONAL (MessageNew (UID)))",
		"x8 NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED NONE)",
		"x9 NOTIFY SET (PERSONAL ())",
		"x10 NOTIFY SET (NOWHERE (MessageNew))",
		"x11 NOTIFY SET (SUBTREE (MessageNew))",
		"x12 NOTIFY SET STATUS",
	} {
		c.fails(bad, "BAD")
	}
	got := c.fails("x13 NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))", "NO")
	if got != "x13 NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)] Unsupported NOTIFY event" {
		t.Errorf("BADEVENT: %q", got)
	}
	// A name that cannot exist names nothing; events NONE are allowed.
	c.ok("x14 NOTIFY SET (MAILBOXES (\"a/../b\" INBOX) (MessageNew MessageExpunge)) (SUBSCRIBED NONE)")
	if caps := c.ok("x15 CAPABILITY"); !strings.Contains(caps[0], " NOTIFY") {
		t.Errorf("capability: %q", caps)
	}
}
