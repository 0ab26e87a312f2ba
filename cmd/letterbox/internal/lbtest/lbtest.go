// Package lbtest holds what the tests of cmd/letterbox and its internal
// packages share: a log buffer safe for a running server, a file system
// that runs out of space, a line-based protocol client, and a wait for a
// condition.
package lbtest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer that a running server may write while the
// test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SmallDisk mounts a tmpfs of size bytes on a new directory and returns
// it; the test unmounts it at its end. Tests of what happens when the
// disk is full use it: fill it with Fill. It needs root (CI runs as
// root); elsewhere the test is skipped.
func SmallDisk(t testing.TB, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := "size=" + strconv.Itoa(size) + ",mode=0700"
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs to fill up (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file into dir until the file system holding it is full.
func Fill(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return
		}
	}
}

// LineClient speaks a line-based protocol (POP3, LMTP, the control
// socket) to a server, failing the test on surprises. Every read has a
// 20-second deadline, so a server that says nothing fails the test
// instead of hanging it.
type LineClient struct {
	T    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// NewLineClient wraps c; the test closes it at its end.
func NewLineClient(t testing.TB, c net.Conn) *LineClient {
	t.Cleanup(func() { c.Close() })
	return &LineClient{T: t, Conn: c, R: bufio.NewReader(c)}
}

// Dial connects to address on network and wraps the connection.
func Dial(t testing.TB, network, address string) *LineClient {
	t.Helper()
	c, err := net.DialTimeout(network, address, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return NewLineClient(t, c)
}

// Send writes one line with CRLF.
func (lc *LineClient) Send(line string) {
	lc.T.Helper()
	lc.Conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(lc.Conn, line+"\r\n"); err != nil {
		lc.T.Fatalf("send %q: %v", line, err)
	}
}

// Line reads one line, without its line end.
func (lc *LineClient) Line() string {
	lc.T.Helper()
	lc.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := lc.R.ReadString('\n')
	if err != nil {
		lc.T.Fatalf("reading a line: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

// Expect reads one line and checks that it starts with prefix.
func (lc *LineClient) Expect(prefix string) string {
	lc.T.Helper()
	line := lc.Line()
	if !strings.HasPrefix(line, prefix) {
		lc.T.Fatalf("got %q, want %q", line, prefix)
	}
	return line
}

// Rest reads until the server closes the connection and returns what
// came, so a test can check a farewell and the close at once.
func (lc *LineClient) Rest() string {
	lc.T.Helper()
	lc.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(lc.R)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		lc.T.Fatalf("waiting for the server to close: %v (got %q)", err, rest)
	}
	return string(rest)
}

// Trickle sends data one byte at a time, every interval, until the server
// closes the connection or data runs out, and returns what the server
// sent meanwhile. It is how a test plays a slow-loris client.
func (lc *LineClient) Trickle(data string, interval time.Duration) string {
	lc.T.Helper()
	lc.Conn.SetReadDeadline(time.Now().Add(time.Minute))
	got := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(lc.R)
		got <- string(rest)
	}()
	for i := 0; ; i++ {
		select {
		case rest := <-got:
			return rest
		case <-time.After(interval):
		}
		if i >= len(data) {
			// Out of data and still open: let the server see the end,
			// so the test gets an answer instead of hanging.
			if cw, ok := lc.Conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			} else {
				lc.Conn.Close()
			}
			return <-got
		}
		lc.Conn.Write([]byte{data[i]})
	}
}

// NewMail returns the contents of the files in a Maildir folder's new/,
// where deliveries land.
func NewMail(t testing.TB, folder string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(folder, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(folder, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// NotifySocket is a fake $NOTIFY_SOCKET that collects what a service
// sends systemd.
type NotifySocket struct {
	Path string
	msgs chan string
}

// NewNotifySocket listens on a new notify socket until the test ends.
func NewNotifySocket(t testing.TB) *NotifySocket {
	t.Helper()
	// Short path: unix socket names are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := &NotifySocket{Path: filepath.Join(dir, "notify"), msgs: make(chan string, 1000)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	return ns
}

// Next returns the assignments of the next message that is not a watchdog
// ping, counting those in *pings.
func (ns *NotifySocket) Next(t testing.TB, pings *int) map[string]string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatal("notify socket closed")
			}
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			out := make(map[string]string)
			for _, l := range strings.Split(m, "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					out[k] = v
				}
			}
			return out
		case <-timeout:
			t.Fatal("no notification within 20s")
		}
	}
}

// Pending returns the messages received and not yet read, without
// waiting.
func (ns *NotifySocket) Pending() []string {
	var out []string
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				return out
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

// Eventually retries f every few milliseconds for up to 10 seconds, and
// fails the test if it never holds.
func Eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
