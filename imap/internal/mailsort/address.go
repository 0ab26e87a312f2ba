package mailsort

import (
	"strings"
	"unicode/utf8"

	"github.com/letterbox-mail/letterbox/imap/internal/mailaddr"
)

// The address keys come from the first address of the field as the IMAP
// engine's ENVELOPE shows it: both read it with package mailaddr, so a
// client sorts by what it is shown.

// AddrMailboxKey returns the SORT key of an address field (From, To, Cc):
// the [IMAP] addr-mailbox of its first address (RFC 5256 §3), as an
// ENVELOPE shows it (RFC 3501 §7.4.2): the local part without quoting,
// comments or an obsolete route; the group name when the field starts with
// a group; "" for a missing, empty or unparseable field.
func AddrMailboxKey(raw string) string {
	a, _ := firstAddress(raw)
	return a.Mailbox
}

// DisplayKey returns the DISPLAYFROM/DISPLAYTO sort value of an address
// field (RFC 5957 §3) for its first address: the display name with
// encoded-words decoded and spaces trimmed and collapsed, if that is not
// empty; else addr-mailbox@addr-host; else addr-mailbox; else "". An
// addr-spec without a display name but with a comment, "user@host (Real
// Name)", shows the comment as its name, as ENVELOPE does.
func DisplayKey(raw string) string {
	a, _ := firstAddress(raw)
	if a.Name != "" {
		if n := strings.Trim(decodeText(a.Name), " "); n != "" {
			return n
		}
	}
	if a.Mailbox != "" && a.Host != "" {
		return a.Mailbox + "@" + a.Host
	}
	return a.Mailbox
}

// firstAddress is the first address of a field, read as UTF-8 (8-bit text
// that is not UTF-8 as Windows-1252, as decodeText does): keys are UTF-8.
func firstAddress(raw string) (mailaddr.Address, bool) {
	if !utf8.ValidString(raw) {
		raw = latin1ish(raw)
	}
	return mailaddr.First(raw)
}
