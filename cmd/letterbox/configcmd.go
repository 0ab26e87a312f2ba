package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// configCmd implements "config check": load and validate the configuration,
// print it as TOML with where each value came from, and check the files a
// start would need. It prints paths, never file contents, so the output is
// safe to paste into a bug report.
func (c *cli) configCmd(_ context.Context, args []string) int {
	fl := c.flags("config", true)
	if code, ok := c.parse(fl, "check [FLAGS]", args); !ok {
		return code
	}
	if fl.NArg() != 1 || fl.Arg(0) != "check" {
		return c.fail(fl, exitUsage, errors.New("usage: letterbox config check [FLAGS]"))
	}
	cfg, ok := c.loadConfig(fl)
	if !ok {
		return exitConfig
	}
	out, err := cfg.TOML()
	if err != nil {
		return c.fail(fl, exitFailure, err)
	}
	c.stdout.Write(out)

	var problems []error
	if !cfg.TLS.SelfSigned() {
		if _, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			problems = append(problems, fmt.Errorf("tls.cert_file %s / tls.key_file %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err))
		}
	}
	if _, err := os.Stat(cfg.Auth.UsersFile); err != nil {
		// On the embedded defaults serve creates it, with a demo user.
		if cfg.File != "" || !errors.Is(err, fs.ErrNotExist) {
			problems = append(problems, fmt.Errorf("auth.users_file: %w", err))
		}
	}
	for _, p := range problems {
		fmt.Fprintf(c.stderr, "letterbox config: %v\n", p)
	}
	if len(problems) > 0 {
		return exitConfig
	}
	return exitOK
}
