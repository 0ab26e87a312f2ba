package imap

import (
	"strings"
)

// NOTIFY (RFC 5465): the client names the mailboxes it wants to hear of
// and the events, and the server tells it as they happen, between
// commands as well as in IDLE:
//
//   - the selected mailbox (filter SELECTED or SELECTED-DELAYED):
//     EXISTS, EXPUNGE (at once with SELECTED, at the next command that may
//     carry one with SELECTED-DELAYED) and FETCH FLAGS, as a client
//     running NOOP would see them, plus FETCH of MessageNew's fetch-att
//     for each new message;
//   - other mailboxes: STATUS with MESSAGES, UIDNEXT and UNSEEN after
//     new and expunged messages, UNSEEN after flag changes, each with
//     HIGHESTMODSEQ once CONDSTORE is on (§5.1–5.3);
//   - the folder list and subscriptions: LIST, with \NonExistent for a
//     deleted mailbox and OLDNAME for a renamed one (§5.4, §5.5).
//
// Changes come from the store's feeds: each watched mailbox's change feed
// and the user's folder feed (store.FolderWatch), both of which hear of
// other processes and hosts too. AnnotationChange and the METADATA events
// are refused with BADEVENT: Letterbox has no annotations or metadata.
// INBOXES means the same as PERSONAL, as in Dovecot: any folder can be
// delivered to (letterbox deliver --mailbox).

type notifyEvents uint8

const (
	evMessageNew notifyEvents = 1 << iota
	evMessageExpunge
	evFlagChange
	evMailboxName
	evSubscriptionChange

	evMessages = evMessageNew | evMessageExpunge | evFlagChange
	evFolders  = evMailboxName | evSubscriptionChange
)

// supportedEvents is BADEVENT's list (§6): the events this server has.
const supportedEvents = "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)"

var eventNames = map[string]notifyEvents{
	"MESSAGENEW":         evMessageNew,
	"MESSAGEEXPUNGE":     evMessageExpunge,
	"FLAGCHANGE":         evFlagChange,
	"MAILBOXNAME":        evMailboxName,
	"SUBSCRIPTIONCHANGE": evSubscriptionChange,
}

type filterKind uint8

const (
	filterPersonal filterKind = iota + 1 // PERSONAL and INBOXES
	filterSubscribed
	filterSubtree
	filterMailboxes
)

// notifyGroup is one event group of other mailboxes than the selected.
type notifyGroup struct {
	kind   filterKind
	names  []string // SUBTREE and MAILBOXES, in the store's form
	events notifyEvents
}

// matches reports whether the group covers the mailbox name.
func (g *notifyGroup) matches(name string, subscribed func(string) bool) bool {
	switch g.kind {
	case filterPersonal:
		return true
	case filterSubscribed:
		return subscribed(name)
	case filterSubtree:
		for _, n := range g.names {
			if name == n || strings.HasPrefix(name, n+"/") {
				return true
			}
		}
	case filterMailboxes:
		for _, n := range g.names {
			if name == n {
				return true
			}
		}
	}
	return false
}

// notifySpec is a decoded NOTIFY SET.
type notifySpec struct {
	status   bool // SET STATUS: a STATUS of each mailbox now
	groups   []notifyGroup
	selected notifyEvents // for the selected mailbox; 0: none
	// immediate: SELECTED rather than SELECTED-DELAYED, expunges go out
	// at once.
	immediate bool
	fetch     *fetchArgs // MessageNew's fetch-att for the selected one
}

// maxNotifyNames bounds the mailbox names of one NOTIFY.
const maxNotifyNames = 1000

