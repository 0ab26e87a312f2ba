package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashPasswordDovecotForm(t *testing.T) {
	h, err := HashPassword("correct horse", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "{BLF-CRYPT}$2y$04$") || len(h) != len("{BLF-CRYPT}")+60 {
		t.Fatalf("HashPassword = %q, want {BLF-CRYPT}$2y$04$ and 53 more characters", h)
	}
	stored, err := parseStoredPassword(h)
	if err != nil {
		t.Fatalf("own hash not accepted: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword(stored, []byte("correct horse")); err != nil {
		t.Errorf("right password rejected: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword(stored, []byte("correct horsf")); err == nil {
		t.Error("wrong password accepted")
	}
}

func TestHashPasswordDefaultCost(t *testing.T) {
	if testing.Short() {
		t.Skip("cost 10 hash")
	}
	h, err := HashPassword("pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "{BLF-CRYPT}$2y$10$") {
		t.Errorf("HashPassword(cost 0) = %q, want cost 10", h)
	}
}

func TestHashPasswordRejects(t *testing.T) {
	tests := []struct {
		name     string
		password string
		cost     int
		want     error
	}{
		{"73 bytes", strings.Repeat("x", 73), bcrypt.MinCost, ErrPasswordTooLong},
		{"empty", "", bcrypt.MinCost, ErrEmptyPassword},
		{"cost too low", "pw", 3, nil},
		{"cost too high", "pw", 32, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := HashPassword(tt.password, tt.cost)
			if err == nil {
				t.Fatalf("HashPassword = %q, want an error", h)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := HashPassword(strings.Repeat("x", 72), bcrypt.MinCost); err != nil {
		t.Errorf("72-byte password rejected: %v", err)
	}
}

func TestParseStoredPassword(t *testing.T) {
	h := bare(testHash(t, "pw", bcrypt.MinCost)) // $2y$04$...
	rest := h[3:]
	good := []string{
		"{BLF-CRYPT}" + h, "{blf-crypt}" + h, "{CRYPT}" + h, h,
		"$2a" + rest, "$2b" + rest, "{BLF-CRYPT}$2a" + rest,
	}
	for _, s := range good {
		if _, err := parseStoredPassword(s); err != nil {
			t.Errorf("parseStoredPassword(%q) = %v", s, err)
		}
	}
	bad := []string{
		"", "{BLF-CRYPT}", "{SHA512-CRYPT}$6$abc$def", "{PLAIN}secret", "secret",
		"{BLF-CRYPT" + h, "$2x" + rest, "$2$" + rest[1:], h[:59], h + "x",
		h[:7] + "!" + h[8:], "$2y$99" + h[6:], "$2y$03" + h[6:], "$2y$a4" + h[6:],
		"{CRYPT}$6$salt$hash", "{\x00}" + h,
	}
	for _, s := range bad {
		_, err := parseStoredPassword(s)
		if !errors.Is(err, ErrUnsupportedHash) {
			t.Errorf("parseStoredPassword(%q) = %v, want ErrUnsupportedHash", s, err)
			continue
		}
		if len(s) > 20 && strings.Contains(err.Error(), s[7:]) {
			t.Errorf("error %q repeats the hash", err)
		}
	}
}
