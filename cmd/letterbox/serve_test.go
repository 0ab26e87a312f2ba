package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// loopbackFlags put every listener on an ephemeral loopback port.
var loopbackFlags = []string{
	"--imap.listen=127.0.0.1:0", "--imap.listen_tls=127.0.0.1:0",
	"--pop3.listen=127.0.0.1:0", "--pop3.listen_tls=127.0.0.1:0",
}

// serveRun is a "letterbox serve" running in-process.
type serveRun struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan int
	code           *int
}

// startServe runs serve with args (the real protocols if protos is nil) and
// waits until it is ready.
func (e *testEnv) startServe(protos func(*config.Config) []protocol, args ...string) *serveRun {
	e.t.Helper()
	sr := e.launchServe(protos, args...)
	sr.waitLog(e.t, "letterbox ready")
	return sr
}

// launchServe starts serve and returns at once.
func (e *testEnv) launchServe(protos func(*config.Config) []protocol, args ...string) *serveRun {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sr := &serveRun{cancel: cancel, done: make(chan int, 1)}
	c := &cli{stdin: strings.NewReader(""), stdout: &sr.stdout, stderr: &sr.stderr,
		environ: e.environ, workDir: e.dir, protocols: protos, hashCost: bcrypt.MinCost}
	go func() { sr.done <- c.run(ctx, append([]string{"serve"}, args...)) }()
	e.t.Cleanup(func() { sr.stop(e.t) })
	return sr
}

// waitLog waits for a log line containing s.
func (sr *serveRun) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(sr.stderr.String(), s) {
		select {
		case code := <-sr.done:
			sr.code = &code
			t.Fatalf("serve exited %d before logging %q:\n%s", code, s, sr.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, sr.stderr.String())
		}
	}
}

// stop cancels serve's context and returns its exit code.
func (sr *serveRun) stop(t *testing.T) int {
	t.Helper()
	sr.cancel()
	return sr.wait(t)
}

func (sr *serveRun) wait(t *testing.T) int {
	t.Helper()
	if sr.code == nil {
		select {
		case code := <-sr.done:
			sr.code = &code
		case <-time.After(20 * time.Second):
			t.Fatalf("serve did not stop:\n%s", sr.stderr.String())
		}
	}
	return *sr.code
}

var listeningRE = regexp.MustCompile(`msg=listening proto=(\w+) addr=(\S+) tls=(\w+)`)

// listeners returns "proto/tls" → address from the log.
func (sr *serveRun) listeners() map[string]string {
	out := make(map[string]string)
	for _, m := range listeningRE.FindAllStringSubmatch(sr.stderr.String(), -1) {
		out[m[1]+"/"+m[3]] = m[2]
	}
	return out
}

var passwordRE = regexp.MustCompile(`password: (\S+)`)

