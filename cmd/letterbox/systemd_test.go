package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

// A Type=notify service's life as systemd sees it: READY=1 once every
// listener accepts, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
// SIGHUP, STOPPING=1 on SIGTERM, and WATCHDOG=1 all along at half
// WATCHDOG_USEC.
func TestServeNotifiesSystemd(t *testing.T) {
	ns := lbtest.NewNotifySocket(t)
	e := newTestEnv(t)
	e.environ = []string{"NOTIFY_SOCKET=" + ns.Path, "WATCHDOG_USEC=100000", "WATCHDOG_PID=" + strconv.Itoa(os.Getpid())}
	srv := &lineServer{}
	sr := e.startServe(lineProtocols(srv), loopbackFlags...)
	var pings int

	m := ns.Next(t, &pings)
	if m["READY"] != "1" {
		t.Fatalf("first notification %v, want READY=1", m)
	}
	ls := sr.listeners()
	if len(ls) != 4 {
		t.Fatalf("listeners %v", ls)
	}
	for name, addr := range ls {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("READY=1 sent but %s at %s does not accept: %v", name, addr, err)
			continue
		}
		c.Close()
		if !strings.Contains(m["STATUS"], addr) {
			t.Errorf("STATUS %q does not name %s", m["STATUS"], addr)
		}
	}

	time.Sleep(200 * time.Millisecond) // a few watchdog periods
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m = ns.Next(t, &pings)
	if m["RELOADING"] != "1" || m["MONOTONIC_USEC"] == "" {
		t.Errorf("after SIGHUP: %v, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	m = ns.Next(t, &pings)
	if m["READY"] != "1" || !strings.Contains(m["STATUS"], "reloaded") {
		t.Errorf("after the reload: %v, want READY=1", m)
	}
	if pings < 2 {
		t.Errorf("%d watchdog pings in 200ms at a 100ms watchdog", pings)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m = ns.Next(t, &pings); m["STOPPING"] != "1" {
		t.Errorf("after SIGTERM: %v, want STOPPING=1", m)
	}
	if code := sr.wait(t); code != exitOK {
		t.Errorf("exit %d", code)
	}
	// Nothing after STOPPING but pings.
	for _, msg := range ns.Pending() {
		if msg != "WATCHDOG=1" {
			t.Errorf("after STOPPING=1: %q", msg)
		}
	}
}
