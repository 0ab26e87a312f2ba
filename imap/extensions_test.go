package imap

import (
	"bufio"
	"compress/flate"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// MULTIAPPEND, COMPRESS, WITHIN, PREVIEW and QUOTA on the wire.

func TestMultiAppend(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.AppendLimit = 1000 }))
	c := e.login("alice")
	v := e.uidValidity("alice", "INBOX")
	m1, m2 := msg("first"), msg("second")
	esc := func(s string) string { return strings.ReplaceAll(s, "\r\n", `\r\n`) }
	transcript(t, c, map[string]string{"V": v}, `
		C: a APPEND INBOX (\Seen) {`+itoa(len(m1))+`+}\r\n`+esc(m1)+` ($Work) " 2-Feb-2026 10:00:00 +0000" {`+itoa(len(m2))+`}
		S: + Ready for literal data
		C: `+esc(m2)+`
		S: a OK [APPENDUID ${V} 1:2] APPEND completed
	`)
	// All or nothing (RFC 3502): the second message is too big, so the
	// first is not kept either; it never entered the mailbox, so no UID
	// was spent on it and no session saw it come and go.
	big := strings.Repeat("x", 2000)
	c.sendRaw("b APPEND INBOX {" + itoa(len(m1)) + "+}\r\n" + m1 + " {" + itoa(len(big)) + "+}\r\n" + big + "\r\n")
	if _, tagged := c.until("b"); !strings.HasPrefix(tagged, "b NO [TOOBIG]") {
		t.Errorf("%q", tagged)
	}
	transcript(t, c, map[string]string{"V": v}, `
		C: c STATUS INBOX (MESSAGES UIDNEXT)
		S: * STATUS INBOX (MESSAGES 2 UIDNEXT 3)
		S: c OK STATUS completed
		C: d SELECT INBOX
		S: * 2 EXISTS
		S: * 2 RECENT
		S: * OK [UNSEEN 2] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 3] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work \*)] Permanent flags
		S: d OK [READ-WRITE] SELECT completed
		C: e FETCH 1:* (FLAGS INTERNALDATE)
		S~ * 1 FETCH (FLAGS (\Seen \Recent) INTERNALDATE
		S: * 2 FETCH (FLAGS ($Work \Recent) INTERNALDATE " 2-Feb-2026 10:00:00 +0000")
		S: e OK FETCH completed
	`)
}

// compressed continues a raw client through COMPRESS=DEFLATE.
type compressed struct {
	fw *flate.Writer
}

func (w compressed) Write(p []byte) (int, error) {
	n, err := w.fw.Write(p)
	if err == nil {
		err = w.fw.Flush()
	}
	return n, err
}

func TestCompress(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("squeezed"), 0)
	c := e.login("alice")
	c.ok("a COMPRESS DEFLATE")
	fw, _ := flate.NewWriter(c.conn, flate.BestCompression)
	zc := &rawClient{t: t, conn: zconn{c.conn, compressed{fw}}, r: bufio.NewReader(flate.NewReader(c.r))}
	transcript(t, zc, nil, `
		C: b NOOP
		S: b OK NOOP completed
		C: c COMPRESS DEFLATE
		S: c NO [COMPRESSIONACTIVE] DEFLATE is already active
		C: d SELECT INBOX
		S: * 1 EXISTS
		S: * 1 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S~ * OK [UIDVALIDITY
		S: * OK [UIDNEXT 2] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: d OK [READ-WRITE] SELECT completed
		C: e FETCH 1 BODY.PEEK[TEXT]
		S: * 1 FETCH (BODY[TEXT] {18}\r\nbody of squeezed\r\n)
		S: e OK FETCH completed
		C: f IDLE
		S: + idling
	`)
	e.appendMsg("alice", "INBOX", msg("while idling"), 0)
	transcript(t, zc, nil, `
		S: * 2 EXISTS
		C: DONE
		S: * 2 RECENT
		S: f OK IDLE terminated
		C: g LOGOUT
		S: * BYE Logging out
		S: g OK LOGOUT completed
	`)
	// Before login COMPRESS is not there.
	c = e.dial().greeted()
	c.fails("a COMPRESS DEFLATE", "BAD")
}

