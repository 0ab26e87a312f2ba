package imap

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Transcripts: every command in every state, client line → exact server
// lines. A script is "C: " lines (sent, with \r\n and {n+} literals
// written out) and "S: " lines (the next server line, a literal's content
// included), "S~ " for a prefix. ${NAME} stands for vars[NAME]; in an "S: "
// line ${=NAME} matches a number and sets vars[NAME] to it, for values
// the test cannot know before (a MODSEQ, which comes from the clock).

func transcript(t *testing.T, c *rawClient, vars map[string]string, script string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(script), "\n") {
		l = strings.TrimLeft(l, "\t ")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		for k, v := range vars {
			l = strings.ReplaceAll(l, "${"+k+"}", v)
		}
		l = strings.ReplaceAll(l, `\r\n`, "\r\n")
		l = strings.ReplaceAll(l, `\x00`, "\x00")
		kind, text := l[:3], l[3:]
		switch kind {
		case "C: ":
			c.send(text)
		case "S: ":
			got := c.line()
			if strings.Contains(text, "${=") {
				if !bindLine(vars, text, got) {
					t.Fatalf("after the lines above:\n got  %q\n want %q", got, text)
				}
			} else if got != text {
				t.Fatalf("after the lines above:\n got  %q\n want %q", got, text)
			}
		case "S~ ":
			if got := c.line(); !strings.HasPrefix(got, text) {
				t.Fatalf("got %q, want prefix %q", got, text)
			}
		default:
			t.Fatalf("bad script line %q", l)
		}
	}
}

var bindRE = regexp.MustCompile(`\$\{=([A-Za-z0-9_]+)\}`)

// bindLine matches got against want, whose ${=NAME} stand for numbers
// that are then set in vars.
func bindLine(vars map[string]string, want, got string) bool {
	var names []string
	var re strings.Builder
	re.WriteString("^")
	rest := want
	for _, m := range bindRE.FindAllStringSubmatchIndex(want, -1) {
		re.WriteString(regexp.QuoteMeta(want[len(want)-len(rest) : m[0]]))
		re.WriteString(`(\d+)`)
		names = append(names, want[m[2]:m[3]])
		rest = want[m[1]:]
	}
	re.WriteString(regexp.QuoteMeta(rest) + "$")
	sub := regexp.MustCompile(re.String()).FindStringSubmatch(got)
	if sub == nil {
		return false
	}
	for i, n := range names {
		vars[n] = sub[i+1]
	}
	return true
}

