package main

// Admin commands, in the spirit of doveadm:
//
//	letterbox mailbox list USER              mailboxes with counts and sizes
//	letterbox mailbox reindex USER [MAILBOX] rescan mailboxes from disk
//	letterbox who                            connections of the running server
//	letterbox kick USER                      disconnect a user's sessions
//
// mailbox works on the Maildir directly, with or without a server running;
// who and kick ask the running server through its control socket.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/control"
	"github.com/letterbox-mail/letterbox/store"
)

// exitUnavailable (EX_UNAVAILABLE): the server is not running or has no
// control socket.
const exitUnavailable = 69

const mailboxSynopsis = "list USER | reindex USER [MAILBOX]  [FLAGS]"

// mailbox shows or rescans a user's mailboxes. Like any reader (and like
// doveadm), it brings the index up to date on the way: messages that
// arrived in new/ get their UIDs and move to cur/, under the same lock a
// running server takes, so it is safe while the server runs. Existing UIDs
// and UIDVALIDITY are never changed.
func (c *cli) mailbox(ctx context.Context, args []string) int {
	fl := c.flags("mailbox", true)
	if code, ok := c.parse(fl, mailboxSynopsis, args); !ok {
		return code
	}
	sub, rest := fl.Arg(0), fl.Args()
	if len(rest) > 0 {
		rest = rest[1:]
	}
	switch {
	case sub == "list" && len(rest) == 1:
	case sub == "reindex" && (len(rest) == 1 || len(rest) == 2):
	case sub == "":
		return c.fail(fl, exitUsage, errors.New("missing subcommand: list or reindex"))
	case sub != "list" && sub != "reindex":
		return c.fail(fl, exitUsage, fmt.Errorf("unknown subcommand %q: want list or reindex", sub))
	default:
		return c.fail(fl, exitUsage, fmt.Errorf("usage: letterbox mailbox %s", mailboxSynopsis))
	}
	cfg, ok := c.loadConfig(fl)
	if !ok {
		return exitConfig
	}
	fl = c.flags("mailbox "+sub, false)
	name, err := findUser(cfg.Auth.UsersFile, rest[0])
	if err != nil {
		return c.failUser(fl, cfg, err)
	}
	st, err := openStore(cfg)
	if err != nil {
		return c.fail(fl, exitConfig, err)
	}
	defer st.Close()
	// A user without a Maildir has no mailboxes; do not create one here.
	root, err := st.UserRoot(name)
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	if _, err := os.Stat(filepath.Join(root, "cur")); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(c.stderr, "%s: %s has no Maildir yet (%s)\n", fl.Name(), name, root)
		return exitOK
	}
	u, err := st.User(name)
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	var only string
	if len(rest) == 2 {
		only = rest[1]
	}
	if sub == "list" {
		return c.mailboxList(ctx, fl, u)
	}
	return c.mailboxReindex(ctx, fl, u, only)
}

// mailboxes returns the names of u's selectable mailboxes, or just only
// if it exists.
func mailboxes(u *store.User, only string) ([]store.MailboxInfo, error) {
	all, err := u.List()
	if err != nil {
		return nil, err
	}
	var out []store.MailboxInfo
	for _, mb := range all {
		if mb.NoSelect {
			continue
		}
		if only == "" || store.CanonicalName(mb.Name) == store.CanonicalName(only) {
			out = append(out, mb)
		}
	}
	if only != "" && len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, only)
	}
	return out, nil
}

func (c *cli) mailboxList(ctx context.Context, fl *pflag.FlagSet, u *store.User) int {
	boxes, err := mailboxes(u, "")
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "MAILBOX\tMESSAGES\tUNSEEN\tSIZE\t")
	code := exitOK
	for _, mb := range boxes {
		s, err := status(ctx, u, mb.Name)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s: %s: %v\n", fl.Name(), mb.Name, err)
			code = exitFailure
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", mb.Name, s.Messages, s.Unseen, s.Size)
	}
	tw.Flush()
	return code
}

func (c *cli) mailboxReindex(ctx context.Context, fl *pflag.FlagSet, u *store.User, only string) int {
	boxes, err := mailboxes(u, only)
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	code := exitOK
	for _, mb := range boxes {
		s, err := rescan(ctx, u, mb.Name)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s: %s: %v\n", fl.Name(), mb.Name, err)
			code = exitFailure
			continue
		}
		fmt.Fprintf(c.stdout, "%s: %d messages, %d unseen, %d bytes, UIDVALIDITY %d, UIDNEXT %d, HIGHESTMODSEQ %d\n",
			mb.Name, s.Messages, s.Unseen, s.Size, s.UIDValidity, s.UIDNext, s.HighestModSeq)
	}
	return code
}

