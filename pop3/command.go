package pop3

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// state is a POP3 session state (RFC 1939 §3). UPDATE is not a state a
// command can run in: it lasts only for the QUIT that enters it.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
)

// command is an entry of the command table: the states the command is
// allowed in and its handler. A handler writes its own positive reply and
// returns an error for a negative one (see toReply).
type command struct {
	states state
	fn     func(s *session, arg string) error
}

const anyState = stateAuthorization | stateTransaction

// Commands returns the names of the commands the server knows, as
// Observer.Command gets them, sorted.
func Commands() []string { return slices.Sorted(maps.Keys(commands)) }

// commands is the command table. The state check is done once, in
// session.dispatch, so handlers can rely on it.
var commands = map[string]command{
	"CAPA": {anyState, (*session).cmdCAPA},
	"QUIT": {anyState, (*session).cmdQUIT},

	"USER": {stateAuthorization, (*session).cmdUSER},
	"PASS": {stateAuthorization, (*session).cmdPASS},
	"AUTH": {stateAuthorization, (*session).cmdAUTH},
	"STLS": {stateAuthorization, (*session).cmdSTLS},

	"STAT": {stateTransaction, (*session).cmdSTAT},
	"LIST": {stateTransaction, (*session).cmdLIST},
	"UIDL": {stateTransaction, (*session).cmdUIDL},
	"RETR": {stateTransaction, (*session).cmdRETR},
	"TOP":  {stateTransaction, (*session).cmdTOP},
	"DELE": {stateTransaction, (*session).cmdDELE},
	"RSET": {stateTransaction, (*session).cmdRSET},
	"NOOP": {stateTransaction, (*session).cmdNOOP},
}

// maxVerbLength bounds the keyword: RFC 1939 §3 keywords are three or four
// characters, RFC 2449 §3 allows extensions of up to four.
const maxVerbLength = 4

// parseCommand splits a command line into its keyword, upper-cased, and the
// rest of the line after the single space that follows it. The line end
// (CRLF, or a bare LF as `openssl s_client` sends) is removed first. The
// argument is returned raw because PASS takes everything after the space,
// spaces included (RFC 1939 §7). ok is false when the keyword is not 1 to 4
// ASCII letters.
func parseCommand(line string) (verb, arg string, ok bool) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	verb, arg, _ = strings.Cut(line, " ")
	if verb == "" || len(verb) > maxVerbLength {
		return "", "", false
	}
	for i := 0; i < len(verb); i++ {
		if c := verb[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", "", false
		}
	}
	return strings.ToUpper(verb), arg, true
}

// fields splits a command's argument into words and checks their number.
// Runs of spaces are accepted: RFC 1939 asks for single spaces, but being
// lenient costs nothing.
func fields(arg string, min, max int) ([]string, error) {
	f := strings.Fields(arg)
	switch {
	case len(f) < min && min == 1 && max == 1:
		return nil, errBad("Missing argument.")
	case len(f) < min:
		return nil, errBad("Missing arguments.")
	case len(f) > max && max == 0:
		return nil, errBad("No arguments allowed.")
	case len(f) > max:
		return nil, errBad("Too many arguments.")
	}
	return f, nil
}

// parseNumber parses a non-negative decimal number as RFC 1939 uses for
// message numbers and line counts. Digits only: no sign, no spaces. A
// number too big for an int is returned as math.MaxInt, which no message
// number reaches and which is as good as "all lines" for TOP.
func parseNumber(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || n > math.MaxInt {
		return math.MaxInt, true // only range errors are left
	}
	return int(n), true
}
