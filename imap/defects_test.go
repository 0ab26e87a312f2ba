package imap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The defects of issue 11 ("Wrong on the wire", "Wrong under
// concurrency"), each shown on the wire. Every test here failed on the
// server built on imapserver and its wrapper.

func TestBinaryAppendIsStoredAsBase64(t *testing.T) {
	// RFC 3516 §4.4: a literal8 part with Content-Transfer-Encoding
	// binary; its content has NUL and bare LFs.
	e := newEnv(t)
	c := e.login("alice")
	part := "\x00a\nb\nc\x00"
	m := "Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + part + "\r\n--b--\r\n"
	c.sendRaw("a APPEND INBOX ~{" + itoa(len(m)) + "+}\r\n" + m + "\r\n")
	if _, tagged := c.until("a"); !strings.HasPrefix(tagged, "a OK [APPENDUID") {
		t.Fatalf("%q", tagged)
	}
	c.ok("b SELECT INBOX")
	u := c.ok("c FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2] BODY.PEEK[2])")
	want := "* 1 FETCH (BINARY.SIZE[2] 7 BINARY[2] ~{7}\r\n" + part + " BODY[2] {12}\r\nAGEKYgpjAA==)"
	if len(u) != 1 || u[0] != want {
		t.Errorf("got  %q\nwant %q", u, want)
	}
	if u := c.ok("d FETCH 1 (BODY.PEEK[])"); strings.IndexByte(u[0], 0) >= 0 {
		t.Errorf("NUL in an ordinary literal: %q", u)
	}
}

func TestNULNeverInAnOrdinaryLiteral(t *testing.T) {
	// A message with NUL delivered from outside: BODY[] carries 0x80
	// instead (RFC 3501 §4.3 has no NUL in literals); BINARY[] is exact.
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Subject: nul\r\n\r\na\x00b\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	u := c.ok("b FETCH 1 (BODY.PEEK[TEXT] BINARY.PEEK[1])")
	if want := "* 1 FETCH (BODY[TEXT] {5}\r\na\x80b\r\n BINARY[1] ~{5}\r\na\x00b\r\n)"; len(u) != 1 || u[0] != want {
		t.Errorf("got %q, want %q", u, want)
	}
}

func TestInvalidModifiedUTF7IsNO(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	for _, cmd := range []string{`a SELECT "&Jjo"`, `b CREATE "&Jjo"`, `c STATUS "&Jjo" (MESSAGES)`, `d DELETE "x&-&"`, "e EXAMINE \"caf\xe9\""} {
		if got := c.fails(cmd, "NO"); !strings.Contains(got, "modified UTF-7") {
			t.Errorf("%s: %q", cmd, got)
		}
	}
	if u := c.ok(`f LIST "" "&Jjo"`); len(u) != 0 {
		t.Errorf("LIST of an invalid name: %q", u)
	}
}

func TestPartialBinaryHasItsOrigin(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Subject: p\r\n\r\n0123456789\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	if u := c.ok("b FETCH 1 (BINARY.PEEK[1]<2.3> BODY.PEEK[TEXT]<5.100>)"); len(u) != 1 || u[0] != "* 1 FETCH (BINARY[1]<2> ~{3}\r\n234 BODY[TEXT]<5> {7}\r\n56789\r\n)" {
		t.Errorf("%q", u)
	}
}

func TestEnvelopeKeepsSourceRoute(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "From: Old <@relay.example,@gw.example:user@example.org>\r\nSubject: r\r\n\r\nx\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	u := c.ok("b FETCH 1 (ENVELOPE)")
	if want := `(("Old" "@relay.example,@gw.example" "user" "example.org"))`; len(u) != 1 || !strings.Contains(u[0], want) {
		t.Errorf("%q lacks %s", u, want)
	}
}

func TestSearchAddressWithComments(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "From: <user (comment)@ (comment) domain.org>\r\nTo: \"Team\" <team@example.org>\r\nSubject: c\r\n\r\nx\r\n", 0)
	e.appendMsg("alice", "INBOX", "From: other@domain.org\r\nSubject: d\r\n\r\nx\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	for q, want := range map[string]string{
		"FROM user@domain.org":          "* SEARCH 1",
		`FROM "user@domain.org"`:        "* SEARCH 1",
		"TO team@example.org":           "* SEARCH 1",
		`TO "Team <team@example.org>"`:  "* SEARCH 1",
		"FROM domain.org":               "* SEARCH 1 2",
		"NOT FROM user@domain.org":      "* SEARCH 2",
		`HEADER From "user@domain.org"`: "* SEARCH 1",
	} {
		if u := c.ok("s SEARCH " + q); len(u) != 1 || u[0] != want {
			t.Errorf("SEARCH %s: %q, want %q", q, u, want)
		}
	}
}

