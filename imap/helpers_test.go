package imap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
	"github.com/letterbox-mail/letterbox/store/storetest"
)

// The test ladder: newEnv starts a real server on 127.0.0.1 over a real
// Maildir in a temp dir with a real users file; env.dial gives a raw
// client for transcripts, env.client an imapclient.

const testPassword = "secret"

type testEnv struct {
	t         testing.TB
	dir       string
	store     *store.Store
	auth      *auth.Authenticator
	srv       *Server
	addr      string // plain, STARTTLS offered
	tlsAddr   string // implicit TLS
	clientTLS *tls.Config
	logs      *logBuffer
	stop      func() // shuts the server down and closes the store, once
}

type envOption struct {
	fixture bool
	server  func(*Server)
	store   func(*store.Options)
	dir     string
}

// withDir serves the mail and users of an earlier env's dir (a restart).
func withDir(dir string) envOption { return envOption{dir: dir} }

// withFixture serves the Dovecot fixture as user "fixture" (password
// "fixture") instead of an empty store.
func withFixture() envOption { return envOption{fixture: true} }

// withStore changes the store's options before it opens.
func withStore(f func(*store.Options)) envOption { return envOption{store: f} }

// withServer changes the Server before it starts.
func withServer(f func(*Server)) envOption { return envOption{server: f} }

func newEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, logs: &logBuffer{}}
	fixture := false
	for _, o := range opts {
		fixture = fixture || o.fixture
	}
	e.dir = ""
	for _, o := range opts {
		if o.dir != "" {
			e.dir = o.dir
		}
	}
	reuse := e.dir != ""
	if !reuse {
		e.dir = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tmpl := filepath.Join(e.dir, "mail", "{user}", "Maildir")
	if fixture {
		tmpl = storetest.UserMaildir(t, filepath.Join(e.dir, "mail"))
	}
	sopts := store.Options{PathTemplate: tmpl, Logger: log, Hostname: "test"}
	for _, o := range opts {
		if o.store != nil {
			o.store(&sopts)
		}
	}
	st, err := store.Open(sopts)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	users := filepath.Join(e.dir, "users")
	for _, u := range []struct{ name, pass string }{{"alice", testPassword}, {"bob", testPassword}, {"fixture", "fixture"}} {
		if reuse {
			break
		}
		h, err := auth.HashPassword(u.pass, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.AddUser(users, u.name, h); err != nil {
			t.Fatal(err)
		}
	}
	a, err := auth.New(auth.Options{UsersFile: users, Logger: log, FailDelay: time.Millisecond, ThrottleFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.auth = a
	serverTLS, clientTLS := testCerts(t)
	e.clientTLS = clientTLS
	e.srv = &Server{
		Store:             st,
		Auth:              a,
		TLSConfig:         serverTLS,
		AllowInsecureAuth: true,
		Logger:            log,
		panicHook:         func(v any) { t.Errorf("panic in the server: %v", v) },
	}
	for _, o := range opts {
		if o.server != nil {
			o.server(e.srv)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr, e.tlsAddr = l.Addr().String(), tl.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.srv.Serve(l) }()
	go func() { defer wg.Done(); e.srv.Serve(tls.NewListener(tl, serverTLS)) }()
	var stopOnce sync.Once
	e.stop = func() { stopOnce.Do(func() { e.shutdown(&wg) }) }
	t.Cleanup(e.stop)
	return e
}

// restart stops the server and its store and starts new ones on the same
// directory, as a new process would.
func (e *testEnv) restart(opts ...envOption) *testEnv {
	e.t.Helper()
	e.stop()
	return newEnv(e.t, append(opts, withDir(e.dir))...)
}

func (e *testEnv) shutdown(wg *sync.WaitGroup) {
	t := e.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("Shutdown: %v\ngoroutines:\n%s", err, buf)
	}
	wg.Wait()
	e.store.Close()
	if t.Failed() {
		t.Logf("server log:\n%s", e.logs.String())
	}
}

// user returns the store's view of a user's mail.
func (e *testEnv) user(name string) *store.User {
	e.t.Helper()
	u, err := e.store.User(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// appendMsg puts a message into a user's mailbox through the store.
func (e *testEnv) appendMsg(user, mailbox, msg string, flags store.Flag) uint32 {
	e.t.Helper()
	return e.appendMsgAt(user, mailbox, msg, flags, time.Time{})
}

func (e *testEnv) appendMsgAt(user, mailbox, msg string, flags store.Flag, date time.Time) uint32 {
	e.t.Helper()
	m, err := e.user(user).Open(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	uid, err := m.Append(context.Background(), strings.NewReader(msg), store.AppendOptions{Flags: flags, Date: date})
	if err != nil {
		e.t.Fatal(err)
	}
	return uid
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testCerts makes a self-signed certificate for 127.0.0.1.
func testCerts(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "letterbox test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	pool := x509.NewCertPool()
	c, _ := x509.ParseCertificate(der)
	pool.AddCert(c)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// rawClient speaks IMAP line by line, for transcripts.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (e *testEnv) dial() *rawClient {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.rawClient(conn)
}

func (e *testEnv) dialTLS() *rawClient {
	e.t.Helper()
	conn, err := tls.Dial("tcp", e.tlsAddr, e.clientTLS)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.rawClient(conn)
}

func (e *testEnv) rawClient(conn net.Conn) *rawClient {
	c := &rawClient{t: e.t, conn: conn, r: bufio.NewReader(conn)}
	e.t.Cleanup(func() { conn.Close() })
	return c
}

// greeted reads the greeting.
func (c *rawClient) greeted() *rawClient {
	c.t.Helper()
	c.expect("* OK ")
	return c
}

// login greets and logs in as user.
func (e *testEnv) login(user string) *rawClient {
	e.t.Helper()
	c := e.dial().greeted()
	pass := testPassword
	if user == "fixture" {
		pass = "fixture"
	}
	c.ok("l0 LOGIN " + user + " " + pass)
	return c
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, s+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *rawClient) sendRaw(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

var literalRE = regexp.MustCompile(`~?\{(\d+)\}$`)

// line reads one response line; a literal at its end is read and
// appended, with the rest of the response, so a line is a whole response.
func (c *rawClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (got %q)", err, b.String()+l)
		}
		b.WriteString(l)
		trimmed := strings.TrimRight(l, "\r\n")
		m := literalRE.FindStringSubmatch(trimmed)
		if m == nil || strings.HasPrefix(b.String(), "+ ") {
			return strings.TrimRight(b.String(), "\r\n")
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		b.Write(buf)
	}
}

// expect reads a line that must start with prefix.
func (c *rawClient) expect(prefix string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want %q...", l, prefix)
	}
	return l
}

// cmd sends a tagged command and returns the untagged lines and the tagged
// reply.
func (c *rawClient) cmd(line string) (untagged []string, tagged string) {
	c.t.Helper()
	tag, _, _ := strings.Cut(line, " ")
	c.send(line)
	return c.until(tag)
}

// until reads up to the tagged reply for tag.
func (c *rawClient) until(tag string) (untagged []string, tagged string) {
	c.t.Helper()
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, l
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (c *rawClient) ok(line string) []string {
	c.t.Helper()
	u, tagged := c.cmd(line)
	tag, _, _ := strings.Cut(line, " ")
	if !strings.HasPrefix(tagged, tag+" OK") {
		c.t.Fatalf("%s: got %q (untagged %q)", line, tagged, u)
	}
	return u
}

// no runs a command that must fail with NO (or BAD if status says so).
func (c *rawClient) fails(line, status string) string {
	c.t.Helper()
	_, tagged := c.cmd(line)
	tag, _, _ := strings.Cut(line, " ")
	if !strings.HasPrefix(tagged, tag+" "+status) {
		c.t.Fatalf("%s: got %q, want %s", line, tagged, status)
	}
	return tagged
}

// closed checks that the server hangs up, after an optional BYE.
func (c *rawClient) closed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return
		}
		if !strings.HasPrefix(l, "* ") {
			c.t.Fatalf("expected the connection to close, got %q", l)
		}
	}
}

// client returns a logged-in imapclient.
func (e *testEnv) client(user string, opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = e.clientTLS
	c, err := imapclient.DialTLS(e.tlsAddr, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	pass := testPassword
	if user == "fixture" {
		pass = "fixture"
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlsClient continues a raw client over TLS after STARTTLS.
func tlsClient(t testing.TB, c *rawClient, e *testEnv) *rawClient {
	t.Helper()
	tc := tls.Client(c.conn, e.clientTLS)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tc.SetDeadline(time.Time{})
	return &rawClient{t: t, conn: tc, r: bufio.NewReader(tc)}
}