func TestServeFirstRun(t *testing.T) {
	e := newTestEnv(t)
	sr := e.startServe(nil, loopbackFlags...)

	m := passwordRE.FindStringSubmatch(sr.stdout.String())
	if m == nil {
		t.Fatalf("no demo password on stdout:\n%s", sr.stdout.String())
	}
	pw := m[1]
	if len(pw) < 16 || strings.Trim(pw, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		t.Errorf("password %q: want ≥16 URL-safe characters", pw)
	}
	for _, want := range []string{"user:     demo", "curl -k pop3s://", "/INBOX;UID=1' --user demo:" + pw, "openssl s_client -connect",
		"printf 'Subject: hello\\n\\nIt works.\\n' | letterbox deliver demo", "letterbox user passwd demo"} {
		if !strings.Contains(sr.stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, sr.stdout.String())
		}
	}
	if err := login(t, filepath.Join(e.dataDir(), "users"), "demo", pw); err != nil {
		t.Errorf("demo cannot log in with the printed password: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(e.dataDir(), "mail", "demo", "Maildir", "new")); err != nil || !fi.IsDir() {
		t.Errorf("demo has no Maildir: %v", err)
	}
	// POP3 end to end: the demo user logs in over implicit TLS, with the
	// self-signed certificate verified, and is refused without TLS.
	ls := sr.listeners()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(e.dataDir(), "tls", "cert.pem"))))
	tc, err := tls.Dial("tcp", ls["pop3/implicit"], &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("pop3s at %q: %v\n%s", ls["pop3/implicit"], err, sr.stderr.String())
	}
	// The first start left a welcome message to read.
	pop3Dialog(t, tc, []string{"USER demo", "PASS " + pw, "STAT", "QUIT"}, []string{"+OK", "+OK", "+OK", "+OK 1 ", "+OK"})
	if got := inboxFiles(t, filepath.Join(e.dataDir(), "mail", "demo", "Maildir")); len(got) != 1 || !strings.Contains(got[0], "Subject: Welcome to Letterbox") {
		t.Errorf("demo's INBOX holds %q, want the welcome message", got)
	}
	c, err := net.Dial("tcp", ls["pop3/starttls"])
	if err != nil {
		t.Fatal(err)
	}
	pop3Dialog(t, c, []string{"USER demo", "QUIT"}, []string{"+OK", "-ERR", "+OK"})
	// IMAP end to end: LOGIN over implicit TLS; on the plain port,
	// LOGINDISABLED and a refused LOGIN.
	tc2, err := tls.Dial("tcp", ls["imap/implicit"], &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("imaps at %q: %v", ls["imap/implicit"], err)
	}
	imapDialog(t, tc2, []string{"a LOGIN demo " + pw, "b SELECT INBOX", "c LOGOUT"}, []string{"* OK", "a OK", "b OK", "c OK"})
	c2, err := net.Dial("tcp", ls["imap/starttls"])
	if err != nil {
		t.Fatal(err)
	}
	imapDialog(t, c2, []string{"a LOGIN demo " + pw, "b LOGOUT"}, []string{"* OK [CAPABILITY", "a NO", "b OK"})
	if code := sr.stop(t); code != exitOK {
		t.Errorf("exit %d, want 0", code)
	}

	// The self-signed certificate: key private, names a local client uses.
	keyFile := filepath.Join(e.dataDir(), "tls", "key.pem")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi.Mode(), err)
	}
	certPEM := readFile(t, filepath.Join(e.dataDir(), "tls", "cert.pem"))
	leaf := parseCert(t, certPEM)
	if leaf.VerifyHostname("localhost") != nil || leaf.VerifyHostname("127.0.0.1") != nil || leaf.VerifyHostname("::1") != nil {
		t.Errorf("certificate names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if h, _ := os.Hostname(); h != "" && leaf.VerifyHostname(h) != nil {
		t.Errorf("certificate lacks host name %q: %v", h, leaf.DNSNames)
	}

	// A second start: no new user, no password, the same certificate.
	sr2 := e.startServe(nil, loopbackFlags...)
	if sr2.stop(t) != exitOK || strings.Contains(sr2.stdout.String(), "password") {
		t.Errorf("second run printed %q", sr2.stdout.String())
	}
	if readFile(t, filepath.Join(e.dataDir(), "tls", "cert.pem")) != certPEM {
		t.Error("certificate was not reused")
	}
}

// TestFirstRunRace: servers started at once on an empty data directory
// all start, one of them makes the demo user (with one welcome message)
// and the certificate, and the others use them.
func TestFirstRunRace(t *testing.T) {
	e := newTestEnv(t)
	const n = 4
	var runs []*serveRun
	for range n {
		runs = append(runs, e.launchServe(nil, append(loopbackFlags, "--control.socket=")...))
	}
	for _, sr := range runs {
		sr.waitLog(t, "letterbox ready")
	}

	announced := 0
	for _, sr := range runs {
		if passwordRE.MatchString(sr.stdout.String()) {
			announced++
		}
	}
	if announced != 1 {
		t.Errorf("%d servers announced a demo password, want 1", announced)
	}
	users, err := auth.ListUsers(filepath.Join(e.dataDir(), "users"))
	if err != nil || len(users) != 1 || users[0] != "demo" {
		t.Errorf("users %v %v", users, err)
	}
	if got := inboxFiles(t, filepath.Join(e.dataDir(), "mail", "demo", "Maildir")); len(got) != 1 {
		t.Errorf("%d welcome messages", len(got))
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(e.dataDir(), "tls", "cert.pem"), filepath.Join(e.dataDir(), "tls", "key.pem")); err != nil {
		t.Errorf("certificate: %v", err)
	}
	for _, sr := range runs {
		if code := sr.stop(t); code != exitOK {
			t.Errorf("exit %d:\n%s", code, sr.stderr.String())
		}
	}
}

