package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