// zconn writes through the compressor and reads from the raw conn (the
// rawClient's reader is given separately).
type zconn struct {
	net.Conn
	w io.Writer
}

func (z zconn) Write(p []byte) (int, error) { return z.w.Write(p) }

func TestWithin(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	e.appendMsgAt("alice", "INBOX", msg("old"), 0, now.Add(-48*time.Hour))
	e.appendMsgAt("alice", "INBOX", msg("hour"), 0, now.Add(-time.Hour))
	e.appendMsgAt("alice", "INBOX", msg("new"), 0, now.Add(-time.Minute))
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	for q, want := range map[string]string{
		"YOUNGER 600":                "* SEARCH 3",
		"YOUNGER 7200":               "* SEARCH 2 3",
		"OLDER 7200":                 "* SEARCH 1",
		"OLDER 600 YOUNGER 86400":    "* SEARCH 2",
		"NOT OLDER 600":              "* SEARCH 3",
		"OR OLDER 86400 YOUNGER 600": "* SEARCH 1 3",
	} {
		if u := c.ok("s SEARCH " + q); len(u) != 1 || u[0] != want {
			t.Errorf("SEARCH %s: %q, want %q", q, u, want)
		}
	}
	c.fails("b SEARCH YOUNGER 0", "BAD")
}

// SAVEDATE (RFC 8514): when the message came into the mailbox, not its
// internal date.
func TestSaveDate(t *testing.T) {
	e := newEnv(t)
	old := time.Date(2020, 3, 4, 5, 6, 7, 0, time.UTC)
	e.appendMsgAt("alice", "INBOX", msg("saved now, dated 2020"), 0, old)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	u := c.ok("b FETCH 1 (INTERNALDATE SAVEDATE)")
	today := time.Now().Format("_2-Jan-2006")
	if len(u) != 1 || !strings.HasPrefix(u[0], `* 1 FETCH (INTERNALDATE " 4-Mar-2020 05:06:07 +0000" SAVEDATE "`+today) {
		t.Errorf("%q, want INTERNALDATE of 2020 and SAVEDATE of today (%s)", u, today)
	}
	day := time.Now().Format("2-Jan-2006")
	for q, want := range map[string]string{
		"SAVEDON " + day:             "* SEARCH 1",
		"SAVEDSINCE " + day:          "* SEARCH 1",
		"SAVEDBEFORE " + day:         "* SEARCH",
		"SAVEDBEFORE 1-Jan-2030":     "* SEARCH 1",
		"SAVEDATESUPPORTED":          "* SEARCH 1",
		"BEFORE 1-Jan-2021":          "* SEARCH 1",
		"SAVEDSINCE 1-Jan-2030":      "* SEARCH",
		"NOT SAVEDON " + day:         "* SEARCH",
		"OR SAVEDON 1-Jan-2021 ALL":  "* SEARCH 1",
		"SAVEDSINCE 1-Jan-2020 SEEN": "* SEARCH",
	} {
		if u := c.ok("s SEARCH " + q); len(u) != 1 || u[0] != want {
			t.Errorf("SEARCH %s: %q, want %q", q, u, want)
		}
	}
	c.fails("c SEARCH SAVEDON 32-Jan-2020", "BAD")
}

