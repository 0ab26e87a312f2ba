package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trackedPair accepts one connection on a tracked loopback listener and
// returns the server side (as the protocol server sees it) and the client.
func trackedPair(t *testing.T, reg *connRegistry, proto string) (server, client net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	l := reg.listener(proto, raw, false)
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

func TestConnRegistry(t *testing.T) {
	m := newMetrics()
	reg := newConnRegistry(m)
	s1, c1 := trackedPair(t, reg, "pop3")
	s2, c2 := trackedPair(t, reg, "imap")

	io.WriteString(c1, "USER alice\r\n")
	buf := make([]byte, 64)
	if n, err := s1.Read(buf); err != nil || n != 12 {
		t.Fatalf("read %d %v", n, err)
	}
	io.WriteString(s1, "+OK\r\n")

	sessions := reg.sessions()
	if len(sessions) != 2 || sessions[0].Proto != "pop3" || sessions[1].Proto != "imap" {
		t.Fatalf("sessions %+v", sessions)
	}
	if s := sessions[0]; s.BytesIn != 12 || s.BytesOut != 5 || s.Remote != c1.LocalAddr().String() || s.Local != c1.RemoteAddr().String() || s.User != "" {
		t.Errorf("pop3 session %+v", s)
	}
	if got := metricValue(t, m.bytesIn.WithLabelValues("pop3")); got != 12 {
		t.Errorf("received bytes %v", got)
	}
	if got := metricValue(t, m.openConns.WithLabelValues("pop3")); got != 1 {
		t.Errorf("open pop3 connections %v", got)
	}
	if got := reg.unreported(); strings.Join(got, ",") != "imap,pop3" {
		t.Errorf("unreported %v", got)
	}

	// A server with the Observer hook reports a login, even through a
	// *tls.Conn on top of the tracked conn; kick then closes it.
	obs := newProtoObserver("imap", reg, m)
	reg.reportsUsers("imap")
	obs.Authenticated(tls.Server(s2, &tls.Config{}), "Alice")
	if got := reg.sessions()[1].User; got != "Alice" {
		t.Errorf("user %q after login", got)
	}
	if got := reg.unreported(); strings.Join(got, ",") != "pop3" {
		t.Errorf("unreported %v", got)
	}
	if n := reg.kick("nobody"); n != 0 {
		t.Errorf("kicked %d sessions of nobody", n)
	}
	if n := reg.kick("alice"); n != 1 {
		t.Errorf("kicked %d sessions of alice, want 1", n)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(buf); err != io.EOF {
		t.Errorf("client of a kicked session reads %v, want EOF", err)
	}
	s1.Close()
	s1.Close() // twice is fine, and counts once
	if got := len(reg.sessions()); got != 0 {
		t.Errorf("%d sessions left", got)
	}
	if got := metricValue(t, m.openConns.WithLabelValues("pop3")); got != 0 {
		t.Errorf("open pop3 connections %v after close", got)
	}
	if got := metricValue(t, m.connsTotal.WithLabelValues("pop3")); got != 1 {
		t.Errorf("pop3 connections total %v", got)
	}
}

func TestObserverCommands(t *testing.T) {
	m := newMetrics()
	obs := newProtoObserver("imap", newConnRegistry(m), m)
	obs.Command(nil, "uid  fetch", 3*time.Millisecond, true)
	obs.Command(nil, "UID FETCH", time.Millisecond, false)
	obs.Command(nil, "XYZZY-"+strings.Repeat("A", 100), time.Millisecond, true)
	out := scrape(t, m)
	for _, want := range []string{
		`letterbox_command_duration_seconds_count{command="UID FETCH",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="UID FETCH",proto="imap",result="error"} 1`,
		`letterbox_command_duration_seconds_count{command="OTHER",proto="imap",result="ok"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, grepLines(out, "command_duration_seconds_count"))
		}
	}
}

// controlTest runs a control server on a socket in a temp dir.
func controlTest(t *testing.T) (*connRegistry, string) {
	t.Helper()
	reg := newConnRegistry(newMetrics())
	path := filepath.Join(t.TempDir(), "control")
	l, err := listenUnix(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	srv := newControlServer(reg, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != errControlClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return reg, path
}

func TestControlSocket(t *testing.T) {
	reg, path := controlTest(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket %v %v", fi.Mode(), err)
	}
	server, _ := trackedPair(t, reg, "pop3")
	newProtoObserver("pop3", reg, reg.metrics).Authenticated(server, "bob")
	reg.reportsUsers("pop3")

	resp, err := controlCall(path, controlRequest{Cmd: "who"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Sessions) != 1 || resp.Sessions[0].User != "bob" || resp.Sessions[0].Proto != "pop3" || len(resp.Unreported) != 0 {
		t.Errorf("who: %+v", resp)
	}
	resp, err = controlCall(path, controlRequest{Cmd: "kick", User: "BOB"})
	if err != nil || resp.Kicked == nil || *resp.Kicked != 1 {
		t.Errorf("kick: %+v %v", resp, err)
	}
	if _, err := controlCall(path, controlRequest{Cmd: "kick"}); err == nil || !strings.Contains(err.Error(), "user missing") {
		t.Errorf("kick without user: %v", err)
	}
	if _, err := controlCall(path, controlRequest{Cmd: "reboot"}); err == nil || !strings.Contains(err.Error(), `unknown command "reboot"`) {
		t.Errorf("unknown command: %v", err)
	}

	// The wire: several requests on one connection, one answer line each,
	// bad JSON answered and survived, an overlong line ends the connection.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	io.WriteString(c, "{\"cmd\":\"who\"}\nnot json\n{\"cmd\":\"who\",\"extra\":1}\n")
	for i, want := range []string{`{"ok":true}`, `{"ok":false,"error":"bad request: want one JSON object per line"}`, `{"ok":true}`} {
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Errorf("answer %d: %q %v, want %s", i, line, err, want)
		}
	}
	io.WriteString(c, strings.Repeat("x", controlMaxLine+10)+"\n")
	line, _ := r.ReadString('\n')
	var resp2 controlResponse
	if json.Unmarshal([]byte(line), &resp2) != nil || resp2.OK || !strings.Contains(resp2.Error, "too long") {
		t.Errorf("overlong line: %q", line)
	}
	if line, err := r.ReadString('\n'); err == nil {
		t.Errorf("connection not closed after an overlong line: %q", line)
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "sock") // the directory is created

	l, err := listenUnix(path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}
	// A live socket is not taken over.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := listenUnix(path, 0o660); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second bind: %v", err)
	}
	// A stale one, left by a server that died, is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	l2, err := listenUnix(path, 0o600)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l2.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file not removed on close: %v", err)
	}

	file := filepath.Join(dir, "file")
	writeFile(t, file, []byte("x"))
	if _, err := listenUnix(file, 0o600); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("d", 120), "sock")
	if _, err := listenUnix(long, 0o600); err == nil || !strings.Contains(err.Error(), "more than the 107") {
		t.Errorf("long path: %v", err)
	}
}
