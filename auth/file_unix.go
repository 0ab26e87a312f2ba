//go:build unix

package auth

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path, creating it if needed, and
// returns the function that releases it. The lock file is never removed:
// deleting it while another editor waits on it would let a third one lock a
// fresh file and run at the same time.
func lockFile(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	// Closing the descriptor releases the flock.
	return f.Close, nil
}

// chownLike gives f the owner and group of old when the process may do so
// (as root), so that `letterbox user add` run as root does not leave the
// server, running as its own user, unable to read the file. Lacking the
// permission is not an error: then the file was ours to begin with.
func chownLike(f *os.File, old os.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	err := f.Chown(int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EPERM) {
		return nil
	}
	return err
}
