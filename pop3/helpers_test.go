package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
	"golang.org/x/crypto/bcrypt"
)

// The interfaces are what the real types offer.
var (
	_ Authenticator = (*auth.Authenticator)(nil)
	_ Store         = (*store.Store)(nil)
)

// Test users. Hashes are made at bcrypt's minimum cost: the tests are about
// POP3, not about bcrypt being slow.
var testUsers = map[string]string{
	"alice":   "secret",
	"bob":     "hunter2",
	"fixture": "fixture",
	"spacey":  "pass word", // RFC 1939 §7: PASS takes spaces
}

// testSetup is what a test may change before its server starts.
type testSetup struct {
	srv      *Server
	authOpts auth.Options
	template string // store path template; default <tmp>/{user}/Maildir
	// allowPanic stops the log from failing the test on a recovered
	// panic (for the test that causes one on purpose).
	allowPanic bool
	// quiet keeps the log out of t.Log; records are still kept for
	// testLog.has. Fuzz targets, whose *testing.F must not be used
	// from the target, need it.
	quiet bool
}

// testServer is a real Server on 127.0.0.1 with a plain and an
// implicit-TLS listener, a real store in a temp dir and real auth.
type testServer struct {
	t       testing.TB
	srv     *Server
	store   *store.Store
	auth    *auth.Authenticator
	dir     string
	addr    string // plain (STLS)
	tlsAddr string // implicit TLS
	logs    *testLog
	served  chan error // Serve's results
}

var (
	usersFileOnce sync.Once
	usersFileData string
)

func usersFile(t testing.TB) string {
	usersFileOnce.Do(func() {
		var b strings.Builder
		for name, pw := range testUsers {
			h, err := auth.HashPassword(pw, bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(&b, "%s:%s\n", name, h)
		}
		usersFileData = b.String()
	})
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(usersFileData), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestServer starts a server. Without setup functions it allows
// plaintext logins from loopback (most tests speak plain TCP) and offers
// STLS.
func newTestServer(t testing.TB, setup ...func(*testSetup)) *testServer {
	t.Helper()
	dir := t.TempDir()
	logs := newTestLog(t)
	cfg := &testSetup{
		srv: &Server{
			TLSConfig:             serverTLSConfig(t),
			AllowInsecureLoopback: true,
			Logger:                slog.New(logs),
		},
		authOpts: auth.Options{
			UsersFile:        usersFile(t),
			FailDelay:        -1,
			ThrottleFailures: -1,
			ReloadInterval:   -1,
			Logger:           slog.New(logs),
		},
		template: filepath.Join(dir, "{user}", "Maildir"),
	}
	for _, f := range setup {
		f(cfg)
	}
	logs.allowPanic, logs.quiet = cfg.allowPanic, cfg.quiet

	st, err := store.Open(store.Options{PathTemplate: cfg.template, Logger: slog.New(logs), Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(cfg.authOpts)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.srv
	srv.Auth, srv.Store = a, st

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, srv: srv, store: st, auth: a, dir: dir, addr: l.Addr().String(),
		tlsAddr: tl.Addr().String(), logs: logs, served: make(chan error, 2)}
	go func() { ts.served <- srv.Serve(l) }()
	go func() { ts.served <- srv.Serve(tls.NewListener(tl, serverTLSConfig(t))) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
			srv.Close()
		}
		for range 2 {
			if err := <-ts.served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
		st.Close()
		logs.stop()
	})
	return ts
}

// root returns a user's Maildir root, creating the Maildir.
func (ts *testServer) root(user string) string {
	ts.t.Helper()
	u, err := ts.store.User(user)
	if err != nil {
		ts.t.Fatal(err)
	}
	return u.Root()
}

// deliver drops a message into the user's new/ as an MDA would.
func (ts *testServer) deliver(user, name, content string) {
	ts.t.Helper()
	root := ts.root(user)
	tmp := filepath.Join(root, "tmp", name)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		ts.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "new", name)); err != nil {
		ts.t.Fatal(err)
	}
}

// messageFile returns the path of the file whose base name is name, in
// cur/ or new/, or "" if there is none.
func (ts *testServer) messageFile(user, name string) string {
	ts.t.Helper()
	root := ts.root(user)
	for _, d := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			ts.t.Fatal(err)
		}
		for _, e := range entries {
			if base, _, _ := strings.Cut(e.Name(), ":2,"); base == name {
				return filepath.Join(root, d, e.Name())
			}
		}
	}
	return ""
}

// inbox reads INBOX through the store, as another protocol would see it.
func (ts *testServer) inbox(user string) (msgs []store.Message, uidValidity uint32) {
	ts.t.Helper()
	u, err := ts.store.User(user)
	if err != nil {
		ts.t.Fatal(err)
	}
	m, err := u.Open(context.Background(), store.Inbox)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer m.Close()
	if err := m.Read(context.Background(), func(v *store.View) {
		uidValidity = v.UIDValidity()
		for i := 0; i < v.Len(); i++ {
			msgs = append(msgs, v.At(i))
		}
	}); err != nil {
		ts.t.Fatal(err)
	}
	return msgs, uidValidity
}

