package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Per-user files at the Maildir root: subscriptions (Dovecot's format) and
// letterbox-special-use, which records special-use attributes given with
// CREATE (RFC 6154). Dovecot keeps those in its config, not on disk, so the
// file is ours; the default folders get theirs from Options.DefaultFolders.

const specialUseName = "letterbox-special-use"

// editUserFile rewrites one of the user's small files under its dotlock.
func (u *User) editUserFile(name string, edit func(old []byte) ([]byte, bool, error)) error {
	defer u.foldersChanged()
	p := filepath.Join(u.root, name)
	lock, err := acquireDotlock(context.Background(), p+".lock", u.store.opts.LockTimeout, u.store.opts.FileMode)
	if err != nil {
		return err
	}
	defer lock.release()
	old, err := readFileIfExists(p)
	if err != nil {
		return fmt.Errorf("store: read %s: %w", name, err)
	}
	data, changed, err := edit(old)
	if err != nil || !changed {
		return err
	}
	return writeFileAtomic(p, data, u.store.opts.FileMode)
}

// Subscriptions returns the subscribed names, in file order. Names of
// folders that no longer exist stay subscribed (RFC 3501 §6.3.6).
func (u *User) Subscriptions() ([]string, error) {
	data, err := readFileIfExists(filepath.Join(u.root, subscriptionsName))
	if err != nil {
		return nil, fmt.Errorf("store: read subscriptions: %w", err)
	}
	return parseSubscriptions(data), nil
}

// Subscribe adds a name to the subscriptions. The folder need not exist.
func (u *User) Subscribe(name string) error {
	name = CanonicalName(name)
	if _, err := folderDir(name); err != nil {
		return err
	}
	return u.editUserFile(subscriptionsName, func(old []byte) ([]byte, bool, error) {
		names := parseSubscriptions(old)
		if slices.Contains(names, name) {
			return nil, false, nil
		}
		return marshalSubscriptions(append(names, name)), true, nil
	})
}

// Unsubscribe removes a name; ErrNotFound if it was not subscribed.
func (u *User) Unsubscribe(name string) error {
	name = CanonicalName(name)
	found := false
	err := u.editUserFile(subscriptionsName, func(old []byte) ([]byte, bool, error) {
		names := parseSubscriptions(old)
		i := slices.Index(names, name)
		if i < 0 {
			return nil, false, nil
		}
		found = true
		return marshalSubscriptions(slices.Delete(names, i, i+1)), true, nil
	})
	if err == nil && !found {
		return ErrNotFound
	}
	return err
}

// renamePrefix maps name under oldName to newName, or reports false.
func renamePrefix(name, oldName, newName string) (string, bool) {
	if name == oldName {
		return newName, true
	}
	if strings.HasPrefix(name, oldName+string(Separator)) {
		return newName + name[len(oldName):], true
	}
	return "", false
}

func (u *User) renameSubscriptions(oldName, newName string) error {
	return u.editUserFile(subscriptionsName, func(old []byte) ([]byte, bool, error) {
		names := parseSubscriptions(old)
		changed := false
		for i, n := range names {
			if r, ok := renamePrefix(n, oldName, newName); ok {
				names[i], changed = r, true
			}
		}
		return marshalSubscriptions(names), changed, nil
	})
}

// specialUses returns every folder's special-use attribute.
func (u *User) specialUses() (map[string]SpecialUse, error) {
	out := make(map[string]SpecialUse)
	for _, f := range u.store.opts.DefaultFolders {
		if f.SpecialUse != UseNone {
			out[CanonicalName(f.Name)] = f.SpecialUse
		}
	}
	data, err := readFileIfExists(filepath.Join(u.root, specialUseName))
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", specialUseName, err)
	}
	for name, use := range parseSpecialUses(data) {
		out[name] = use
	}
	return out, nil
}

// parseSpecialUses reads "<attribute>\t<name in modified UTF-7>" lines. An
// empty attribute records that a default was taken away.
func parseSpecialUses(data []byte) map[string]SpecialUse {
	out := make(map[string]SpecialUse)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		use, enc, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		name, err := DecodeMUTF7(enc)
		if err != nil {
			continue
		}
		out[name] = SpecialUse(use)
	}
	return out
}

func marshalSpecialUses(m map[string]SpecialUse) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s\t%s\n", m[n], EncodeMUTF7(n))
	}
	return b.Bytes()
}

func (u *User) setSpecialUse(name string, use SpecialUse) error {
	return u.editUserFile(specialUseName, func(old []byte) ([]byte, bool, error) {
		m := parseSpecialUses(old)
		def := UseNone
		for _, f := range u.store.opts.DefaultFolders {
			if CanonicalName(f.Name) == name {
				def = f.SpecialUse
			}
		}
		cur, ok := m[name]
		if !ok {
			cur = def
		}
		if cur == use {
			return nil, false, nil
		}
		if use == def {
			delete(m, name)
		} else {
			m[name] = use
		}
		return marshalSpecialUses(m), true, nil
	})
}

// resetSpecialUse forgets what CREATE recorded for a deleted folder, so a
// new folder of that name starts from the default.
func (u *User) resetSpecialUse(name string) error {
	return u.editUserFile(specialUseName, func(old []byte) ([]byte, bool, error) {
		m := parseSpecialUses(old)
		if _, ok := m[name]; !ok {
			return nil, false, nil
		}
		delete(m, name)
		return marshalSpecialUses(m), true, nil
	})
}

func (u *User) renameSpecialUses(oldName, newName string) error {
	uses, err := u.specialUses()
	if err != nil {
		return err
	}
	for n, use := range uses {
		if r, ok := renamePrefix(n, oldName, newName); ok {
			if err := u.setSpecialUse(n, UseNone); err != nil {
				return err
			}
			if err := u.setSpecialUse(r, use); err != nil {
				return err
			}
		}
	}
	return nil
}
