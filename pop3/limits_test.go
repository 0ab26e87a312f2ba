package pop3

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMaxLineLength(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.MaxLineLength = 64 })
	c := ts.dial()
	// 64 bytes with CRLF is the limit: accepted.
	c.send("USER " + strings.Repeat("a", 64-len("USER \r\n")))
	c.expect("+OK")
	// One more is too long; the session goes on.
	c.send("USER " + strings.Repeat("a", 65-len("USER \r\n")))
	c.expect("-ERR Line too long.")
	c.send("CAPA")
	c.expect(capaBefore)
	// A line that never ends uses up the bad-command allowance.
	c.sendRaw(strings.Repeat("x", 64*12))
	c.expect("-ERR Line too long, closing connection.")
	c.expectClosed()
}

// TestMaxLineLengthDefault: 1024 bytes, CRLF included.
func TestMaxLineLengthDefault(t *testing.T) {
	ts := newTestServer(t)
	c := ts.dial()
	c.send("USER " + strings.Repeat("a", DefaultMaxLineLength-len("USER \r\n")))
	c.expect("+OK")
	c.send("USER " + strings.Repeat("a", DefaultMaxLineLength+1-len("USER \r\n")))
	c.expect("-ERR Line too long.")
	// A long AUTH PLAIN response fits, as a client with a long
	// password would send it.
	c.send("AUTH PLAIN " + plain("", "alice", strings.Repeat("p", 500)))
	c.expect("-ERR [AUTH] Authentication failed.")
}

func TestMaxBadCommands(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.MaxBadCommands = 3 })
	c := ts.dial()
	c.send("FOO")
	c.expect("-ERR Unknown command.")
	c.send("STAT")
	c.expect("-ERR Not allowed before login.")
	// Not bad: a well-formed command that fails.
	c.send("USER x")
	c.expect("+OK")
	c.send("PASS y")
	c.expect("-ERR [AUTH] Authentication failed.")
	c.send("USER")
	c.expect("-ERR Missing argument.\n-ERR Too many invalid commands, closing connection.")
	c.expectClosed()
}

func TestMaxBadCommandsDefault(t *testing.T) {
	ts := newTestServer(t)
	c := ts.login("alice")
	for i := 1; i < DefaultMaxBadCommands; i++ {
		c.send("RETR x")
		c.expect("-ERR Invalid message number.")
	}
	c.send("RETR x")
	c.expect("-ERR Invalid message number.\n-ERR Too many invalid commands, closing connection.")
	c.expectClosed()
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.IdleTimeout = 500 * time.Millisecond })
	for _, loggedIn := range []bool{false, true} {
		t.Run(fmt.Sprint("logged in ", loggedIn), func(t *testing.T) {
			var c *client
			if loggedIn {
				c = ts.login("alice")
			} else {
				c = ts.dial()
			}
			// Activity renews the timer.
			for range 3 {
				time.Sleep(200 * time.Millisecond)
				c.send("CAPA")
				c.readMulti()
			}
			start := time.Now()
			c.expect("-ERR Disconnected for inactivity.")
			c.expectClosed()
			if d := time.Since(start); d < 400*time.Millisecond {
				t.Errorf("closed after %v, before the idle timeout", d)
			}
		})
	}
}

// TestCommandTimeout: once a line has begun, it must end within
// CommandTimeout, however often bytes arrive; waiting for a line to begin
// is the idle timeout's business.
func TestCommandTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := newTestServer(t, func(s *testSetup) {
		s.srv.IdleTimeout = time.Hour
		s.srv.CommandTimeout = timeout
	})
	for _, loggedIn := range []bool{false, true} {
		t.Run(fmt.Sprint("logged in ", loggedIn), func(t *testing.T) {
			var c *client
			if loggedIn {
				c = ts.login("alice")
			} else {
				c = ts.dial()
			}
			// Silence longer than the command timeout is not a line.
			time.Sleep(3 * timeout)
			c.send("CAPA")
			c.readMulti()
			// One byte at a time, never a line end: cut off although
			// no gap comes near either timeout.
			c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			got := make(chan string, 1)
			go func() {
				rest, _ := io.ReadAll(c.r)
				got <- string(rest)
			}()
			for i := 0; ; i++ {
				select {
				case rest := <-got:
					if rest != "-ERR Command line not finished in time, closing connection.\r\n" {
						t.Errorf("trickling client got %q", rest)
					}
					return
				case <-time.After(timeout / 10):
				}
				if i > 100 {
					t.Fatal("a line trickled for 10 command timeouts without being cut off")
				}
				c.conn.Write([]byte("N"))
			}
		})
	}
	// A pipelined line that has begun in the same packet as the one
	// before it is timed too.
	c := ts.dial()
	c.sendRaw("USER x\r\nNOO")
	c.expect("+OK")
	c.expect("-ERR Command line not finished in time, closing connection.")
	c.expectClosed()
}

