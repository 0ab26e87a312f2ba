package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

func (c *cli) version(_ context.Context, args []string) int {
	fs := c.flags("version", false)
	if code, ok := c.parse(fs, "", args); !ok {
		return code
	}
	fmt.Fprintf(c.stdout, "letterbox %s (%s)\n", versionString(), runtime.Version())
	return exitOK
}

// versionString is the module version of a released build, or the VCS
// revision of a build from a checkout.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + dirty
	}
	if v == "" {
		return "(devel)"
	}
	return v
}
