package pop3

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
)

// Response codes (RFC 2449 §8, RFC 3206). They go in square brackets right
// after "-ERR".
const (
	codeAuth    = "AUTH"     // RFC 3206 §4: the credentials are the problem
	codeSysTemp = "SYS/TEMP" // RFC 3206 §5: try again later
	codeSysPerm = "SYS/PERM" // RFC 3206 §5: will not go away by itself
	codeInUse   = "IN-USE"   // RFC 2449 §8.1.1: maildrop locked
)

// replyError is a "-ERR" reply. Handlers return one for every failure the
// client should hear about in specific words; any other error is logged and
// answered generically (see toReply).
type replyError struct {
	code string // response code without brackets, "" for none
	text string
	// bad marks an unknown, out-of-state or malformed command; those
	// count towards Server.MaxBadCommands.
	bad bool
	// close ends the session after the reply.
	close bool
}

func (e *replyError) Error() string { return "pop3: " + e.text }

// errReply is an ordinary "-ERR text" reply.
func errReply(text string) error { return &replyError{text: text} }

// errBad is the reply to a command that is unknown, not allowed in this
// state, or malformed.
func errBad(text string) error { return &replyError{text: text, bad: true} }

// Replies used in more than one place.
var (
	errAuthFailed      = &replyError{code: codeAuth, text: "Authentication failed."}
	errInsecure        = &replyError{code: codeAuth, text: "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."}
	errNoSuchMessage   = &replyError{text: "No such message."}
	errDeleted         = &replyError{text: "Message is deleted."}
	errBadNumber       = &replyError{text: "Invalid message number.", bad: true}
	errShuttingDown    = &replyError{code: codeSysTemp, text: "Server shutting down.", close: true}
	errInternal        = &replyError{code: codeSysTemp, text: "Internal error, try again later."}
	errMessageVanished = &replyError{text: "Message was removed by another session."}
	errNoSpace         = &replyError{code: codeSysTemp, text: "Mail storage is full, try again later."}
)

// noSpace reports a write that failed for want of disk space or quota.
// store.ErrNoSpace says so; the errno is checked too for store errors
// that do not carry it yet.
func noSpace(err error) bool {
	return errors.Is(err, store.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// toReply turns any error a handler returned into the reply the client gets.
// It is the one place where errors become wire text: store and auth errors
// get their response code here, and an error nobody anticipated is logged
// (with its detail, which may hold paths) and answered without detail.
func toReply(log *slog.Logger, err error) *replyError {
	var re *replyError
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, auth.ErrInvalidCredentials):
		// RFC 3206 §4: [AUTH], and no hint whether the user exists.
		return errAuthFailed
	case errors.Is(err, auth.ErrThrottled):
		// Not [AUTH]: that tells the client the credentials are wrong
		// and it would prompt for a new password, but they may be
		// right. Throttling is temporary, which is what [SYS/TEMP]
		// says (RFC 3206 §5): try again later, do not alarm the user.
		return &replyError{code: codeSysTemp, text: "Too many failed logins from your address, try again later."}
	case errors.Is(err, store.ErrLocked):
		return &replyError{code: codeInUse, text: "Mailbox is locked by another POP3 session."}
	case errors.Is(err, store.ErrNoSuchMessage):
		return errMessageVanished
	case noSpace(err):
		// RFC 3206 §5: temporary; the mail is intact, the disk is full.
		log.Error("pop3: no space left for the store", "err", err)
		return errNoSpace
	case errors.Is(err, store.ErrInvalidUser):
		// auth accepted a name the store cannot use as a path.
		log.Error("pop3: user cannot have a maildrop", "err", err)
		return &replyError{code: codeSysPerm, text: "Your mailbox cannot be opened, please contact the administrator."}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errShuttingDown
	default:
		log.Error("pop3: command failed", "err", err)
		return errInternal
	}
}

// fatalError ends the session without a reply: the connection is broken,
// or a multi-line reply was cut short and the client cannot be told.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return "pop3: " + e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }
