package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestValidUsername(t *testing.T) {
	good := []string{
		"alice", "Alice", "bob@example.org", "first.last@example.org", "a",
		"user+tag@example.org", "x_y-z", "jörg@example.de", "bob.@example.org",
		strings.Repeat("a", 255),
	}
	for _, name := range good {
		if err := ValidUsername(name); err != nil {
			t.Errorf("ValidUsername(%q) = %v, want nil", name, err)
		}
	}
	bad := []string{
		"", strings.Repeat("a", 256),
		".alice", "@example.org", "alice@", "a..b", "alice@example..org",
		"a@b@c", "al ice", "alice\t", "al\nice", "al\x00ice", "al\x7fice",
		"a/b", `a\b`, "a:b", "..", ".", "alice@.example.org", "alice@.",
		"\xff\xfe", "alice\u00a0", "alice\u2028",
	}
	for _, name := range bad {
		err := ValidUsername(name)
		if err == nil {
			t.Errorf("ValidUsername(%q) = nil, want an error", name)
			continue
		}
		if !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("ValidUsername(%q) = %v, does not match ErrInvalidUsername", name, err)
		}
	}
}
