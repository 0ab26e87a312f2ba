package httpsrv

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

func start(t *testing.T, s *Server) string {
	t.Helper()
	s.Logger = slog.New(slog.DiscardHandler)
	if s.Handler == nil {
		s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// get sends a request on a connection of its own and returns the status
// line, or "" if the server closed the connection without one.
func get(t *testing.T, addr string) (*lbtest.LineClient, string) {
	t.Helper()
	c := lbtest.Dial(t, "tcp", addr)
	io.WriteString(c.Conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, _ := c.R.ReadString('\n')
	return c, strings.TrimSpace(line)
}

func TestMaxConnections(t *testing.T) {
	addr := start(t, &Server{MaxConnections: 2, MaxConnectionsPerIP: -1})
	for range 2 {
		if _, status := get(t, addr); status != "HTTP/1.1 200 OK" {
			t.Fatalf("within the cap: %q", status)
		}
	}
	// Both are kept alive: a third connection is closed unanswered.
	if _, status := get(t, addr); status != "" {
		t.Errorf("over the cap: %q", status)
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	addr := start(t, &Server{MaxConnectionsPerIP: 1})
	get(t, addr)
	if _, status := get(t, addr); status != "" {
		t.Errorf("second from one address: %q", status)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	c := lbtest.NewLineClient(t, conn)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.Expect("HTTP/1.1 200 OK")
}

// TestHeaderTimeout: a request line and headers that trickle in are cut
// off, however steadily the bytes come.
func TestHeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := start(t, &Server{HeaderTimeout: timeout, ReadTimeout: time.Hour, IdleTimeout: time.Hour})
	c := lbtest.Dial(t, "tcp", addr)
	req := "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Slow: yes\r\n", 14) + "\r\n"
	if got := c.Trickle(req, timeout/20); strings.Contains(got, "200 OK") {
		t.Errorf("a trickled request was answered: %q", got)
	}
}

func TestDefaults(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler()}
	s.init()
	if s.limiter.Max != 64 || s.limiter.PerClient != 8 || s.srv.ReadHeaderTimeout != 10*time.Second ||
		s.srv.ReadTimeout != 30*time.Second || s.srv.IdleTimeout != time.Minute || s.srv.MaxHeaderBytes != 16<<10 {
		t.Errorf("defaults: %+v %+v", s.limiter, s.srv)
	}
}
