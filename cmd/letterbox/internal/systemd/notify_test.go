package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
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
func sdNotify(environ []string, state string) { NewNotifier(environ).send(state) }

func TestNotifierMessages(t *testing.T) {
	ns := lbtest.NewNotifySocket(t)
	n := NewNotifier([]string{"NOTIFY_SOCKET=" + ns.Path})
	var pings int

	n.Ready("Serving")
	if m := ns.Next(t, &pings); m["READY"] != "1" || m["STATUS"] != "Serving" {
		t.Errorf("ready: %v", m)
	}
	before := monotonicUsec()
	n.Reloading()
	after := monotonicUsec()
	m := ns.Next(t, &pings)
	usec, err := strconv.ParseUint(m["MONOTONIC_USEC"], 10, 64)
	if m["RELOADING"] != "1" || err != nil || usec < before || usec > after {
		t.Errorf("reloading: %v (monotonic clock between %d and %d)", m, before, after)
	}
	n.Stopping("Stopping")
	if m := ns.Next(t, &pings); m["STOPPING"] != "1" {
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
		if got := NewNotifier(tt.env).watchdog; got != tt.want {
			t.Errorf("%v: watchdog %v, want %v", tt.env, got, tt.want)
		}
	}

	ticks, stop := NewNotifier(nil).WatchdogTicks()
	if ticks != nil {
		t.Error("ticks without a watchdog")
	}
	stop()
	// Taken before the ticker exists: timers never fire early, so the
	// lower bound holds however slow the machine.
	start := time.Now()
	ticks, stop = NewNotifier([]string{"WATCHDOG_USEC=20000"}).WatchdogTicks()
	defer stop()
	<-ticks
	<-ticks
	if d := time.Since(start); d < 15*time.Millisecond || d > 5*time.Second {
		t.Errorf("two ticks at half of 20ms took %v", d)
	}
}