func TestPreview(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", "Subject: p\r\n\r\n> quoted line\r\nHello   there,\r\n\r\nthe  report.\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{}</style></head><body><p>Caf&eacute; &amp; <b>tea</b></p></body></html>\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: a\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n", 0)
	e.appendMsg("alice", "INBOX", "Subject: l\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+strings.Repeat("Gr=C3=BC=C3=9Fe ", 60)+"\r\n", 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	u := c.ok("b FETCH 1:4 (PREVIEW)")
	want := []string{
		`* 1 FETCH (PREVIEW "Hello there, the report.")`,
		"* 2 FETCH (PREVIEW {11}\r\nCafé & tea)",
		`* 3 FETCH (PREVIEW "")`,
	}
	for i, w := range want {
		if i >= len(u) || u[i] != w {
			t.Errorf("got %q, want %q", u, w)
		}
	}
	// 200 characters, UTF-8 in a literal (not enabled).
	if len(u) != 4 || !strings.HasPrefix(u[3], "* 4 FETCH (PREVIEW {") || strings.Count(u[3], "ß") != 33 {
		t.Errorf("%q", u)
	}
	c.ok("c FETCH 1 (PREVIEW (LAZY))")
	if u := c.ok("d FETCH 1 (FLAGS)"); strings.Contains(u[0], `\Seen`) {
		t.Errorf("PREVIEW set \\Seen: %q", u)
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) {
		s.QuotaStorage = 4096
		s.QuotaMessages = 3
	}))
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	e.appendMsg("alice", "Archive", msg("two"), 0)
	c := e.login("alice")
	transcript(t, c, nil, `
		C: a GETQUOTAROOT INBOX
		S: * QUOTAROOT INBOX ""
		S: * QUOTA "" (STORAGE 1 4 MESSAGE 2 3)
		S: a OK GETQUOTAROOT completed
		C: b GETQUOTA ""
		S: * QUOTA "" (STORAGE 1 4 MESSAGE 2 3)
		S: b OK GETQUOTA completed
		C: c GETQUOTA "other"
		S: c NO [NONEXISTENT] No such quota root
		C: d SETQUOTA "" (STORAGE 100)
		S: d NO [NOPERM] Quotas are set by the administrator
		C: e APPEND INBOX {5000}
		S: e NO [OVERQUOTA] Quota exceeded
		C: f SELECT INBOX
		S~ * 1 EXISTS
		S~ * 1 RECENT
		S~ * OK [UNSEEN
		S~ * OK [UIDVALIDITY
		S~ * OK [UIDNEXT
		S~ * FLAGS
		S~ * OK [PERMANENTFLAGS
		S: f OK [READ-WRITE] SELECT completed
		C: g COPY 1 Trash
		S~ g OK [COPYUID
		C: h COPY 1 Trash
		S: h NO [OVERQUOTA] Quota exceeded
	`)
	c.ok("i NOOP")
	if !strings.Contains(c.ok("j CAPABILITY")[0], " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE") {
		t.Error("QUOTA not advertised")
	}
	st, _ := e.user("alice").Open(t.Context(), "Trash")
	defer st.Close()
	var n int
	st.Read(t.Context(), func(v *store.View) { n = v.Len() })
	if n != 1 {
		t.Errorf("Trash has %d", n)
	}
}

func TestCatenate(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.AppendLimit = 500 }))
	orig := "From: a@example.org\r\nSubject: orig\r\n\r\noriginal text\r\n"
	e.appendMsg("alice", "INBOX", orig, 0)
	c := e.login("alice")
	v := e.uidValidity("alice", "INBOX")
	vd := e.uidValidity("alice", "Drafts")
	text := "Added line.\r\n"
	transcript(t, c, map[string]string{"V": v, "VD": vd}, `
		C: a APPEND Drafts (\Draft) CATENATE (URL "/INBOX;UIDVALIDITY=${V}/;UID=1/;SECTION=HEADER" TEXT {13+}\r\nAdded line.\r\n URL "imap://alice@localhost/INBOX/;UID=1/;SECTION=TEXT")
		S: a OK [APPENDUID ${VD} 1] APPEND completed
		C: b SELECT INBOX
		S~ * 1 EXISTS
		S~ * 1 RECENT
		S~ * OK [UNSEEN
		S~ * OK [UIDVALIDITY
		S~ * OK [UIDNEXT
		S~ * FLAGS
		S~ * OK [PERMANENTFLAGS
		S: b OK [READ-WRITE] SELECT completed
		C: c APPEND Drafts CATENATE (URL ";UID=1/;SECTION=TEXT/;PARTIAL=0.8")
		S: c OK [APPENDUID ${VD} 2] APPEND completed
		C: d APPEND Drafts CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")
		S: d NO [BADURL /INBOX;UIDVALIDITY=1/;UID=1] Bad or unknown URL
		C: e APPEND Drafts CATENATE (URL "imap://bob@localhost/INBOX/;UID=1")
		S: e NO [BADURL imap://bob@localhost/INBOX/;UID=1] Bad or unknown URL
		C: f APPEND Drafts CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1" URL "/INBOX/;UID=1")
		S: f NO [TOOBIG] Message too big
		C: g APPEND Drafts CATENATE (TEXT {600}
		S: g NO [TOOBIG] Message too big
		C: h APPEND Drafts CATENATE ()
		S: h BAD Syntax error: CATENATE needs a part
		C: i APPEND Drafts CATENATE (BOGUS "x")
		S: i BAD Syntax error: unknown CATENATE part BOGUS
		C: j STATUS Drafts (MESSAGES)
		S: * STATUS "Drafts" (MESSAGES 2)
		S: j OK STATUS completed
	`)
	d, err := e.user("alice").Open(t.Context(), "Drafts")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for uid, want := range map[uint32]string{
		1: "From: a@example.org\r\nSubject: orig\r\n\r\n" + text + "original text\r\n",
		2: "original",
	} {
		b, err := d.OpenMessage(t.Context(), uid)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(b)
		b.Close()
		if string(got) != want {
			t.Errorf("UID %d: %q, want %q", uid, got, want)
		}
	}
	_ = orig
}