func TestListRecursiveMatchSkipsListedChild(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	c.ok("a CREATE a/b/c")
	c.ok("b CREATE a/b")
	c.ok("c SUBSCRIBE a/b/c")
	u := c.ok(`d LIST (SUBSCRIBED RECURSIVEMATCH) "" (a/b a/b/c)`)
	if strings.Join(u, "|") != `* LIST (\HasNoChildren \Subscribed) "/" "a/b/c"` {
		t.Errorf("%q", u)
	}
	// The parent is listed with CHILDINFO when its child is not.
	u = c.ok(`e LIST (SUBSCRIBED RECURSIVEMATCH) "" a/b`)
	if strings.Join(u, "|") != `* LIST (\HasChildren) "/" "a/b" (CHILDINFO ("SUBSCRIBED"))` {
		t.Errorf("%q", u)
	}
}

func TestHeaderFieldsEchoedAsAtoms(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Message-ID: <1@x>\r\nSubject: h\r\n\r\nx\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	u := c.ok(`b FETCH 1 (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID subject)] BODY.PEEK[HEADER.FIELDS.NOT ("X-A]")])`)
	if want := "* 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID subject)] {33}\r\nMessage-ID: <1@x>\r\nSubject: h\r\n\r\n " +
		`BODY[HEADER.FIELDS.NOT ("X-A]")] {33}` + "\r\nMessage-ID: <1@x>\r\nSubject: h\r\n\r\n)"; len(u) != 1 || u[0] != want {
		t.Errorf("got  %q\nwant %q", u, want)
	}
}

func TestUTF8AcceptKeepsAmpersands(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	c.ok("a ENABLE UTF8=ACCEPT")
	m := "Subject: amp\r\n\r\nx\r\n"
	c.sendRaw("b APPEND INBOX ($a&b) {" + itoa(len(m)) + "+}\r\n" + m + "\r\n")
	if _, tagged := c.until("b"); !strings.HasPrefix(tagged, "b OK") {
		t.Fatal(tagged)
	}
	c.ok(`c CREATE "R&D"`)
	c.sendRaw("d SELECT {3+}\r\nR&D\r\n")
	if _, tagged := c.until("d"); !strings.HasPrefix(tagged, "d OK") {
		t.Errorf("SELECT of a name with & as a literal: %q", tagged)
	}
	c.ok("e SELECT INBOX")
	if u := c.ok("f FETCH 1 (FLAGS)"); len(u) != 1 || !strings.Contains(u[0], "$a&b") {
		t.Errorf("%q", u)
	}
	// On disk as Dovecot writes it.
	if _, err := os.Stat(filepath.Join(e.user("alice").Root(), ".R&-D")); err != nil {
		t.Error(err)
	}
}

