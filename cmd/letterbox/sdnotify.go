package main

import (
	"net"
	"strings"
)

// sdNotify tells systemd about the service state (Type=notify units), and
// does nothing outside systemd. Errors are ignored: a missing notification
// is systemd's problem to time out on, not a reason to stop serving mail.
func sdNotify(environ []string, state string) {
	var sock string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "NOTIFY_SOCKET="); ok {
			sock = v
		}
	}
	if sock == "" {
		return
	}
	if sock[0] == '@' { // abstract socket namespace
		sock = "\x00" + sock[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}
