package main

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestSDNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	sdNotify([]string{"NOTIFY_SOCKET=" + sock}, "READY=1")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Errorf("got %q, %v", buf[:n], err)
	}

	// Outside systemd, or with a dead socket, it is a no-op.
	sdNotify(nil, "READY=1")
	sdNotify([]string{"NOTIFY_SOCKET=" + sock + ".gone"}, "READY=1")
}
