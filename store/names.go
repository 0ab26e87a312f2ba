package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mailbox names seen by callers are UTF-8 with "/" between hierarchy levels
// and "INBOX" (any case) for the Maildir root. On disk a folder is the
// Maildir++ directory "." + levels joined by ".", each level in modified
// UTF-7 (Archive/2026 → ".Archive.2026").

// Separator is the hierarchy separator of mailbox names.
const Separator = '/'

// maxDirName is NAME_MAX: the whole folder is one directory entry.
const maxDirName = 255

// Inbox is the canonical name of the root folder.
const Inbox = "INBOX"

// IsInbox reports whether name is INBOX, which is case-insensitive.
func IsInbox(name string) bool { return strings.EqualFold(name, Inbox) }

// CanonicalName returns name with a leading INBOX level upper-cased, which is
// how RFC 3501 §5.1 has it compared.
func CanonicalName(name string) string {
	first, rest, more := strings.Cut(name, string(Separator))
	if IsInbox(first) {
		if more {
			return Inbox + string(Separator) + rest
		}
		return Inbox
	}
	return name
}

// folderDir returns the directory (relative to the user's root) of a mailbox
// name, or an error wrapping ErrInvalidName. INBOX is "".
func folderDir(name string) (string, error) {
	name = CanonicalName(name)
	if name == Inbox {
		return "", nil
	}
	if err := validName(name); err != nil {
		return "", err
	}
	levels := strings.Split(name, string(Separator))
	var b strings.Builder
	for _, l := range levels {
		b.WriteByte('.')
		b.WriteString(EncodeMUTF7(l))
	}
	dir := b.String()
	if len(dir) > maxDirName {
		return "", fmt.Errorf("%w: name too long", ErrInvalidName)
	}
	return dir, nil
}

// validName refuses what cannot be a folder: empty levels (a leading,
// trailing or doubled "/"), ".", which is Maildir++'s own separator (Dovecot
// refuses it too), "..", NUL and other control characters, the LIST
// wildcards, and bytes that are not UTF-8.
func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidName)
	}
	for _, level := range strings.Split(name, string(Separator)) {
		if level == "" {
			return fmt.Errorf("%w: empty hierarchy level", ErrInvalidName)
		}
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return fmt.Errorf("%w: control character", ErrInvalidName)
		case r == '.':
			return fmt.Errorf("%w: '.' is not allowed", ErrInvalidName)
		case r == '*' || r == '%' || r == '\\':
			return fmt.Errorf("%w: %q is not allowed", ErrInvalidName, r)
		case r == utf8.RuneError:
			return fmt.Errorf("%w: not UTF-8", ErrInvalidName)
		}
	}
	return nil
}

// dirName turns a Maildir++ directory entry back into a mailbox name. It
// reports false for entries that are not folders of ours: "." and "..",
// Dovecot's "..DOVECOT-TRASHED" leftovers, and names that do not decode.
func dirName(entry string) (string, bool) {
	if len(entry) < 2 || entry[0] != '.' || entry[1] == '.' {
		return "", false
	}
	levels := strings.Split(entry[1:], ".")
	for i, l := range levels {
		if l == "" {
			return "", false
		}
		d, err := DecodeMUTF7(l)
		if err != nil || strings.ContainsRune(d, Separator) {
			return "", false
		}
		levels[i] = d
	}
	name := strings.Join(levels, string(Separator))
	return CanonicalName(name), true
}
