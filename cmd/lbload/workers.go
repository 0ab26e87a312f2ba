package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

var tlsConfig = &tls.Config{InsecureSkipVerify: true} // load tests run against self-signed certificates

func dial(c loadConfig) (net.Conn, error) {
	// Generous: a server handshaking 50 new connections while it checks
	// their bcrypt passwords on a busy two-core machine takes over 10s.
	d := net.Dialer{Timeout: 30 * time.Second}
	if c.tls {
		return tls.DialWithDialer(&d, "tcp", c.addr, tlsConfig)
	}
	return d.Dial("tcp", c.addr)
}

// imapWorker is one mail client: log in, select INBOX, wait for the start
// (begin), then loop until the run's end.
func imapWorker(begin func() context.Context, c loadConfig, user string, rng *rand.Rand, rec *recorder) error {
	var cl *imapclient.Client
	err := rec.time("connect+login", func() error {
		conn, err := dial(c)
		if err != nil {
			return err
		}
		cl = imapclient.New(conn, nil)
		return cl.Login(user, c.password).Wait()
	})
	if err != nil {
		return err
	}
	defer cl.Close()
	var n uint32
	if err := rec.time("select", func() error {
		data, err := cl.Select("INBOX", nil).Wait()
		if err == nil {
			n = data.NumMessages
		}
		return err
	}); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: INBOX is empty", user)
	}
	ctx := begin()
	for ctx.Err() == nil {
		var err error
		switch k := rng.IntN(10); {
		case k < 2:
			err = rec.time("fetch 1:* flags", func() error {
				var all imap.SeqSet
				all.AddRange(1, 0) // 1:*
				_, err := cl.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
				return err
			})
		case k < 5:
			from := uint32(rng.IntN(int(n))) + 1
			to := min(from+uint32(c.fetchSize)-1, n)
			err = rec.time("fetch headers", func() error {
				var set imap.SeqSet
				set.AddRange(from, to)
				_, err := cl.Fetch(set, &imap.FetchOptions{
					UID: true, Flags: true, RFC822Size: true, Envelope: true,
					BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}},
				}).Collect()
				return err
			})
		case k < 8:
			seq := uint32(rng.IntN(int(n))) + 1
			err = rec.time("fetch body", func() error {
				_, err := cl.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{
					UID:         true,
					BodySection: []*imap.FetchItemBodySection{{Peek: true}},
				}).Collect()
				return err
			})
		case k < 9:
			seq := uint32(rng.IntN(int(n))) + 1
			op := imap.StoreFlagsAdd
			if rng.IntN(2) == 0 {
				op = imap.StoreFlagsDel
			}
			err = rec.time("store flags", func() error {
				return cl.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
			})
		default:
			err = rec.time("noop", func() error { return cl.Noop().Wait() })
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	rec.time("logout", func() error { return cl.Logout().Wait() })
	return nil
}

// imapSessionWorker logs in for every mail check, as phones and
// cron-driven fetchers do: -mode session opens INBOX and reads the newest
// window's flags and headers, -mode login only logs in and out.
func imapSessionWorker(ctx context.Context, c loadConfig, user string, rec *recorder) error {
	for ctx.Err() == nil {
		err := rec.time("session", func() error { return imapSession(c, user, rec) })
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

func imapSession(c loadConfig, user string, rec *recorder) error {
	var cl *imapclient.Client
	if err := rec.time("connect+login", func() error {
		conn, err := dial(c)
		if err != nil {
			return err
		}
		cl = imapclient.New(conn, nil)
		return cl.Login(user, c.password).Wait()
	}); err != nil {
		if cl != nil {
			cl.Close()
		}
		return err
	}
	defer cl.Close()
	if c.mode == "session" {
		data, err := cl.Select("INBOX", nil).Wait()
		if err != nil {
			return err
		}
		if data.NumMessages > 0 {
			from := uint32(1)
			if n := data.NumMessages; n > uint32(c.fetchSize) {
				from = n - uint32(c.fetchSize) + 1
			}
			var set imap.SeqSet
			set.AddRange(from, data.NumMessages)
			if err := rec.time("fetch headers", func() error {
				_, err := cl.Fetch(set, &imap.FetchOptions{
					UID: true, Flags: true, RFC822Size: true, Envelope: true,
					BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}},
				}).Collect()
				return err
			}); err != nil {
				return err
			}
		}
	}
	return cl.Logout().Wait()
}

// pop3Worker runs whole POP3 sessions, as fetchmail does on a timer.
func pop3Worker(ctx context.Context, c loadConfig, user string, rng *rand.Rand, rec *recorder) error {
	for ctx.Err() == nil {
		err := rec.time("session", func() error { return pop3Session(c, user, rng, rec) })
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

func pop3Session(c loadConfig, user string, rng *rand.Rand, rec *recorder) error {
	conn, err := dial(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	tp := textproto.NewConn(conn)
	cmd := func(format string, args ...any) (string, error) {
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				return "", err
			}
		}
		line, err := tp.ReadLine()
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(line, "+OK") {
			return "", fmt.Errorf("%q: %s", strings.SplitN(format, " ", 2)[0], line)
		}
		return line, nil
	}
	if _, err := cmd(""); err != nil {
		return err
	}
	if err := rec.time("pop3 login", func() error {
		if _, err := cmd("USER %s", user); err != nil {
			return err
		}
		_, err := cmd("PASS %s", c.password)
		return err
	}); err != nil {
		return err
	}
	stat, err := cmd("STAT")
	if err != nil {
		return err
	}
	f := strings.Fields(stat)
	if len(f) < 2 {
		return fmt.Errorf("bad STAT answer %q", stat)
	}
	n, _ := strconv.Atoi(f[1])
	if err := rec.time("uidl", func() error {
		if _, err := cmd("UIDL"); err != nil {
			return err
		}
		_, err := io.Copy(io.Discard, tp.DotReader())
		return err
	}); err != nil {
		return err
	}
	for i := 0; i < 3 && n > 0; i++ {
		msg := rng.IntN(n) + 1
		if err := rec.time("retr", func() error {
			if _, err := cmd("RETR %d", msg); err != nil {
				return err
			}
			_, err := io.Copy(io.Discard, bufio.NewReader(tp.DotReader()))
			return err
		}); err != nil {
			return err
		}
	}
	_, err = cmd("QUIT")
	return err
}
