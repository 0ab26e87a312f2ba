package imap

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// What real clients send, in their order and spelling.

func plainResponse(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

var uidNextRE = regexp.MustCompile(`\[UIDNEXT (\d+)\]`)

// Thunderbird 153 (from its IMAP log): the greeting's [CAPABILITY] is all
// it reads before login; AUTHENTICATE PLAIN without SASL-IR; it never asks
// CAPABILITY again after login but uses the tagged OK's [CAPABILITY].
func TestThunderbird(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 3; i++ {
		e.appendMsg("alice", "INBOX", fmt.Sprintf("From: Bob <bob@example.org>\r\nTo: alice@example.net\r\nSubject: Mail %d\r\nMessage-ID: <m%d@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:0%d +0000\r\n\r\nText %d\r\n", i, i, i, i), 0)
	}
	c := e.dialTLS()
	greeting := c.line()
	if !strings.Contains(greeting, "[CAPABILITY ") || !strings.Contains(greeting, "AUTH=PLAIN") {
		t.Fatalf("greeting %q", greeting)
	}
	c.send("1 authenticate PLAIN")
	c.expect("+")
	c.send(plainResponse("alice", testPassword))
	_, tagged := c.until("1")
	for _, want := range []string{"1 OK [CAPABILITY ", " IDLE ", " MOVE ", " UIDPLUS ", " SPECIAL-USE ", " NAMESPACE "} {
		if !strings.Contains(tagged, want) {
			t.Errorf("authenticate OK %q lacks %q", tagged, want)
		}
	}
	if u := c.ok("2 namespace"); u[0] != `* NAMESPACE (("" "/")) NIL NIL` {
		t.Errorf("namespace %q", u)
	}
	u := c.ok(`3 list (subscribed) "" "*" return (special-use)`)
	for _, want := range []string{`* LIST (\HasNoChildren \Subscribed) "/" INBOX`, `* LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent"`,
		`* LIST (\HasNoChildren \Trash \Subscribed) "/" "Trash"`, `* LIST (\HasNoChildren \Drafts \Subscribed) "/" "Drafts"`} {
		if !contains(u, want) {
			t.Errorf("list (subscribed): %q lacks %q", u, want)
		}
	}
	if u := c.ok(`4 list "" "INBOX"`); len(u) != 1 || u[0] != `* LIST (\HasNoChildren) "/" INBOX` {
		t.Errorf(`list "" "INBOX": %q`, u)
	}
	sel := strings.Join(c.ok(`5 select "INBOX"`), "\n")
	m := uidNextRE.FindStringSubmatch(sel)
	if m == nil || m[1] != "4" {
		t.Fatalf("select: %s", sel)
	}
	if u := c.ok("6 UID fetch 1:* (FLAGS)"); len(u) != 3 || u[0] != `* 1 FETCH (UID 1 FLAGS (\Recent))` {
		// Delivered before this first SELECT: recent (RFC 3501 §2.3.2).
		t.Errorf("UID fetch 1:* (FLAGS): %q", u)
	}
	u = c.ok("7 UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To Received)])")
	if len(u) != 3 || !strings.Contains(u[0], "Subject: Mail 1\r\nMessage-ID: <m1@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:01 +0000\r\n\r\n") {
		t.Errorf("header fetch: %q", u)
	}
	u = c.ok("8 UID fetch 2 (UID RFC822.SIZE BODY.PEEK[])")
	if len(u) != 1 || !strings.HasSuffix(u[0], "\r\nText 2\r\n)") || strings.Contains(u[0], `\Seen`) {
		t.Errorf("body fetch: %q", u)
	}

	// Four more connections, one per folder, each IDLEing; STATUS for the
	// others (Thunderbird opens up to five per account).
	var others []*rawClient
	for i, box := range []string{"Sent", "Drafts", "Trash", "Archive"} {
		o := e.dialTLS().greeted()
		o.send(fmt.Sprintf("%d authenticate PLAIN", i+1))
		o.expect("+")
		o.send(plainResponse("alice", testPassword))
		o.until(fmt.Sprint(i + 1))
		o.ok(`2 select "` + box + `"`)
		if u := o.ok(`3 STATUS "INBOX" (UIDNEXT MESSAGES UNSEEN RECENT)`); u[0] != `* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UNSEEN 3 RECENT 0)` {
			t.Errorf("STATUS: %q", u)
		}
		o.send("4 IDLE")
		o.expect("+ ")
		others = append(others, o)
	}

	// New mail while IDLE: DONE on the first untagged line, then noop and
	// "UID fetch <UIDNEXT>:*".
	c.send("9 IDLE")
	c.expect("+ ")
	e.appendMsg("alice", "INBOX", "From: Carol <carol@example.org>\r\nSubject: New\r\nMessage-ID: <m4@example.org>\r\n\r\nnew\r\n", 0)
	c.expect("* 4 EXISTS")
	c.send("DONE")
	c.until("9")
	c.ok("10 noop")
	if u := c.ok("11 UID fetch 4:* (FLAGS)"); len(u) != 1 || u[0] != `* 4 FETCH (UID 4 FLAGS (\Recent))` {
		t.Errorf("UID fetch <UIDNEXT>:*: %q", u)
	}
	// The same when nothing new came: n above the highest UID gives the
	// highest (RFC 3501 §6.4.8), which Thunderbird expects.
	if u := c.ok("12 UID fetch 5:* (FLAGS)"); len(u) != 1 || u[0] != `* 4 FETCH (UID 4 FLAGS (\Recent))` {
		t.Errorf("UID fetch 5:*: %q", u)
	}

	// Actions.
	if u := c.ok(`13 uid store 1 +Flags (\Seen)`); u[0] != `* 1 FETCH (UID 1 FLAGS (\Seen \Recent))` {
		t.Errorf("+Flags: %q", u)
	}
	if u := c.ok(`14 uid store 1 -Flags (\Seen)`); u[0] != `* 1 FETCH (UID 1 FLAGS (\Recent))` {
		t.Errorf("-Flags: %q", u)
	}
	c.ok(`15 uid store 2 +Flags (\Flagged)`)
	c.ok(`16 create "Archive/2026"`)
	c.ok(`17 subscribe "Archive/2026"`)
	u, tagged = c.cmd(`18 uid move 1 "Archive/2026"`)
	if len(u) != 2 || !strings.HasPrefix(u[0], "* OK [COPYUID ") || u[1] != "* 1 EXPUNGE" || !strings.HasPrefix(tagged, "18 OK") {
		t.Errorf("uid move: %q %q", u, tagged)
	}
	if u := c.ok(`19 uid move 2 "Trash"`); !strings.HasPrefix(u[0], "* OK [COPYUID ") {
		t.Errorf("uid move to Trash: %q", u)
	}
	// The Trash connection, IDLEing, hears of it.
	others[2].expect("* 1 EXISTS")
	// Empty trash.
	c.ok(`20 select "Trash"`)
	c.ok(`21 store 1:* +FLAGS.SILENT (\Deleted)`)
	if u := c.ok("22 expunge"); len(u) != 1 || u[0] != "* 1 EXPUNGE" {
		t.Errorf("expunge: %q", u)
	}
	others[2].expect(`* 1 FETCH (UID 1 FLAGS (\Flagged \Deleted))`)
	others[2].expect("* 1 EXPUNGE")
	c.ok(`23 list "" "Trash/*"`)
	// Save a draft.
	draft := "Date: Mon, 2 Mar 2026 12:00:00 +0100\r\nFrom: Alice <alice@example.net>\r\nTo: bob@example.org\r\nSubject: Draft\r\nMessage-ID: <draft1@example.net>\r\nUser-Agent: Mozilla Thunderbird\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		strings.Repeat("Draft text. ", 20) + "\r\n"
	draft = draft + strings.Repeat("x", 601-len(draft)-2) + "\r\n"
	c.sendRaw(`24 append "Drafts" (\Draft) {601+}` + "\r\n" + draft + "\r\n")
	_, tagged = c.until("24")
	if !strings.HasPrefix(tagged, "24 OK [APPENDUID ") {
		t.Errorf("append draft: %q", tagged)
	}
	others[1].expect("* 1 EXISTS")

	// Without UIDPLUS and MOVE: uid copy, uid store, and finding the
	// message again by its Message-ID.
	c.ok(`25 select "INBOX"`)
	c.ok(`26 uid copy 3 "Archive"`)
	c.ok(`27 uid store 3 +FLAGS (\Deleted \Seen)`)
	if u := c.ok(`28 uid SEARCH UNDELETED HEADER Message-ID <m3@example.org>`); u[0] != "* SEARCH" {
		t.Errorf("search: %q", u)
	}
	if u := c.ok(`29 uid SEARCH UNDELETED HEADER Message-ID <m4@example.org>`); u[0] != "* SEARCH 4" {
		t.Errorf("search: %q", u)
	}
	// Thunderbird closes its sockets without LOGOUT.
	c.conn.Close()
	for _, o := range others {
		o.conn.Close()
	}
	// The server is fine, and the connections were counted down.
	e.login("alice").ok("a NOOP")
}

// Outlook: LOGIN (it speaks AUTH=LOGIN-style plain logins), RFC822.PEEK,
// UID COPY + UID STORE \Deleted + EXPUNGE to move, an empty namespace
// prefix, special-use attributes in LSUB too.
func TestOutlook(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("for outlook"), 0)
	c := e.dialTLS().greeted()
	c.ok("A001 CAPABILITY")
	c.ok(`A002 LOGIN "alice" "secret"`)
	c.ok("A003 CAPABILITY")
	if u := c.ok("A004 NAMESPACE"); u[0] != `* NAMESPACE (("" "/")) NIL NIL` {
		t.Errorf("NAMESPACE %q", u)
	}
	u := c.ok(`A005 LSUB "" "*"`)
	for _, want := range []string{`* LSUB (\Sent) "/" "Sent"`, `* LSUB (\Trash) "/" "Trash"`, `* LSUB () "/" INBOX`} {
		if !contains(u, want) {
			t.Errorf("LSUB: %q lacks %q", u, want)
		}
	}
	c.ok(`A006 LIST "" "*"`)
	c.ok(`A007 SELECT "INBOX"`)
	u = c.ok("A008 UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
	u = c.ok("A009 UID FETCH 1 (UID RFC822.PEEK)")
	if len(u) != 1 || !strings.HasPrefix(u[0], "* 1 FETCH (UID 1 RFC822 {66}\r\n") || strings.Contains(u[0], `\Seen`) {
		t.Errorf("RFC822.PEEK: %q", u)
	}
	if u := c.ok("A010 UID FETCH 1 (FLAGS)"); u[0] != `* 1 FETCH (UID 1 FLAGS (\Recent))` {
		t.Errorf("RFC822.PEEK set flags: %q", u)
	}
	u, tagged := c.cmd(`A011 UID COPY 1 "Archive"`)
	if !strings.HasPrefix(tagged, "A011 OK [COPYUID ") {
		t.Errorf("UID COPY: %q %q", u, tagged)
	}
	c.ok(`A012 UID STORE 1 +FLAGS (\Deleted)`)
	if u := c.ok("A013 EXPUNGE"); len(u) != 1 || u[0] != "* 1 EXPUNGE" {
		t.Errorf("EXPUNGE: %q", u)
	}
	if u := c.ok(`A014 STATUS "Archive" (MESSAGES)`); u[0] != `* STATUS "Archive" (MESSAGES 1)` {
		t.Errorf("STATUS: %q", u)
	}
	c.ok("A015 LOGOUT")
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
