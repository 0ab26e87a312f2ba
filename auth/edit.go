package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
		if hasUser(lines, name) {
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
	key := foldKey(name)
	return editUsers(path, false, func(lines []string) ([]string, error) {
		for i, l := range lines {
			if n := lineUser(l); n == "" || foldKey(n) != key {
				continue
			}
			body, cr := strings.CutSuffix(l, "\r")
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
		}
		return nil, fmt.Errorf("%w: %s", ErrUnknownUser, name)
	})
}

// DeleteUser removes name's entries from the users file. All of them go, not
// just the first: otherwise a forgotten duplicate further down would silently
// become the user's entry.
func DeleteUser(path, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidUsername)
	}
	key := foldKey(name)
	return editUsers(path, false, func(lines []string) ([]string, error) {
		kept := lines[:0]
		for _, l := range lines {
			if n := lineUser(l); n != "" && foldKey(n) == key {
				continue
			}
			kept = append(kept, l)
		}
		if len(kept) == len(lines) {
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
	out := make([]string, 0, len(t.order))
	for _, u := range t.order {
		out = append(out, u.name)
	}
	return out, nil
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
	var old os.FileInfo
	data, err := os.ReadFile(target)
	switch {
	case err == nil:
		if old, err = os.Stat(target); err != nil {
			return fmt.Errorf("auth: editing users file: %w", err)
		}
	case create && errors.Is(err, fs.ErrNotExist):
		data = nil
	default:
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

// replaceFile atomically replaces path with data. old is the stat of the file
// being replaced, or nil for a new file.
func replaceFile(path string, data []byte, old os.FileInfo) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var mode fs.FileMode = 0o600
	if old != nil {
		mode = old.Mode().Perm() & 0o770
		if err := chownLike(tmp, old); err != nil {
			return err
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	// The data must be on disk before the rename makes it the users file,
	// or a crash could leave an empty file under the real name.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// And the rename itself must reach the disk before we report success.
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
