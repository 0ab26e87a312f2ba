package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
	"github.com/letterbox-mail/letterbox/store"
)

const userSynopsis = "add|passwd|del NAME, or list  [FLAGS]"

// user edits the users file through auth's editing functions, which replace
// the file atomically (mode 0600 for a new file) under a lock, so a running
// server picks the change up and never sees half a file.
func (c *cli) user(ctx context.Context, args []string) int {
	fl := c.flags("user", false)
	pwStdin := passwordFlags(fl)
	config.AddFlags(fl)
	if code, ok := c.parse(fl, userSynopsis, args); !ok {
		return code
	}
	sub, rest := fl.Arg(0), fl.Args()
	if len(rest) > 0 {
		rest = rest[1:]
	}
	want := 1
	switch sub {
	case "add", "passwd", "del":
	case "list":
		want = 0
	default:
		if sub == "" {
			return c.fail(fl, exitUsage, errors.New("missing subcommand: add, passwd, del or list"))
		}
		return c.fail(fl, exitUsage, fmt.Errorf("unknown subcommand %q: want add, passwd, del or list", sub))
	}
	if len(rest) != want {
		return c.fail(fl, exitUsage, fmt.Errorf("usage: letterbox user %s", userSynopsis))
	}
	cfg, ok := c.loadConfig(fl)
	if !ok {
		return exitConfig
	}
	fl = c.flags("user "+sub, false) // for messages: "letterbox user add: ..."
	switch sub {
	case "add":
		return c.userAdd(fl, cfg, rest[0], pwStdin())
	case "passwd":
		return c.userPasswd(fl, cfg, rest[0], pwStdin())
	case "del":
		return c.userDel(fl, cfg, rest[0])
	default:
		return c.userList(fl, cfg)
	}
}

// passwordFlags adds --password-stdin and --cost to fl and returns a reader
// of their values for after parsing.
func passwordFlags(fl *pflag.FlagSet) func() passwordSource {
	stdin := fl.Bool("password-stdin", false, "read the password from the first line of stdin instead of prompting")
	cost := fl.Int("cost", auth.DefaultCost, "bcrypt cost (4-31)")
	return func() passwordSource { return passwordSource{stdin: *stdin, cost: *cost} }
}

type passwordSource struct {
	stdin bool
	cost  int
}

func (c *cli) userAdd(fl *pflag.FlagSet, cfg *config.Config, name string, pw passwordSource) int {
	if err := auth.ValidUsername(name); err != nil {
		return c.fail(fl, exitDataErr, err)
	}
	if _, err := findUser(cfg.Auth.UsersFile, name); err == nil {
		return c.fail(fl, exitFailure, fmt.Errorf("%w: %s", auth.ErrUserExists, name))
	} else if !errors.Is(err, auth.ErrUnknownUser) && !errors.Is(err, fs.ErrNotExist) {
		return c.fail(fl, exitFailure, err)
	}
	hash, err := c.readHash(pw)
	if err != nil {
		return c.fail(fl, exitDataErr, err)
	}
	st, err := openStore(cfg)
	if err != nil {
		return c.fail(fl, exitConfig, err)
	}
	defer st.Close()
	maildir, err := createUser(st, cfg.Auth.UsersFile, name, hash)
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	fmt.Fprintf(c.stdout, "added user %s (mail in %s)\n", name, maildir)
	return exitOK
}

// createUser makes name's Maildir, then its users-file entry, and returns
// the Maildir's root. In that order a user who can log in always has
// somewhere for mail to go, and first run (firstrun.go), which stops
// running once the users file exists, can be retried after a failure.
func createUser(st *store.Store, usersFile, name, hash string) (string, error) {
	u, err := st.User(name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(usersFile), 0o700); err != nil {
		return "", err
	}
	if err := auth.AddUser(usersFile, name, hash); err != nil {
		return "", err
	}
	return u.Root(), nil
}

func (c *cli) userPasswd(fl *pflag.FlagSet, cfg *config.Config, name string, pw passwordSource) int {
	if _, err := findUser(cfg.Auth.UsersFile, name); err != nil {
		return c.failUser(fl, cfg, err)
	}
	hash, err := c.readHash(pw)
	if err != nil {
		return c.fail(fl, exitDataErr, err)
	}
	if err := auth.SetPassword(cfg.Auth.UsersFile, name, hash); err != nil {
		return c.failUser(fl, cfg, err)
	}
	fmt.Fprintf(c.stdout, "changed the password of %s\n", name)
	return exitOK
}