// uidValidity of a user's mailbox, for the scripts.
func (e *testEnv) uidValidity(user, mailbox string) string {
	e.t.Helper()
	m, err := e.user(user).Open(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	var v uint32
	if err := m.Read(context.Background(), func(view *store.View) { v = view.UIDValidity() }); err != nil {
		e.t.Fatal(err)
	}
	return itoa(int(v))
}

const capsAfter = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE UNSELECT NAMESPACE UIDPLUS MOVE " +
	"ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE CHILDREN " +
	"STATUS=SIZE BINARY UNAUTHENTICATE UTF8=ACCEPT ID MULTIAPPEND CATENATE WITHIN PREVIEW SAVEDATE CONTEXT=SEARCH " +
	"SORT SORT=DISPLAY ESORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT CONTEXT=SORT NOTIFY CONDSTORE QRESYNC APPENDLIMIT=52428800 COMPRESS=DEFLATE"

func TestTranscriptNotAuthenticated(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	transcript(t, c, map[string]string{"CAPS": capsAfter}, `
		S: * OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN AUTH=LOGIN] IMAP server ready
		C: a1 CAPABILITY
		S: * CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN AUTH=LOGIN
		S: a1 OK CAPABILITY completed
		C: a2 NOOP
		S: a2 OK NOOP completed
		C: a3 ID NIL
		S: * ID NIL
		S: a3 OK ID completed
		C: a4 SELECT INBOX
		S: a4 BAD Log in first
		C: a5 FETCH 1 FLAGS
		S: a5 BAD Log in first
		C: a6 ENABLE IMAP4rev2
		S: a6 BAD Log in first
		C: a7 IDLE
		S: a7 BAD Log in first
		C: a8 UNAUTHENTICATE
		S: a8 BAD Log in first
		C: a9 APPEND INBOX {5+}\r\nhello
		S: a9 BAD Log in first
		C: a10 LOGIN alice wrong
		S: a10 NO [AUTHENTICATIONFAILED] Invalid credentials
		C: a11 LOGIN
		S: a11 BAD Syntax error: expected a space
		C: a12 LOGIN {5}
		S: + Ready for literal data
		C: alice {6}
		S: + Ready for literal data
		C: secret
		S: a12 OK [CAPABILITY ${CAPS}] Logged in
		C: a13 LOGOUT
		S: * BYE Logging out
		S: a13 OK LOGOUT completed
	`)
	c.closed()

	// An unknown command before login ends the connection.
	c = e.dial().greeted()
	transcript(t, c, nil, `
		C: x1 XYZZY
		S: x1 BAD Unknown command
		S: * BYE Unknown command
	`)
	c.closed()
	c = e.dial().greeted()
	transcript(t, c, nil, `
		C: +tag NOOP
		S: * BAD Invalid tag
		C: t STARTTLS extra
		S: t BAD Syntax error: unexpected " extra" at the end
		C: t2 AUTHENTICATE CRAM-MD5
		S: t2 NO Unsupported authentication mechanism
		C: t3 AUTHENTICATE PLAIN =
		S: t3 BAD Malformed SASL response
		C: t4 AUTHENTICATE PLAIN
		S: + 
		C: *
		S: t4 BAD Authentication cancelled
	`)
}

func TestTranscriptAuthenticated(t *testing.T) {
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), store.FlagSeen)
	c := e.login("alice")
	vars := map[string]string{"V": e.uidValidity("alice", "INBOX"), "CAPS": capsAfter}
	transcript(t, c, vars, `
		C: a1 CAPABILITY
		S: * CAPABILITY ${CAPS}
		S: a1 OK CAPABILITY completed
		C: a2 LOGIN alice secret
		S: a2 BAD Not allowed now
		C: a3 STARTTLS
		S: a3 BAD Not allowed now
		C: a4 FETCH 1 FLAGS
		S: a4 BAD No mailbox selected
		C: a5 CLOSE
		S: a5 BAD No mailbox selected
		C: a6 NAMESPACE
		S: * NAMESPACE (("" "/")) NIL NIL
		S: a6 OK NAMESPACE completed
		C: a7 CREATE Projects/Alpha
		S: a7 OK CREATE completed
		C: a8 CREATE Projects/Alpha
		S: a8 NO [ALREADYEXISTS] Mailbox already exists
		C: a9 CREATE Later (USE (\Flagged))
		S: a9 OK CREATE completed
		C: a10 CREATE Bad (USE (\Bogus))
		S: a10 NO [USEATTR] Unsupported special use
		C: a11 RENAME Projects/Alpha Projects/Beta
		S: a11 OK RENAME completed
		C: a12 RENAME Nowhere Else
		S: a12 NO [NONEXISTENT] No such mailbox
		C: a13 SUBSCRIBE Projects/Beta
		S: a13 OK SUBSCRIBE completed
		C: a14 LIST "" Projects*
		S: * LIST (\Noselect \HasChildren) "/" "Projects"
		S: * LIST (\HasNoChildren) "/" "Projects/Beta"
		S: a14 OK LIST completed
		C: a15 LSUB "" Projects/%
		S: * LSUB () "/" "Projects/Beta"
		S: a15 OK LSUB completed
		C: a16 LIST (SPECIAL-USE) "" * RETURN (STATUS (MESSAGES))
		S: * LIST (\HasNoChildren \Archive) "/" "Archive"
		S: * STATUS "Archive" (MESSAGES 0)
		S: * LIST (\HasNoChildren \Drafts) "/" "Drafts"
		S: * STATUS "Drafts" (MESSAGES 0)
		S: * LIST (\HasNoChildren \Junk) "/" "Junk"
		S: * STATUS "Junk" (MESSAGES 0)
		S: * LIST (\HasNoChildren \Flagged) "/" "Later"
		S: * STATUS "Later" (MESSAGES 0)
		S: * LIST (\HasNoChildren \Sent) "/" "Sent"
		S: * STATUS "Sent" (MESSAGES 0)
		S: * LIST (\HasNoChildren \Trash) "/" "Trash"
		S: * STATUS "Trash" (MESSAGES 0)
		S: a16 OK LIST completed
		C: a17 UNSUBSCRIBE Projects/Beta
		S: a17 OK UNSUBSCRIBE completed
		C: a18 UNSUBSCRIBE Projects/Beta
		S: a18 NO [NONEXISTENT] Not subscribed
		C: a19 DELETE Projects/Beta
		S: a19 OK DELETE completed
		C: a20 DELETE INBOX
		S: a20 NO [CANNOT] Not possible with INBOX
		C: a21 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)
		S: * STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ${V} UNSEEN 0)
		S: a21 OK STATUS completed
		C: a22 APPEND INBOX (\Flagged) " 1-Feb-2026 10:00:00 +0100" {23+}\r\nSubject: two\r\n\r\nbody\r\n
		S: a22 OK [APPENDUID ${V} 2] APPEND completed
		C: a23 APPEND Nowhere {3+}\r\nabc
		S: a23 NO [TRYCREATE] No such mailbox
		C: a24 APPEND INBOX {0+}\r\n
		S: a24 NO Cannot save an empty message
		C: a25 EXAMINE INBOX
		S: * 2 EXISTS
		S: * 2 RECENT
		S: * OK [UNSEEN 2] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 3] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS ()] Permanent flags
		S: a25 OK [READ-ONLY] EXAMINE completed
		C: a26 SELECT INBOX
		S: * OK [CLOSED] Previous mailbox is now closed
		S: * 2 EXISTS
		S: * 2 RECENT
		S: * OK [UNSEEN 2] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 3] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: a26 OK [READ-WRITE] SELECT completed
		C: a27 SELECT Nowhere
		S: * OK [CLOSED] Previous mailbox is now closed
		S: a27 NO [NONEXISTENT] No such mailbox
		C: a28 CHECK
		S: a28 BAD No mailbox selected
		C: a29 ENABLE IMAP4rev2 XYZZY
		S: * ENABLED IMAP4rev2
		S: a29 OK ENABLE completed
		C: a30 SELECT INBOX
		S: * 2 EXISTS
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 3] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: * LIST () "/" INBOX
		S: a30 OK [READ-WRITE] SELECT completed
		C: a31 UNAUTHENTICATE
		S: a31 OK UNAUTHENTICATE completed
		C: a32 SELECT INBOX
		S: a32 BAD Log in first
	`)
}