func TestContextSearch(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		e.appendMsg("alice", "INBOX", msg(itoa(i)), 0)
	}
	c, o := e.login("alice"), e.login("alice")
	c.ok("s SELECT INBOX")
	o.ok("s SELECT INBOX")
	o.ok(`o1 STORE 1 +FLAGS (\Flagged)`)
	c.ok("n NOOP")
	transcript(t, c, nil, `
		C: p1 SEARCH RETURN (PARTIAL 2:3) ALL
		S: * ESEARCH (TAG "p1") PARTIAL (2:3 2:3)
		S: p1 OK SEARCH completed
		C: p2 UID SEARCH RETURN (PARTIAL -1:-2 COUNT) ALL
		S: * ESEARCH (TAG "p2") UID COUNT 5 PARTIAL (-1:-2 4:5)
		S: p2 OK UID SEARCH completed
		C: p3 SEARCH RETURN (PARTIAL 7:9) ALL
		S: * ESEARCH (TAG "p3") PARTIAL (7:9 NIL)
		S: p3 OK SEARCH completed
		C: p4 SEARCH RETURN (PARTIAL 1:2 ALL) ALL
		S: p4 BAD Syntax error: PARTIAL and ALL together
		C: u1 SEARCH RETURN (UPDATE) FLAGGED
		S: u1 BAD UPDATE needs UID SEARCH
		C: u2 UID SEARCH RETURN (UPDATE CONTEXT) FLAGGED
		S: * ESEARCH (TAG "u2") UID ALL 1
		S: u2 OK UID SEARCH completed
	`)
	o.ok(`o2 STORE 3 +FLAGS (\Flagged)`)
	o.ok(`o3 STORE 1 -FLAGS (\Flagged)`)
	transcript(t, c, nil, `
		C: n2 NOOP
		S: * 3 FETCH (UID 3 FLAGS (\Flagged \Recent))
		S: * 1 FETCH (UID 1 FLAGS (\Recent))
		S: * ESEARCH (TAG "u2") UID ADDTO (0 3)
		S: * ESEARCH (TAG "u2") UID REMOVEFROM (0 1)
		S: n2 OK NOOP completed
	`)
	e.appendMsg("alice", "INBOX", msg("new"), store.FlagFlagged)
	transcript(t, c, nil, `
		C: n3 NOOP
		S: * 6 EXISTS
		S: * ESEARCH (TAG "u2") UID ADDTO (0 6)
		S: * 6 RECENT
		S: n3 OK NOOP completed
		C: x CANCELUPDATE "u2"
		S: x OK CANCELUPDATE completed
		C: x2 CANCELUPDATE "u2"
		S: x2 BAD No search kept alive with tag u2
	`)
	o.ok(`o4 STORE 2 +FLAGS (\Flagged)`)
	transcript(t, c, nil, `
		C: n4 NOOP
		S: * 2 FETCH (UID 2 FLAGS (\Flagged \Recent))
		S: n4 OK NOOP completed
	`)
}
