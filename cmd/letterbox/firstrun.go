package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/store"
)

const demoUser = "demo"

// demoAccount is the user a first run created, to be announced once.
type demoAccount struct {
	name, password, maildir string
	shown                   bool
}

// firstRun gives a fresh install something to log in with: when serve runs
// on the embedded defaults (no config file) and the users file does not
// exist, it creates the user "demo" with a random password, and its Maildir.
// It returns nil when there was nothing to do.
func firstRun(cfg *config.Config, st *store.Store) (*demoAccount, error) {
	if cfg.File != "" {
		return nil, nil
	}
	if _, err := os.Stat(cfg.Auth.UsersFile); !errors.Is(err, fs.ErrNotExist) {
		return nil, err // nil when it exists
	}
	pw, err := randomPassword()
	if err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(pw, 0)
	if err != nil {
		return nil, err
	}
	maildir, err := createUser(st, cfg.Auth.UsersFile, demoUser, hash)
	if err != nil {
		return nil, err
	}
	return &demoAccount{name: demoUser, password: pw, maildir: maildir}, nil
}

// randomPassword returns 24 URL-safe characters (144 bits).
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// announce prints the demo credentials and how to connect, once. The
// addresses are those actually bound when known (a port 0 in the config
// becomes a real port), else the configured ones. serving says whether
// any protocol server runs at all.
func (d *demoAccount) announce(w io.Writer, cfg *config.Config, bound []boundListener, serving bool) {
	if d.shown {
		return
	}
	d.shown = true
	imaps := tlsAddr("imap", cfg.IMAP.ListenTLS, bound, serving)
	pop3s := tlsAddr("pop3", cfg.POP3.ListenTLS, bound, serving)
	cred := d.name + ":" + d.password

	var b strings.Builder
	fmt.Fprintf(&b, "\nFirst run: created the user %q to try Letterbox with.\n\n", d.name)
	fmt.Fprintf(&b, "    user:     %s\n    password: %s\n\n", d.name, d.password)
	fmt.Fprintf(&b, "Its mail is in %s.\n", d.maildir)
	fmt.Fprintf(&b, "Passwords are refused on ports without TLS, so connect to the TLS ports")
	if cfg.TLS.SelfSigned() {
		fmt.Fprintf(&b, "\n(the certificate is self-signed, hence -k)")
	}
	fmt.Fprintf(&b, ":\n\n")
	if imaps != "" {
		fmt.Fprintf(&b, "    curl -k imaps://%s/INBOX --user %s\n", imaps, cred)
	}
	if pop3s != "" {
		fmt.Fprintf(&b, "    curl -k pop3s://%s --user %s\n", pop3s, cred)
	}
	if imaps != "" {
		fmt.Fprintf(&b, "    openssl s_client -connect %s -quiet     then type: a LOGIN %s %s\n", imaps, d.name, d.password)
	} else if pop3s != "" {
		fmt.Fprintf(&b, "    openssl s_client -connect %s -quiet     then type: USER %s, then PASS %s\n", pop3s, d.name, d.password)
	}
	if !serving {
		fmt.Fprintf(&b, "\n(No protocol server is running yet, so nothing listens on these ports.)\n")
	}
	fmt.Fprintf(&b, "\nThis password is shown only once. Change it with: letterbox user passwd %s\n\n", d.name)
	io.WriteString(w, b.String())
}

// tlsAddr returns a host:port a local client can connect to for proto's
// implicit TLS, or "" if it has none. While serving, only what is really
// listening counts.
func tlsAddr(proto string, configured []string, bound []boundListener, serving bool) string {
	addr := ""
	for _, b := range bound {
		if b.proto == proto && b.secure {
			addr = b.addr
			break
		}
	}
	if addr == "" && !serving && len(configured) > 0 {
		addr = configured[0]
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	// A wildcard address is reached on loopback.
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
