package auth

import (
	"errors"
	"os"
	"testing"
)

// Lookup is how mail delivery finds recipients: as logins match names, with
// a user added since the last load found at once, and an unreadable file
// told apart from an unknown user.
func TestLookup(t *testing.T) {
	e := newEnv(t, "Alice@Example.org:"+testHash(t, "pw", 4)+"\n", func(o *Options) { o.ReloadInterval = -1 })
	if got, err := e.a.Lookup("alice@example.org"); err != nil || got != "Alice@Example.org" {
		t.Errorf("Lookup(alice@example.org) = %q, %v", got, err)
	}
	for _, name := range []string{"bob", "", "a b", "../x"} {
		if _, err := e.a.Lookup(name); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("Lookup(%q): %v, want ErrUnknownUser", name, err)
		}
	}
	if err := AddUser(e.path, "bob", testHash(t, "pw", 4)); err != nil {
		t.Fatal(err)
	}
	if got, err := e.a.Lookup("BOB"); err != nil || got != "bob" {
		t.Errorf("Lookup of a user added since the load = %q, %v", got, err)
	}
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Lookup("carol"); err == nil || errors.Is(err, ErrUnknownUser) {
		t.Errorf("Lookup with the users file gone: %v, want a temporary error", err)
	}
	if got, err := e.a.Lookup("bob"); err != nil || got != "bob" {
		t.Errorf("known users stay known without the file: %q, %v", got, err)
	}
}
