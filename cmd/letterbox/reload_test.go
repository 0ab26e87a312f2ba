package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/tlsconf"
)

// lineClient talks a line protocol (POP3, IMAP) with a test's patience.
type lineClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func newLineClient(t *testing.T, c net.Conn) *lineClient {
	t.Cleanup(func() { c.Close() })
	return &lineClient{t: t, c: c, r: bufio.NewReader(c)}
}

// expect reads a line and checks its start.
func (lc *lineClient) expect(prefix string) string {
	lc.t.Helper()
	lc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := lc.r.ReadString('\n')
	if err != nil {
		lc.t.Fatalf("waiting for %q: %v", prefix, err)
	}
	if !strings.HasPrefix(line, prefix) {
		lc.t.Fatalf("got %q, want %q", line, prefix)
	}
	return line
}

// until reads lines up to one that starts with prefix.
func (lc *lineClient) until(prefix string) string {
	lc.t.Helper()
	for {
		if line := lc.expect(""); strings.HasPrefix(line, prefix) {
			return line
		}
	}
}

// cmd sends a line and checks the first line of the reply.
func (lc *lineClient) cmd(line, prefix string) string {
	lc.t.Helper()
	lc.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(lc.c, line+"\r\n"); err != nil {
		lc.t.Fatalf("sending %q: %v", line, err)
	}
	return lc.expect(prefix)
}

// expectEOF checks that the server closed the connection.
func (lc *lineClient) expectEOF() {
	lc.t.Helper()
	lc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if line, err := lc.r.ReadString('\n'); err != io.EOF {
		lc.t.Fatalf("got %q %v, want the connection closed", line, err)
	}
}

// pop3Login opens a logged-in POP3 session on a plain loopback listener.
func pop3Login(t *testing.T, addr, user, pass string) *lineClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	lc := newLineClient(t, c)
	lc.expect("+OK")
	lc.cmd("USER "+user, "+OK")
	lc.cmd("PASS "+pass, "+OK")
	return lc
}

// serveConfig is a config file for serve tests, with the knobs they turn.
type serveConfig struct {
	Level            string
	DrainTimeout     string
	ThrottleFailures int
	CertFile         string
	KeyFile          string
	MinVersion       string
	MaxBadCommands   int
}

