package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Errors about passwords and password hashes.
var (
	// ErrPasswordTooLong is returned by HashPassword for a password over
	// MaxPasswordLength bytes: bcrypt silently ignores everything after
	// that, so accepting it would give the user a weaker password than
	// the one they typed.
	ErrPasswordTooLong = fmt.Errorf("auth: password longer than %d bytes (bcrypt would ignore the rest)", MaxPasswordLength)

	// ErrEmptyPassword is returned by HashPassword for an empty password.
	ErrEmptyPassword = errors.New("auth: empty password")

	// ErrUnsupportedHash is returned when a stored password is not one
	// Letterbox can verify: {BLF-CRYPT} or a bare (or {CRYPT}) bcrypt hash.
	ErrUnsupportedHash = errors.New("auth: unsupported password hash")
)

// MaxPasswordLength is the longest password bcrypt looks at, in bytes.
const MaxPasswordLength = 72

// DefaultCost is the bcrypt cost HashPassword uses when given 0.
const DefaultCost = bcrypt.DefaultCost

// blfCryptPrefix is the scheme prefix Dovecot writes for bcrypt hashes.
const blfCryptPrefix = "{BLF-CRYPT}"

// HashPassword hashes password with bcrypt at the given cost (0 means
// DefaultCost) and returns it in the form `doveadm pw -s BLF-CRYPT` prints:
// "{BLF-CRYPT}$2y$10$...". The result can go straight into the users file and
// is understood by Dovecot as well.
func HashPassword(password string, cost int) (string, error) {
	switch {
	case password == "":
		return "", ErrEmptyPassword
	case len(password) > MaxPasswordLength:
		return "", ErrPasswordTooLong
	}
	if cost == 0 {
		cost = DefaultCost
	}
	// bcrypt itself would quietly raise a too-low cost to its default;
	// an explicit cost the caller asked for should fail loudly instead.
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("auth: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hashing password: %w", err)
	}
	// Go emits "$2a$"; Dovecot (libc crypt) emits "$2y$". The algorithm is
	// identical for every password bcrypt accepts (the 2a/2x/2y split was
	// about an 8-bit bug in one C implementation), so print what doveadm
	// prints and keep the file uniform.
	if !strings.HasPrefix(string(h), "$2a$") {
		return "", fmt.Errorf("auth: unexpected bcrypt output prefix %.4q", h)
	}
	return blfCryptPrefix + "$2y$" + string(h[4:]), nil
}

// parseStoredPassword takes the password field of a users-file line and
// returns the bcrypt hash to verify against, or an error saying why the user
// cannot log in. The error text never contains the hash itself, because it
// ends up in logs.
func parseStoredPassword(field string) ([]byte, error) {
	hash := field
	if strings.HasPrefix(field, "{") {
		end := strings.IndexByte(field, '}')
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated {SCHEME}", ErrUnsupportedHash)
		}
		scheme := strings.ToUpper(field[1:end])
		hash = field[end+1:]
		switch scheme {
		case "BLF-CRYPT":
		case "CRYPT":
			// Dovecot hands {CRYPT} to libc crypt(3), which
			// verifies bcrypt hashes too; anything else under
			// CRYPT (DES, MD5, SHA-crypt) we cannot check.
		default:
			if len(scheme) > 32 || !isSchemeName(scheme) {
				return nil, fmt.Errorf("%w: malformed {SCHEME}", ErrUnsupportedHash)
			}
			return nil, fmt.Errorf("%w: scheme {%s}", ErrUnsupportedHash, scheme)
		}
	}
	if hash == "" {
		return nil, fmt.Errorf("%w: empty password field", ErrUnsupportedHash)
	}
	if err := checkBcryptHash(hash); err != nil {
		return nil, err
	}
	return []byte(hash), nil
}

// isSchemeName reports whether s looks like a Dovecot scheme name, so that it
// is safe to print in a log line.
func isSchemeName(s string) bool {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return s != ""
}

// checkBcryptHash accepts exactly the modular-crypt bcrypt form
// "$2a$", "$2b$" or "$2y$", two cost digits, "$", 22 salt and 31 hash
// characters. The bcrypt package is laxer (it takes any minor version letter
// and checks the salt only when comparing); checking here means a broken line
// is reported once at load time instead of failing every login.
func checkBcryptHash(h string) error {
	const size = 60
	if len(h) < 4 || h[0] != '$' || h[1] != '2' || h[3] != '$' {
		return fmt.Errorf("%w: not a bcrypt hash", ErrUnsupportedHash)
	}
	switch h[2] {
	case 'a', 'b', 'y':
	default:
		return fmt.Errorf("%w: bcrypt variant $2%c$", ErrUnsupportedHash, sanitizeByte(h[2]))
	}
	if len(h) != size || h[6] != '$' {
		return fmt.Errorf("%w: malformed bcrypt hash", ErrUnsupportedHash)
	}
	if h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return fmt.Errorf("%w: malformed bcrypt cost", ErrUnsupportedHash)
	}
	cost := int(h[4]-'0')*10 + int(h[5]-'0')
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("%w: bcrypt cost %d out of range", ErrUnsupportedHash, cost)
	}
	for i := 7; i < size; i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '/') {
			return fmt.Errorf("%w: malformed bcrypt hash", ErrUnsupportedHash)
		}
	}
	return nil
}

func sanitizeByte(b byte) rune {
	if b >= 0x21 && b < 0x7f {
		return rune(b)
	}
	return '?'
}

// hashCost returns the cost of a hash that passed checkBcryptHash.
func hashCost(h []byte) int {
	return int(h[4]-'0')*10 + int(h[5]-'0')
}

// newDummyHash returns a bcrypt hash of a random password that nobody knows.
// Unknown users are checked against it so that their login costs the same
// bcrypt work as a real user's, and response time does not reveal which
// usernames exist.
func newDummyHash(cost int) ([]byte, error) {
	secret := rand.Text() // 26 random base32 characters, never stored
	h, err := bcrypt.GenerateFromPassword([]byte(secret), cost)
	if err != nil {
		return nil, fmt.Errorf("auth: making dummy hash: %w", err)
	}
	return h, nil
}
