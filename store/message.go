package store

import (
	"time"

	"github.com/emersion/go-maildir"
)

// Flag is a set of Maildir info flags: the upper-case letters after ":2,".
// Letters the store has no name for (Courier's "P" among them) are kept as
// they are, so nothing another program wrote is lost.
type Flag uint32

// The Maildir flags with their IMAP meaning.
const (
	FlagDraft    = Flag(1) << (maildir.FlagDraft - 'A')   // D, \Draft
	FlagFlagged  = Flag(1) << (maildir.FlagFlagged - 'A') // F, \Flagged
	FlagPassed   = Flag(1) << (maildir.FlagPassed - 'A')  // P, forwarded (Courier)
	FlagAnswered = Flag(1) << (maildir.FlagReplied - 'A') // R, \Answered
	FlagSeen     = Flag(1) << (maildir.FlagSeen - 'A')    // S, \Seen
	FlagDeleted  = Flag(1) << (maildir.FlagTrashed - 'A') // T, \Deleted
)

// Has reports whether all of want are set.
func (f Flag) Has(want Flag) bool { return f&want == want }

// FlagOp says how SetFlags combines the given flags with a message's own.
type FlagOp int

// The three STORE operations of IMAP, which POP3 needs too (RETR sets Seen).
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Message is what the index knows of one message. It is a copy: changing it
// changes nothing on disk.
type Message struct {
	UID   uint32
	Flags Flag
	// Keywords are the message's keywords in the mailbox's keyword order.
	// The slice is shared and must not be modified.
	Keywords []string
	// Size is the size with every bare LF counted as CRLF: what the
	// message is on the wire (IMAP RFC822.SIZE, POP3 LIST).
	Size int64
	// Recent is true until some session claims it with ClaimRecent.
	Recent bool
	// ModSeq is the RFC 7162 MODSEQ of the message's last change.
	ModSeq uint64
}

// Change is one event in a mailbox's change feed. Changes are delivered in
// the order they happened, to every watcher of the mailbox.
type Change struct {
	Kind ChangeKind
	UID  uint32
	// Seq is the 1-based position of the message in the mailbox: after
	// the append for Appended (so it is the new message count), before the
	// removal for Expunged, the current one for FlagsChanged.
	Seq int
	// Flags and Keywords are the new flags, for FlagsChanged.
	Flags    Flag
	Keywords []string
	// ModSeq is the MODSEQ the change got (RFC 7162): the message's new
	// MODSEQ for Appended and FlagsChanged, the expunge's for Expunged.
	ModSeq uint64
	// Origin is what the caller passed to the mutating call, so a session
	// can tell its own changes from others'. Nil for changes made by other
	// processes or found on disk.
	Origin any
}

// ChangeKind tells what a Change is.
type ChangeKind int

// The kinds of change in a mailbox.
const (
	// Appended: a new message, always at the end of the mailbox.
	Appended ChangeKind = iota + 1
	// FlagsChanged: a message's flags or keywords changed.
	FlagsChanged
	// Expunged: a message is gone.
	Expunged
	// KeywordsChanged: the mailbox has a new keyword (see View.Keywords).
	KeywordsChanged
	// Invalidated: the mailbox was deleted or its UIDVALIDITY changed.
	// Sessions holding sequence numbers or UIDs of it must close it.
	Invalidated
)

// Status sums up a mailbox.
type Status struct {
	Messages    int
	Recent      int
	Unseen      int
	Deleted     int
	DeletedSize int64 // sum of Message.Size of the Deleted ones
	Size        int64 // sum of Message.Size
	UIDNext     uint32
	UIDValidity uint32
	// HighestModSeq is the MODSEQ of the mailbox's last change.
	HighestModSeq uint64
	// FirstUnseen is the sequence number of the first message without
	// FlagSeen, 0 if there is none.
	FirstUnseen int
}

// AppendOptions go with Mailbox.Append.
type AppendOptions struct {
	Flags    Flag
	Keywords []string
	// Date is the internal date (the file's mtime). Zero means now.
	Date time.Time
	// MaxSize refuses bigger messages with ErrTooBig. Zero means no limit.
	MaxSize int64
	// Size, when not zero, is the exact size the message must have (an
	// IMAP literal announces it): a reader that ends early (a client that
	// went away) stores nothing and gets io.ErrUnexpectedEOF.
	Size int64
	// Origin is passed on in the change feed.
	Origin any
}

// ExpungeOptions go with Mailbox.Expunge.
type ExpungeOptions struct {
	// UIDs restricts the expunge to these messages; nil means all.
	UIDs []uint32
	// OnlyDeleted expunges only messages with FlagDeleted, checked
	// atomically with the removal.
	OnlyDeleted bool
	// Origin is passed on in the change feed.
	Origin any
}
