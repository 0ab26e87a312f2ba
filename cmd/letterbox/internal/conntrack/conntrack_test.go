package conntrack

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// count is an Adder for the tests.
type count struct {
	mu sync.Mutex
	v  float64
}

func (c *count) Add(d float64) { c.mu.Lock(); c.v += d; c.mu.Unlock() }
func (c *count) get() float64  { c.mu.Lock(); defer c.mu.Unlock(); return c.v }

// pair accepts one connection on a tracked loopback listener and returns
// the server side (as the protocol server sees it) and the client.
func pair(t *testing.T, reg *Registry, proto string) (server, client net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	l := reg.Listener(proto, raw, false)
	client, err = net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestRegistry(t *testing.T) {
	var accepted, open, in, out count
	reg := New(func(proto string) Meter {
		if proto != "pop3" {
			return Meter{}
		}
		return Meter{Accepted: &accepted, Open: &open, BytesIn: &in, BytesOut: &out}
	})
	s1, c1 := pair(t, reg, "pop3")
	s2, c2 := pair(t, reg, "imap")

	io.WriteString(c1, "USER alice\r\n")
	buf := make([]byte, 64)
	if n, err := s1.Read(buf); err != nil || n != 12 {
		t.Fatalf("read %d %v", n, err)
	}
	io.WriteString(s1, "+OK\r\n")

	sessions := reg.Sessions()
	if len(sessions) != 2 || sessions[0].Proto != "pop3" || sessions[1].Proto != "imap" {
		t.Fatalf("sessions %+v", sessions)
	}
	if s := sessions[0]; s.BytesIn != 12 || s.BytesOut != 5 || s.Remote != c1.LocalAddr().String() || s.Local != c1.RemoteAddr().String() || s.User != "" {
		t.Errorf("pop3 session %+v", s)
	}
	if in.get() != 12 || out.get() != 5 || open.get() != 1 || accepted.get() != 1 {
		t.Errorf("meter: in %v out %v open %v accepted %v", in.get(), out.get(), open.get(), accepted.get())
	}
	if got := reg.Unreported(); strings.Join(got, ",") != "imap,pop3" {
		t.Errorf("unreported %v", got)
	}

	// A server that reports logins does so even through a *tls.Conn on
	// top of the tracked conn; kick then closes it.
	reg.ReportsUsers("imap")
	reg.SetUser(tls.Server(s2, &tls.Config{}), "Alice")
	if got := reg.Sessions()[1].User; got != "Alice" {
		t.Errorf("user %q after login", got)
	}
	if got := reg.Unreported(); strings.Join(got, ",") != "pop3" {
		t.Errorf("unreported %v", got)
	}
	if n := reg.Kick("nobody"); n != 0 {
		t.Errorf("kicked %d sessions of nobody", n)
	}
	if n := reg.Kick("alice"); n != 1 {
		t.Errorf("kicked %d sessions of alice, want 1", n)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(buf); err != io.EOF {
		t.Errorf("client of a kicked session reads %v, want EOF", err)
	}
	s1.Close()
	s1.Close() // twice is fine, and counts once
	if got := len(reg.Sessions()); got != 0 {
		t.Errorf("%d sessions left", got)
	}
	if open.get() != 0 || accepted.get() != 1 {
		t.Errorf("after close: open %v, accepted %v", open.get(), accepted.get())
	}
}
