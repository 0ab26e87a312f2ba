package imap

import (
	"bufio"
	"compress/flate"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

	// A mailbox that comes into view gets a STATUS too.
	b.ok("b6 CREATE Lists")
	same(t, "create", a.heard(2), `* LIST (\HasNoChildren) "/" "Lists"`, `* STATUS "Lists" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)
	b.ok("b7 RENAME Lists Groups")
	same(t, "rename", a.heard(2), `* LIST (\HasNoChildren) "/" "Groups" ("OLDNAME" ("Lists"))`,
		`* STATUS "Groups" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)
	b.ok("b8 SUBSCRIBE Groups")
	same(t, "subscribe", a.heard(1), `* LIST (\HasNoChildren \Subscribed) "/" "Groups"`)
	b.ok("b9 APPEND Groups {5+}\r\nhello")
	same(t, "append to the new folder", a.heard(1), `* STATUS "Groups" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	b.ok("b10 UNSUBSCRIBE Groups")
	same(t, "unsubscribe", a.heard(1), `* LIST (\HasNoChildren) "/" "Groups"`)
	b.ok("b11 DELETE Groups")
	same(t, "delete", a.heard(1), `* LIST (\NonExistent) "/" "Groups"`)

	// The session's own changes are notifications too (§5).
	same(t, "own create", a.ok("a1 CREATE Mine"), `* LIST (\HasNoChildren) "/" "Mine"`,
		`* STATUS "Mine" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)

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
	same(t, "folder made by another process", a.heard(2), `* LIST (\HasNoChildren) "/" "Elsewhere"`,
		`* STATUS "Elsewhere" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)
	other.ok("o2 APPEND Sent {5+}\r\nhello")
	same(t, "message appended by another process", a.heard(1), `* STATUS "Sent" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	// IDLE hears the same.
	a.send("i1 IDLE")
	a.expect("+ ")
	other.ok("o3 RENAME Elsewhere There")
	same(t, "rename during IDLE", a.heard(2), `* LIST (\HasNoChildren) "/" "There" ("OLDNAME" ("Elsewhere"))`,
		`* STATUS "There" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)
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
		"x16 NOTIFY SET (PERSONAL (MessageNew))",
		"x17 NOTIFY SET (INBOXES (FlagChange MailboxName))",
		"x18 NOTIFY SET (SELECTED (MessageNew MessageExpunge MailboxName))",
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

// Under COMPRESS=DEFLATE a wait for a command cannot be cut short (the
// decompressor cannot take it), so notifications come with the next
// command's responses, and at once in IDLE.
func TestNotifyCompressed(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	c.ok("a COMPRESS DEFLATE")
	fw, _ := flate.NewWriter(c.conn, flate.BestSpeed)
	zc := &rawClient{t: t, conn: zconn{c.conn, compressed{fw}}, r: bufio.NewReader(flate.NewReader(c.r))}
	zc.ok("n NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))")
	b := e.login("alice")
	b.ok("b1 CREATE Later")
	same(t, "with the next command", zc.ok("z1 NOOP"), `* LIST (\HasNoChildren) "/" "Later"`,
		`* STATUS "Later" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)
	zc.send("i IDLE")
	zc.expect("+ ")
	b.ok("b2 APPEND Later {5+}\r\nhello")
	same(t, "in IDLE", zc.heard(1), `* STATUS "Later" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	zc.send("DONE")
	zc.expect("i OK")
}

var statusRE = regexp.MustCompile(`^\* STATUS "?([^"]*)"? \(([^)]*)\)$`)

// Several sessions, one of them on a second server (another process),
// change one mailbox while a NOTIFY session waits. Every STATUS it is
// sent must be a state the mailbox was in (UIDNEXT never going back,
// UNSEEN within MESSAGES, MESSAGES below UIDNEXT), and once the changes
// stop, the last value it was told of each item must be the mailbox's.
func TestNotifyUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.appendMsg("alice", "Archive", msg(fmt.Sprint("start ", i)), 0)
	}
	dial2 := e.secondServer()
	n := e.login("alice")
	n.ok("n NOTIFY SET (PERSONAL (MessageNew MessageExpunge FlagChange))")

	const workers, ops = 3, 30
	var wg sync.WaitGroup
	for w := range workers {
		var c *rawClient
		if w == workers-1 {
			c = dial2()
		} else {
			c = e.login("alice")
		}
		c.ok("s SELECT Archive")
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for i := range ops {
				var cmd string
				switch op := r.IntN(6); {
				case op < 2 && w != workers-1:
					// (Appends from one process only: see
					// TestConcurrentSessionsStayInStep.)
					m := msg(fmt.Sprint("w", w, " op", i))
					cmd = "x APPEND Archive {" + itoa(len(m)) + "+}\r\n" + m
				case op < 4:
					cmd = `x STORE 1:* +FLAGS.SILENT (\Seen)`
					if op == 3 {
						cmd = fmt.Sprintf(`x UID STORE %d:* -FLAGS.SILENT (\Seen)`, 1+r.IntN(10))
					}
				case op < 5:
					cmd = fmt.Sprintf(`x UID STORE %d +FLAGS.SILENT (\Deleted)`, 1+r.IntN(10))
				default:
					cmd = "x EXPUNGE"
				}
				if _, tagged := c.cmd(cmd); !strings.HasPrefix(tagged, "x OK") {
					t.Errorf("worker %d: %s: %q", w, cmd, tagged)
				}
			}
		}()
	}
	wg.Wait()

	last := map[string]int{}
	check := func(l string) {
		m := statusRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a STATUS: %q", l)
			return
		}
		if m[1] != "Archive" {
			t.Errorf("STATUS of %s, which nobody changed", m[1])
			return
		}
		f := strings.Fields(m[2])
		now := map[string]int{}
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.Atoi(f[i+1])
			now[f[i]] = v
		}
		if v, ok := now["UIDNEXT"]; ok && v < last["UIDNEXT"] {
			t.Errorf("UIDNEXT went back: %d after %d", v, last["UIDNEXT"])
		}
		if v, ok := now["MESSAGES"]; ok && now["UIDNEXT"] > 0 && v > now["UIDNEXT"]-1 {
			t.Errorf("%q: more messages than UIDs", l)
		}
		if v, ok := now["UNSEEN"]; ok && now["MESSAGES"] > 0 && v > now["MESSAGES"] {
			t.Errorf("%q: more unseen than messages", l)
		}
		for k, v := range now {
			last[k] = v
		}
	}
	fresh := e.login("alice")
	for try := 0; ; try++ {
		u, _ := n.cmd("z NOOP")
		for _, l := range u {
			check(l)
		}
		st := fresh.ok("f STATUS Archive (MESSAGES UIDNEXT UNSEEN)")
		want := statusRE.FindStringSubmatch(st[0])[2]
		got := fmt.Sprintf("MESSAGES %d UIDNEXT %d UNSEEN %d", last["MESSAGES"], last["UIDNEXT"], last["UNSEEN"])
		if got == want {
			break
		}
		if try == 50 {
			t.Fatalf("NOTIFY told %s; the mailbox has %s", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LOGOUT's BYE is the last untagged line, with notifications pending or
// not.
func TestNotifyLogout(t *testing.T) {
	e := newEnv(t)
	a := e.login("alice")
	a.ok("n NOTIFY SET (PERSONAL (MailboxName))")
	b := e.login("alice")
	for i := range 5 {
		b.ok(fmt.Sprintf("b%d CREATE f%d", i, i))
	}
	u, tagged := a.cmd("z LOGOUT")
	if len(u) == 0 || u[len(u)-1] != "* BYE Logging out" || tagged != "z OK LOGOUT completed" {
		t.Errorf("LOGOUT: %q then %q", u, tagged)
	}
}

// The SUBSCRIBED and MAILBOXES filters follow the folder list: a mailbox
// subscribed (or created under a watched name) comes into view, one
// unsubscribed leaves it.
func TestNotifyFiltersFollowFolders(t *testing.T) {
	e := newEnv(t)
	a := e.login("alice")
	a.ok(`n NOTIFY SET (SUBSCRIBED (MessageNew MessageExpunge)) (MAILBOXES "Later" (MessageNew MessageExpunge))`)
	b := e.login("alice")
	b.ok("b1 CREATE Quiet")
	b.ok("b2 APPEND Quiet {5+}\r\nhello")
	same(t, "not subscribed", a.ok("a1 NOOP"))
	b.ok("b3 SUBSCRIBE Quiet")
	same(t, "subscribed", a.heard(1), `* STATUS "Quiet" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)`)
	b.ok("b4 APPEND Quiet {5+}\r\nhello")
	same(t, "watched", a.heard(1), `* STATUS "Quiet" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)`)
	b.ok("b5 UNSUBSCRIBE Quiet")
	b.ok("b6 APPEND Quiet {5+}\r\nhello")
	same(t, "unsubscribed", a.ok("a2 NOOP"))
	b.ok("b7 CREATE Later")
	same(t, "a watched name created", a.heard(1), `* STATUS "Later" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)`)
}