func (sc serveConfig) write(t *testing.T, path string) {
	t.Helper()
	sc.Level = cmp(sc.Level, "info")
	sc.DrainTimeout = cmp(sc.DrainTimeout, "30s")
	sc.MinVersion = cmp(sc.MinVersion, "1.2")
	if sc.MaxBadCommands == 0 {
		sc.MaxBadCommands = 10
	}
	text := fmt.Sprintf(`data_dir = "data"
[server]
drain_timeout = %q
[log]
level = %q
[tls]
cert_file = %q
key_file = %q
min_version = %q
[auth]
allow_insecure_loopback = true
fail_delay = "0s"
throttle_failures = %d
[pop3]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
max_bad_commands = %d
[imap]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
`, sc.DrainTimeout, sc.Level, sc.CertFile, sc.KeyFile, sc.MinVersion, sc.ThrottleFailures, sc.MaxBadCommands)
	writeFile(t, path, []byte(text))
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// certPair writes a self-signed certificate and key into dir as
// NAME.crt and NAME.key.
func certPair(t *testing.T, dir, name string) (certFile, keyFile string, serial string) {
	t.Helper()
	certPEM, keyPEM, err := tlsconf.SelfSigned("localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, parseCert(t, string(certPEM)).SerialNumber.String()
}

// peerSerial is the serial number of the certificate a TLS listener shows.
func peerSerial(t *testing.T, addr string, maxVersion uint16) (string, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// waitLogCount waits until s is in the log n times.
func (sr *serveRun) waitLogCount(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(sr.stderr.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not %d times in the log:\n%s", s, n, sr.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sighup sends SIGHUP to the test process, where serve runs, and waits
// for the reload to end.
func (sr *serveRun) sighup(t *testing.T) {
	t.Helper()
	n := strings.Count(sr.stderr.String(), "SIGHUP: reload finished")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	sr.waitLogCount(t, "SIGHUP: reload finished", n+1)
}

// SIGHUP applies what can change live and keeps every session; a
// configuration that does not load changes nothing.
func TestServeReload(t *testing.T) {
	e := newTestEnv(t)
	cfgFile := filepath.Join(e.dir, "letterbox.toml")
	certA, keyA, serialA := certPair(t, e.dir, "a")
	certB, keyB, serialB := certPair(t, e.dir, "b")
	sc := serveConfig{CertFile: certA, KeyFile: keyA}
	sc.write(t, cfgFile)
	e.must("secret\n", "user", "add", "ivan", "--password-stdin", "--cost=4", "--config", cfgFile)
	e.must("secret\n", "user", "add", "judy", "--password-stdin", "--cost=4", "--config", cfgFile)
	e.must(testMessage, "deliver", "ivan", "--config", cfgFile)

	sr := e.startServe(nil, "--config", cfgFile)
	ls := sr.listeners()
	pop3, pop3s := ls["pop3/starttls"], ls["pop3/implicit"]
	c1 := pop3Login(t, pop3, "ivan", "secret")
	c1.cmd("STAT", "+OK 1 ")
	if s, err := peerSerial(t, pop3s, 0); err != nil || s != serialA {
		t.Fatalf("certificate %s %v, want a (%s)", s, err, serialA)
	}

	// Live changes, and one that needs a restart.
	sc.Level, sc.CertFile, sc.KeyFile, sc.MinVersion, sc.MaxBadCommands, sc.DrainTimeout = "debug", certB, keyB, "1.3", 3, "7s"
	sc.write(t, cfgFile)
	sr.sighup(t)
	log := sr.stderr.String()
	for _, want := range []string{
		`msg="SIGHUP: configuration changes applied" keys="[log.level server.drain_timeout tls.cert_file tls.key_file tls.min_version]"`,
		`keys=[pop3.max_bad_commands]`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	c1.cmd("STAT", "+OK 1 ") // the session goes on
	if s, err := peerSerial(t, pop3s, 0); err != nil || s != serialB {
		t.Errorf("certificate after reload %s %v, want b (%s)", s, err, serialB)
	}
	if _, err := peerSerial(t, pop3s, tls.VersionTLS12); err == nil {
		t.Error("TLS 1.2 accepted after min_version became 1.3")
	}
	// pop3.max_bad_commands needs a restart: 3 bad commands do not end
	// a session.
	c2 := pop3Login(t, pop3, "judy", "secret") // ivan's maildrop is c1's
	for range 4 {
		c2.cmd("BOGUS", "-ERR")
	}
	c2.cmd("QUIT", "+OK")

	// A configuration that does not load changes nothing.
	writeFile(t, cfgFile, []byte("[log]\nlevel = \"loud\"\n"))
	sr.sighup(t)
	if !strings.Contains(sr.stderr.String(), "SIGHUP: configuration not reloaded; the previous configuration stays in force") ||
		!strings.Contains(sr.stderr.String(), "log.level") {
		t.Errorf("broken configuration not reported:\n%s", sr.stderr.String())
	}
	c1.cmd("STAT", "+OK 1 ")
	if s, err := peerSerial(t, pop3s, 0); err != nil || s != serialB {
		t.Errorf("certificate after a failed reload %s %v, want b", s, err)
	}
	pop3Login(t, pop3, "judy", "secret").cmd("QUIT", "+OK")

	// A certificate that does not load: the old one stays.
	sc.CertFile = filepath.Join(e.dir, "missing.crt")
	sc.write(t, cfgFile)
	sr.sighup(t)
	if log := sr.stderr.String(); !strings.Contains(log, "new [tls] settings do not load") || strings.Contains(log, "keys=\"[pop3.max_bad_commands tls.cert_file]") {
		t.Errorf("bad certificate not reported:\n%s", sr.stderr.String())
	}
	if s, err := peerSerial(t, pop3s, 0); err != nil || s != serialB {
		t.Errorf("certificate after a failed TLS reload %s %v, want b", s, err)
	}

	// [auth] changes bring a new authenticator: one failure now blocks
	// the address. (Last, as it blocks the test's own address.)
	sc.CertFile, sc.ThrottleFailures = certB, 1
	sc.write(t, cfgFile)
	sr.sighup(t)
	if !strings.Contains(sr.stderr.String(), `keys=[auth.throttle_failures]`) {
		t.Errorf("throttle change not applied:\n%s", sr.stderr.String())
	}
	c, err := net.Dial("tcp", pop3)
	if err != nil {
		t.Fatal(err)
	}
	c3 := newLineClient(t, c)
	c3.expect("+OK")
	c3.cmd("USER judy", "+OK")
	c3.cmd("PASS wrong", "-ERR")
	c3.cmd("USER judy", "+OK")
	c3.cmd("PASS secret", "-ERR")
	if !strings.Contains(sr.stderr.String(), "reason=throttled") {
		t.Errorf("not throttled after the reload:\n%s", sr.stderr.String())
	}

	c1.cmd("QUIT", "+OK")
	if code := sr.stop(t); code != exitOK {
		t.Errorf("exit %d", code)
	}
}

// The log level changes for loggers made before the reload too.
func TestLiveLogLevel(t *testing.T) {
	var out syncBuffer
	log, level := newLiveLogger(configLog("info", "text"), &out)
	conn := log.With("conn", 7)
	conn.Debug("hidden")
	level.Set(slog.LevelDebug)
	conn.Debug("shown")
	log.WithGroup("g").Debug("grouped")
	level.Set(slog.LevelError)
	conn.Warn("hidden too")
	if got := out.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "msg=shown conn=7") || !strings.Contains(got, "msg=grouped") {
		t.Errorf("log:\n%s", got)
	}
	if log.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("warn enabled at level error")
	}
}

func configLog(level, format string) config.Log {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return config.Log{Level: l, Format: format}
}
