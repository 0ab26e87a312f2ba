package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/flock"
	"github.com/letterbox-mail/letterbox/store"
)

const demoUser = "demo"

// demoAccount is the user a first run created, to be announced once.
type demoAccount struct {
	name, password, maildir string
	shown                   bool
}

// firstRun gives a fresh install something to log in with and to read:
// when serve runs on the embedded defaults (no config file) and the users
// file does not exist, it creates the user "demo" with a random password,
// its Maildir, and a welcome message in its INBOX. It returns nil when
// there was nothing to do. Servers started at once on a new data
// directory take turns (a lock file in it): one creates the user, the
// others find it.
func firstRun(ctx context.Context, cfg *config.Config, st *store.Store, cost int) (*demoAccount, error) {
	if cfg.File != "" {
		return nil, nil
	}
	if _, err := os.Stat(cfg.Auth.UsersFile); !errors.Is(err, fs.ErrNotExist) {
		return nil, err // nil when it exists
	}
	unlock, err := flock.Lock(filepath.Join(cfg.DataDir, ".first-run.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(cfg.Auth.UsersFile); !errors.Is(err, fs.ErrNotExist) {
		return nil, err // another server made it meanwhile
	}
	pw, err := randomPassword()
	if err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(pw, cost)
	if err != nil {
		return nil, err
	}
	// Maildir, then the welcome, then the users file, whose existence
	// ends the first run: a failure before it is retried at the next
	// start, and the welcome is not delivered twice.
	u, err := st.User(demoUser)
	if err != nil {
		return nil, err
	}
	if empty, err := inboxEmpty(u.Root()); err != nil {
		return nil, err
	} else if empty {
		if err := u.Deliver(ctx, "", strings.NewReader(welcome(cfg, time.Now()))); err != nil {
			return nil, fmt.Errorf("welcome message: %w", err)
		}
	}
	maildir, err := createUser(st, cfg.Auth.UsersFile, demoUser, hash)
	if err != nil {
		return nil, err
	}
	return &demoAccount{name: demoUser, password: pw, maildir: maildir}, nil
}

// inboxEmpty reports whether a Maildir's INBOX holds no message.
func inboxEmpty(root string) (bool, error) {
	for _, dir := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		if len(ents) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// welcome is the demo user's first message: proof that reading mail
// works, and the next steps.
func welcome(cfg *config.Config, now time.Time) string {
	imaps, pop3s := "(off)", "(off)"
	if len(cfg.IMAP.ListenTLS) > 0 {
		imaps = cfg.IMAP.ListenTLS[0]
	}
	if len(cfg.POP3.ListenTLS) > 0 {
		pop3s = cfg.POP3.ListenTLS[0]
	}
	host := cfg.Hostname
	return "From: Letterbox <letterbox@" + host + ">\n" +
		"To: demo@" + host + "\n" +
		"Subject: Welcome to Letterbox\n" +
		"Date: " + now.Format(time.RFC1123Z) + "\n" +
		"Message-ID: <welcome." + strconv.FormatInt(now.UnixNano(), 36) + "@" + host + ">\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=us-ascii\n" +
		"\n" +
		"Hello,\n" +
		"\n" +
		"this message was put in the INBOX of \"demo\" by the first start of\n" +
		"Letterbox. If you can read it, logging in and fetching mail work.\n" +
		"\n" +
		"Next steps:\n" +
		"\n" +
		"- Deliver a message of your own, from the directory the server runs in:\n" +
		"    printf 'Subject: hello\\n\\nIt works.\\n' | letterbox deliver demo\n" +
		"- Point a mail client at IMAP " + imaps + " or POP3 " + pop3s + ",\n" +
		"  both TLS from the first byte (the certificate is self-signed).\n" +
		"- Add a real user: letterbox user add alice\n" +
		"- Run it for real: README.md, \"Deploying with systemd and Postfix\".\n" +
		"\n" +
		"-- \n" +
		"Letterbox\n"
}

// randomPassword returns 24 URL-safe characters (144 bits).
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// announce prints the demo credentials, how to read the welcome message
// and how to deliver another, once. run is how the user runs letterbox
// ("letterbox", "go run ./cmd/letterbox"). The addresses are those
// actually bound when known (a port 0 in the config becomes a real port),
// else the configured ones. serving says whether any protocol server runs
// at all.
func (d *demoAccount) announce(w io.Writer, cfg *config.Config, bound []boundListener, serving bool, run string) {
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
	fmt.Fprintf(&b, "Its mail is in %s; a welcome message is waiting.\n", d.maildir)
	fmt.Fprintf(&b, "Passwords are refused on ports without TLS, so read it on the TLS ports")
	if cfg.TLS.SelfSigned() {
		fmt.Fprintf(&b, "\n(the certificate is self-signed, hence -k)")
	}
	fmt.Fprintf(&b, ":\n\n")
	if imaps != "" {
		fmt.Fprintf(&b, "    curl -k 'imaps://%s/INBOX;UID=1' --user %s\n", imaps, cred)
	}
	if pop3s != "" {
		fmt.Fprintf(&b, "    curl -k pop3s://%s/1 --user %s\n", pop3s, cred)
	}
	if imaps != "" {
		fmt.Fprintf(&b, "    openssl s_client -connect %s -quiet     then type: a LOGIN %s %s\n", imaps, d.name, d.password)
	} else if pop3s != "" {
		fmt.Fprintf(&b, "    openssl s_client -connect %s -quiet     then type: USER %s, then PASS %s\n", pop3s, d.name, d.password)
	}
	fmt.Fprintf(&b, "\nDeliver a message of your own (from this directory), then read it as UID=2 or /2:\n\n")
	fmt.Fprintf(&b, "    printf 'Subject: hello\\n\\nIt works.\\n' | %s deliver %s\n", run, d.name)
	if !serving {
		fmt.Fprintf(&b, "\n(No protocol server is running yet, so nothing listens on these ports.)\n")
	}
	fmt.Fprintf(&b, "\nThis password is shown only once. Change it with: %s user passwd %s\n\n", run, d.name)
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
