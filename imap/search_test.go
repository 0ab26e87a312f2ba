package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
)

// Every search key of RFC 3501 §6.4.4 / RFC 9051 §6.4.4 over the message
// set, with text keys on decoded MIME parts.

func TestSearchKeys(t *testing.T) {
	e := newEnv(t)
	// 1..7: testdata/messages in order, with internal dates 1..7 April.
	for i, mc := range messageCases {
		date := time.Date(2026, 4, i+1, 12, 0, 0, 0, time.Local)
		e.appendMsgAt("alice", "INBOX", string(readFile(t, filepath.Join("testdata", "messages", mc.file))), 0, date)
	}
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	c.ok(`b STORE 1 +FLAGS (\Seen \Answered)`)
	c.ok(`b STORE 2 +FLAGS (\Flagged $Work)`)
	c.ok(`b STORE 3 +FLAGS (\Deleted)`)
	c.ok(`b STORE 4 +FLAGS (\Draft \Seen)`)

	cases := []struct{ query, want string }{
		{"ALL", "1 2 3 4 5 6 7"},
		{"ANSWERED", "1"},
		{"UNANSWERED", "2 3 4 5 6 7"},
		{"FLAGGED", "2"},
		{"UNFLAGGED", "1 3 4 5 6 7"},
		{"DELETED", "3"},
		{"UNDELETED", "1 2 4 5 6 7"},
		{"DRAFT", "4"},
		{"UNDRAFT", "1 2 3 5 6 7"},
		{"SEEN", "1 4"},
		{"UNSEEN", "2 3 5 6 7"},
		{"KEYWORD $work", "2"},
		{"UNKEYWORD $Work", "1 3 4 5 6 7"},
		{"RECENT", "1 2 3 4 5 6 7"}, // appended before this first SELECT
		{"OLD", ""},
		{"NEW", "2 3 5 6 7"}, // recent and unseen
		{"FROM bob", "2"},
		{`FROM "jürgen"`, "4"}, // RFC 2047 Q in ISO-8859-1
		{`FROM "Bärbel"`, "5"}, // raw 8-bit
		{`TO "zoë"`, "5"},      // case-folded
		{"CC team@example.org", "2"},
		{"BCC frank", "4"},
		{`SUBJECT "grüße aus köln"`, "4"}, // B-encoded, folded
		{`SUBJECT "€"`, "4"},
		{"SUBJECT lunch", "3"},
		{`HEADER Message-ID "<lf-only@"`, "6"},
		{`HEADER X-Missing ""`, ""},
		{`HEADER Content-Type ""`, "1 2 3 4 5"},
		{`BODY "café mugs"`, "1"},          // quoted-printable UTF-8, text and HTML
		{`BODY "Grüße aus Köln"`, "4"},     // quoted-printable ISO-8859-1
		{`BODY "Übersicht"`, "4"},          // base64 UTF-8 attachment
		{`BODY "lunch at noon"`, "3"},      // inside message/rfc822
		{`BODY "report is attached"`, "2"}, // 7bit
		{`BODY "Zoë"`, "5"},                // 8bit
		{`BODY "JVBERi0x"`, ""},            // not in the base64 of a PDF
		{"BODY lunch", "3"},
		{"BODY subject", ""},                  // not the header
		{"TEXT subject", "1 2 3 4 5 6 7"},     // header and body
		{`TEXT "Dave"`, "3"},                  // inner message header
		{`CHARSET UTF-8 TEXT "MÜNCHEN"`, "5"}, // case-folded non-ASCII
		{"CHARSET US-ASCII BODY wire", "6"},
		{"LARGER 800", "1 2"},
		{"SMALLER 300", "6 7"},
		{"LARGER 300 SMALLER 760", "3 4 5"},
		{"SINCE 5-Apr-2026", "5 6 7"},
		{"BEFORE 3-Apr-2026", "1 2"},
		{"ON 4-Apr-2026", "4"},
		{"SENTSINCE 6-Mar-2026", "5 6 7"}, // 7 has no Date: its internal date counts
		{"SENTBEFORE 3-Mar-2026", "1"},
		{"SENTON 4-Mar-2026", "3"},
		{"2:4", "2 3 4"},
		{"5:*", "5 6 7"},
		{"*", "7"},
		{"1,3,5:6", "1 3 5 6"},
		{"UID 2:3", "2 3"},
		{"UID 99:*", "7"},
		{"NOT SEEN", "2 3 5 6 7"},
		{"OR FLAGGED DRAFT", "2 4"},
		{"OR (FROM bob SEEN) (SUBJECT lunch)", "3"},
		{"(UNSEEN UNDELETED) NOT 7", "2 5 6"},
		{"NOT NOT FLAGGED", "2"},
	}
	for _, tc := range cases {
		u, tagged := c.cmd("s SEARCH " + tc.query)
		if !strings.HasPrefix(tagged, "s OK") || len(u) != 1 {
			t.Errorf("SEARCH %s: %q %q", tc.query, u, tagged)
			continue
		}
		if got := strings.TrimSpace(strings.TrimPrefix(u[0], "* SEARCH")); got != tc.want {
			t.Errorf("SEARCH %s = %q, want %q", tc.query, got, tc.want)
		}
	}
	c.fails("s SEARCH CHARSET KOI8-R BODY x", "NO [BADCHARSET]")

	// ESEARCH (RFC 4731) and SEARCHRES (RFC 5182).
	if u := c.ok("r1 UID SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN"); u[0] != `* ESEARCH (TAG "r1") UID ALL 2:3,5:7 MIN 2 MAX 7 COUNT 5` {
		t.Errorf("ESEARCH: %q", u)
	}
	if u := c.ok("r2 SEARCH RETURN () FLAGGED"); u[0] != `* ESEARCH (TAG "r2") ALL 2` {
		t.Errorf("ESEARCH RETURN (): %q", u)
	}
	if u := c.ok("r3 SEARCH RETURN (COUNT) KEYWORD nothing"); u[0] != `* ESEARCH (TAG "r3") COUNT 0` {
		t.Errorf("ESEARCH no match: %q", u)
	}
	// RFC 5182 §2.4: SAVE alone returns nothing.
	if u := c.ok("r4 SEARCH RETURN (SAVE) UNSEEN UNDELETED"); len(u) != 0 {
		t.Errorf("SEARCH RETURN (SAVE): %q", u)
	}
	if u := c.ok("r5 FETCH $ (UID)"); strings.Join(u, "|") != "* 2 FETCH (UID 2)|* 5 FETCH (UID 5)|* 6 FETCH (UID 6)|* 7 FETCH (UID 7)" {
		t.Errorf("FETCH $: %q", u)
	}
	if u := c.ok("r6 SEARCH $ SMALLER 300"); u[0] != "* SEARCH 6 7" {
		t.Errorf("SEARCH $: %q", u)
	}
	c.ok("r7 SEARCH RETURN (SAVE MIN MAX) UNSEEN")
	if u := c.ok("r8 UID SEARCH UID $"); u[0] != "* SEARCH 2 7" {
		t.Errorf("SAVE with MIN MAX saves only those (RFC 5182 §2.4): %q", u)
	}
	c.ok(`r9 UID STORE $ +FLAGS (\Seen)`)
	if u := c.ok("r10 SEARCH UNSEEN"); u[0] != "* SEARCH 3 5 6" {
		t.Errorf("STORE $: %q", u)
	}
	c.ok("r11 UNSELECT")
	c.ok("r12 SELECT INBOX")
	if u := c.ok("r13 SEARCH $"); u[0] != "* SEARCH" {
		t.Errorf("$ survives a new SELECT: %q", u)
	}
}

