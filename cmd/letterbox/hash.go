package main

import (
	"context"
	"errors"
	"fmt"
)

// hash prints a users-file password field for a password, as
// `doveadm pw -s BLF-CRYPT` does, for admins who edit the file by hand or
// keep it in configuration management.
func (c *cli) hash(_ context.Context, args []string) int {
	fl := c.flags("hash", false)
	pw := passwordFlags(fl)
	if code, ok := c.parse(fl, "[--password-stdin] [--cost N]", args); !ok {
		return code
	}
	if fl.NArg() > 0 {
		return c.fail(fl, exitUsage, errors.New("takes no arguments; the password is prompted for or read with --password-stdin"))
	}
	h, err := c.readHash(pw())
	if err != nil {
		return c.fail(fl, exitDataErr, err)
	}
	fmt.Fprintln(c.stdout, h)
	return exitOK
}
