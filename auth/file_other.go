//go:build !unix

package auth

import (
	"errors"
	"os"
)

// Editing the users file needs flock, which only unix systems provide.
// Letterbox's servers run on unix; the stub keeps the package building
// elsewhere.
func lockFile(path string) (func() error, error) {
	return nil, errors.ErrUnsupported
}

func chownLike(f *os.File, old os.FileInfo) error { return nil }
