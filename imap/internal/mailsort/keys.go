package mailsort

// Keys are what SORT and THREAD compare of one message. Every field is a
// plain value so that a store can cache it; FromHeader fills the fields
// that come from the header, the caller the rest.
type Keys struct {
	// Arrival is the INTERNALDATE in Unix seconds (ARRIVAL; the sent
	// date when the message has none).
	Arrival int64
	// Size is the RFC822.SIZE (SIZE).
	Size int64

	// Sent is the sent date of RFC 5256 §2.2 in Unix seconds, valid only
	// if HasSent; otherwise the message sorts and threads by Arrival, as
	// §2.2 requires for a missing or unparseable Date field.
	Sent    int64
	HasSent bool

	// Subject is the base subject (BaseSubject); ReplyOrFwd says whether
	// the original subject marked a reply or forward.
	Subject    string
	ReplyOrFwd bool

	// From, To and Cc are the addr-mailbox keys of those fields
	// (AddrMailboxKey); DisplayFrom and DisplayTo the RFC 5957 display
	// values (DisplayKey).
	From, To, Cc           string
	DisplayFrom, DisplayTo string

	// MessageID is the first valid ID of Message-ID (MessageID), ""
	// if none; References the message's parent chain, oldest first
	// (References).
	MessageID  string
	References []string
}

// SentDate is the date THREAD and the DATE criterion use: the sent date,
// or the arrival date when the message has none (RFC 5256 §2.2).
func (k *Keys) SentDate() int64 {
	if k.HasSent {
		return k.Sent
	}
	return k.Arrival
}

// FromHeader computes the header-derived keys of a message. get returns
// the raw value of the first header field of a name (case-insensitive),
// folded or not, "" if the message has none; a go-message textproto.Header
// Get method fits. Arrival and Size are left for the caller.
func FromHeader(get func(name string) string) Keys {
	var k Keys
	k.Subject, k.ReplyOrFwd = BaseSubject(get("Subject"))
	if t, ok := SentDate(get("Date")); ok {
		k.Sent, k.HasSent = t.Unix(), true
	}
	from, to := get("From"), get("To")
	k.From, k.To, k.Cc = AddrMailboxKey(from), AddrMailboxKey(to), AddrMailboxKey(get("Cc"))
	k.DisplayFrom, k.DisplayTo = DisplayKey(from), DisplayKey(to)
	k.MessageID = MessageID(get("Message-ID"))
	k.References = References(get("References"), get("In-Reply-To"))
	return k
}
