package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/term"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/store"
)

// deliver is a mail delivery agent for Postfix (mailbox_command), procmail
// or a pipe transport: it writes the message on stdin into the user's
// Maildir, tmp/ then new/, and a running server picks it up. The exit code
// tells the MTA what to do: 67 bounces (no such user), 75 retries later
// (any store or I/O failure: the disk may be full, the store locked), 78 is
// a configuration error (the MTA retries; the admin must look).
func (c *cli) deliver(ctx context.Context, args []string) int {
	fl := c.flags("deliver", false)
	mailbox := fl.String("mailbox", "", "deliver into this folder (\"Lists/Go\"); a missing folder means INBOX")
	config.AddFlags(fl)
	if code, ok := c.parse(fl, "USER [--mailbox NAME] < message", args); !ok {
		return code
	}
	if fl.NArg() != 1 {
		return c.fail(fl, exitUsage, errors.New("usage: letterbox deliver USER [--mailbox NAME] < message"))
	}
	cfg, ok := c.loadConfig(fl)
	if !ok {
		return exitConfig
	}
	name, err := findUser(cfg.Auth.UsersFile, fl.Arg(0))
	if err != nil {
		code := exitNoUser
		if !errors.Is(err, auth.ErrUnknownUser) {
			// An unreadable (or missing) users file is the admin's to
			// fix; the mail stays queued meanwhile.
			code = exitTempFail
		}
		c.fail(fl, code, err)
		// Where it looked, for a person at a terminal or trying the
		// built-in defaults; not for an MTA, which would put the paths
		// in a bounce to the sender.
		if cfg.File == "" || c.interactive() {
			io.WriteString(c.stderr, lookedIn(cfg))
		}
		return code
	}
	st, err := openStore(cfg)
	if err != nil {
		return c.fail(fl, exitConfig, err)
	}
	defer st.Close()
	u, err := st.User(name)
	if err != nil {
		return c.fail(fl, exitTempFail, err)
	}
	msg := &countingReader{r: skipFromLine(c.stdin)}
	err = u.Deliver(ctx, *mailbox, msg)
	if *mailbox != "" && msg.n == 0 && (errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName)) {
		// Losing or bouncing mail over a folder name (a filter written
		// before the folder was made) is worse than filing it in INBOX.
		fmt.Fprintf(c.stderr, "letterbox deliver: warning: folder %q of %s: %v; delivering to INBOX\n", *mailbox, name, err)
		err = u.Deliver(ctx, "", msg)
	}
	if err != nil {
		if noSpace(err) {
			err = fmt.Errorf("no space left for mail (disk full or quota): %w", err)
		}
		// Any store failure is temporary to the MTA: it keeps the
		// message and retries (EX_TEMPFAIL).
		return c.fail(fl, exitTempFail, err)
	}
	return exitOK
}

// noSpace reports a write that failed for want of disk space or quota.
// store.ErrNoSpace says so; the errno is checked too for store errors that
// do not carry it yet.
func noSpace(err error) bool {
	return errors.Is(err, store.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// interactive reports whether a person is likely at the other end:
// stderr is a terminal.
func (c *cli) interactive() bool {
	f, ok := c.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// skipFromLine drops an mbox "From " envelope line, which some MTAs put
// before the message when piping it (dovecot-lda drops it too).
func skipFromLine(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(5); err == nil && string(b) == "From " {
		br.ReadString('\n')
	}
	return br
}

// countingReader tells whether a failed delivery consumed any of the
// message, which decides whether it can be retried into INBOX.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
