package systemd

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notification: newline-separated VAR=value assignments in one datagram to
// the unix socket named by $NOTIFY_SOCKET.

// Notifier tells systemd about the service's state (Type=notify units).
// Its zero value, and one made outside systemd, does nothing. Errors are
// ignored: a missing notification is systemd's problem to time out on, not
// a reason to stop serving mail.
type Notifier struct {
	socket   string        // "" outside systemd
	watchdog time.Duration // WATCHDOG_USEC, 0 when off
}

// NewNotifier returns the notifier environ (the process's environment)
// asks for.
func NewNotifier(environ []string) *Notifier {
	n := &Notifier{socket: envValue(environ, "NOTIFY_SOCKET")}
	// systemd sets WATCHDOG_PID when it may not be the main process
	// reading the variable (sd_watchdog_enabled(3)).
	if pid := envValue(environ, "WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n
	}
	if usec, err := strconv.ParseUint(envValue(environ, "WATCHDOG_USEC"), 10, 63); err == nil && usec > 0 {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	return n
}

// send sends one notification, lines joined with "\n".
func (n *Notifier) send(lines ...string) {
	if n == nil || n.socket == "" {
		return
	}
	sock := n.socket
	if sock[0] == '@' { // abstract socket namespace
		sock = "\x00" + sock[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(strings.Join(lines, "\n")))
}

// Ready says that every listener is bound and served, at start and at the
// end of a reload.
func (n *Notifier) Ready(status string) { n.send("READY=1", "STATUS="+status) }

// Reloading starts a reload; Ready ends it. systemd ≥ 253 needs the
// monotonic time with it to match the reload to the request that caused it
// (Type=notify-reload), and older versions ignore it.
func (n *Notifier) Reloading() {
	n.send("RELOADING=1", "STATUS=Reloading configuration", "MONOTONIC_USEC="+strconv.FormatUint(monotonicUsec(), 10))
}

// Stopping says the service is stopping.
func (n *Notifier) Stopping(status string) { n.send("STOPPING=1", "STATUS="+status) }

// KeepAlive is WATCHDOG=1, due at each tick of WatchdogTicks.
func (n *Notifier) KeepAlive() { n.send("WATCHDOG=1") }

// WatchdogTicks returns a channel that ticks at half the watchdog timeout,
// as sd_watchdog_enabled(3) recommends, and a stop function. Without a
// watchdog the channel never ticks.
func (n *Notifier) WatchdogTicks() (<-chan time.Time, func()) {
	if n == nil || n.watchdog <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(n.watchdog / 2)
	return t.C, t.Stop
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC with.
func monotonicUsec() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

// envValue returns the value of name in environ ("KEY=value" strings); the
// last assignment wins, as in exec.Cmd.Env (os.Environ has no duplicates).
func envValue(environ []string, name string) string {
	var v string
	for _, kv := range environ {
		if val, ok := strings.CutPrefix(kv, name+"="); ok {
			v = val
		}
	}
	return v
}
