package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/systemd"
)

func listenerFile(t *testing.T) (net.Listener, *os.File) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return l, f
}

// fakeListener is a listener that only has an address.
type fakeListener struct {
	net.Listener
	addr net.Addr
}

func (f fakeListener) Addr() net.Addr { return f.addr }

func TestMatchInherited(t *testing.T) {
	cfg := &config.Config{}
	cfg.POP3.Listen = []string{"127.0.0.1:110"}
	cfg.POP3.ListenTLS = []string{":995", "[::]:995"}
	cfg.IMAP.Listen = []string{"127.0.0.2:2000"}
	cfg.IMAP.ListenTLS = []string{"127.0.0.3:2000"}
	protos := protocols(cfg)
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tt := range []struct {
		name  string
		addr  net.Addr
		proto string // "" for an error
		tls   bool
		err   string
	}{
		{"pop3", tcp("0.0.0.0:9"), "pop3", false, ""},
		{"pop3s", tcp("0.0.0.0:9"), "pop3", true, ""},
		{"imap", tcp("[::]:9"), "imap", false, ""},
		{"imaps", &net.UnixAddr{Name: "/run/x", Net: "unix"}, "imap", true, ""},
		{"letterbox.socket", tcp("[::]:110"), "pop3", false, ""},
		{"letterbox.socket", tcp("0.0.0.0:995"), "pop3", true, ""},
		{"", tcp("127.0.0.3:2000"), "imap", true, ""},
		{"", tcp("127.0.0.2:2000"), "imap", false, ""},
		{"", tcp("127.0.0.4:2000"), "", false, "more than one listen list"},
		{"letterbox.socket", tcp("0.0.0.0:143"), "", false, "in no listen address"},
		{"lmtp", &net.UnixAddr{Name: "/run/x", Net: "unix"}, "", false, "not TCP"},
	} {
		m, err := matchInherited(protos, systemd.Socket{Name: tt.name, Listener: fakeListener{addr: tt.addr}})
		switch {
		case tt.proto == "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q %v: got %v %v, want error %q", tt.name, tt.addr, m, err, tt.err)
		case tt.proto != "" && (err != nil || protos[m.proto].name != tt.proto || m.secure != tt.tls):
			t.Errorf("%q %v: got %+v %v, want %s tls=%v", tt.name, tt.addr, m, err, tt.proto, tt.tls)
		}
	}
}

// buildLetterbox builds the command into a temp dir.
func buildLetterbox(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not in PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "letterbox")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// binServe is "letterbox serve" running as its own process.
type binServe struct {
	cmd  *exec.Cmd
	log  syncBuffer
	done chan error
}

// startActivated runs bin serve as systemd would for a .socket unit: files
// as descriptors 3, 4, ..., LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID set to
// the pid of the process that execs the binary (sh's $$ survives exec).
func startActivated(t *testing.T, bin, dir string, env []string, files []*os.File, args ...string) *binServe {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin, "serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	cmd.ExtraFiles = files
	bs := &binServe{cmd: cmd, done: make(chan error, 1)}
	cmd.Stdout = &bytes.Buffer{}
	cmd.Stderr = &bs.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { bs.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // only if the test failed before it stopped
		<-bs.done
	})
	return bs
}

// waitLog waits for s in the log, or for the process to exit.
func (bs *binServe) waitLog(t *testing.T, s string) bool {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(bs.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, bs.log.String())
		}
		select {
		case err := <-bs.done:
			bs.done <- err
			return strings.Contains(bs.log.String(), s)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// stop sends SIGTERM and returns the exit code.
func (bs *binServe) stop(t *testing.T) int {
	t.Helper()
	bs.cmd.Process.Signal(syscall.SIGTERM)
	return bs.exitCode(t)
}

func (bs *binServe) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-bs.done:
		bs.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit:\n%s", bs.log.String())
		return -1
	}
}

func greeting(t *testing.T, c net.Conn) string {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("greeting from %s: %v", c.RemoteAddr(), err)
	}
	return line
}

