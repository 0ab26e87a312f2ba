package imap

import (
	"net/mail"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/imap/internal/mailaddr"
)

// envelope is a message's ENVELOPE (RFC 3501 §7.4.2): the header
// values as written (unfolded, encoded-words not decoded), as Dovecot sends
// them.
type envelopeData struct {
	date, subject                      string
	from, sender, replyTo, to, cc, bcc []address
	inReplyTo                          []string
	messageID                          string
}

// address is an ENVELOPE address: name, source route (RFC 822 obsolete
// route, "@a,@b"), mailbox and host. A group is a start marker (mailbox
// the group name, host empty) and an end marker (all empty).
type address struct {
	name, route, mailbox, host string
	groupStart, groupEnd       bool
}

func envelope(p *mimePart) *envelopeData {
	env := &envelopeData{
		date:    strings.TrimSpace(p.header("date")),
		subject: p.header("subject"),
		from:    addressList(p.header("from")),
		sender:  addressList(p.header("sender")),
		replyTo: addressList(p.header("reply-to")),
		to:      addressList(p.header("to")),
		cc:      addressList(p.header("cc")),
		bcc:     addressList(p.header("bcc")),
	}
	env.inReplyTo = msgIDs(p.header("in-reply-to"))
	if ids := msgIDs(p.header("message-id")); len(ids) > 0 {
		env.messageID = ids[0]
	}
	return env
}

// msgIDs returns the "<...>" ids in a header value, without the brackets;
// a value with none is taken whole.
func msgIDs(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 {
		ids = []string{strings.Trim(v, "<> \t")}
	}
	return ids
}

// addressList parses an RFC 5322 address list into ENVELOPE addresses with
// package mailaddr, which SORT's address keys also come from (RFC 5256 §3,
// RFC 5957 §3: what a client sorts by is what it is shown). Display names
// stay as written (quotes removed, encoded-words kept); groups become the
// start and end markers of RFC 3501 §7.4.2.
func addressList(v string) []address {
	list := mailaddr.List(v)
	if len(list) == 0 {
		return nil
	}
	out := make([]address, len(list))
	for i, a := range list {
		out[i] = address{name: a.Name, route: a.Route, mailbox: a.Mailbox, host: a.Host,
			groupStart: a.Kind == mailaddr.GroupStart, groupEnd: a.Kind == mailaddr.GroupEnd}
	}
	return out
}

// sentDate is a Date header's day, for SENTBEFORE and the like.
func sentDate(d string) (time.Time, bool) {
	if d == "" {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(stripComments(d))
	return t, err == nil
}
