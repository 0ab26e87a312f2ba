package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// startedByGoRun reports whether the parent process is "go run".
func startedByGoRun() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/cmdline")
	return err == nil && isGoRun(string(b))
}

// stopWithGoRun makes a server started by "go run" stop when go run does.
// go run starts the binary it built as a child, and on SIGTERM exits
// without passing the signal on (it ignores only what a terminal sends the
// whole process group, SIGINT and SIGQUIT), which would leave the server
// running, orphaned, holding its ports. Such a process asks the kernel
// for a SIGTERM when its parent dies, and stops as on any SIGTERM. A
// binary run any other way is left alone: it may well outlive the shell
// that started it.
func stopWithGoRun() {
	if !startedByGoRun() {
		return
	}
	parent := os.Getppid()
	if unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0) != nil {
		return
	}
	if os.Getppid() != parent { // go run died before the prctl
		unix.Kill(os.Getpid(), unix.SIGTERM)
	}
}