// TestSocketActivation runs the real binary with sockets passed the way
// systemd passes them.
func TestSocketActivation(t *testing.T) {
	bin := buildLetterbox(t)

	// pop3, pop3s, imap, imaps: a listener each, bound by "systemd".
	var ls []net.Listener
	var files []*os.File
	for range 4 {
		l, f := listenerFile(t)
		ls = append(ls, l)
		files = append(files, f)
	}
	checkServed := func(t *testing.T, bs *binServe) {
		t.Helper()
		log := bs.log.String()
		for i, want := range []string{"proto=pop3 addr=%s tls=starttls from=systemd", "proto=pop3 addr=%s tls=implicit from=systemd"} {
			if w := strings.Replace(want, "%s", ls[i].Addr().String(), 1); !strings.Contains(log, w) {
				t.Errorf("log lacks %q:\n%s", w, log)
			}
		}
		if n := strings.Count(log, "msg=listening"); n != strings.Count(log, "from=systemd") {
			t.Errorf("a listener was bound by the server itself:\n%s", log)
		}
		if g := greeting(t, dial(t, ls[0].Addr().String(), false)); !strings.HasPrefix(g, "+OK") {
			t.Errorf("pop3 greeting %q", g)
		}
		if g := greeting(t, dial(t, ls[1].Addr().String(), true)); !strings.HasPrefix(g, "+OK") {
			t.Errorf("pop3s greeting %q", g)
		}
		if g := greeting(t, dial(t, ls[3].Addr().String(), true)); !strings.HasPrefix(g, "* OK") {
			t.Errorf("imaps greeting %q", g)
		}
	}

	t.Run("by name", func(t *testing.T) {
		dir := t.TempDir()
		bs := startActivated(t, bin, dir, []string{"LISTEN_FDS=4", "LISTEN_FDNAMES=pop3:pop3s:imap:imaps"}, files, loopbackFlags...)
		if !bs.waitLog(t, "letterbox ready") {
			t.Fatalf("serve exited:\n%s", bs.log.String())
		}
		checkServed(t, bs)
		if code := bs.stop(t); code != exitOK {
			t.Errorf("exit %d\n%s", code, bs.log.String())
		}
	})

	// One letterbox.socket with four ListenStream= lines: systemd names
	// every socket "letterbox.socket", and the ports say which is which.
	t.Run("by port", func(t *testing.T) {
		dir := t.TempDir()
		bs := startActivated(t, bin, dir, []string{"LISTEN_FDS=4", "LISTEN_FDNAMES=letterbox.socket:letterbox.socket:letterbox.socket:letterbox.socket"}, files,
			"--pop3.listen="+ls[0].Addr().String(), "--pop3.listen_tls=:"+port(ls[1]),
			"--imap.listen="+ls[2].Addr().String(), "--imap.listen_tls=[::]:"+port(ls[3]))
		if !bs.waitLog(t, "letterbox ready") {
			t.Fatalf("serve exited:\n%s", bs.log.String())
		}
		checkServed(t, bs)
		if code := bs.stop(t); code != exitOK {
			t.Errorf("exit %d\n%s", code, bs.log.String())
		}
	})

	t.Run("socket the configuration does not know", func(t *testing.T) {
		bs := startActivated(t, bin, t.TempDir(), []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=letterbox.socket"}, files[:1], loopbackFlags...)
		if code := bs.exitCode(t); code != exitConfig || !strings.Contains(bs.log.String(), "in no listen address") {
			t.Errorf("exit %d, want %d:\n%s", code, exitConfig, bs.log.String())
		}
	})

	// LISTEN_PID of another process: the variables are not for us, and
	// the server binds the configured addresses itself.
	t.Run("not activated", func(t *testing.T) {
		cmd := exec.Command(bin, append([]string{"serve"}, loopbackFlags...)...)
		dir := t.TempDir()
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LISTEN_PID=1", "LISTEN_FDS=4", "LISTEN_FDNAMES=pop3:pop3s:imap:imaps"}
		cmd.ExtraFiles = files
		bs := &binServe{cmd: cmd, done: make(chan error, 1)}
		cmd.Stderr = &bs.log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { bs.done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill(); <-bs.done })
		if !bs.waitLog(t, "letterbox ready") {
			t.Fatalf("serve exited:\n%s", bs.log.String())
		}
		if strings.Contains(bs.log.String(), "from=systemd") || !strings.Contains(bs.log.String(), "msg=listening proto=pop3") {
			t.Errorf("log:\n%s", bs.log.String())
		}
		if code := bs.stop(t); code != exitOK {
			t.Errorf("exit %d", code)
		}
	})
}

func port(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }

func dial(t *testing.T, addr string, secure bool) net.Conn {
	t.Helper()
	if secure {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("TLS to %s: %v", addr, err)
		}
		return c
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