// Charsets beyond Latin-1 are decoded for BODY and SUBJECT searches
// (go-message's charset package): ISO-8859-2 and KOI8-R bodies, an
// encoded-word in Shift_JIS.
func TestSearchOtherCharsets(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Subject: polish\r\nContent-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: 8bit\r\n\r\nZa\xbf\xf3\xb3\xe6 g\xea\xb6l\xb1 ja\xbc\xf1\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: russian\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: =?Shift_JIS?B?k/qWe4zq?=\r\n\r\nx\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	for query, want := range map[string]string{
		`CHARSET UTF-8 BODY "gęślą"`:  "1",
		`CHARSET UTF-8 BODY "привет"`: "2",
		`CHARSET UTF-8 SUBJECT "日本語"`: "3",
	} {
		untagged := c.ok("s SEARCH " + query)
		got := ""
		for _, l := range untagged {
			if strings.HasPrefix(l, "* SEARCH") {
				got = strings.TrimSpace(strings.TrimPrefix(l, "* SEARCH"))
			}
		}
		if got != want {
			t.Errorf("SEARCH %s = %q, want %q", query, got, want)
		}
	}
}

// TestSearchLargeMailbox searches a mailbox bigger than one searchChunk,
// with a message expunged just before a chunk boundary, so the chunks
// must meet exactly: every unseen message found once, in order, with its
// own sequence number.
func TestSearchLargeMailbox(t *testing.T) {
	const n = 2*searchChunk + 50
	dir := t.TempDir()
	root := filepath.Join(dir, "mail", "alice", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var ul strings.Builder
	fmt.Fprintf(&ul, "3 V1700000000 N%d G0123456789abcdef0123456789abcdef\n", n+1)
	msg := []byte("Subject: x\r\n\r\nbody\r\n")
	for uid := 1; uid <= n; uid++ {
		flags := "S"
		if uid%7 == 0 || uid == searchChunk || uid == searchChunk+1 {
			flags = ""
		}
		base := fmt.Sprintf("1700000000.M%dP1.host,S=%d", uid, len(msg))
		if err := os.WriteFile(filepath.Join(root, "cur", base+":2,"+flags), msg, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&ul, "%d :%s\n", uid, base)
	}
	if err := os.WriteFile(filepath.Join(root, "dovecot-uidlist"), []byte(ul.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := auth.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.AddUser(filepath.Join(dir, "users"), "alice", h); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withDir(dir))
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	// Expunge UID searchChunk-1, so that sequence numbers and UIDs part
	// at the first boundary.
	gone := searchChunk - 1
	c.ok(fmt.Sprintf("d UID STORE %d +FLAGS.SILENT (\\Deleted)", gone))
	c.ok(fmt.Sprintf("x UID EXPUNGE %d", gone))
	var wantUIDs, wantSeqs, wantRange []string
	lo, hi := searchChunk-3, searchChunk+3
	seq := 0
	for uid := 1; uid <= n; uid++ {
		if uid == gone {
			continue
		}
		seq++
		if uid%7 == 0 || uid == searchChunk || uid == searchChunk+1 {
			wantUIDs = append(wantUIDs, strconv.Itoa(uid))
			wantSeqs = append(wantSeqs, strconv.Itoa(seq))
			if seq >= lo && seq <= hi {
				wantRange = append(wantRange, strconv.Itoa(seq))
			}
		}
	}
	for _, tc := range []struct{ cmd, want string }{
		{"UID SEARCH UNSEEN", "* SEARCH " + strings.Join(wantUIDs, " ")},
		{"SEARCH UNSEEN", "* SEARCH " + strings.Join(wantSeqs, " ")},
		{fmt.Sprintf("SEARCH %d:%d UNSEEN", lo, hi), "* SEARCH " + strings.Join(wantRange, " ")},
		{"SEARCH RETURN (COUNT) ALL", fmt.Sprintf("* ESEARCH (TAG \"c\") COUNT %d", n-1)},
	} {
		got := c.ok("c " + tc.cmd)
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s:\n got %.200q\nwant %.200q", tc.cmd, got, tc.want)
		}
	}
}