// inboxFiles returns the messages in a Maildir's INBOX, new/ and cur/.
func inboxFiles(t *testing.T, maildir string) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(maildir, dir))
		for _, ent := range ents {
			out = append(out, readFile(t, filepath.Join(maildir, dir, ent.Name())))
		}
	}
	return out
}

// pop3Dialog sends cmds on c and checks that the greeting and each reply
// start with the wanted prefixes.
func pop3Dialog(t *testing.T, c net.Conn, cmds, want []string) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for i, w := range want {
		if i > 0 {
			if _, err := io.WriteString(c, cmds[i-1]+"\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !strings.HasPrefix(line, w) {
			t.Errorf("after %q: got %q, want %q", append([]string{"(greeting)"}, cmds...)[i], line, w)
		}
	}
}

// imapDialog sends each command and reads lines up to the one that starts
// with the expected prefix; untagged lines in between are skipped, an
// untagged or tagged line with the command's tag but another status fails.
func imapDialog(t *testing.T, c net.Conn, cmds, want []string) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for i, w := range want {
		if i > 0 {
			if _, err := io.WriteString(c, cmds[i-1]+"\r\n"); err != nil {
				t.Fatal(err)
			}
		}
		tag := strings.Fields(w)[0]
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			if strings.HasPrefix(line, w) {
				break
			}
			if tag != "*" && strings.HasPrefix(line, tag+" ") {
				t.Fatalf("after %q: got %q, want %q", cmds[i-1], line, w)
			}
		}
	}
}

func parseCert(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// With a config file, serve creates nothing: a missing users file is a
// configuration error.
func TestServeConfigFileNeedsUsers(t *testing.T) {
	e := newTestEnv(t)
	cfgFile := filepath.Join(e.dir, "letterbox.toml")
	writeFile(t, cfgFile, []byte("data_dir = \"data\"\n"))
	r := e.run("", append([]string{"serve", "--config", cfgFile}, loopbackFlags...)...)
	if r.code != exitConfig || !strings.Contains(r.stderr, "users file does not exist") || r.stdout != "" {
		t.Errorf("exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

func TestServeBadConfig(t *testing.T) {
	e := newTestEnv(t)
	r := e.run("", "serve", "--imap.listen=nowhere")
	if r.code != exitConfig || !strings.Contains(r.stderr, "imap.listen") {
		t.Errorf("exit %d, stderr %s", r.code, r.stderr)
	}
}

// lineServer is a minimal protocol server: it greets each connection with
// "tls" or "plain" depending on what serve handed it.
type lineServer struct {
	blockShutdown bool // Shutdown waits for its context, like a slow drain

	mu        sync.Mutex
	listeners []net.Listener
	shutdowns atomic.Int32
	closes    atomic.Int32
}

func (s *lineServer) Serve(l net.Listener) error {
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			kind := "plain"
			if _, ok := c.(*tls.Conn); ok {
				kind = "tls"
			}
			io.WriteString(c, kind+"\n")
		}()
	}
}

func (s *lineServer) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.Close()
	}
}

func (s *lineServer) Shutdown(ctx context.Context) error {
	s.shutdowns.Add(1)
	s.closeListeners()
	if s.blockShutdown {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *lineServer) Close() error {
	s.closes.Add(1)
	s.closeListeners()
	return nil
}

// lineProtocols plugs a lineServer in as both protocols.
func lineProtocols(srv *lineServer) func(*config.Config) []protocol {
	return func(cfg *config.Config) []protocol {
		ps := protocols(cfg)
		for i := range ps {
			ps[i].build = func(deps) (protoServer, error) { return srv, nil }
		}
		return ps
	}
}

func readGreeting(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading from %s: %v", c.RemoteAddr(), err)
	}
	return strings.TrimSpace(line)
}

