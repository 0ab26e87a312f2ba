package imap

import (
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// flagRecent is RFC 3501's \Recent, gone from IMAP4rev2 and imap's list.
const flagRecent imap.Flag = `\Recent`

// systemFlags in the order Dovecot lists them.
var systemFlags = []struct {
	imap  imap.Flag
	store store.Flag
}{
	{imap.FlagAnswered, store.FlagAnswered},
	{imap.FlagFlagged, store.FlagFlagged},
	{imap.FlagDeleted, store.FlagDeleted},
	{imap.FlagSeen, store.FlagSeen},
	{imap.FlagDraft, store.FlagDraft},
}

// imapFlags turns the store's flags and keywords into FLAGS.
func imapFlags(f store.Flag, keywords []string) []imap.Flag {
	return appendFlags(make([]imap.Flag, 0, 4+len(keywords)), f, keywords)
}

// appendFlags is imapFlags into a slice the caller reuses.
func appendFlags(out []imap.Flag, f store.Flag, keywords []string) []imap.Flag {
	for _, sf := range systemFlags {
		if f&sf.store != 0 {
			out = append(out, sf.imap)
		}
	}
	for _, k := range keywords {
		out = append(out, imap.Flag(k))
	}
	return out
}

// mailboxFlags is the FLAGS list of a mailbox: the system flags and every
// keyword defined in it.
func mailboxFlags(keywords []string) []imap.Flag {
	var all store.Flag
	for _, sf := range systemFlags {
		all |= sf.store
	}
	return imapFlags(all, keywords)
}

// systemFlag finds a system flag by name, case-insensitively.
func systemFlag(fl imap.Flag) (store.Flag, bool) {
	for _, sf := range systemFlags {
		if strings.EqualFold(string(fl), string(sf.imap)) {
			return sf.store, true
		}
	}
	return 0, false
}

// storeFlags splits flags from a client into system flags and keywords.
// System flags are matched case-insensitively; keywords keep the case the
// client gave. \Recent cannot be set and is ignored (RFC 3501 §2.3.2).
func storeFlags(flags []imap.Flag) (store.Flag, []string, error) {
	var f store.Flag
	var kws []string
	for _, fl := range flags {
		s := string(fl)
		if strings.HasPrefix(s, `\`) {
			sf, ok := systemFlag(fl)
			if !ok && !strings.EqualFold(s, string(flagRecent)) {
				return 0, nil, bad("", "Unknown system flag "+s)
			}
			f |= sf
			continue
		}
		if !slices.ContainsFunc(kws, func(k string) bool { return strings.EqualFold(k, s) }) {
			kws = append(kws, s)
		}
	}
	return f, kws, nil
}

// writeFlags writes a parenthesized flag list.
func writeFlags(o *output, flags []imap.Flag) {
	o.byte1('(')
	for i, f := range flags {
		if i > 0 {
			o.sp()
		}
		o.writeString(string(f))
	}
	o.byte1(')')
}

func itoa(n int) string     { return strconv.Itoa(n) }
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