// dial connects to the plain port and reads the greeting.
func (ts *testServer) dial() *client {
	ts.t.Helper()
	c := ts.dialRaw(ts.addr)
	c.expect("+OK POP3 server ready.")
	return c
}

// dialTLS connects to the implicit-TLS port and reads the greeting.
func (ts *testServer) dialTLS() *client {
	ts.t.Helper()
	conn, err := tls.Dial("tcp", ts.tlsAddr, clientTLSConfig())
	if err != nil {
		ts.t.Fatal(err)
	}
	c := newClient(ts.t, conn)
	c.expect("+OK POP3 server ready.")
	return c
}

func (ts *testServer) dialRaw(addr string) *client {
	ts.t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		ts.t.Fatal(err)
	}
	return newClient(ts.t, conn)
}

// login connects on the plain port and logs in with USER and PASS.
func (ts *testServer) login(user string) *client {
	ts.t.Helper()
	c := ts.dial()
	c.send("USER " + user)
	c.expect("+OK")
	c.send("PASS " + testUsers[user])
	c.expect("+OK Logged in.")
	return c
}

// client is the test's side of a connection: it sends lines and checks the
// replies line by line.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func newClient(t testing.TB, conn net.Conn) *client {
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { conn.Close() })
	return c
}

// send writes one command line with CRLF.
func (c *client) send(line string) {
	c.t.Helper()
	c.sendRaw(line + "\r\n")
}

func (c *client) sendRaw(data string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, data); err != nil {
		c.t.Fatalf("send %q: %v", trim(data), err)
	}
}

// readLine reads one reply line, without its CRLF. Every line the server
// sends must end in CRLF.
func (c *client) readLine() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading reply: %v (got %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("reply line %q does not end in CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// expect reads one line per line of want ("\n" separates them). A line of
// want ending in "…" matches any line starting with what comes before it.
func (c *client) expect(want string) {
	c.t.Helper()
	for _, w := range strings.Split(want, "\n") {
		got := c.readLine()
		if p, ok := strings.CutSuffix(w, "…"); ok {
			if !strings.HasPrefix(got, p) {
				c.t.Fatalf("got %q, want %q…", got, p)
			}
			continue
		}
		if got != w {
			c.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// readMulti reads the rest of a multi-line reply, raw: the bytes up to and
// including the terminating ".\r\n".
func (c *client) readMulti() []byte {
	c.t.Helper()
	var out []byte
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := c.r.ReadBytes('\n')
		out = append(out, line...)
		if err != nil {
			c.t.Fatalf("reading multi-line reply: %v (after %d bytes)", err, len(out))
		}
		if string(line) == ".\r\n" {
			return out
		}
	}
}

// expectClosed checks that the server closed the connection and sent
// nothing more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(c.r)
	if len(rest) > 0 {
		c.t.Fatalf("expected the connection to close, got %q", rest)
	}
	// A reset is a close too: the server closes with unread input.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("expected EOF, got %v", err)
	}
}

func (c *client) close() { c.conn.Close() }

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// unstuff undoes dot-stuffing and drops the terminating line, giving the
// message as it was sent.
func unstuff(t testing.TB, wire []byte) []byte {
	t.Helper()
	body, ok := strings.CutSuffix(string(wire), ".\r\n")
	if !ok {
		t.Fatalf("multi-line reply does not end with .CRLF: %q", trim(string(wire)))
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(body, "\r\n") {
		out.WriteString(strings.TrimPrefix(line, "."))
	}
	return []byte(out.String())
}

// crlf turns every bare LF into CRLF, as the server sends a message.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// eventually retries f until it returns true or 5 seconds pass.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testLog is a slog.Handler that logs through t.Log and fails the test on
// a recovered panic. Handlers made by WithAttrs share its state.
type testLog struct {
	*logState
	attrs []slog.Attr
}

type logState struct {
	t          testing.TB
	mu         sync.Mutex
	allowPanic bool
	quiet      bool
	stopped    bool
	messages   []string
	levels     []slog.Level
}

func newTestLog(t testing.TB) *testLog { return &testLog{logState: &logState{t: t}} }

func (h *testLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *testLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &testLog{logState: h.logState, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *testLog) WithGroup(string) slog.Handler { return h }

func (h *testLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "stack" {
			fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		}
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages = append(h.messages, r.Message)
	h.levels = append(h.levels, r.Level)
	if h.stopped || h.quiet {
		return nil
	}
	h.t.Log(b.String())
	if strings.Contains(r.Message, "panic") && !h.allowPanic {
		h.t.Errorf("recovered panic: %s", b.String())
	}
	return nil
}

func (h *testLog) stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
}

// has reports whether a record with this message was logged.
func (h *testLog) has(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.messages {
		if m == msg {
			return true
		}
	}
	return false
}

// count returns how many records with this message were logged at level
// or above.
func (h *testLog) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for i, m := range h.messages {
		if m == msg && h.levels[i] >= level {
			n++
		}
	}
	return n
}

func timeIn10s() time.Time { return time.Now().Add(10 * time.Second) }