func TestServeListeners(t *testing.T) {
	e := newTestEnv(t)
	srv := &lineServer{}
	sr := e.startServe(lineProtocols(srv), append(loopbackFlags, "--tls.min_version=1.3")...)

	ls := sr.listeners()
	if len(ls) != 4 {
		t.Fatalf("want 4 listeners logged, got %v\n%s", ls, sr.stderr.String())
	}
	// The demo block names the real ports, not the configured port 0.
	if !strings.Contains(sr.stdout.String(), "imaps://"+ls["imap/implicit"]) || !strings.Contains(sr.stdout.String(), "pop3s://"+ls["pop3/implicit"]) {
		t.Errorf("demo block does not name the bound ports %v:\n%s", ls, sr.stdout.String())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(e.dataDir(), "tls", "cert.pem"))))

	for _, proto := range []string{"imap", "pop3"} {
		c, err := net.Dial("tcp", ls[proto+"/starttls"])
		if err != nil {
			t.Fatal(err)
		}
		if got := readGreeting(t, c); got != "plain" {
			t.Errorf("%s plain listener gave the server %q", proto, got)
		}
		c.Close()

		for _, name := range []string{"localhost", "127.0.0.1"} {
			tc, err := tls.Dial("tcp", ls[proto+"/implicit"], &tls.Config{RootCAs: pool, ServerName: name})
			if err != nil {
				t.Fatalf("%s implicit TLS as %s: %v", proto, name, err)
			}
			if got := readGreeting(t, tc); got != "tls" {
				t.Errorf("%s TLS listener gave the server %q", proto, got)
			}
			if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
				t.Errorf("TLS version %x", v)
			}
			tc.Close()
		}
	}
	// tls.min_version = 1.3 refuses a TLS 1.2 client.
	if tc, err := tls.Dial("tcp", ls["imap/implicit"], &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12}); err == nil {
		tc.Close()
		t.Error("TLS 1.2 handshake succeeded with min_version 1.3")
	}

	if code := sr.stop(t); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if n := srv.shutdowns.Load(); n != 1 {
		t.Errorf("Shutdown called %d times, want once per server", n)
	}
	if _, err := net.Dial("tcp", ls["imap/starttls"]); err == nil {
		t.Error("listener still open after shutdown")
	}
}

// A port already taken fails the start, and nothing stays bound.
func TestServeBindConflict(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e := newTestEnv(t)
	srv := &lineServer{}
	var out, errb syncBuffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, workDir: e.dir, protocols: lineProtocols(srv)}
	args := append([]string{"serve"}, loopbackFlags...)
	code := c.run(context.Background(), append(args, "--pop3.listen_tls="+busy.Addr().String()))
	if code != exitFailure || !strings.Contains(errb.String(), "address already in use") {
		t.Errorf("exit %d, log:\n%s", code, errb.String())
	}
	if len(srv.listeners) != 0 {
		t.Error("a listener was served before all were bound")
	}
	// The demo user was created before the failure: its password must
	// still have been shown.
	if !passwordRE.MatchString(out.String()) {
		t.Errorf("demo password not shown on a failed start:\n%s", out.String())
	}
}

// SIGHUP reloads; SIGTERM drains; a second SIGTERM stops at once.
func TestServeSignals(t *testing.T) {
	e := newTestEnv(t)
	srv := &lineServer{blockShutdown: true}
	sr := e.startServe(lineProtocols(srv), loopbackFlags...)

	self := os.Getpid()
	if err := syscall.Kill(self, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	sr.waitLog(t, "SIGHUP: users file reloaded")
	sr.waitLog(t, "SIGHUP: TLS certificate reloaded")

	if err := syscall.Kill(self, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sr.waitLog(t, "shutting down")
	for srv.shutdowns.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := syscall.Kill(self, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sr.wait(t); code != exitFailure {
		t.Errorf("exit %d after a second signal, want %d", code, exitFailure)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second signal took %v", d)
	}
	if srv.closes.Load() == 0 {
		t.Error("servers not closed after the second signal")
	}
	if !strings.Contains(sr.stderr.String(), "second signal") {
		t.Errorf("log:\n%s", sr.stderr.String())
	}
}
