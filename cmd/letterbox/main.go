// Command letterbox serves POP3 and IMAP from Maildir, and manages its users
// and deliveries.
//
//	letterbox serve                    run the servers
//	letterbox user add|passwd|del NAME edit the users file
//	letterbox user list
//	letterbox hash                     print a {BLF-CRYPT} password hash
//	letterbox deliver USER             MDA: store a message from stdin
//	letterbox config check             print the effective configuration
//	letterbox mailbox list|reindex USER  a user's mailboxes, counts and sizes
//	letterbox who                      connections of the running server
//	letterbox kick USER                disconnect a user's sessions
//
// Exit codes follow sysexits(3) so that Postfix and procmail know whether to
// retry a delivery: 64 usage, 65 bad input, 67 unknown user, 75 temporary
// failure, 78 configuration error; 1 for anything else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// Exit codes, from sysexits.h.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 64 // EX_USAGE
	exitDataErr  = 65 // EX_DATAERR
	exitNoUser   = 67 // EX_NOUSER
	exitTempFail = 75 // EX_TEMPFAIL
	exitConfig   = 78 // EX_CONFIG
)

// cli is everything a command may use of the process. Tests build their own
// and call run in-process.
type cli struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	environ []string // "KEY=value"
	workDir string   // "" means the process's working directory
	// name is how the user runs letterbox ("./letterbox", "go run
	// ./cmd/letterbox"), for commands printed back; "" means "letterbox".
	name string

	// protocols lists the servers serve runs; nil means the real ones.
	protocols func(*config.Config) []protocol
	// hashCost is the bcrypt cost of the demo user's password; 0 means
	// auth's default. Tests lower it: bcrypt under the race detector is
	// slow.
	hashCost int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		stopWithGoRun()
	}
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ(), name: invokedAs()}
	os.Exit(c.run(context.Background(), os.Args[1:]))
}

// command is one subcommand. Its run gets the arguments after its name.
type command struct {
	name  string
	args  string // argument synopsis for the usage text
	short string
	run   func(c *cli, ctx context.Context, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "", "run the POP3 and IMAP servers", (*cli).serve},
		{"user", "add|passwd|del NAME, list", "edit or list the users file", (*cli).user},
		{"hash", "", "print a {BLF-CRYPT} hash of a password, like doveadm pw", (*cli).hash},
		{"deliver", "USER [--mailbox NAME]", "deliver a message from stdin into USER's Maildir (MDA)", (*cli).deliver},
		{"config", "check", "validate and print the effective configuration", (*cli).configCmd},
		{"mailbox", "list|reindex USER [MAILBOX]", "show a user's mailboxes with counts and sizes, or rescan them", (*cli).mailbox},
		{"who", "[--json]", "list the running server's connections (control socket)", (*cli).who},
		{"kick", "USER", "disconnect a user's sessions (control socket)", (*cli).kick},
		{"version", "", "print the version", (*cli).version},
		{"help", "[COMMAND]", "show this help, or a command's flags", (*cli).help},
	}
}

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd.run(c, ctx, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "letterbox: unknown command %q\n\n", name)
	c.usage(c.stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "Letterbox serves POP3 and IMAP from Maildir.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: letterbox COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, cmd := range commands() {
		syn := strings.TrimSpace(cmd.name + " " + cmd.args)
		fmt.Fprintf(w, "  %-40s %s\n", syn, cmd.short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands other than hash, version and help read the configuration: built-in defaults,")
	fmt.Fprintln(w, "then --config FILE (or $LETTERBOX_CONFIG), then LETTERBOX_* variables, then")
	fmt.Fprintln(w, "one flag per key such as --imap.listen=127.0.0.1:1143. See: letterbox help serve")
}

func (c *cli) help(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.usage(c.stdout)
		return exitOK
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] && cmd.name != "help" {
			return cmd.run(c, ctx, []string{"--help"})
		}
	}
	fmt.Fprintf(c.stderr, "letterbox: unknown command %q\n", args[0])
	return exitUsage
}

// flags returns a flag set for a subcommand; withConfig adds --config and the
// per-key flags.
func (c *cli) flags(name string, withConfig bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("letterbox "+name, pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.SortFlags = false
	if withConfig {
		config.AddFlags(fs)
	}
	return fs
}

// parse parses args; when it returns ok false, the command returns code.
// --help prints the flags to stdout and succeeds.
func (c *cli) parse(fs *pflag.FlagSet, synopsis string, args []string) (code int, ok bool) {
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(c.stdout, "Usage: %s %s\n\nFlags:\n", fs.Name(), synopsis)
		fs.SetOutput(c.stdout)
		fs.PrintDefaults()
		return exitOK, false
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\nRun '%s --help' for usage.\n", fs.Name(), err, fs.Name())
		return exitUsage, false
	}
	return 0, true
}

// loadConfig loads the configuration for a parsed flag set. On failure it has
// printed why, and the command should exit with exitConfig.
func (c *cli) loadConfig(fs *pflag.FlagSet) (*config.Config, bool) {
	cfg, err := config.Load(config.Options{Flags: fs, Environ: c.environ, WorkDir: c.workDir})
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
		return nil, false
	}
	return cfg, true
}

// runName is how the user runs letterbox, for commands printed back.
func (c *cli) runName() string {
	if c.name == "" {
		return "letterbox"
	}
	return c.name
}

// fail prints a command's error and returns code.
func (c *cli) fail(fs *pflag.FlagSet, code int, err error) int {
	fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
	return code
}
