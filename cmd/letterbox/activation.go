package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/systemd"
)

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
func bindInherited(d deps, protos []protocol, inherited []systemd.Socket) (bound []boundListener, err error) {
	assigned := make(map[match][]systemd.Socket)
	closeAll := func() {
		for _, ils := range assigned {
			for _, il := range ils {
				il.Listener.Close() // a second Close of a bound one is harmless
			}
		}
	}
	var errs []error
	for _, il := range inherited {
		s, err := matchInherited(protos, il)
		if err != nil {
			errs = append(errs, err)
			il.Listener.Close()
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
				il.Listener.Close()
			}
			continue
		}
		for _, secure := range []bool{false, true} {
			for _, il := range assigned[match{i, secure}] {
				bound = append(bound, boundListener{proto: p.name, srv: srv, l: d.listener(p.name, il.Listener, secure),
					addr: il.Listener.Addr().String(), secure: secure, inherited: true})
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
func matchInherited(protos []protocol, il systemd.Socket) (match, error) {
	for i, p := range protos {
		switch il.Name {
		case p.name:
			return match{i, false}, nil
		case p.name + "s":
			return match{i, true}, nil
		}
	}
	desc := fmt.Sprintf("socket %s (%q)", il.Listener.Addr(), il.Name)
	ta, ok := il.Listener.Addr().(*net.TCPAddr)
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
