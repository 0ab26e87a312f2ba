package auth

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"
)

// Errors returned by the users-file editing functions.
var (
	ErrUserExists  = errors.New("auth: user already exists")
	ErrUnknownUser = errors.New("auth: no such user")
)

// The functions below edit a users file for the `letterbox user` commands
// while a server may be reading it. Every edit
//   - holds an exclusive flock on path+".lock" (never on the file itself,
//     which is replaced), so concurrent editors do not lose each other's
//     changes;
//   - keeps every line it does not have to touch byte for byte: comments,
//     blank lines, extra fields, CRLF endings, entries it cannot parse;
//   - writes a temporary file in the same directory, fsyncs it, renames it
//     over the old one and fsyncs the directory, so a reader (or a crash)
//     sees the old file or the new one, never a mix.
// A new file gets mode 0600. A replaced file keeps its owner (when we may set
// it, i.e. as root) and its permission bits minus any access for others:
// a server reading the file through its group keeps working after root edits
// it, and password hashes are never world-readable.

// AddUser appends "name:hash" to the users file, creating the file if it does
// not exist. It fails with ErrUserExists if the name is already there in any
// letter case. hash must be a form Authenticate accepts, such as the result
// of HashPassword.
func AddUser(path, name, hash string) error {
	if err := ValidUsername(name); err != nil {
		return err
	}
	if _, err := parseStoredPassword(hash); err != nil {
		return err
	}
	return editUsers(path, true, func(lines []string) ([]string, error) {
		if slices.ContainsFunc(lines, isUserLine(name)) {
			return nil, fmt.Errorf("%w: %s", ErrUserExists, name)
		}
		return append(lines, name+":"+hash+lineEnding(lines)), nil
	})
}

// SetPassword replaces the password field of name's entry (the first one, the
// one in force), keeping the name as written and any fields after the
// password.
func SetPassword(path, name, hash string) error {
	if err := ValidUsername(name); err != nil {
		return err
	}
	if _, err := parseStoredPassword(hash); err != nil {
		return err
	}
	return editUsers(path, false, func(lines []string) ([]string, error) {
		i := slices.IndexFunc(lines, isUserLine(name))
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrUnknownUser, name)
		}
		body, cr := strings.CutSuffix(lines[i], "\r")
		written, rest, _ := strings.Cut(body, ":")
		repl := written + ":" + hash
		if _, extra, ok := strings.Cut(rest, ":"); ok {
			repl += ":" + extra
		}
		if cr {
			repl += "\r"
		}
		lines[i] = repl
		return lines, nil
	})
}

// DeleteUser removes name's entries from the users file. All of them go, not
// just the first: otherwise a forgotten duplicate further down would silently
// become the user's entry.
func DeleteUser(path, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidUsername)
	}
	return editUsers(path, false, func(lines []string) ([]string, error) {
		n := len(lines)
		kept := slices.DeleteFunc(lines, isUserLine(name))
		if len(kept) == n {
			return nil, fmt.Errorf("%w: %s", ErrUnknownUser, name)
		}
		return kept, nil
	})
}

// ListUsers returns the users in the file, in file order, as Authenticate
// sees them: entries with invalid names and later duplicates are left out,
// users whose password entry is unusable are included.
func ListUsers(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: listing users: %w", err)
	}
	t, _ := parseUsers(data)
	return t.fileOrder(), nil
}

// lineEnding returns "\r" if the file's lines end in CRLF, so an appended line
// matches the rest.
func lineEnding(lines []string) string {
	if len(lines) > 0 && strings.HasSuffix(lines[0], "\r") {
		return "\r"
	}
	return ""
}

// editUsers applies fn to the lines of the users file under the editing lock
// and atomically replaces the file with the result.
func editUsers(path string, create bool, fn func(lines []string) ([]string, error)) (err error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("auth: locking users file: %w", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("auth: unlocking users file: %w", uerr)
		}
	}()

	// Edit the file a symlink points to, rather than replacing the link
	// with a regular file.
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	}
	data, old, err := readForEdit(target)
	if err != nil && !(create && errors.Is(err, fs.ErrNotExist)) {
		return fmt.Errorf("auth: editing users file: %w", err)
	}
	lines, err := fn(splitLines(data))
	if err != nil {
		return err
	}
	if err := replaceFile(target, joinLines(lines), old); err != nil {
		return fmt.Errorf("auth: writing users file: %w", err)
	}
	return nil
}

// readForEdit reads the file and stats the same open file, so the mode and
// owner the replacement copies are those of the version that was read.
func readForEdit(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, fi, nil
}

// replaceFile atomically replaces path with data. old is the stat of the file
// being replaced, or nil for a new file. renameio writes the temporary file
// next to path, fsyncs it before the rename (or a crash could leave an empty
// file under the real name) and removes it on failure. Its own
// WithExistingPermissions is not used: it would keep access for others, and
// it knows nothing of the owner.
func replaceFile(path string, data []byte, old os.FileInfo) error {
	dir := filepath.Dir(path)
	var mode fs.FileMode = 0o600
	if old != nil {
		mode = old.Mode().Perm() & 0o770
	}
	tmp, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(mode))
	if err != nil {
		return err
	}
	defer tmp.Cleanup()
	if old != nil {
		if err := chownLike(tmp.File, old); err != nil {
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.CloseAtomicallyReplace(); err != nil {
		return err
	}
	// renameio does not sync the directory: the rename itself must reach
	// the disk before we report success.
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}
