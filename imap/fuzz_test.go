package imap

import (
	"bufio"
	"compress/flate"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sessionSeeds are real commands of every state, literals included.
var sessionSeeds = []string{
	"a NOOP\r\n",
	"a CAPABILITY\r\na ID (\"name\" \"x\" \"os\" {3+}\r\nabc)\r\n",
	"a LOGIN alice secret\r\nb SELECT INBOX\r\n",
	"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
	"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
	"a AUTHENTICATE LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n",
	"a STARTTLS\r\n",
	"a FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY PREVIEW)\r\n",
	"a FETCH 1 (BODY.PEEK[1.2.MIME] BODY[HEADER.FIELDS (From To)] BODY[TEXT]<0.10> BINARY[1] BINARY.SIZE[2])\r\n",
	"a UID FETCH 1:* (RFC822 RFC822.HEADER RFC822.TEXT RFC822.PEEK)\r\n",
	"a FETCH * FULL\r\n",
	"a FETCH 1:* (SAVEDATE)\r\na SEARCH SAVEDON 1-Jan-2020 OR SAVEDBEFORE 2-Feb-2021 SAVEDATESUPPORTED\r\n",
	"a SEARCH OR (FROM x SUBJECT y) NOT (BODY z) SINCE 1-Jan-2020 LARGER 10 UID 1:* 2,4:* YOUNGER 100\r\n",
	"a UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET UTF-8 TEXT {2+}\r\n\xc3\xbc\r\n",
	"a SEARCH $\r\na FETCH $ FLAGS\r\n",
	"a SEARCH RETURN (PARTIAL 1:10) ALL\r\n",
	"a STORE 1:* +FLAGS (\\Seen $Label)\r\na STORE 2 -FLAGS.SILENT (\\Seen)\r\n",
	"a COPY 1:2 Archive\r\na UID MOVE 3 Trash\r\n",
	"a STORE 1 +FLAGS (\\Deleted)\r\na EXPUNGE\r\na UID EXPUNGE 1:*\r\n",
	"a APPEND INBOX (\\Seen) \"01-Jan-2026 10:00:00 +0000\" {20+}\r\nSubject: x\r\n\r\nbody\r\n\r\n",
	"a APPEND INBOX {5}\r\n",
	"a APPEND INBOX ~{13+}\r\nSubject: \x00\r\n\r\n\r\n",
	"a APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\n",
	"a LIST \"\" *\r\na LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% x/*) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
	"a LSUB \"\" *\r\na STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT DELETED-STORAGE)\r\n",
	"a CREATE x/y (USE (\\Junk))\r\na RENAME x/y z\r\na DELETE z\r\na SUBSCRIBE z\r\na UNSUBSCRIBE z\r\n",
	"a SELECT \"../../etc\"\r\na EXAMINE INBOX\r\na CLOSE\r\n",
	"a IDLE\r\nDONE\r\n",
	"a ENABLE UTF8=ACCEPT IMAP4rev2\r\na LIST \"\" *\r\n",
	"a NAMESPACE\r\na CHECK\r\na UNSELECT\r\na GETQUOTAROOT INBOX\r\na GETQUOTA \"\"\r\n",
	"a UNAUTHENTICATE\r\na AUTHENTICATE PLAIN\r\n*\r\n",
	"a COMPRESS DEFLATE\r\n",
	"a FETCH 1 (BODY[",
	"a SEARCH ((((((((\r\n",
	"a SELECT {10+}\r\nx LOGOUT\r\n\r\n",
	"a FETCH {99999999999}\r\n",
	"\x00\xff\r\n",
	"a FETCH 1:4294967295 (FLAGS)\r\na FETCH 0 FLAGS\r\n",
	"a STORE 1 FLAGS (\\Recent \\*)\r\n",
	"GET / HTTP/1.1\r\n",
	"a SORT (REVERSE SUBJECT DATE DISPLAYFROM) UTF-8 OR FROM x NOT SEEN\r\na UID SORT (ARRIVAL SIZE TO CC FROM DISPLAYTO) US-ASCII 1:*\r\n",
	"a UID SORT RETURN (MIN MAX COUNT ALL SAVE) (SUBJECT) {5+}\r\nUTF-8 ALL\r\na FETCH $ UID\r\n",
	"a UID SORT RETURN (PARTIAL 1:10 UPDATE CONTEXT) (REVERSE ARRIVAL) UTF-8 UNDELETED\r\nb STORE 1 +FLAGS (\\Deleted)\r\nc CANCELUPDATE \"a\"\r\n",
	"a THREAD REFERENCES UTF-8 ALL\r\na UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT x\r\n",
	"a SORT (REVERSE) UTF-8 ALL\r\na SORT () X ALL\r\na THREAD X UTF-8\r\n",
	// CONDSTORE and QRESYNC (RFC 7162).
	"a ENABLE CONDSTORE QRESYNC\r\nb SELECT INBOX (QRESYNC (1 1 1:5 (1,3 1,3)))\r\n",
	"a SELECT INBOX (CONDSTORE)\r\nb EXAMINE INBOX (QRESYNC (1 1))\r\nc EXAMINE INBOX (QRESYNC (1 1 1:* (1 1)))\r\n",
	"a FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 1)\r\nb FETCH 1 BODY[] (CHANGEDSINCE 0 VANISHED)\r\n",
	"a ENABLE QRESYNC\r\nb UID FETCH 1:*,$ (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",
	"a STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen)\r\nb UID STORE 1 (UNCHANGEDSINCE 0) FLAGS ($x)\r\n",
	"a SEARCH MODSEQ \"/flags/\\\\draft\" all 5 OR MODSEQ 1 NOT MODSEQ 2\r\nb SEARCH RETURN (MIN MAX) MODSEQ 0\r\n",
	"a STATUS INBOX (HIGHESTMODSEQ)\r\nb LIST \"\" * RETURN (STATUS (HIGHESTMODSEQ))\r\n",
	"a ENABLE QRESYNC\r\nb STORE 1 +FLAGS (\\Deleted)\r\nc EXPUNGE\r\nd UID MOVE 2 Trash\r\ne CLOSE\r\n",
	// NOTIFY (RFC 5465), then changes it reports.
	"a NOTIFY SET STATUS (SELECTED (MessageNew (UID BODY.PEEK[HEADER] BINARY[1]<0.5>) MessageExpunge FlagChange)) (PERSONAL (MessageNew MessageExpunge MailboxName SubscriptionChange))\r\nb APPEND Archive {5+}\r\nhello\r\nc CREATE n1\r\nd RENAME n1 n2\r\ne SUBSCRIBE n2\r\nf DELETE n2\r\ng NOTIFY NONE\r\n",
	"a NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge)) (SUBTREE (INBOX \"x\") (MessageNew MessageExpunge)) (MAILBOXES {5+}\r\nInbox (MessageNew MessageExpunge FlagChange)) (SUBSCRIBED NONE)\r\nb STORE 1 +FLAGS (\\Deleted)\r\nc EXPUNGE\r\nd IDLE\r\nDONE\r\n",
	"a NOTIFY SET (INBOXES (AnnotationChange MailboxMetadataChange))\r\nb NOTIFY SET (SELECTED (FlagChange))\r\nc NOTIFY X\r\n",
}

// fuzzModes are the states a fuzz input is sent in: from the first byte
// after the greeting, logged in, with INBOX selected, inside IDLE, and
// through COMPRESS=DEFLATE.
const (
	fuzzNotAuth = iota
	fuzzAuth
	fuzzSelected
	fuzzIdle
	fuzzCompressed
	fuzzModes
)

// FuzzSession feeds arbitrary input to sessions in every state. A panic
// anywhere in the server fails; so does a server that stops answering.
func FuzzSession(f *testing.F) {
	for _, s := range sessionSeeds {
		f.Add([]byte(s))
	}
	e := newEnv(f, withServer(func(s *Server) {
		s.ReadTimeout = 300 * time.Millisecond
		s.CommandLineTimeout = 300 * time.Millisecond
		s.LoginTimeout = 2 * time.Second
		s.IdleTimeout = 2 * time.Second
		s.AppendLimit = 1 << 20
		s.MaxConnectionsPerUser = 1000
		s.QuotaStorage = 1 << 30
	}))
	var panics atomic.Int32
	e.srv.panicHook = func(v any) { panics.Add(1) }
	for _, mc := range messageCases {
		e.appendMsg("alice", "INBOX", string(readFile(f, filepath.Join("testdata", "messages", mc.file))), 0)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		for mode := 0; mode < fuzzModes; mode++ {
			fuzzOne(t, e, mode, data)
		}
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d panics in the server for input %q", n, data)
		}
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctl := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
		ctl.greeted()
		if _, tagged := ctl.cmd("c LOGIN alice secret"); !strings.HasPrefix(tagged, "c OK") {
			t.Fatalf("server stopped answering after %q: %q", data, tagged)
		}
	})
}

func fuzzOne(t *testing.T, e *testEnv, mode int, data []byte) {
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n')
	var w io.Writer = conn
	if mode >= fuzzAuth {
		io.WriteString(conn, "l LOGIN alice secret\r\n")
		readTagged(r, "l")
	}
	switch mode {
	case fuzzSelected:
		io.WriteString(conn, "s SELECT INBOX\r\n")
		readTagged(r, "s")
	case fuzzIdle:
		io.WriteString(conn, "s SELECT INBOX\r\ni IDLE\r\n")
		readTagged(r, "s")
		r.ReadString('\n')
	case fuzzCompressed:
		io.WriteString(conn, "z COMPRESS DEFLATE\r\n")
		readTagged(r, "z")
		fw, _ := flate.NewWriter(conn, flate.BestSpeed)
		defer fw.Close()
		w = flushWriter{fw}
	}
	w.Write(data)
	io.WriteString(w, "\r\nzz LOGOUT\r\n")
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, r)
}

// flushWriter flushes the compressor after every write.
type flushWriter struct{ w *flate.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func readTagged(r *bufio.Reader, tag string) {
	for {
		l, err := r.ReadString('\n')
		if err != nil || strings.HasPrefix(l, tag+" ") {
			return
		}
	}
}