// parseNotify decodes the arguments of NOTIFY: nil for NONE. An event
// this server does not have is reported through unsupported, after the
// whole command was read, so it gets NO [BADEVENT] rather than BAD.
func (s *session) parseNotify(p *parser) (spec *notifySpec, unsupported bool) {
	p.sp()
	switch w := p.word(); w {
	case "NONE":
		p.end()
		return nil, false
	case "SET":
	default:
		p.fail("NOTIFY wants SET or NONE, not %s", w)
	}
	spec = new(notifySpec)
	p.sp()
	if p.peek() != '(' {
		if w := p.word(); w != "STATUS" {
			p.fail("unknown NOTIFY SET option %s", w)
		}
		spec.status = true
		p.sp()
	}
	selectedSet := false
	names := 0
	for {
		p.expect('(')
		filter := p.word()
		var g notifyGroup
		isSelected := false
		switch filter {
		case "SELECTED", "SELECTED-DELAYED":
			if selectedSet {
				p.fail("SELECTED given twice")
			}
			selectedSet, isSelected = true, true
			spec.immediate = filter == "SELECTED"
		case "INBOXES", "PERSONAL":
			g.kind = filterPersonal
		case "SUBSCRIBED":
			g.kind = filterSubscribed
		case "SUBTREE", "MAILBOXES":
			g.kind = filterSubtree
			if filter == "MAILBOXES" {
				g.kind = filterMailboxes
			}
			p.sp()
			add := func() {
				names++
				if names > maxNotifyNames {
					p.fail("too many mailbox names")
				}
				// A name that cannot exist names no mailbox: nothing
				// to watch, and no error (§3.1).
				if n, err := s.decodeName(p.astring()); err == nil {
					g.names = append(g.names, n)
				}
			}
			if p.peek() == '(' {
				p.list(false, add)
			} else {
				add()
			}
		default:
			p.fail("unknown NOTIFY filter %s", filter)
		}
		p.sp()
		var events notifyEvents
		if p.peek() == '(' {
			p.list(false, func() {
				name := p.word()
				ev, ok := eventNames[name]
				if !ok {
					unsupported = true // AnnotationChange, METADATA, extensions
				}
				if ev == evMessageNew && p.pos+1 < len(p.line) && p.line[p.pos] == ' ' && p.line[p.pos+1] == '(' {
					if !isSelected {
						p.fail("fetch attributes only for the selected mailbox")
					}
					p.sp()
					fa := new(fetchArgs)
					p.list(false, func() { fa.addItem(p, p.word()) })
					// A notification must not set \Seen: every body is
					// fetched as with PEEK (the response names no PEEK).
					for i := range fa.items {
						if it := &fa.items[i]; it.section != nil {
							sec := *it.section
							sec.Peek = true
							it.section = &sec
						}
						fa.items[i].peek = true
					}
					spec.fetch = fa
				}
				events |= ev
			})
		} else if w := p.word(); w != "NONE" {
			p.fail("events must be a list or NONE, not %s", w)
		}
		p.expect(')')
		// §5: MessageNew and MessageExpunge go together, and FlagChange
		// needs both; §6.1: the selected mailbox has message events only.
		if m := events & (evMessageNew | evMessageExpunge); m != 0 && m != evMessageNew|evMessageExpunge {
			p.fail("MessageNew and MessageExpunge must be given together")
		}
		if events&evFlagChange != 0 && events&evMessageNew == 0 {
			p.fail("FlagChange needs MessageNew and MessageExpunge")
		}
		if isSelected {
			if events&evFolders != 0 {
				p.fail("mailbox events cannot be given for the selected mailbox")
			}
			spec.selected = events
		} else if events != 0 {
			g.events = events
			spec.groups = append(spec.groups, g)
		}
		if !p.maybeSP() {
			break
		}
	}
	p.end()
	return spec, unsupported
}

// cmdNotify is NOTIFY (RFC 5465 §3.1).
func (s *session) cmdNotify(cmd *command) error {
	spec, unsupported := s.parseNotify(cmd.p)
	if unsupported {
		return no("BADEVENT "+supportedEvents, "Unsupported NOTIFY event")
	}
	s.stopNotify()
	if spec == nil {
		return nil
	}
	return s.startNotify(spec)
}