func (c *cli) userDel(fl *pflag.FlagSet, cfg *config.Config, name string) int {
	canonical, err := findUser(cfg.Auth.UsersFile, name)
	if err != nil {
		return c.failUser(fl, cfg, err)
	}
	if err := auth.DeleteUser(cfg.Auth.UsersFile, name); err != nil {
		return c.failUser(fl, cfg, err)
	}
	fmt.Fprintf(c.stdout, "deleted user %s\n", canonical)
	// Mail is never deleted by a typo in a command: say where it is.
	if st, err := openStore(cfg); err == nil {
		if root, err := st.UserRoot(canonical); err == nil {
			if _, err := os.Stat(root); err == nil {
				fmt.Fprintf(c.stdout, "their mail is still in %s\n", root)
			}
		}
		st.Close()
	}
	return exitOK
}

func (c *cli) userList(fl *pflag.FlagSet, cfg *config.Config) int {
	names, err := auth.ListUsers(cfg.Auth.UsersFile)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(c.stderr, "%s: no users file yet\n%s", fl.Name(), lookedIn(cfg))
		return exitOK
	}
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	for _, n := range names {
		fmt.Fprintln(c.stdout, n)
	}
	return exitOK
}

// findUser returns the name as written in the users file, matching case
// insensitively as logins do, or an error matching auth.ErrUnknownUser or
// fs.ErrNotExist.
func findUser(usersFile, name string) (string, error) {
	names, err := auth.ListUsers(usersFile)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return n, nil
		}
	}
	return "", fmt.Errorf("%w: %s", auth.ErrUnknownUser, name)
}

// failUser prints a command's error about a user. When the user or the
// users file is not there, it says where it looked: the usual cause is a
// different configuration, or on the built-in defaults a different
// working directory, than the server's.
func (c *cli) failUser(fl *pflag.FlagSet, cfg *config.Config, err error) int {
	code := userErrCode(err)
	c.fail(fl, code, err)
	if code == exitNoUser {
		io.WriteString(c.stderr, lookedIn(cfg))
	}
	return code
}

// lookedIn names the configuration, data directory and users file a
// command used, one per line.
func lookedIn(cfg *config.Config) string {
	users := cfg.Auth.UsersFile
	if _, err := os.Stat(users); errors.Is(err, fs.ErrNotExist) {
		users += " (does not exist)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  users file: %s\n  data_dir:   %s\n  config:     %s\n", users, cfg.DataDir, configName(cfg))
	if cfg.File == "" {
		b.WriteString("  Without --config, data_dir is relative to the working directory: run this\n" +
			"  where \"letterbox serve\" runs, or give both the same --config.\n")
	}
	return b.String()
}

func userErrCode(err error) int {
	switch {
	case errors.Is(err, auth.ErrUnknownUser), errors.Is(err, fs.ErrNotExist):
		return exitNoUser
	case errors.Is(err, auth.ErrInvalidUsername):
		return exitDataErr
	default:
		return exitFailure
	}
}

func openStore(cfg *config.Config) (*store.Store, error) {
	// A short-lived command has no use for inotify.
	return store.Open(store.Options{PathTemplate: cfg.Mail.Path, Hostname: cfg.Hostname, NoWatch: true})
}

// readHash reads a password as pw says and hashes it.
func (c *cli) readHash(pw passwordSource) (string, error) {
	p, err := c.readPassword(pw.stdin)
	if err != nil {
		return "", err
	}
	return auth.HashPassword(p, pw.cost)
}

// readPassword reads the first line of stdin, or prompts twice on the
// terminal without echo. Prompts go to stderr so stdout stays clean.
func (c *cli) readPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", auth.ErrEmptyPassword
		}
		return line, nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("stdin is not a terminal to ask for the password on; use --password-stdin")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(b), err
	}
	p1, err := ask("New password: ")
	if err != nil {
		return "", err
	}
	if p1 == "" {
		return "", auth.ErrEmptyPassword
	}
	p2, err := ask("Retype new password: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errors.New("passwords do not match")
	}
	return p1, nil
}