// rescan lists a mailbox's directories and logs what differs from its
// change log, which running servers then follow.
func rescan(ctx context.Context, u *store.User, name string) (store.Status, error) {
	mb, err := u.Open(ctx, name)
	if err != nil {
		return store.Status{}, err
	}
	defer mb.Close()
	if err := mb.Rescan(ctx); err != nil {
		return store.Status{}, err
	}
	return mb.Status(ctx)
}

// status opens a mailbox (from its change log) and sums it up.
func status(ctx context.Context, u *store.User, name string) (store.Status, error) {
	mb, err := u.Open(ctx, name)
	if err != nil {
		return store.Status{}, err
	}
	defer mb.Close()
	return mb.Status(ctx)
}

// who lists the running server's connections.
func (c *cli) who(_ context.Context, args []string) int {
	fl := c.flags("who", true)
	asJSON := fl.Bool("json", false, "print the server's answer as JSON")
	if code, ok := c.parse(fl, "[--json] [FLAGS]", args); !ok {
		return code
	}
	if fl.NArg() > 0 {
		return c.fail(fl, exitUsage, errors.New("usage: letterbox who [--json]"))
	}
	resp, code := c.control(fl, control.Request{Cmd: "who"})
	if resp == nil {
		return code
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(resp.Sessions)
		return exitOK
	}
	unreported := make(map[string]bool)
	for _, p := range resp.Unreported {
		unreported[p] = true
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPROTO\tUSER\tREMOTE\tLOCAL\tCONNECTED\tIN\tOUT")
	for _, s := range resp.Sessions {
		user := s.User
		switch {
		case user != "":
		case unreported[s.Proto]:
			user = "?"
		default:
			user = "-"
		}
		local := s.Local
		if s.ImplicitTLS {
			local += " (tls)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, s.Proto, user, s.Remote, local,
			s.Start.Local().Format(time.DateTime), s.BytesIn, s.BytesOut)
	}
	tw.Flush()
	if len(resp.Unreported) > 0 {
		fmt.Fprintf(c.stderr, "note: the %s server does not report logins yet, so USER shows \"?\"\n", strings.Join(resp.Unreported, " and "))
	}
	return exitOK
}

// kick disconnects every session of a user.
func (c *cli) kick(_ context.Context, args []string) int {
	fl := c.flags("kick", true)
	if code, ok := c.parse(fl, "USER [FLAGS]", args); !ok {
		return code
	}
	if fl.NArg() != 1 {
		return c.fail(fl, exitUsage, errors.New("usage: letterbox kick USER"))
	}
	user := fl.Arg(0)
	resp, code := c.control(fl, control.Request{Cmd: "kick", User: user})
	if resp == nil {
		return code
	}
	n := 0
	if resp.Kicked != nil {
		n = *resp.Kicked
	}
	fmt.Fprintf(c.stdout, "%s: %d session(s) disconnected\n", user, n)
	if len(resp.Unreported) > 0 {
		fmt.Fprintf(c.stderr, "note: sessions of the %s server cannot be kicked by user: it does not report logins yet\n", strings.Join(resp.Unreported, " and "))
	}
	return exitOK
}

// control loads the configuration and sends req to the control socket. A
// nil response means the command failed and should exit with the code.
func (c *cli) control(fl *pflag.FlagSet, req control.Request) (*control.Response, int) {
	cfg, ok := c.loadConfig(fl)
	if !ok {
		return nil, exitConfig
	}
	return c.controlAt(fl, cfg, req)
}

func (c *cli) controlAt(fl *pflag.FlagSet, cfg *config.Config, req control.Request) (*control.Response, int) {
	if cfg.Control.Socket == "" {
		return nil, c.fail(fl, exitConfig, errors.New("control.socket is off in the configuration"))
	}
	resp, err := control.Call(cfg.Control.Socket, req)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return nil, c.fail(fl, exitUnavailable, fmt.Errorf("letterbox is not running (nothing at %s; same --config as the server?)", cfg.Control.Socket))
	case errors.Is(err, fs.ErrPermission):
		return nil, c.fail(fl, exitUnavailable, fmt.Errorf("%s: permission denied; run as the server's user", cfg.Control.Socket))
	case err != nil:
		return nil, c.fail(fl, exitFailure, err)
	}
	return resp, exitOK
}