func TestCommandTimeoutDefault(t *testing.T) {
	if got := (&Server{}).commandTimeout(); got != time.Minute {
		t.Errorf("default CommandTimeout %v, want 1m", got)
	}
}

// TestQuietPortCheck: a client that connects and goes away (a monitor's
// port check) is logged at debug level only, on both kinds of port.
func TestQuietPortCheck(t *testing.T) {
	ts := newTestServer(t)
	for _, addr := range []string{ts.addr, ts.tlsAddr} {
		c := ts.dialRaw(addr)
		c.close()
	}
	eventually(t, "both sessions to end", func() bool {
		return ts.logs.count(slog.LevelDebug, "pop3: client closed the connection") == 1 &&
			ts.logs.count(slog.LevelDebug, "pop3: TLS handshake failed") == 1
	})
	if n := ts.logs.count(slog.LevelInfo, "pop3: TLS handshake failed") + ts.logs.count(slog.LevelInfo, "pop3: read failed"); n != 0 {
		t.Errorf("%d records above debug level for a port check", n)
	}
}

func TestIdleTimeoutDefault(t *testing.T) {
	if got := (&Server{}).idleTimeout(); got != 10*time.Minute {
		t.Errorf("default IdleTimeout %v, want 10m (RFC 1939 §3 minimum)", got)
	}
}

// TestWriteTimeout: a client that stops reading in the middle of a RETR is
// dropped, and its lock released.
func TestWriteTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.WriteTimeout = 200 * time.Millisecond })
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 20000)
	ts.deliver("alice", "1700000001.M1P1.mx", big)
	c := ts.login("alice")
	c.send("RETR 1")
	// Read nothing. The server fills the socket buffers, then times out.
	eventually(t, "the session to end", func() bool { return ts.logs.has("pop3: session ended") })
	c2 := ts.login("alice")
	c2.send("QUIT")
	c2.expect("+OK Logging out.")
}

// TestHandshakeTimeout: a client on the TLS port that never starts TLS is
// dropped.
func TestHandshakeTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.HandshakeTimeout = 200 * time.Millisecond })
	c := ts.dialRaw(ts.tlsAddr)
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
}

func TestMaxConnections(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.MaxConnections = 2 })
	c1 := ts.dial()
	ts.dial()
	c3 := ts.dialRaw(ts.addr)
	c3.expect("-ERR [SYS/TEMP] Too many connections, try again later.")
	c3.expectClosed()
	// Implicit TLS: the refusal comes after the handshake.
	conn, err := tls.Dial("tcp", ts.tlsAddr, clientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	c4 := newClient(t, conn)
	c4.expect("-ERR [SYS/TEMP] Too many connections, try again later.")
	c4.expectClosed()

	c1.send("QUIT")
	c1.expect("+OK Logging out.")
	c1.expectClosed()
	eventually(t, "a free slot", func() bool {
		c := ts.dialRaw(ts.addr)
		return c.readLine() == "+OK POP3 server ready."
	})
}

// TestRefusalLogSampled: a flood of refused connections is one log line,
// not one per connection.
func TestRefusalLogSampled(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.MaxConnections = 1 })
	ts.dial()
	for range 20 {
		c := ts.dialRaw(ts.addr)
		c.expect("-ERR [SYS/TEMP] Too many connections, try again later.")
		c.expectClosed()
	}
	if n := ts.logs.count(slog.LevelWarn, "pop3: connection refused"); n != 1 {
		t.Errorf("%d warnings for 20 refused connections, want 1", n)
	}
}

// TestRefusedHandshakeTimeout: a connection over a limit on the TLS port
// that never starts TLS is dropped within refusedHandshakeTimeout, not
// held for the whole HandshakeTimeout.
func TestRefusedHandshakeTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) {
		s.srv.MaxConnections = 1
		s.srv.HandshakeTimeout = time.Hour
	})
	ts.dial()
	c := ts.dialRaw(ts.tlsAddr)
	c.expectClosed() // within expectClosed's 10 s, not the hour
	// Refused all the same: the log says so.
	if n := ts.logs.count(slog.LevelWarn, "pop3: connection refused"); n != 1 {
		t.Errorf("%d warnings for a refused connection that never did TLS, want 1", n)
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.srv.MaxConnectionsPerIP = 2 })
	ts.dial()
	ts.dial()
	c := ts.dialRaw(ts.addr)
	c.expect("-ERR [SYS/TEMP] Too many connections from your address, try again later.")
	c.expectClosed()
	// Another address is not affected. 127.0.0.2 is loopback too on
	// Linux; skip where it cannot be bound.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	c2 := newClient(t, conn)
	c2.expect("+OK POP3 server ready.")
}