func TestMoveSaysMoveAndServerBugIsNO(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("m"), 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	u, tagged := c.cmd("b MOVE 1 Trash")
	if tagged != "b OK MOVE completed" || len(u) != 2 || !strings.HasPrefix(u[0], "* OK [COPYUID ") ||
		strings.Contains(u[0], "COPY completed") || u[1] != "* 1 EXPUNGE" {
		t.Errorf("%q %q", u, tagged)
	}
	// A failure of the server is NO [SERVERBUG], never BAD, and says
	// nothing of paths or errno.
	tmp := filepath.Join(e.user("alice").Root(), ".Junk", "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := "Subject: x\r\n\r\nx\r\n"
	c.sendRaw("c APPEND Junk {" + itoa(len(m)) + "+}\r\n" + m + "\r\n")
	_, tagged = c.until("c")
	if tagged != "c NO [SERVERBUG] Internal error, see the server log" {
		t.Errorf("%q", tagged)
	}
}

func TestFlagsAnnouncedBeforeUse(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a1 SELECT INBOX")
	b.ok("b1 SELECT INBOX")
	for i, kw := range []string{"$Label1", "$Label2", "Work"} {
		b.ok("b2 STORE 1 +FLAGS (" + kw + ")")
		u := a.ok("a2 NOOP")
		flags, fetch := -1, -1
		for j, l := range u {
			if strings.HasPrefix(l, "* FLAGS ") && strings.Contains(l, kw) {
				flags = j
			}
			if strings.HasPrefix(l, "* 1 FETCH") && fetch < 0 {
				fetch = j
			}
		}
		if flags < 0 || fetch < 0 || flags > fetch {
			t.Errorf("keyword %d %s: FLAGS must come before the FETCH that uses it: %q", i, kw, u)
		}
	}
	// The session's own STORE of a new keyword too.
	u := a.ok("a3 STORE 1 +FLAGS (Fresh)")
	if len(u) != 2 || !strings.HasPrefix(u[0], "* FLAGS (") || !strings.Contains(u[0], "Fresh") || !strings.HasPrefix(u[1], "* 1 FETCH") {
		t.Errorf("own STORE: %q", u)
	}
}

func TestRecentNeverExceedsExists(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	e.appendMsg("alice", "INBOX", msg("two"), 0)
	a, b := e.login("alice"), e.login("alice")
	if f := selectFacts(a.ok("a1 SELECT INBOX")); f["RECENT"] != "2" {
		t.Fatalf("SELECT: %v", f)
	}
	b.ok("b1 SELECT INBOX")
	b.ok(`b2 STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	b.ok("b3 EXPUNGE")
	e.appendMsg("alice", "INBOX", msg("three"), 0)
	u := a.ok("a2 NOOP")
	if n := len(u); n < 4 || strings.Join(u[n-4:], "|") != "* 2 EXPUNGE|* 1 EXPUNGE|* 1 EXISTS|* 1 RECENT" {
		t.Errorf("%q", u)
	}
}

func TestOwnSilentStoreNeverShownOlderFlags(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a1 SELECT INBOX")
	b.ok("b1 SELECT INBOX")
	b.ok("b2 STORE 1 +FLAGS.SILENT ($X)")
	var seen []string
	seen = append(seen, a.ok(`a2 STORE 1 +FLAGS.SILENT (\Deleted)`)...)
	seen = append(seen, a.ok("a3 NOOP")...)
	var fetches []string
	for _, l := range seen {
		if strings.HasPrefix(l, "* 1 FETCH") {
			fetches = append(fetches, l)
			if !strings.Contains(l, `\Deleted`) {
				t.Errorf("shown a state older than its own STORE: %q", l)
			}
		}
	}
	if len(fetches) == 0 || !strings.Contains(fetches[len(fetches)-1], "$X") {
		t.Errorf("never told of the other session's $X: %q", seen)
	}
	// And no echo of its own change alone.
	if u := a.ok("a4 NOOP"); len(u) != 0 {
		t.Errorf("%q", u)
	}
}

func TestIDIsLogged(t *testing.T) {
	e := newEnv(t)
	c := e.dial().greeted()
	u := c.ok(`a ID ("name" "Thunderbird" "version" "153.0" "os" {5+}` + "\r\nLinux)")
	if len(u) != 1 || u[0] != "* ID NIL" {
		t.Errorf("%q", u)
	}
	waitFor(t, func() bool {
		l := e.logs.String()
		return strings.Contains(l, "client_name=Thunderbird") && strings.Contains(l, "client_version=153.0") && strings.Contains(l, "client_os=Linux")
	})
}

func TestDiskFullIsOverQuota(t *testing.T) {
	// A full disk is NO [OVERQUOTA] (store.ErrNoSpace), without details.
	// The file system is a 256 KiB tmpfs, which needs root.
	e := newEnv(t)
	mail := filepath.Join(e.dir, "mail")
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mail).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mail).Run() })
	c := e.login("alice")
	m := "Subject: big\r\n\r\n" + strings.Repeat("x", 400<<10) + "\r\n"
	c.sendRaw("a APPEND INBOX {" + itoa(len(m)) + "+}\r\n" + m + "\r\n")
	if _, tagged := c.until("a"); tagged != "a NO [OVERQUOTA] No space left for your mail, delete some" {
		t.Errorf("%q", tagged)
	}
	c.ok("b APPEND INBOX {7+}\r\nsmall\r\n")
}
