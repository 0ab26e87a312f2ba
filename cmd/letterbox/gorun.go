package main

import (
	"os"
	"path/filepath"
	"strings"
)

// isGoRun reports whether a command line (NUL-separated, as in
// /proc/PID/cmdline) is "go run ...".
func isGoRun(cmdline string) bool {
	args := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
	return len(args) >= 2 && filepath.Base(args[0]) == "go" && args[1] == "run"
}

// invokedAs is how the user ran this binary, for the commands printed
// back to them: "go run ./cmd/letterbox" under go run, the path typed
// ("./letterbox") or "letterbox".
func invokedAs() string {
	if startedByGoRun() {
		return "go run ./cmd/letterbox"
	}
	if len(os.Args) > 0 && strings.ContainsRune(os.Args[0], filepath.Separator) {
		return os.Args[0]
	}
	return "letterbox"
}
