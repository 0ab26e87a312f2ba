package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/emersion/go-maildir"
)

// User is one user's Maildir. It holds no state of its own beyond its
// paths, so any number of sessions may each have one.
type User struct {
	store *Store
	name  string
	root  string
}

// Name is the login name the user was opened with.
func (u *User) Name() string { return u.name }

// Root is the Maildir root directory (INBOX).
func (u *User) Root() string { return u.root }

// ensure creates the Maildir with the default folders if it does not exist.
func (u *User) ensure() error {
	if fi, err := os.Stat(filepath.Join(u.root, "cur")); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(u.root, u.store.opts.DirMode); err != nil {
		return fmt.Errorf("store: create maildir: %w", err)
	}
	if err := maildir.Dir(u.root).Init(); err != nil {
		return fmt.Errorf("store: create maildir: %w", err)
	}
	subs := []string{Inbox}
	for _, f := range u.store.opts.DefaultFolders {
		if err := u.Create(f.Name, f.SpecialUse); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
		subs = append(subs, f.Name)
	}
	for _, n := range subs {
		if err := u.Subscribe(n); err != nil {
			return err
		}
	}
	return nil
}

// MailboxInfo describes one mailbox in a listing.
type MailboxInfo struct {
	Name       string // "INBOX", "Archive/2026"
	SpecialUse SpecialUse
	// NoSelect is set for a parent that exists only because it has
	// children (Maildir++ "a.b" without "a").
	NoSelect    bool
	HasChildren bool
	Subscribed  bool
}

