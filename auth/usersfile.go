package auth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// user is one entry of the users file.
type user struct {
	name string // as written in the file: the canonical name
	line int    // 1-based line number, for messages
	// hash is the bcrypt hash to verify against. It is nil when the user
	// exists but cannot log in (unsupported scheme, malformed hash); such a
	// user still occupies the name, so a later duplicate line cannot take
	// it over.
	hash     []byte
	disabled error // why hash is nil
}

// userTable is an immutable, parsed users file. The Authenticator swaps whole
// tables on reload, so readers never see a half-loaded file.
type userTable struct {
	byKey map[string]*user // foldKey(name) -> user
	order []*user          // file order
	// dummy is a hash of the cost most users have; see dummyCost.
	dummy []byte
}

// lineIssue is a users-file line that does not give a usable login.
type lineIssue struct {
	line int
	// user is the name on the line, or "" when it is not a valid username
	// (the text could be anything, even a pasted hash, so it is not shown).
	user string
	err  error
}

// parseUsers parses the contents of a users file. It never fails: a line it
// cannot use is reported in issues and skipped (or, with a valid name, kept
// as a user who cannot log in), because one bad line must not lock every
// other user out.
func parseUsers(data []byte) (*userTable, []lineIssue) {
	t := &userTable{byKey: make(map[string]*user)}
	var issues []lineIssue
	for n, raw := range splitLines(data) {
		lineNo := n + 1
		name, pass, ok, err := splitUserLine(raw)
		if !ok {
			continue
		}
		if err != nil {
			issues = append(issues, lineIssue{line: lineNo, err: err})
			continue
		}
		if err := ValidUsername(name); err != nil {
			issues = append(issues, lineIssue{line: lineNo, err: err})
			continue
		}
		key := foldKey(name)
		if first, dup := t.byKey[key]; dup {
			issues = append(issues, lineIssue{line: lineNo, user: name,
				err: fmt.Errorf("duplicate user, the entry on line %d is used", first.line)})
			continue
		}
		u := &user{name: name, line: lineNo}
		if u.hash, err = parseStoredPassword(pass); err != nil {
			u.disabled = err
			issues = append(issues, lineIssue{line: lineNo, user: name, err: err})
		}
		t.byKey[key] = u
		t.order = append(t.order, u)
	}
	return t, issues
}

// splitLines splits data at "\n", without a final empty line. A "\r" before
// the "\n" stays on the line: splitUserLine ignores it (so files edited on
// Windows load), and the editing functions write it back unchanged.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

var errNoPasswordField = errors.New(`no ":" after the username`)

// splitUserLine returns the username and password fields of one line. ok is
// false for blank lines and comments. Fields after the password (uid, gid,
// home, extra fields of Dovecot's passwd-file format) are ignored.
func splitUserLine(line string) (name, pass string, ok bool, err error) {
	line = strings.TrimSuffix(line, "\r")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return "", "", false, nil
	}
	name, rest, found := strings.Cut(line, ":")
	if !found {
		return "", "", true, errNoPasswordField
	}
	pass, _, _ = strings.Cut(rest, ":")
	return name, pass, true, nil
}

// lineUser returns the username of a raw users-file line, or "" for blank
// lines, comments and lines without a password field. The editing functions
// use it to find lines without reinterpreting anything else on them.
func lineUser(line string) string {
	name, _, ok, err := splitUserLine(line)
	if !ok || err != nil {
		return ""
	}
	return name
}

// dummyCost picks the bcrypt cost for the dummy hash: the most common cost
// among usable users (the higher one on a tie), so an unknown name costs what
// a typical real name costs. Users with an unusual cost remain
// distinguishable by timing; there is no way around that with one dummy.
func (t *userTable) dummyCost() int {
	counts := make(map[int]int)
	for _, u := range t.order {
		if u.hash != nil {
			counts[hashCost(u.hash)]++
		}
	}
	best, bestN := DefaultCost, 0
	for cost, n := range counts {
		if n > bestN || n == bestN && cost > best {
			best, bestN = cost, n
		}
	}
	return best
}

// names returns the canonical names of all users in the table, sorted.
func (t *userTable) names() []string {
	out := t.fileOrder()
	slices.Sort(out)
	return out
}

// fileOrder returns the canonical names of all users in file order.
func (t *userTable) fileOrder() []string {
	out := make([]string, 0, len(t.order))
	for _, u := range t.order {
		out = append(out, u.name)
	}
	return out
}

// logIssues writes one warning per unusable line. The hash is never logged:
// issue errors are built without it.
func logIssues(log *slog.Logger, file string, issues []lineIssue) {
	for _, is := range issues {
		log.Warn("users file: ignoring entry",
			slog.String("file", file),
			slog.Int("line", is.line),
			slog.String("user", is.user),
			slog.String("reason", is.err.Error()))
	}
}

// isUserLine returns a test for raw lines that name user (ignoring case),
// for the editing functions to find, count or drop them.
func isUserLine(name string) func(line string) bool {
	key := foldKey(name)
	return func(line string) bool {
		n := lineUser(line)
		return n != "" && foldKey(n) == key
	}
}

// joinLines is the inverse of splitting at "\n": every line gets its newline
// back, so the file always ends with one.
func joinLines(lines []string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
