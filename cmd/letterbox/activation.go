package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Socket activation (sd_listen_fds(3)): systemd binds the ports of a
// .socket unit and starts the service with the sockets as file descriptors
// 3, 4, ... and the environment
//
//	LISTEN_PID=<pid of the process they are meant for>
//	LISTEN_FDS=<how many>
//	LISTEN_FDNAMES=<name>:<name>:...   (FileDescriptorName=, else the unit name)
//
// It is a few lines, so there is no go-systemd dependency.

// listenFDsStart is SD_LISTEN_FDS_START.
const listenFDsStart = 3

// The variables systemd sets for socket activation.
var listenEnv = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}

// inheritedListener is one socket passed by systemd.
type inheritedListener struct {
	name string // from LISTEN_FDNAMES; "" when systemd gave none
	l    net.Listener
}

// listenFDs returns the listening sockets systemd passed to process pid as
// descriptors start, start+1, ...; none when environ does not name pid. The
// descriptors themselves are closed: the listeners hold close-on-exec
// duplicates, so child processes do not inherit them. A descriptor that is
// not a listening stream socket is an error (a .socket unit with
// ListenDatagram= or Accept=yes does not fit Letterbox).
func listenFDs(environ []string, pid, start int) ([]inheritedListener, error) {
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
	var out []inheritedListener
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
		out = append(out, inheritedListener{name: names[i], l: l})
	}
	if len(errs) > 0 {
		for _, il := range out {
			il.l.Close()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// systemdListeners takes the sockets systemd passed to this process and
// removes the variables from the environment, so that nothing started later
// believes they are meant for it.
func (c *cli) systemdListeners() ([]inheritedListener, error) {
	ls, err := listenFDs(c.environ, os.Getpid(), listenFDsStart)
	if envValue(c.environ, "LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		for _, name := range listenEnv {
			os.Unsetenv(name)
		}
	}
	return ls, err
}

// errActivation marks sockets from systemd that do not fit the
// configuration: a configuration error, not a reason to retry.
var errActivation = errors.New("socket activation")

// bindInherited matches the sockets systemd passed to the protocols and
// builds the servers for them. A socket named pop3, pop3s, imap or imaps
// (FileDescriptorName=; the "s" names are implicit TLS) goes to that
// protocol. Any other name (systemd's default is the .socket unit's name)
// is matched by its port against the configured listen addresses, so one
// .socket unit with several ListenStream= lines works with the same
// configuration as without activation. A socket that matches nothing is an
// error. Configured addresses without a socket are not bound.
func bindInherited(d deps, protos []protocol, inherited []inheritedListener) (bound []boundListener, err error) {
	assigned := make(map[match][]inheritedListener)
	closeAll := func() {
		for _, ils := range assigned {
			for _, il := range ils {
				il.l.Close() // a second Close of a bound one is harmless
			}
		}
	}
	var errs []error
	for _, il := range inherited {
		s, err := matchInherited(protos, il)
		if err != nil {
			errs = append(errs, err)
			il.l.Close()
			continue
		}
		assigned[s] = append(assigned[s], il)
	}
	if len(errs) > 0 {
		closeAll()
		return nil, fmt.Errorf("%w: %w", errActivation, errors.Join(errs...))
	}
	for i, p := range protos {
		ils := slices.Concat(assigned[match{i, false}], assigned[match{i, true}])
		if len(ils) == 0 {
			if len(p.listen)+len(p.listenTLS) > 0 {
				d.log.Info("socket activation: systemd passed no socket for this protocol; configured addresses are not bound",
					"proto", p.name, "listen", p.listen, "listen_tls", p.listenTLS)
			}
			continue
		}
		srv, err := p.build(d.forProto(p.name))
		if err != nil {
			closeAll()
			return bound, fmt.Errorf("%s: %w", p.name, err)
		}
		if srv == nil {
			d.log.Warn("protocol server not built yet; its sockets from systemd are closed", "proto", p.name)
			for _, il := range ils {
				il.l.Close()
			}
			continue
		}
		for _, secure := range []bool{false, true} {
			for _, il := range assigned[match{i, secure}] {
				bound = append(bound, boundListener{proto: p.name, srv: srv, l: d.listener(p.name, il.l, secure),
					addr: il.l.Addr().String(), secure: secure, inherited: true})
			}
		}
	}
	return bound, nil
}

// match is where an inherited socket goes: protos[proto], implicit TLS or not.
type match struct {
	proto  int
	secure bool
}

// matchInherited finds the protocol of one inherited socket, by name or by
// port.
func matchInherited(protos []protocol, il inheritedListener) (match, error) {
	for i, p := range protos {
		switch il.name {
		case p.name:
			return match{i, false}, nil
		case p.name + "s":
			return match{i, true}, nil
		}
	}
	desc := fmt.Sprintf("socket %s (%q)", il.l.Addr(), il.name)
	ta, ok := il.l.Addr().(*net.TCPAddr)
	if !ok {
		return match{}, fmt.Errorf("%s: not TCP; name it with FileDescriptorName=", desc)
	}
	addr := ta.AddrPort()
	var byPort, byAddr []match
	for i, p := range protos {
		for _, secure := range []bool{false, true} {
			for _, a := range p.addrs(secure) {
				host, port, err := net.SplitHostPort(a)
				if err != nil || port != strconv.Itoa(int(addr.Port())) {
					continue
				}
				m := match{i, secure}
				if !slices.Contains(byPort, m) {
					byPort = append(byPort, m)
				}
				if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap() == addr.Addr().Unmap() && !slices.Contains(byAddr, m) {
					byAddr = append(byAddr, m)
				}
			}
		}
	}
	switch {
	case len(byPort) == 1:
		return byPort[0], nil
	case len(byAddr) == 1:
		return byAddr[0], nil
	case len(byPort) == 0:
		return match{}, fmt.Errorf("%s: its port is in no listen address of the configuration; add it there, or name the socket pop3, pop3s, imap or imaps with FileDescriptorName=", desc)
	default:
		return match{}, fmt.Errorf("%s: its port is in more than one listen list of the configuration; name it with FileDescriptorName=", desc)
	}
}

// servingStatus is the STATUS= line for systemd while serving.
func servingStatus(listeners []boundListener) string {
	var parts []string
	for _, b := range listeners {
		name := b.proto
		if b.secure {
			name += "s"
		}
		parts = append(parts, name+" "+b.addr)
	}
	if len(parts) == 0 {
		return "Serving nothing: no listener"
	}
	return "Serving " + strings.Join(parts, ", ")
}