func TestTranscriptSelected(t *testing.T) {
	e := newEnv(t)
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e.appendMsgAt("alice", "INBOX", "From: Bob <bob@example.org>\r\nTo: alice@example.net\r\nSubject: one\r\nDate: Sun, 1 Mar 2026 12:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nfirst body\r\n", 0, date)
	e.appendMsgAt("alice", "INBOX", msg("two"), store.FlagSeen, date)
	e.appendMsgAt("alice", "INBOX", msg("three"), store.FlagFlagged, date)
	c := e.login("alice")
	vars := map[string]string{
		"V":    e.uidValidity("alice", "INBOX"),
		"VT":   e.uidValidity("alice", "Trash"),
		"VA":   e.uidValidity("alice", "Archive"),
		"DATE": date.In(time.Local).Format("_2-Jan-2006 15:04:05 -0700"),
	}
	transcript(t, c, vars, `
		C: s SELECT INBOX
		S: * 3 EXISTS
		S: * 3 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 4] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
		S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Permanent flags
		S: s OK [READ-WRITE] SELECT completed
		C: b1 FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE)
		S: * 1 FETCH (UID 1 FLAGS (\Recent) RFC822.SIZE 147 INTERNALDATE "${DATE}")
		S: b1 OK FETCH completed
		C: b2 FETCH 1 ENVELOPE
		S: * 1 FETCH (ENVELOPE ("Sun, 1 Mar 2026 12:00:00 +0000" "one" (("Bob" NIL "bob" "example.org")) (("Bob" NIL "bob" "example.org")) (("Bob" NIL "bob" "example.org")) ((NIL NIL "alice" "example.net")) NIL NIL NIL "<1@example.org>"))
		S: b2 OK FETCH completed
		C: b3 FETCH 1 (BODY BODYSTRUCTURE)
		S: * 1 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1) BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL))
		S: b3 OK FETCH completed
		C: b4 UID FETCH 2:3 (BODY.PEEK[TEXT]<0.4> RFC822.HEADER)
		S: * 2 FETCH (UID 2 BODY[TEXT]<0> {4}\r\nbody RFC822.HEADER {37}\r\nFrom: a@example.org\r\nSubject: two\r\n\r\n)
		S: * 3 FETCH (UID 3 BODY[TEXT]<0> {4}\r\nbody RFC822.HEADER {39}\r\nFrom: a@example.org\r\nSubject: three\r\n\r\n)
		S: b4 OK UID FETCH completed
		C: b5 FETCH 1 BODY[TEXT]
		S: * 1 FETCH (BODY[TEXT] {12}\r\nfirst body\r\n FLAGS (\Seen \Recent))
		S: b5 OK FETCH completed
		C: b6 FETCH 1 FAST
		S: * 1 FETCH (FLAGS (\Seen \Recent) INTERNALDATE "${DATE}" RFC822.SIZE 147)
		S: b6 OK FETCH completed
		C: b7 FETCH 4 FLAGS
		S: b7 OK FETCH completed
		C: b8 FETCH 0 FLAGS
		S: b8 BAD Syntax error: expected a number above zero
		C: b9 FETCH 1 (FLAGS BOGUS)
		S: b9 BAD Syntax error: unknown FETCH item BOGUS
		C: c1 STORE 2 +FLAGS (\Answered $Work)
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)
		S: * 2 FETCH (FLAGS (\Answered \Seen $Work \Recent))
		S: c1 OK STORE completed
		C: c2 UID STORE 2 -FLAGS.SILENT ($Work)
		S: c2 OK UID STORE completed
		C: c3 STORE 2 FLAGS \Draft
		S: * 2 FETCH (FLAGS (\Draft \Recent))
		S: c3 OK STORE completed
		C: c4 STORE 1 +FLAGS (\Bogus)
		S: c4 BAD Unknown system flag \Bogus
		C: d1 SEARCH UNSEEN
		S: * SEARCH 2 3
		S: d1 OK SEARCH completed
		C: d2 UID SEARCH RETURN (MIN MAX COUNT ALL) ALL
		S: * ESEARCH (TAG "d2") UID ALL 1:3 MIN 1 MAX 3 COUNT 3
		S: d2 OK UID SEARCH completed
		C: d3 SEARCH CHARSET UTF-8 FROM bob
		S: * SEARCH 1
		S: d3 OK SEARCH completed
		C: d4 SEARCH RETURN (SAVE) FLAGGED
		S: d4 OK SEARCH completed
		C: d5 FETCH $ (UID)
		S: * 3 FETCH (UID 3)
		S: d5 OK FETCH completed
		C: d6 SEARCH CHARSET KOI8-R ALL
		S: d6 NO [BADCHARSET] Only UTF-8 and US-ASCII searches are supported
		C: d7 SEARCH NOPE
		S: d7 BAD Syntax error: unknown search key NOPE
		C: e1 COPY 1:2 Archive
		S: e1 OK [COPYUID ${VA} 1:2 1:2] COPY completed
		C: e2 UID COPY 9 Archive
		S: e2 OK UID COPY completed
		C: e3 COPY 1 Nowhere
		S: e3 NO [TRYCREATE] No such mailbox
		C: e4 MOVE 3 Trash
		S: * OK [COPYUID ${VT} 3 1] Moved
		S: * 3 EXPUNGE
		S: e4 OK MOVE completed
		C: f1 STORE 1 +FLAGS.SILENT (\Deleted)
		S: f1 OK STORE completed
		C: f2 UID EXPUNGE 2
		S: f2 OK UID EXPUNGE completed
		C: f3 EXPUNGE
		S: * 1 EXPUNGE
		S: f3 OK EXPUNGE completed
		C: f4 CHECK
		S: f4 OK CHECK completed
		C: f5 STATUS INBOX (MESSAGES RECENT)
		S: * STATUS INBOX (MESSAGES 1 RECENT 1)
		S: f5 OK STATUS completed
		C: g1 UNSELECT
		S: g1 OK UNSELECT completed
		C: g2 FETCH 1 FLAGS
		S: g2 BAD No mailbox selected
		C: g3 EXAMINE INBOX
		S: * 1 EXISTS
		S: * 0 RECENT
		S: * OK [UNSEEN 1] First unseen message
		S: * OK [UIDVALIDITY ${V}] UIDs valid
		S: * OK [UIDNEXT 4] Predicted next UID
		S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)
		S: * OK [PERMANENTFLAGS ()] Permanent flags
		S: g3 OK [READ-ONLY] EXAMINE completed
		C: g4 STORE 1 +FLAGS (\Seen)
		S: g4 NO Mailbox is read-only (opened with EXAMINE)
		C: g5 EXPUNGE
		S: g5 NO Mailbox is read-only (opened with EXAMINE)
		C: g6 MOVE 1 Trash
		S: g6 NO Mailbox is read-only (opened with EXAMINE)
		C: g7 CLOSE
		S: g7 OK CLOSE completed
		C: g8 LOGOUT
		S: * BYE Logging out
		S: g8 OK LOGOUT completed
	`)
}

