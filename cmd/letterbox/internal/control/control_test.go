package control

import (
	"cmp"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/conntrack"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

// start runs srv on a socket in a temp dir and returns its path.
func start(t *testing.T, srv *Server) string {
	t.Helper()
	if srv.Registry == nil {
		srv.Registry = conntrack.New(nil)
	}
	srv.Logger = slog.New(slog.DiscardHandler)
	path := filepath.Join(t.TempDir(), "control")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return path
}

// pop3Conn makes reg list one pop3 connection logged in as user.
func pop3Conn(t *testing.T, reg *conntrack.Registry, user string) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	l := reg.Listener("pop3", raw, false)
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	reg.ReportsUsers("pop3")
	reg.SetUser(server, user)
}

func TestWhoKick(t *testing.T) {
	reg := conntrack.New(nil)
	path := start(t, &Server{Registry: reg})
	pop3Conn(t, reg, "bob")

	resp, err := Call(path, Request{Cmd: "who"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Sessions) != 1 || resp.Sessions[0].User != "bob" || resp.Sessions[0].Proto != "pop3" || len(resp.Unreported) != 0 {
		t.Errorf("who: %+v", resp)
	}
	resp, err = Call(path, Request{Cmd: "kick", User: "BOB"})
	if err != nil || resp.Kicked == nil || *resp.Kicked != 1 {
		t.Errorf("kick: %+v %v", resp, err)
	}
	if _, err := Call(path, Request{Cmd: "kick"}); err == nil || !strings.Contains(err.Error(), "user missing") {
		t.Errorf("kick without user: %v", err)
	}
	if _, err := Call(path, Request{Cmd: "reboot"}); err == nil || !strings.Contains(err.Error(), `unknown command "reboot"`) {
		t.Errorf("unknown command: %v", err)
	}
}

// The wire: several requests on one connection, one answer line each, bad
// JSON answered and survived, an overlong line ends the connection.
func TestWire(t *testing.T) {
	path := start(t, &Server{MaxLineLength: 1000})
	c := lbtest.Dial(t, "unix", path)
	io.WriteString(c.Conn, "{\"cmd\":\"who\"}\nnot json\n{\"cmd\":\"who\",\"extra\":1}\n")
	for i, want := range []string{`{"ok":true}`, `{"ok":false,"error":"bad request: want one JSON object per line"}`, `{"ok":true}`} {
		if line := c.Line(); line != want {
			t.Errorf("answer %d: %q, want %s", i, line, want)
		}
	}
	io.WriteString(c.Conn, strings.Repeat("x", 1010)+"\n")
	var resp Response
	if line := c.Line(); json.Unmarshal([]byte(line), &resp) != nil || resp.OK || !strings.Contains(resp.Error, "too long") {
		t.Errorf("overlong line: %q", line)
	}
	if rest := c.Rest(); rest != "" {
		t.Errorf("connection not closed after an overlong line: %q", rest)
	}
}

// TestCommandTimeout: a request line that trickles in is cut off, however
// steadily its bytes come, and so is a silent client.
func TestCommandTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	path := start(t, &Server{CommandTimeout: timeout})
	const farewell = `{"ok":false,"error":"timeout: no whole request line in time"}` + "\n"
	c := lbtest.Dial(t, "unix", path)
	if got := c.Trickle(`{"cmd":"who","user":"`+strings.Repeat("x", 100)+`"}`+"\n", timeout/20); got != farewell {
		t.Errorf("trickling client got %q", got)
	}
	if got := lbtest.Dial(t, "unix", path).Rest(); got != farewell {
		t.Errorf("silent client got %q", got)
	}
}

// TestMaxConnections: over the cap a client is told so and closed; the cap
// per client is per user id, which all of this test's connections share.
func TestMaxConnections(t *testing.T) {
	for _, tt := range []struct {
		srv  *Server
		want string
	}{
		{&Server{MaxConnections: 2, MaxConnectionsPerClient: -1}, "too many connections"},
		{&Server{MaxConnectionsPerClient: 2}, "too many connections from this client"},
	} {
		path := start(t, tt.srv)
		for range 2 {
			c := lbtest.Dial(t, "unix", path)
			c.Conn.Write([]byte(`{"cmd":"who"}` + "\n"))
			c.Expect(`{"ok":true}`)
		}
		if got := lbtest.Dial(t, "unix", path).Rest(); got != `{"ok":false,"error":"`+tt.want+`"}`+"\n" {
			t.Errorf("over the cap: %q", got)
		}
	}
}

func TestDefaults(t *testing.T) {
	s := &Server{}
	s.init()
	if s.limiter.Max != 16 || s.limiter.PerClient != 8 || cmp.Or(s.CommandTimeout, DefaultCommandTimeout) != time.Minute {
		t.Errorf("defaults: %+v", s.limiter)
	}
}