// List returns every mailbox, INBOX first, then by name, with the parents
// that exist only as parents.
func (u *User) List() ([]MailboxInfo, error) {
	entries, err := os.ReadDir(u.root)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	exists := map[string]bool{Inbox: true}
	for _, de := range entries {
		name, ok := dirName(de.Name())
		if !ok || name == Inbox {
			continue
		}
		if !de.IsDir() {
			// A symlink to a folder elsewhere is a folder.
			fi, err := os.Stat(filepath.Join(u.root, de.Name()))
			if err != nil || !fi.IsDir() {
				continue
			}
		}
		exists[name] = true
	}
	all := make(map[string]bool, len(exists))
	for name := range exists {
		all[name] = true
		for i := strings.LastIndexByte(name, Separator); i > 0; i = strings.LastIndexByte(name[:i], Separator) {
			all[name[:i]] = true
		}
	}
	subs, err := u.Subscriptions()
	if err != nil {
		return nil, err
	}
	subscribed := make(map[string]bool, len(subs))
	for _, s := range subs {
		subscribed[s] = true
	}
	uses, err := u.specialUses()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if names[i] == Inbox || names[j] == Inbox {
			return names[i] == Inbox && names[j] != Inbox
		}
		return names[i] < names[j]
	})
	out := make([]MailboxInfo, 0, len(names))
	for i, n := range names {
		info := MailboxInfo{Name: n, NoSelect: !exists[n], Subscribed: subscribed[n], SpecialUse: uses[n]}
		prefix := n + string(Separator)
		for _, m := range names[i+1:] {
			if strings.HasPrefix(m, prefix) {
				info.HasChildren = true
				break
			}
		}
		if n == Inbox {
			for _, m := range names {
				if strings.HasPrefix(m, prefix) {
					info.HasChildren = true
				}
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// folderPath returns the directory of a mailbox.
func (u *User) folderPath(name string) (string, error) {
	dir, err := folderDir(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(u.root, dir), nil
}

// Create makes a new folder, with an optional special-use attribute.
func (u *User) Create(name string, use SpecialUse) error {
	defer u.foldersChanged()
	if IsInbox(name) {
		return ErrExists
	}
	path, err := u.folderPath(name)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return ErrExists
	}
	// Build the folder under a hidden name and rename it into place, so
	// nobody sees it half made and two creators cannot both succeed.
	tmp := filepath.Join(u.root, "..letterbox-new-"+randomSuffix())
	if err := os.Mkdir(tmp, u.store.opts.DirMode); err != nil {
		return fmt.Errorf("store: create %s: %w", name, err)
	}
	if err := maildir.Dir(tmp).Init(); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("store: create %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "maildirfolder"), nil, u.store.opts.FileMode); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("store: create %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return ErrExists
		}
		return fmt.Errorf("store: create %s: %w", name, err)
	}
	if err := syncDir(u.root); err != nil {
		return err
	}
	if use != UseNone {
		return u.setSpecialUse(CanonicalName(name), use)
	}
	return nil
}

// Delete removes a folder and its messages. Its children stay (they are
// folders of their own in Maildir++); it then lists as a \Noselect parent.
func (u *User) Delete(name string) error {
	defer u.foldersChanged()
	if IsInbox(name) {
		return ErrInboxOperation
	}
	path, err := u.folderPath(name)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err != nil {
		return ErrNotFound
	}
	// Rename first: the folder vanishes at once, and a crash halfway
	// through the removal leaves only a hidden directory behind.
	trash := filepath.Join(u.root, "..letterbox-deleted-"+randomSuffix())
	if err := os.Rename(path, trash); err != nil {
		return fmt.Errorf("store: delete %s: %w", name, err)
	}
	u.store.forget(path)
	if err := os.RemoveAll(trash); err != nil {
		u.store.log.Warn("store: leftover of a deleted folder", "path", trash, "err", err)
	}
	return u.resetSpecialUse(CanonicalName(name))
}

// Rename renames a folder and all its children. Renaming INBOX moves its
// messages into a new folder and leaves INBOX empty (RFC 3501 §6.3.5).
func (u *User) Rename(ctx context.Context, oldName, newName string) error {
	defer u.foldersChanged()
	oldName, newName = CanonicalName(oldName), CanonicalName(newName)
	if IsInbox(newName) {
		return ErrExists
	}
	newPath, err := u.folderPath(newName)
	if err != nil {
		return err
	}
	if oldName == Inbox {
		return u.renameInbox(ctx, newName)
	}
	oldPath, err := u.folderPath(oldName)
	if err != nil {
		return err
	}
	if strings.HasPrefix(newName+string(Separator), oldName+string(Separator)) {
		return fmt.Errorf("%w: cannot move a folder into itself", ErrInvalidName)
	}
	if _, err := os.Lstat(newPath); err == nil {
		return ErrExists
	}
	// The folder and every child directory ".old.*" → ".new.*".
	oldDir, newDir := filepath.Base(oldPath), filepath.Base(newPath)
	entries, err := os.ReadDir(u.root)
	if err != nil {
		return fmt.Errorf("store: rename: %w", err)
	}
	var moves [][2]string
	for _, de := range entries {
		n := de.Name()
		if n == oldDir || strings.HasPrefix(n, oldDir+".") {
			target := newDir + n[len(oldDir):]
			if len(target) > maxDirName {
				return fmt.Errorf("%w: name too long", ErrInvalidName)
			}
			moves = append(moves, [2]string{n, target})
		}
	}
	if len(moves) == 0 {
		return ErrNotFound
	}
	for _, mv := range moves {
		if _, err := os.Lstat(filepath.Join(u.root, mv[1])); err == nil {
			return ErrExists
		}
	}
	for _, mv := range moves {
		from, to := filepath.Join(u.root, mv[0]), filepath.Join(u.root, mv[1])
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("store: rename %s: %w", oldName, err)
		}
		u.store.forget(from)
	}
	if err := syncDir(u.root); err != nil {
		return err
	}
	if err := u.renameSubscriptions(oldName, newName); err != nil {
		return err
	}
	return u.renameSpecialUses(oldName, newName)
}

func (u *User) renameInbox(ctx context.Context, newName string) error {
	if err := u.Create(newName, UseNone); err != nil {
		return err
	}
	src, err := u.Open(ctx, Inbox)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := u.Open(ctx, newName)
	if err != nil {
		return err
	}
	defer dst.Close()
	var uids []uint32
	if err := src.Read(ctx, func(v *View) {
		for i := 0; i < v.Len(); i++ {
			uids = append(uids, v.At(i).UID)
		}
	}); err != nil {
		return err
	}
	_, _, err = src.Move(ctx, uids, dst, nil)
	return err
}

// Open opens a mailbox. Close the handle when done.
func (u *User) Open(ctx context.Context, name string) (*Mailbox, error) {
	name = CanonicalName(name)
	path, err := u.folderPath(name)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return nil, ErrNotFound
	}
	return u.store.openBox(ctx, u.root, name, path)
}

// TryLock takes an exclusive lock named name for this user, without
// waiting: ErrLocked if another session (in this or another process) holds
// it. The lock is an flock, so it dies with its process.
func (u *User) TryLock(name string) (release func(), err error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("store: bad lock name %q", name)
	}
	p := filepath.Join(u.root, "letterbox-"+name+".lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, u.store.opts.FileMode)
	if err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
