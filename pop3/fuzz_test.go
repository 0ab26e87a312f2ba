package pop3

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzSession feeds whole sessions to a real server, logged in or not. A
// recovered panic, a session that does not end, or a server that stops
// answering fails.
func FuzzSession(f *testing.F) {
	f.Add([]byte("CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n"), false)
	f.Add([]byte("AUTH PLAIN\r\n"+plain("", "alice", "secret")+"\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nQUIT\r\n"), false)
	f.Add([]byte("AUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n!!\r\nSTLS\r\n\x16\x03\x01"), false)
	f.Add([]byte("STAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 3\r\nRETR 1\r\nTOP 3 2\r\nDELE 1\r\nRETR 1\r\nRSET\r\nNOOP\r\n"), true)
	f.Add([]byte("DELE 1\r\nDELE 2\r\nDELE 3\r\nQUIT\r\n"), true)
	f.Add([]byte("RETR 0\r\nRETR 99999999999\r\nLIST x\r\nTOP 1 x\r\nUSER a\r\nSTLS\r\nCAPA\r\n"), true)
	f.Add([]byte("\x00\xff\r\n\r\n\n\n"+strings.Repeat("x", 2000)+"\r\nNOOP\r\n"), true)
	f.Add([]byte(strings.Repeat("NOOP\r\n", 500)), true)
	f.Add([]byte(strings.Join(seedCommands, "\r\n")), false)
	f.Add([]byte(strings.Join(seedCommands, "\n")), true)

	srv := newTestServer(f, func(s *testSetup) {
		s.quiet = true
		s.srv.IdleTimeout = 5 * time.Second
		s.srv.HandshakeTimeout = 200 * time.Millisecond
		s.srv.MaxConnectionsPerIP = -1
	})
	delivered := 0
	f.Fuzz(func(t *testing.T, input []byte, login bool) {
		// The helpers must report to t: f's methods panic in here.
		ts := *srv
		ts.t = t
		// Keep three messages in the box: QUIT may have expunged some.
		if msgs, _ := ts.inbox("alice"); len(msgs) < 3 {
			for i := len(msgs); i < 3; i++ {
				delivered++
				ts.deliver("alice", fmt.Sprintf("17%08d.M1P1.mx", delivered), []string{msgDots, msgLF, msgLong}[i])
			}
		}
		conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("server down: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
		c.expect("+OK POP3 server ready.")
		if login {
			// The previous session's lock may not be released yet.
			for i := 0; ; i++ {
				c.send("AUTH PLAIN " + plain("", "alice", "secret"))
				if c.readLine() == "+OK Logged in." {
					break
				}
				if i == 200 {
					t.Fatal("cannot log in")
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if _, err := conn.Write(input); err != nil {
			return // the server may close first (too many bad commands)
		}
		conn.(*net.TCPConn).CloseWrite()
		out, err := io.ReadAll(c.r)
		if err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("session did not end: %v (after %d bytes)", err, len(out))
		}
		if ts.logs.has("pop3: panic in session") {
			t.Fatalf("the server panicked on %q", input)
		}
	})
}
