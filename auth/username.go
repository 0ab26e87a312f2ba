package auth

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidUsername is matched (errors.Is) by every error ValidUsername returns.
var ErrInvalidUsername = errors.New("auth: invalid username")

// MaxUsernameLength is the longest accepted username in bytes. It keeps a
// name, used as one path element by the mail store, under the 255-byte limit
// most filesystems put on a file name.
const MaxUsernameLength = 255

// ValidUsername reports whether name may be a Letterbox user: "user" or
// "user@domain". The rules are strict because the store turns the name (or
// its parts) into path elements: nothing in it may separate, escape or hide
// a directory.
func ValidUsername(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s", ErrInvalidUsername, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxUsernameLength:
		return bad(fmt.Sprintf("longer than %d bytes", MaxUsernameLength))
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.HasPrefix(name, "."):
		return bad(`starts with "."`)
	case strings.HasPrefix(name, "@"):
		return bad(`starts with "@"`)
	case strings.HasSuffix(name, "@"):
		return bad(`ends with "@"`)
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	case strings.Count(name, "@") > 1:
		return bad(`more than one "@"`)
	}
	// The domain becomes a directory of its own ({domain} in the store's
	// path template), so it must not be hidden or be "." either.
	if _, domain, ok := strings.Cut(name, "@"); ok && strings.HasPrefix(domain, ".") {
		return bad(`domain starts with "."`)
	}
	for _, r := range name {
		switch {
		case r == 0 || r == '/' || r == '\\' || r == ':':
			return bad(fmt.Sprintf("contains %q", r))
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return bad("contains whitespace or a control character")
		}
	}
	return nil
}

// foldKey is the map key for a username. Lookups ignore case because mail
// clients and users capitalise login names freely, while the name as written
// in the users file stays the canonical one.
func foldKey(name string) string {
	return strings.ToLower(name)
}
