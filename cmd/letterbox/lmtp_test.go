package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/store"
)

// lmtpEnv is an LMTP server on a unix socket in a temp dir, with a real
// users file and store.
type lmtpEnv struct {
	t         *testing.T
	dir       string
	usersFile string
	sock      string
	st        *store.Store
	metrics   *metrics
	srv       *lmtpServer
	log       syncBuffer
	served    chan error
}

func defaultLMTPConfig() config.LMTP {
	return config.LMTP{MaxMessageSize: 10 << 20, MaxRecipients: 100, Timeout: time.Minute}
}

// newLMTPEnv starts a server for the given users, with mod applied to the
// default LMTP settings.
func newLMTPEnv(t *testing.T, mod func(*config.LMTP), users ...string) *lmtpEnv {
	t.Helper()
	e := &lmtpEnv{t: t, dir: t.TempDir(), served: make(chan error, 1)}
	e.usersFile = filepath.Join(e.dir, "users")
	for _, u := range users {
		e.addUser(u)
	}
	log := slog.New(slog.NewTextHandler(&e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	authn, err := auth.New(auth.Options{UsersFile: e.usersFile, Logger: log, FailDelay: -1, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(store.Options{PathTemplate: filepath.Join(e.dir, "mail", "{user}", "Maildir"), Logger: log, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	cfg := defaultLMTPConfig()
	if mod != nil {
		mod(&cfg)
	}
	e.metrics = newMetrics()
	e.srv = newLMTPServer(cfg, "mx.test", authn, e.st, e.metrics, log)
	e.sock = filepath.Join(e.dir, "lmtp")
	l, err := listenUnix(e.sock, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	go func() { e.served <- e.srv.Serve(newConnRegistry(e.metrics).listener("lmtp", l, false)) }()
	t.Cleanup(func() { e.srv.Close() })
	return e
}

func (e *lmtpEnv) addUser(name string) {
	e.t.Helper()
	// A fixed cost-4 hash: LMTP never checks passwords.
	if err := auth.AddUser(e.usersFile, name, "{BLF-CRYPT}$2y$04$6Dfl8oSwE9jEGG3VbqSwAeFsoNmJXk5Pq6jjnk4EWSeyW6Ddq7vh2"); err != nil {
		e.t.Fatal(err)
	}
}

func (e *lmtpEnv) maildir(user string) string {
	return filepath.Join(e.dir, "mail", user, "Maildir")
}

// client connects and says LHLO.
func (e *lmtpEnv) client() *smtp.Client {
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

// send runs one transaction: the RCPT errors by recipient, then the
// per-recipient DATA replies (nil for 250).
func (e *lmtpEnv) send(c *smtp.Client, from string, rcpts []string, msg string) (rcptErrs map[string]error, data map[string]error) {
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
const lmtpMessage = "From: Ann <ann@example.org>\r\nTo: many\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n.leading dot\r\nBye.\r\n"

// What ends up on disk after the headers we add: the same bytes.
const lmtpStored = lmtpMessage

// Several recipients, one unknown: 550 at RCPT for that one, the others
// stored byte for byte behind Return-Path and Delivered-To.
func TestLMTPDeliverSeveral(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice", "bob", "carol@example.org")
	c := e.client()
	rcpts := []string{"alice@example.org", "nobody@example.org", "BOB@other.test", "carol@example.org"}
	rcptErrs, data := e.send(c, "ann@example.org", rcpts, lmtpMessage)

	if code := smtpCode(rcptErrs["nobody@example.org"]); code != 550 {
		t.Errorf("unknown recipient: %v, want 550", rcptErrs["nobody@example.org"])
	}
	var se *smtp.SMTPError
	if errors.As(rcptErrs["nobody@example.org"], &se) && se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Errorf("enhanced code %v, want 5.1.1", se.EnhancedCode)
	}
	for _, r := range []string{"alice@example.org", "BOB@other.test", "carol@example.org"} {
		if rcptErrs[r] != nil {
			t.Errorf("RCPT %s: %v", r, rcptErrs[r])
		}
		if err, ok := data[r]; !ok || err != nil {
			t.Errorf("DATA reply for %s: %v (present %v)", r, err, ok)
		}
	}
	if _, ok := data["nobody@example.org"]; ok {
		t.Error("a DATA reply for the refused recipient")
	}

	for user, rcpt := range map[string]string{"alice": "alice@example.org", "bob": "BOB@other.test", "carol@example.org": "carol@example.org"} {
		got := newFiles(t, e.maildir(user))
		want := "Return-Path: <ann@example.org>\r\nDelivered-To: " + rcpt + "\r\n" + lmtpStored
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s's new/ holds %q, want %q", user, got, want)
		}
	}
	if _, err := os.Stat(e.maildir("nobody")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a Maildir for the unknown user: %v", err)
	}

	// The same connection goes on: a bounce (empty sender) to one user.
	_, data = e.send(c, "", []string{"Alice@example.org"}, "Subject: bounce\r\n\r\nx\r\n")
	if err, ok := data["Alice@example.org"]; !ok || err != nil {
		t.Fatalf("second transaction: %v", err)
	}
	if got := newFiles(t, e.maildir("alice")); !slices.Contains(got, "Return-Path: <>\r\nDelivered-To: Alice@example.org\r\nSubject: bounce\r\n\r\nx\r\n") {
		t.Errorf("bounce stored as %q", got)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}

	if got := metricValue(t, e.metrics.deliveries.WithLabelValues("delivered")); got != 4 {
		t.Errorf("delivered = %v, want 4", got)
	}
	if got := metricValue(t, e.metrics.deliveries.WithLabelValues("unknown_user")); got != 1 {
		t.Errorf("unknown_user = %v, want 1", got)
	}
	for _, want := range []string{`user=bob rcpt=BOB@other.test from=ann@example.org msgid=<1@example.org> size=`, `msg="lmtp: unknown recipient" conn=1 client=postfix.test rcpt=nobody@example.org`} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, e.log.String())
		}
	}
}

// A store failure for one recipient is a temporary error for that
// recipient alone; the others are delivered, and nothing is left in tmp/.
func TestLMTPStoreFailureIsTemporary(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice", "bob", "dave")
	// Create the Maildirs, then break two of them: bob's new/ is gone,
	// dave's tmp/ is a file.
	for _, u := range []string{"alice", "bob", "dave"} {
		if _, err := e.st.User(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(e.maildir("bob"), "new")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(e.maildir("dave"), "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tmp, []byte("not a directory"))

	c := e.client()
	_, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test", "dave@x.test"}, lmtpMessage)
	if err, ok := data["alice@x.test"]; !ok || err != nil {
		t.Errorf("alice: %v", err)
	}
	for _, u := range []string{"bob@x.test", "dave@x.test"} {
		var se *smtp.SMTPError
		if !errors.As(data[u], &se) || se.Code/100 != 4 || se.EnhancedCode[0] != 4 {
			t.Errorf("%s: %v, want a 4xx temporary failure", u, data[u])
			continue
		}
		if strings.Contains(se.Message, "/") || strings.Contains(se.Message, "directory") {
			t.Errorf("%s: reply leaks details: %q", u, se.Message)
		}
	}
	if got := newFiles(t, e.maildir("alice")); len(got) != 1 {
		t.Errorf("alice has %d messages", len(got))
	}
	if got := metricValue(t, e.metrics.deliveries.WithLabelValues("failed")); got != 2 {
		t.Errorf("failed = %v, want 2", got)
	}
	if got := metricValue(t, e.metrics.storeErrors.WithLabelValues("lmtp")); got != 2 {
		t.Errorf("store errors = %v, want 2", got)
	}
	if !strings.Contains(e.log.String(), "delivery failed; the MTA will retry") {
		t.Errorf("failure not logged:\n%s", e.log.String())
	}

	// The admin repairs bob's Maildir; the MTA's retry gets through.
	if err := os.Mkdir(filepath.Join(e.maildir("bob"), "new"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, data := e.send(c, "ann@example.org", []string{"bob@x.test"}, lmtpMessage); data["bob@x.test"] != nil {
		t.Errorf("retry: %v", data["bob@x.test"])
	}
}

// A user added to the users file after the server loaded it is not
// bounced, though the server has not reloaded.
func TestLMTPUserAddedLater(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice")
	e.addUser("erin")
	c := e.client()
	if _, data := e.send(c, "ann@example.org", []string{"erin@example.org"}, lmtpMessage); data["erin@example.org"] != nil {
		t.Fatalf("erin: %v", data["erin@example.org"])
	}
	if got := newFiles(t, e.maildir("erin")); len(got) != 1 {
		t.Errorf("erin has %d messages", len(got))
	}

	// An unreadable users file is a temporary failure, never a bounce.
	if err := os.Remove(e.usersFile); err != nil {
		t.Fatal(err)
	}
	rcptErrs, _ := e.send(c, "ann@example.org", []string{"frank@x.test"}, lmtpMessage)
	if code := smtpCode(rcptErrs["frank@x.test"]); code != 451 {
		t.Errorf("frank with no users file: %v, want 451", rcptErrs["frank@x.test"])
	}
}

func TestLMTPLimits(t *testing.T) {
	e := newLMTPEnv(t, func(c *config.LMTP) {
		c.MaxMessageSize = 4096
		c.MaxRecipients = 2
	}, "alice", "bob", "carol")
	c := e.client()
	if size, ok := c.MaxMessageSize(); !ok || size != 4096 {
		t.Errorf("SIZE %d %v, want 4096", size, ok)
	}

	t.Run("too many recipients", func(t *testing.T) {
		rcptErrs, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test", "carol@x.test"}, lmtpMessage)
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
		if got := metricValue(t, e.metrics.deliveries.WithLabelValues("too_big")); got != 2 {
			t.Errorf("too_big = %v, want 2", got)
		}
		// The session is still usable.
		if err := c.Noop(); err != nil {
			t.Error(err)
		}
	})
	if got := newFiles(t, e.maildir("alice")); len(got) != 1 {
		t.Errorf("alice has %d messages, want 1", len(got))
	}
}

// A message bigger than the in-memory spool goes through a temp file, and
// every recipient gets all of it.
func TestLMTPLargeMessage(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice", "bob")
	e.srv.be.spoolDir = t.TempDir()
	var b strings.Builder
	b.WriteString("Subject: large\r\n\r\n")
	for b.Len() < 3*spoolInMemory {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again.\r\n")
	}
	c := e.client()
	_, data := e.send(c, "ann@example.org", []string{"alice@x.test", "bob@x.test"}, b.String())
	if len(data) != 2 || data["alice@x.test"] != nil || data["bob@x.test"] != nil {
		t.Fatalf("%v", data)
	}
	for _, u := range []string{"alice", "bob"} {
		got := newFiles(t, e.maildir(u))
		if len(got) != 1 || !strings.HasSuffix(got[0], "\r\n"+b.String()) || len(got[0]) != len(b.String())+len("Return-Path: <ann@example.org>\r\nDelivered-To: "+u+"@x.test\r\n") {
			t.Errorf("%s: %d messages, first %d bytes", u, len(got), len(got[0]))
		}
	}
	if ents, _ := os.ReadDir(e.srv.be.spoolDir); len(ents) != 0 {
		t.Errorf("spool left behind: %v", ents)
	}
}

func TestResolveRecipient(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice", "Bob", "carol@example.org", "carol")
	for _, tt := range []struct {
		addr, want string
	}{
		{"alice@example.org", "alice"},
		{"ALICE", "alice"},
		{"bob@x", "Bob"},
		{"carol@example.org", "carol@example.org"}, // the whole address first
		{"carol@other.test", "carol"},
		{"dave@example.org", ""},
		{"@example.org", ""},
	} {
		got, err := e.srv.be.resolve(tt.addr)
		if (tt.want == "") != (err == errNoSuchUser) || got != tt.want {
			t.Errorf("%q → %q (%v), want %q", tt.addr, got, err, tt.want)
		}
	}
}
