// Package flock takes exclusive advisory locks on files (flock(2)), for
// steps that two processes starting at once must not both take: making
// the self-signed certificate, creating the demo user. A lock dies with
// its process, so a crash never leaves one behind.
package flock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Lock waits for an exclusive lock on path, creating the file (mode 0600)
// if needed, and returns its release. The file is never removed: removing
// it while another process waits on it would let a third one lock a new
// file at the same time.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil // closing releases the lock
}
