package connlimit

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

// bye is a Refuse that says why.
func bye(c net.Conn, why error) { io.WriteString(c, "bye: "+why.Error()+"\r\n") }

// holdServer serves lim's listener on l: it greets each connection with
// "hi" and holds it until the client hangs up.
func holdServer(t *testing.T, lim *Limiter, l net.Listener) {
	t.Helper()
	wl := lim.Listener(l)
	t.Cleanup(func() { wl.Close() })
	go func() {
		for {
			c, err := wl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hi\r\n")
				io.Copy(io.Discard, c)
			}()
		}
	}()
}

// dialFrom connects from a loopback source address ("" for the default)
// and returns the first line the server sends.
func dialFrom(t *testing.T, network, addr, source string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Skipf("cannot dial from %q: %v", source, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading from %s: %v", addr, err)
	}
	return c, strings.TrimSpace(line)
}

func tcpListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMax(t *testing.T) {
	lim := &Limiter{Max: 2, Refuse: bye}
	l := tcpListener(t)
	holdServer(t, lim, l)
	addr := l.Addr().String()
	c1, g1 := dialFrom(t, "tcp", addr, "")
	_, g2 := dialFrom(t, "tcp", addr, "")
	c3, g3 := dialFrom(t, "tcp", addr, "")
	if g1 != "hi" || g2 != "hi" || g3 != "bye: too many connections" {
		t.Fatalf("greetings %q %q %q", g1, g2, g3)
	}
	if rest, _ := io.ReadAll(c3); len(rest) != 0 {
		t.Errorf("refused connection went on with %q", rest)
	}
	if n := lim.Open(); n != 2 {
		t.Errorf("Open() = %d, want 2", n)
	}
	// A closed connection frees its slot.
	c1.Close()
	lbtest.Eventually(t, "a free slot", func() bool { return lim.Open() == 1 })
	if _, g := dialFrom(t, "tcp", addr, ""); g != "hi" {
		t.Errorf("after a close: %q", g)
	}
}

func TestPerClient(t *testing.T) {
	lim := &Limiter{Max: 10, PerClient: 2, Refuse: bye}
	l := tcpListener(t)
	holdServer(t, lim, l)
	addr := l.Addr().String()
	dialFrom(t, "tcp", addr, "127.0.0.1")
	dialFrom(t, "tcp", addr, "127.0.0.1")
	if _, g := dialFrom(t, "tcp", addr, "127.0.0.1"); g != "bye: too many connections from this client" {
		t.Errorf("third from one address: %q", g)
	}
	// Another address has slots of its own (127.0.0.2 is loopback on
	// Linux; the test is skipped where it cannot be bound).
	if _, g := dialFrom(t, "tcp", addr, "127.0.0.2"); g != "hi" {
		t.Errorf("another address: %q", g)
	}
}

// TestUnixSocketPerUser: on a unix socket the client is the peer's user
// id, so the per-client cap applies to one program's flood too.
func TestUnixSocketPerUser(t *testing.T) {
	lim := &Limiter{Max: 10, PerClient: 2, Refuse: bye}
	path := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	holdServer(t, lim, l)
	dialFrom(t, "unix", path, "")
	dialFrom(t, "unix", path, "")
	if _, g := dialFrom(t, "unix", path, ""); g != "bye: too many connections from this client" {
		t.Errorf("third from one user: %q", g)
	}
}

// TestNoRefuse: without Refuse a refused connection is just closed.
func TestNoRefuse(t *testing.T) {
	lim := &Limiter{Max: 1}
	l := tcpListener(t)
	holdServer(t, lim, l)
	dialFrom(t, "tcp", l.Addr().String(), "")
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(c); len(rest) != 0 || err != nil {
		t.Errorf("got %q, %v; want a plain close", rest, err)
	}
}

// TestLogSampled: twenty refusals are one warning, not twenty.
func TestLogSampled(t *testing.T) {
	var buf lbtest.Buffer
	lim := &Limiter{Max: 1, Refuse: bye, Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	l := tcpListener(t)
	holdServer(t, lim, l)
	dialFrom(t, "tcp", l.Addr().String(), "")
	for range 20 {
		if _, g := dialFrom(t, "tcp", l.Addr().String(), ""); !strings.HasPrefix(g, "bye") {
			t.Fatalf("got %q", g)
		}
	}
	if n := strings.Count(buf.String(), "connection refused"); n != 1 {
		t.Errorf("%d log lines for 20 refusals, want 1:\n%s", n, buf.String())
	}
}