func TestMaxConnectionsPerIPDefault(t *testing.T) {
	ts := newTestServer(t)
	for range DefaultMaxConnectionsPerIP {
		ts.dial()
	}
	c := ts.dialRaw(ts.addr)
	c.expect("-ERR [SYS/TEMP] Too many connections from your address, try again later.")
	if got := (&Server{}).MaxConnections; orDefault(got, DefaultMaxConnections) != 1000 {
		t.Errorf("default MaxConnections is not 1000")
	}
}

// TestPipelining: 10,000 commands in one go are answered in order, and
// another session is served meanwhile.
func TestPipelining(t *testing.T) {
	ts := newTestServer(t)
	uidl := ts.fill("alice")
	c := ts.login("alice")
	const n = 10000
	cmds := []step{
		{"NOOP", "+OK"},
		{"STAT", fmt.Sprintf("+OK 3 %d", len(msgDots)+len(crlf(msgLF))+len(msgLong))},
		{"UIDL 2", "+OK 2 " + uidl[1]},
		{"LIST 3", fmt.Sprintf("+OK 3 %d", len(msgLong))},
		{"DELE 99", "-ERR No such message."},
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var b strings.Builder
		for i := range n {
			b.WriteString(cmds[i%len(cmds)].send + "\r\n")
		}
		c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c.conn, b.String()); err != nil {
			t.Errorf("write: %v", err)
		}
	}()

	// Meanwhile, another user's session.
	other := ts.login("bob")
	runSteps(t, other, []step{{"STAT", "+OK 0 0"}, {"QUIT", "+OK Logging out."}})

	for i := range n {
		if got, want := c.readLine(), cmds[i%len(cmds)].expect; got != want {
			t.Fatalf("reply %d: got %q, want %q", i+1, got, want)
		}
	}
	wg.Wait()
	c.send("QUIT")
	c.expect("+OK Logging out.")
}

// TestGarbage: binary junk gets -ERR lines and a disconnect; the server
// stays up for everyone else.
func TestGarbage(t *testing.T) {
	ts := newTestServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 5 {
		c := ts.dial()
		junk := make([]byte, 4096)
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		junk = append(junk, "\r\nQUIT\r\n"...)
		c.sendRaw(string(junk))
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, _ := io.ReadAll(c.r)
		for _, line := range strings.SplitAfter(string(out), "\r\n") {
			if line != "" && !strings.HasPrefix(line, "-ERR ") && !strings.HasPrefix(line, "+OK") {
				t.Fatalf("round %d: reply line %q", round, line)
			}
		}
		if !strings.HasPrefix(string(out), "-ERR") {
			t.Fatalf("round %d: replies %q", round, out)
		}
	}
	// NUL bytes and 8-bit data in arguments.
	runSteps(t, ts.dial(), []step{
		{"USER al\x00ice", "+OK"}, {"PASS secret", "-ERR [AUTH] Authentication failed."},
		{"USER \xff\xfe", "+OK"}, {"PASS \x00", "-ERR [AUTH] Authentication failed."},
		{"\x00\x00\x00", "-ERR Unknown command."},
	})
	c := ts.login("alice")
	c.send("QUIT")
	c.expect("+OK Logging out.")
}

// TestThrottled: once auth throttles the address, logins get [SYS/TEMP],
// not [AUTH]: the password may well be right.
func TestThrottled(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) {
		s.authOpts.ThrottleFailures = 2
		s.authOpts.ThrottleWindow = time.Hour
	})
	c := ts.dial()
	for range 2 {
		c.send("AUTH PLAIN " + plain("", "alice", "wrong"))
		c.expect("-ERR [AUTH] Authentication failed.")
	}
	runSteps(t, c, []step{
		{"USER alice", "+OK"},
		{"PASS secret", "-ERR [SYS/TEMP] Too many failed logins from your address, try again later."},
	})
}

// TestFailDelay: auth's failure delay holds the reply, not the server.
func TestFailDelay(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.authOpts.FailDelay = time.Second })
	c := ts.dial()
	start := time.Now()
	c.send("AUTH PLAIN " + plain("", "nobody", "x"))
	other := ts.login("bob") // not held up
	if d := time.Since(start); d > 800*time.Millisecond {
		t.Errorf("another session waited %v", d)
	}
	c.expect("-ERR [AUTH] Authentication failed.")
	if d := time.Since(start); d < time.Second {
		t.Errorf("failure answered after %v, before the delay", d)
	}
	other.send("QUIT")
	other.expect("+OK Logging out.")
}
