package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// sdNotify sends one state to $NOTIFY_SOCKET in environ.
func sdNotify(environ []string, state string) { newNotifier(environ).send(state) }

// notifySocket is a fake $NOTIFY_SOCKET that collects what the server sends.
type notifySocket struct {
	path string
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// Short path: unix socket names are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 1000)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
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

// next returns the next message that is not a watchdog ping, counting
// those in *pings.
func (ns *notifySocket) next(t *testing.T, pings *int) string {
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
			return m
		case <-timeout:
			t.Fatal("no notification within 20s")
		}
	}
}

// fields splits a notification into its assignments.
func fields(m string) map[string]string {
	out := make(map[string]string)
	for _, l := range strings.Split(m, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestNotifierMessages(t *testing.T) {
	ns := newNotifySocket(t)
	n := newNotifier([]string{"NOTIFY_SOCKET=" + ns.path})
	var pings int

	n.ready("Serving")
	if m := fields(ns.next(t, &pings)); m["READY"] != "1" || m["STATUS"] != "Serving" {
		t.Errorf("ready: %v", m)
	}
	before := monotonicUsec()
	n.reloading()
	after := monotonicUsec()
	m := fields(ns.next(t, &pings))
	usec, err := strconv.ParseUint(m["MONOTONIC_USEC"], 10, 64)
	if m["RELOADING"] != "1" || err != nil || usec < before || usec > after {
		t.Errorf("reloading: %v (monotonic clock between %d and %d)", m, before, after)
	}
	n.stopping("Stopping")
	if m := fields(ns.next(t, &pings)); m["STOPPING"] != "1" {
		t.Errorf("stopping: %v", m)
	}
	// Compare with the kernel's clock as systemd reads it.
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	if d := time.Duration(ts.Nano()) - time.Duration(monotonicUsec())*time.Microsecond; d < -time.Second || d > time.Second {
		t.Errorf("monotonicUsec is off CLOCK_MONOTONIC by %v", d)
	}
}

func TestNotifierWatchdog(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		env  []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"WATCHDOG_USEC=2000000"}, 2 * time.Second},
		{[]string{"WATCHDOG_USEC=2000000", "WATCHDOG_PID=" + self}, 2 * time.Second},
		{[]string{"WATCHDOG_USEC=2000000", "WATCHDOG_PID=1"}, 0}, // meant for another process
		{[]string{"WATCHDOG_USEC=0"}, 0},
		{[]string{"WATCHDOG_USEC=soon"}, 0},
	} {
		if got := newNotifier(tt.env).watchdog; got != tt.want {
			t.Errorf("%v: watchdog %v, want %v", tt.env, got, tt.want)
		}
	}

	ticks, stop := newNotifier(nil).watchdogTicks()
	if ticks != nil {
		t.Error("ticks without a watchdog")
	}
	stop()
	ticks, stop = newNotifier([]string{"WATCHDOG_USEC=20000"}).watchdogTicks()
	defer stop()
	start := time.Now()
	<-ticks
	<-ticks
	if d := time.Since(start); d < 15*time.Millisecond || d > 5*time.Second {
		t.Errorf("two ticks at half of 20ms took %v", d)
	}
}
