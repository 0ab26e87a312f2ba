// Package systemd speaks the two protocols a service has with systemd,
// without libsystemd or go-systemd, since each is a few lines:
//
//   - socket activation (sd_listen_fds(3)): Listeners takes the sockets
//     systemd bound for a .socket unit;
//   - notification (sd_notify(3)): a Notifier tells systemd the service is
//     ready, reloading or stopping, and feeds its watchdog.
package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Socket activation: systemd binds the ports of a .socket unit and starts
// the service with the sockets as file descriptors 3, 4, ... and the
// environment
//
//	LISTEN_PID=<pid of the process they are meant for>
//	LISTEN_FDS=<how many>
//	LISTEN_FDNAMES=<name>:<name>:...   (FileDescriptorName=, else the unit name)

// listenFDsStart is SD_LISTEN_FDS_START.
const listenFDsStart = 3

// The variables systemd sets for socket activation.
var listenEnv = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}

// Socket is one listening socket passed by systemd.
type Socket struct {
	Name     string // from LISTEN_FDNAMES; "" when systemd gave none
	Listener net.Listener
}

// listenFDs returns the listening sockets systemd passed to process pid as
// descriptors start, start+1, ...; none when environ does not name pid. The
// descriptors themselves are closed: the listeners hold close-on-exec
// duplicates, so child processes do not inherit them. A descriptor that is
// not a listening stream socket is an error (a .socket unit with
// ListenDatagram= or Accept=yes does not fit Letterbox).
func listenFDs(environ []string, pid, start int) ([]Socket, error) {
	if envValue(environ, "LISTEN_PID") != strconv.Itoa(pid) {
		return nil, nil // not activated, or meant for another process
	}
	n, err := strconv.Atoi(envValue(environ, "LISTEN_FDS"))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a number", envValue(environ, "LISTEN_FDS"))
	}
	names := strings.Split(envValue(environ, "LISTEN_FDNAMES"), ":")
	if len(names) != n {
		names = make([]string, n) // systemd always sends n names; anything else is not to be trusted
	}
	var out []Socket
	var errs []error
	for i := range n {
		fd := start + i
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		l, err := net.FileListener(f) // dups fd
		if err == nil {
			if on, serr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); serr != nil || on != 1 {
				l.Close()
				err = errors.New("not listening")
			}
		}
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("socket activation: descriptor %d (%q) is not a listening stream socket: %w", fd, names[i], err))
			continue
		}
		out = append(out, Socket{Name: names[i], Listener: l})
	}
	if len(errs) > 0 {
		for _, s := range out {
			s.Listener.Close()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Listeners takes the sockets systemd passed to this process, as environ
// (the process's environment, os.Environ()) tells, and removes the
// variables from the process environment, so that nothing started later
// believes they are meant for it. Without socket activation it returns
// none.
func Listeners(environ []string) ([]Socket, error) {
	ls, err := listenFDs(environ, os.Getpid(), listenFDsStart)
	if envValue(environ, "LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		for _, name := range listenEnv {
			os.Unsetenv(name)
		}
	}
	return ls, err
}
