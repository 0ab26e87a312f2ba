package imap

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/letterbox-mail/letterbox/store"
)

// Errors and how they become tagged replies. Handlers return errors; only
// respond (dispatch.go) writes the tagged reply, through reply below:
//
//   - a *protoError carries its own status, code and text;
//   - a *syntaxError (the decoder's) is BAD with what was wrong;
//   - store errors have a NO with a code each;
//   - anything else is logged and answered NO [SERVERBUG], never BAD (a
//     server failure is not the client's fault) and without details: no
//     paths or errno text reach the wire.

// protoError is a reply the handler chose.
type protoError struct {
	status string // "NO", "BAD" or "BYE"
	code   string // response code without brackets, may be empty
	text   string
}

func (e *protoError) Error() string {
	if e.code != "" {
		return e.status + " [" + e.code + "] " + e.text
	}
	return e.status + " " + e.text
}

func no(code, text string) error  { return &protoError{status: "NO", code: code, text: text} }
func bad(code, text string) error { return &protoError{status: "BAD", code: code, text: text} }

// syntaxError is a command the decoder could not parse.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return "syntax error: " + e.msg }

// tryCreateError marks a missing destination of APPEND, COPY or MOVE
// (RFC 3501 §6.4.7: NO [TRYCREATE]).
type tryCreateError struct{ err error }

func (e *tryCreateError) Error() string { return e.err.Error() }
func (e *tryCreateError) Unwrap() error { return e.err }

// errConnClosed ends the connection without a reply: the client is gone,
// or the connection was ended with a BYE already.
var errConnClosed = errors.New("imap: connection closed")

var errReadOnly = no("", "Mailbox is read-only (opened with EXAMINE)")

// reply turns a handler's error into the status, code and text of its
// tagged reply. Unexpected errors are logged by the caller (logged true).
func reply(err error) (status, code, text string, unexpected bool) {
	var pe *protoError
	var se *syntaxError
	var tc *tryCreateError
	switch {
	case errors.As(err, &pe):
		return pe.status, pe.code, pe.text, false
	case errors.As(err, &se):
		return "BAD", "", "Syntax error: " + se.msg, false
	case errors.As(err, &tc) && errors.Is(err, store.ErrNotFound):
		return "NO", "TRYCREATE", "No such mailbox", false
	case errors.Is(err, store.ErrNoSpace), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The store marks its own errors (ErrNoSpace); the errnos
		// stand for errors from elsewhere, as in the POP3 and LMTP
		// replies.
		return "NO", "OVERQUOTA", "No space left for your mail, delete some", false
	case errors.Is(err, store.ErrNotFound):
		return "NO", "NONEXISTENT", "No such mailbox", false
	case errors.Is(err, store.ErrExists):
		return "NO", "ALREADYEXISTS", "Mailbox already exists", false
	case errors.Is(err, store.ErrInvalidName):
		return "NO", "CANNOT", "Invalid mailbox name", false
	case errors.Is(err, store.ErrInboxOperation):
		return "NO", "CANNOT", "Not possible with INBOX", false
	case errors.Is(err, store.ErrTooManyKeywords):
		return "NO", "LIMIT", "Too many keywords in this mailbox", false
	case errors.Is(err, store.ErrTooBig):
		return "NO", "TOOBIG", "Message too big", false
	case errors.Is(err, store.ErrNoSuchMessage):
		return "NO", "EXPUNGEISSUED", "Message was expunged", false
	case errors.Is(err, store.ErrHasChildren):
		return "NO", "HASCHILDREN", "Mailbox has children", false
	case errors.Is(err, store.ErrLocked):
		return "NO", "INUSE", "Mailbox is in use, try again", false
	case errors.Is(err, context.Canceled), errors.Is(err, store.ErrClosed):
		return "NO", "UNAVAILABLE", "Server shutting down", false
	}
	return "NO", "SERVERBUG", "Internal error, see the server log", true
}

// ioError is a failure of the connection met while decoding (a literal
// that stopped coming, a line too long); the parser panics with it and
// the dispatcher ends the connection.
type ioError struct{ err error }

func (e *ioError) Error() string { return fmt.Sprintf("imap: read: %v", e.err) }
func (e *ioError) Unwrap() error { return e.err }
