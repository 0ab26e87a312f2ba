package lmtp

import (
	"cmp"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

func TestMessageLimits(t *testing.T) {
	e := newTestEnv(t, func(s *Server) {
		s.MaxMessageSize = 4096
		s.MaxRecipients = 2
	}, "alice", "bob", "carol")
	c := e.client()
	if size, ok := c.MaxMessageSize(); !ok || size != 4096 {
		t.Errorf("SIZE %d %v, want 4096", size, ok)
	}

	t.Run("too many recipients", func(t *testing.T) {
		rcptErrs, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test", "carol@x.test"}, testMessage)
		if code := smtpCode(rcptErrs["carol@x.test"]); code != 452 {
			t.Errorf("third recipient: %v, want 452", rcptErrs["carol@x.test"])
		}
		if len(data) != 2 || data["alice@x.test"] != nil || data["bob@x.test"] != nil {
			t.Errorf("first two: %v", data)
		}
	})
	t.Run("too big", func(t *testing.T) {
		big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 100)
		_, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test"}, big)
		for _, r := range []string{"alice@x.test", "bob@x.test"} {
			if code := smtpCode(data[r]); code != 552 {
				t.Errorf("%s: %v, want 552", r, data[r])
			}
		}
		if got := e.results.get(TooBig); got != 2 {
			t.Errorf("too_big = %v, want 2", got)
		}
		// The session is still usable.
		if err := c.Noop(); err != nil {
			t.Error(err)
		}
	})
	if got := lbtest.NewMail(t, e.maildir("alice")); len(got) != 1 {
		t.Errorf("alice has %d messages, want 1", len(got))
	}
}

func TestDefaults(t *testing.T) {
	s := &Server{}
	s.init()
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"MaxConnections", s.limiter.Max, 100},
		{"MaxConnectionsPerIP", s.limiter.PerClient, 50},
		{"MaxMessageSize", s.smtp.MaxMessageBytes, int64(50 << 20)},
		{"MaxRecipients", s.smtp.MaxRecipients, 100},
		{"IdleTimeout", s.smtp.ReadTimeout, 5 * time.Minute},
		{"WriteTimeout", s.smtp.WriteTimeout, time.Minute},
		{"CommandTimeout", cmp.Or(s.CommandTimeout, DefaultCommandTimeout), time.Minute},
		{"DataTimeout", cmp.Or(s.DataTimeout, DefaultDataTimeout), 10 * time.Minute},
	} {
		if tt.got != tt.want {
			t.Errorf("default %s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestMaxConnections: one more than the cap is told so and closed; a
// closed connection frees its slot.
func TestMaxConnections(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxConnections = 2 }, "alice")
	first := e.raw()
	e.raw()
	c := lbtest.Dial(t, "unix", e.sock)
	if got := c.Rest(); got != "421 4.3.2 Too many connections, try again later\r\n" {
		t.Errorf("third connection got %q", got)
	}
	first.Send("QUIT")
	first.Expect("221 ")
	first.Rest()
	lbtest.Eventually(t, "a free slot", func() bool {
		c := lbtest.Dial(t, "unix", e.sock)
		return strings.HasPrefix(c.Line(), "220 ")
	})
}

// TestMaxConnectionsPerIP: the cap is per client address on TCP, and per
// user on the unix socket.
func TestMaxConnectionsPerIP(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxConnectionsPerIP = 2 }, "alice")
	const refusal = "421 4.3.2 Too many connections from your address, try again later\r\n"
	for range 2 {
		lbtest.Dial(t, "tcp", e.tcp).Expect("220 ")
	}
	if got := lbtest.Dial(t, "tcp", e.tcp).Rest(); got != refusal {
		t.Errorf("third from 127.0.0.1 got %q", got)
	}
	// The unix socket's clients are counted by user: this test's.
	e.raw()
	e.raw()
	if got := lbtest.Dial(t, "unix", e.sock).Rest(); got != refusal {
		t.Errorf("third on the socket got %q", got)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", e.tcp)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	lbtest.NewLineClient(t, conn).Expect("220 ")
}

// TestIdleTimeout: a client that sends nothing is told so and closed.
func TestIdleTimeout(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.IdleTimeout = 200 * time.Millisecond }, "alice")
	c := e.raw()
	if got := c.Rest(); !strings.HasPrefix(got, "421 ") {
		t.Errorf("silent client got %q, want 421", got)
	}
}

// TestCommandTimeout: once a command line has begun it must end within
// CommandTimeout, however often bytes trickle in; waiting for a command
// to begin is the idle timeout's business.
func TestCommandTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newTestEnv(t, func(s *Server) {
		s.IdleTimeout = time.Hour
		s.CommandTimeout = timeout
	}, "alice")
	c := e.raw()
	time.Sleep(3 * timeout) // silence is not a line
	c.Send("NOOP")
	c.Expect("250 ")
	got := c.Trickle(strings.Repeat("NOOP NOOP ", 100), timeout/10)
	if !strings.HasPrefix(got, "421 ") {
		t.Errorf("trickling client got %q, want 421 and a close\n%s", got, e.log.String())
	}
	if !strings.Contains(e.log.String(), "command line not finished in time") {
		t.Errorf("not logged:\n%s", e.log.String())
	}
}

// TestDataTimeout: a message transfer must end within DataTimeout, however
// steadily lines arrive; the recipients get 451 (the MTA retries), the
// connection is closed, nothing is stored.
func TestDataTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := newTestEnv(t, func(s *Server) {
		s.IdleTimeout = time.Hour
		s.CommandTimeout = time.Hour
		s.DataTimeout = timeout
	}, "alice")
	c := e.raw()
	for _, step := range []struct{ send, want string }{
		{"LHLO x", "250 "},
		{"MAIL FROM:<a@b>", "250 "},
		{"RCPT TO:<alice@x.test>", "250 "},
		{"DATA", "354 "},
	} {
		c.Send(step.send)
		for line := c.Line(); line[3] == '-'; line = c.Line() {
		}
	}
	got := c.Trickle("Subject: slow\r\n\r\n"+strings.Repeat("line\r\n", 1000), timeout/50)
	if !strings.HasPrefix(got, "451 4.4.2 <alice@x.test> ") || !strings.Contains(got, "\r\n421 ") {
		t.Errorf("slow transfer got %q, want 451 for the recipient, then 421", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.maildir("alice"), "new")); len(ents) != 0 {
		t.Errorf("stored %d messages", len(ents))
	}
}

// TestQuietPortCheck: connecting and hanging up, as a monitor's port
// check does, logs nothing above debug level.
func TestQuietPortCheck(t *testing.T) {
	e := newTestEnv(t, nil, "alice")
	for _, network := range []string{"tcp", "unix"} {
		addr := e.tcp
		if network == "unix" {
			addr = e.sock
		}
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		// And one that resets the connection.
		c, err = net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		// Whether a reset reaches the server as an error to log depends
		// on when it lands (before the greeting is written or after), so
		// the test does not wait for a line: a last client says QUIT, and
		// once it and every connection before it (accepted in order) are
		// closed, the server has handled, and logged, them all.
		lc := lbtest.Dial(t, network, addr)
		lc.Expect("220 ")
		lc.Send("QUIT")
		lc.Expect("221 ")
		lc.Conn.Close()
	}
	lbtest.Eventually(t, "every connection closed", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return len(e.srv.conns) == 0
	})
	for _, line := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(line, "level=INFO") && !strings.Contains(line, "users file loaded") || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("logged: %s", line)
		}
	}
}
