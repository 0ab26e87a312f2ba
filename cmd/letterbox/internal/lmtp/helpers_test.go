package lmtp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
	"github.com/letterbox-mail/letterbox/store"
)

// testEnv is an LMTP server on a unix socket and a loopback TCP port in a
// temp dir, with a real users file and store.
type testEnv struct {
	t         *testing.T
	dir       string
	usersFile string
	sock      string
	tcp       string
	st        *store.Store
	srv       *Server
	results   *counter
	log       lbtest.Buffer
	served    chan error
}

// counter is an Observer that counts results.
type counter struct {
	mu sync.Mutex
	n  map[Result]int
}

func (c *counter) Recipient(r Result, _ int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[r]++
}

func (c *counter) get(r Result) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[r]
}

// newTestEnv starts a server for the given users, with setup applied to
// it first; mailRoot, if not "", is where the Maildirs go.
func newTestEnv(t *testing.T, setup func(*Server), users ...string) *testEnv {
	return newTestEnvIn(t, "", setup, users...)
}

func newTestEnvIn(t *testing.T, mailRoot string, setup func(*Server), users ...string) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir(), served: make(chan error, 2), results: &counter{n: make(map[Result]int)}}
	if mailRoot == "" {
		mailRoot = filepath.Join(e.dir, "mail")
	}
	e.usersFile = filepath.Join(e.dir, "users")
	for _, u := range users {
		e.addUser(u)
	}
	log := slog.New(slog.NewTextHandler(&e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	authn, err := auth.New(auth.Options{UsersFile: e.usersFile, Logger: log, FailDelay: -1, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(store.Options{PathTemplate: filepath.Join(mailRoot, "{user}", "Maildir"), Logger: log, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	e.srv = &Server{Users: authn, Store: e.st, Hostname: "mx.test", Logger: log, Observer: e.results,
		MaxMessageSize: 10 << 20, SpoolDir: t.TempDir()}
	if setup != nil {
		setup(e.srv)
	}
	e.sock = filepath.Join(e.dir, "lmtp")
	ul, err := net.Listen("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.tcp = tl.Addr().String()
	go func() { e.served <- e.srv.Serve(ul) }()
	go func() { e.served <- e.srv.Serve(tl) }()
	t.Cleanup(func() {
		e.srv.Close()
		for range 2 {
			if err := <-e.served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return e
}

func (e *testEnv) addUser(name string) {
	e.t.Helper()
	// A fixed cost-4 hash: LMTP never checks passwords.
	if err := auth.AddUser(e.usersFile, name, "{BLF-CRYPT}$2y$04$6Dfl8oSwE9jEGG3VbqSwAeFsoNmJXk5Pq6jjnk4EWSeyW6Ddq7vh2"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) maildir(user string) string {
	return filepath.Join(e.dir, "mail", user, "Maildir")
}

// client connects to the unix socket and says LHLO.
func (e *testEnv) client() *smtp.Client {
	e.t.Helper()
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	e.t.Cleanup(func() { c.Close() })
	if err := c.Hello("postfix.test"); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// raw connects to the unix socket and reads the greeting.
func (e *testEnv) raw() *lbtest.LineClient {
	e.t.Helper()
	lc := lbtest.Dial(e.t, "unix", e.sock)
	lc.Expect("220 ")
	return lc
}

// send runs one transaction: the RCPT errors by recipient, then the
// per-recipient DATA replies (nil for 250).
func (e *testEnv) send(c *smtp.Client, from string, rcpts []string, msg string) (rcptErrs map[string]error, data map[string]error) {
	e.t.Helper()
	rcptErrs, data = make(map[string]error), make(map[string]error)
	if err := c.Mail(from, nil); err != nil {
		e.t.Fatal(err)
	}
	accepted := 0
	for _, r := range rcpts {
		err := c.Rcpt(r, nil)
		rcptErrs[r] = err
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		c.Reset()
		return rcptErrs, nil
	}
	w, err := c.Data()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		e.t.Fatal(err)
	}
	resps, err := w.CloseWithLMTPResponse()
	for r := range resps {
		data[r] = nil
	}
	var lerr smtp.LMTPDataError
	if errors.As(err, &lerr) {
		for r, se := range lerr {
			data[r] = se
		}
	} else if err != nil {
		e.t.Fatal(err)
	}
	return rcptErrs, data
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	if err == nil {
		return 250
	}
	return -1
}

// A message with CRLF line ends and a line starting with a dot, which the
// client dot-stuffs and the server must unstuff.
const testMessage = "From: Ann <ann@example.org>\r\nTo: many\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n.leading dot\r\nBye.\r\n"
