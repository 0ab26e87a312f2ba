package imap

import (
	"bufio"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary input to a logged-in session and to one with
// INBOX selected. A panic anywhere in the server (imapserver recovers and
// logs it) fails; so does a server that stops answering.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"a NOOP\r\n",
		"a FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY)\r\n",
		"a FETCH 1 (BODY.PEEK[1.2.MIME] BODY[HEADER.FIELDS (From To)] BODY[TEXT]<0.10> BINARY[1] BINARY.SIZE[2])\r\n",
		"a UID FETCH 1:* (RFC822 RFC822.HEADER RFC822.TEXT RFC822.PEEK)\r\n",
		"a FETCH * FULL\r\n",
		"a SEARCH OR (FROM x SUBJECT y) NOT (BODY z) SINCE 1-Jan-2020 LARGER 10 UID 1:* 2,4:*\r\n",
		"a UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) CHARSET UTF-8 TEXT \"ü\"\r\n",
		"a SEARCH $\r\na FETCH $ FLAGS\r\n",
		"a STORE 1:* +FLAGS (\\Seen $Label)\r\na STORE 2 -FLAGS.SILENT (\\Seen)\r\n",
		"a COPY 1:2 Archive\r\na UID MOVE 3 Trash\r\n",
		"a STORE 1 +FLAGS (\\Deleted)\r\na EXPUNGE\r\na UID EXPUNGE 1:*\r\n",
		"a APPEND INBOX (\\Seen) \"01-Jan-2026 10:00:00 +0000\" {20+}\r\nSubject: x\r\n\r\nbody\r\n\r\n",
		"a APPEND INBOX {5}\r\n",
		"a LIST \"\" *\r\na LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
		"a LSUB \"\" *\r\na STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT DELETED-STORAGE)\r\n",
		"a CREATE x/y\r\na RENAME x/y z\r\na DELETE z\r\na SUBSCRIBE z\r\na UNSUBSCRIBE z\r\n",
		"a SELECT \"../../etc\"\r\na EXAMINE INBOX\r\na CLOSE\r\n",
		"a IDLE\r\nDONE\r\n",
		"a ENABLE UTF8=ACCEPT IMAP4rev2\r\na LIST \"\" *\r\n",
		"a ID (\"name\" \"x\")\r\na NAMESPACE\r\na CAPABILITY\r\na CHECK\r\na UNSELECT\r\n",
		"a UNAUTHENTICATE\r\na AUTHENTICATE PLAIN\r\n*\r\n",
		"a FETCH 1 (BODY[",
		"a SEARCH ((((((((\r\n",
		"a SELECT {10+}\r\nx LOGOUT\r\n\r\n",
		"a FETCH {99999999999}\r\n",
		"\x00\xff\r\n",
		"a FETCH 1:4294967295 (FLAGS)\r\na FETCH 0 FLAGS\r\n",
		"a STORE 1 FLAGS (\\Recent \\*)\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := newEnv(f, withServer(func(s *Server) {
		s.ReadTimeout = 300 * time.Millisecond
		s.IdleTimeout = 2 * time.Second
		s.AppendLimit = 1 << 20
		s.MaxConnectionsPerUser = 1000
	}))
	var panics atomic.Int32
	e.srv.panicHook = func(v any) { panics.Add(1) }
	for _, mc := range messageCases {
		e.appendMsg("alice", "INBOX", string(readFile(f, filepath.Join("testdata", "messages", mc.file))), 0)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, selected := range []bool{false, true} {
			conn, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(conn)
			r.ReadString('\n')
			io.WriteString(conn, "l LOGIN alice secret\r\n")
			readTagged(r, "l")
			if selected {
				io.WriteString(conn, "s SELECT INBOX\r\n")
				readTagged(r, "s")
			}
			conn.Write(data)
			io.WriteString(conn, "\r\nzz LOGOUT\r\n")
			conn.SetReadDeadline(time.Now().Add(time.Second))
			io.Copy(io.Discard, r)
			conn.Close()
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

func readTagged(r *bufio.Reader, tag string) {
	for {
		l, err := r.ReadString('\n')
		if err != nil || strings.HasPrefix(l, tag+" ") {
			return
		}
	}
}
