package imap

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMaxConnections(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.MaxConnections = 2 }))
	a, b := e.dial().greeted(), e.dial().greeted()
	c := e.dial()
	c.expect("* BYE [UNAVAILABLE] Too many connections")
	c.closed()
	a.ok("a LOGOUT")
	a.closed()
	// The count goes down when a connection ends.
	waitFor(t, func() bool { return e.openConns() == 1 })
	e.dial().greeted().ok("c NOOP")
	b.ok("b NOOP")
}

func TestMaxConnectionsPerIP(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.MaxConnectionsPerIP = 1 }))
	a := e.dial().greeted()
	c := e.dialTLS()
	c.expect("* BYE [UNAVAILABLE] Too many connections from your address")
	a.ok("a NOOP")
}

// A flood of refused connections is one log line a minute, not one each.
func TestRefusalsLoggedSparingly(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.MaxConnectionsPerIP = 1 }))
	a := e.dial().greeted()
	for i := 0; i < 5; i++ {
		c := e.dial()
		c.expect("* BYE [UNAVAILABLE] Too many connections from your address")
		c.closed()
	}
	a.ok("a NOOP")
	if n := strings.Count(e.logs.String(), "imap: connection refused"); n != 1 {
		t.Errorf("%d log lines for 5 refusals:\n%s", n, e.logs.String())
	}
}

func TestMaxConnectionsPerUser(t *testing.T) {
	// The default allows Thunderbird's five.
	e := newEnv(t, withServer(func(s *Server) { s.MaxConnectionsPerUser = 0 }))
	for i := 0; i < 5; i++ {
		e.login("alice").ok("a SELECT INBOX")
	}
	if DefaultMaxConnectionsPerUser < 10 {
		t.Errorf("DefaultMaxConnectionsPerUser %d < 10", DefaultMaxConnectionsPerUser)
	}

	e = newEnv(t, withServer(func(s *Server) { s.MaxConnectionsPerUser = 2 }))
	a, b := e.login("alice"), e.login("alice")
	c := e.dial().greeted()
	if got := c.fails("c1 LOGIN alice secret", "NO"); !strings.Contains(got, "[LIMIT]") {
		t.Errorf("got %q", got)
	}
	c.ok("c2 LOGIN bob secret") // other users are not affected
	a.ok("a1 LOGOUT")
	waitFor(t, func() bool {
		d := e.dial().greeted()
		_, tagged := d.cmd("d1 LOGIN alice secret")
		return strings.HasPrefix(tagged, "d1 OK")
	})
	b.ok("b1 UNAUTHENTICATE")
	b.ok("b2 LOGIN alice secret")
}

func TestShutdownSaysByeAndDrains(t *testing.T) {
	e := newEnv(t)
	idle := e.login("alice")
	idle.ok("a SELECT INBOX")
	idle.send("b IDLE")
	idle.expect("+ ")
	waiting := e.login("bob")
	notLoggedIn := e.dial().greeted()

	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	for _, c := range []*rawClient{idle, waiting, notLoggedIn} {
		c.expect("* BYE Server shutting down")
		c.closed()
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Serve(l); err != ErrServerClosed {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownLetsACommandFinish(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	c.send("a APPEND INBOX {20}")
	c.expect("+ ")
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	c.sendRaw("Subject: x\r\n\r\nbody\r\n\r\n") // 20 bytes, then the CRLF
	_, tagged := c.until("a")
	if !strings.HasPrefix(tagged, "a OK [APPENDUID") {
		t.Errorf("APPEND during shutdown: %q", tagged)
	}
	c.expect("* BYE Server shutting down")
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	c := e.login("alice")
	e.srv.Close()
	c.closed()
}

func (e *testEnv) openConns() int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return len(e.srv.conns)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Authenticated(c net.Conn, user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "auth "+user)
}

func (r *recorder) Command(c net.Conn, name string, d time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %v", name, ok))
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.events, ", ")
	r.events = nil
	return s
}

func TestObserver(t *testing.T) {
	var rec recorder
	e := newEnv(t, withServer(func(s *Server) { s.Observer = &rec }))
	c := e.dial().greeted()
	c.ok("a ID NIL")
	c.ok("b LOGIN alice secret")
	c.ok("c SELECT INBOX")
	c.fails("d FETCH", "BAD")
	c.fails("e SELECT {5000}", "NO")
	c.ok("f UID SEARCH ALL")
	c.send("g IDLE")
	c.expect("+ ")
	c.send("DONE")
	c.until("g")
	c.ok("h UNAUTHENTICATE")
	c.ok("i LOGOUT")
	c.closed()
	want := "ID true, auth alice, LOGIN true, SELECT true, FETCH false, SELECT false, UID SEARCH true, IDLE true, auth , UNAUTHENTICATE true, LOGOUT true"
	if got := rec.take(); got != want {
		t.Errorf("observed\n %s\nwant\n %s", got, want)
	}
}

func TestCommandLineTimeout(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.CommandLineTimeout = 100 * time.Millisecond }))
	c := e.login("alice")
	c.sendRaw("a NOO") // and nothing more
	c.expect("* BYE Timed out in the middle of a command")
	c.closed()
}

func TestMaxLiteralSizeAndDrain(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) {
		s.MaxLiteralSize = 10
		s.MaxLiteralDrain = 100
	}))
	c := e.dial().greeted()
	c.fails("a LOGIN {11}", "NO [TOOBIG]")
	c.sendRaw("b LOGIN {50+}\r\n" + strings.Repeat("x", 50) + " y\r\n")
	if _, tagged := c.until("b"); !strings.HasPrefix(tagged, "b NO [TOOBIG]") {
		t.Errorf("%q", tagged)
	}
	c.ok("c LOGIN {5}\r\nalice {6}\r\nsecret")
	c.sendRaw("d SELECT {200+}\r\n")
	c.expect("* BYE Literal too big")
	c.closed()
}

func TestMaxPendingUpdates(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.MaxPendingUpdates = 5 }))
	e.appendMsg("alice", "INBOX", msg("x"), 0)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a1 SELECT INBOX")
	b.ok("b1 SELECT INBOX")
	for i := 0; i < 6; i++ {
		b.ok("b2 STORE 1 FLAGS ($K" + itoa(i) + ")")
	}
	a.send("a2 NOOP")
	a.expect("* BYE Too many changes in the mailbox, please reconnect")
	a.closed()
}

func TestWriteTimeout(t *testing.T) {
	e := newEnv(t, withServer(func(s *Server) { s.WriteTimeout = 200 * time.Millisecond }))
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 20000)
	e.appendMsg("alice", "INBOX", big, 0)
	c := e.login("alice")
	c.ok("a SELECT INBOX")
	c.send("b FETCH 1 BODY.PEEK[]") // and never read the 20 MB
	waitFor(t, func() bool { return e.openConns() == 0 })
}