func TestTranscriptIdle(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	other := e.login("alice")
	other.ok("o SELECT INBOX")
	transcript(t, c, nil, `
		C: a IDLE
		S: + idling
		C: DONE
		S: a OK IDLE terminated
		C: b SELECT INBOX
		S~ * 0 EXISTS
		S~ * 0 RECENT
		S~ * OK [UIDVALIDITY
		S~ * OK [UIDNEXT
		S~ * FLAGS
		S~ * OK [PERMANENTFLAGS
		S: b OK [READ-WRITE] SELECT completed
		C: c IDLE
		S: + idling
	`)
	e.appendMsg("alice", "INBOX", msg("new"), 0)
	transcript(t, c, nil, `S: * 1 EXISTS`)
	other.ok("o1 NOOP") // learns of the message
	other.ok(`o2 STORE 1 +FLAGS (\Flagged)`)
	transcript(t, c, nil, `
		S: * 1 FETCH (UID 1 FLAGS (\Flagged))
		C: nonsense
		S: c BAD Expected DONE
		# The other session, which saw the message first, has \Recent.
		C: d NOOP
		S: d OK NOOP completed
	`)
}

func TestTranscriptModifiers(t *testing.T) {
	// RFC 4466 parameters and modifiers we do not know are BAD, and so
	// are repeated ones; CONDSTORE and QRESYNC fill them (condstore_test.go).
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("one"), 0)
	c := e.login("alice")
	transcript(t, c, nil, `
		C: a SELECT INBOX (XYZZY)
		S: a BAD Syntax error: unknown SELECT parameter XYZZY
		C: a2 SELECT INBOX (CONDSTORE CONDSTORE)
		S: a2 BAD Syntax error: CONDSTORE twice
		C: b EXAMINE INBOX
		S~ * 1 EXISTS
		S~ * 1 RECENT
		S~ * OK [UNSEEN
		S~ * OK [UIDVALIDITY
		S~ * OK [UIDNEXT
		S~ * FLAGS
		S~ * OK [PERMANENTFLAGS
		S: b OK [READ-ONLY] EXAMINE completed
		C: c FETCH 1 FLAGS (XYZZY 1)
		S: c BAD Syntax error: unknown or repeated FETCH modifier XYZZY
		C: c2 FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)
		S: c2 BAD Syntax error: unknown or repeated FETCH modifier CHANGEDSINCE
		C: d STORE 1 (XYZZY 1) +FLAGS (\Seen)
		S: d BAD Syntax error: unknown or repeated STORE modifier XYZZY
	`)
}
