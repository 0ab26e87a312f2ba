package imap

import (
	"cmp"
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/letterbox-mail/letterbox/store"
)

// Mailbox commands of the authenticated state: CREATE, DELETE, RENAME,
// SUBSCRIBE, UNSUBSCRIBE and STATUS. Names are checked by the store, which
// refuses anything that is not a folder of this user ("../x", ".", "*").

// cmdCreate is CREATE, with CREATE-SPECIAL-USE (RFC 6154 §3). A trailing
// "/" only says the client means to put children in it (RFC 3501 §6.3.3).
func (s *session) cmdCreate(cmd *command) error {
	p := cmd.p
	p.sp()
	raw := p.astring()
	var uses []string
	if p.maybeSP() {
		p.list(false, func() {
			if w := p.word(); w != "USE" {
				p.fail("unknown CREATE parameter %s", w)
			}
			p.sp()
			p.list(false, func() { uses = append(uses, string(p.flag())) })
		})
	}
	p.end()
	name, err := s.decodeName(raw)
	if err != nil {
		return err
	}
	name = strings.TrimSuffix(name, string(store.Separator))
	use := store.UseNone
	if len(uses) > 1 {
		return no("USEATTR", "One special use per mailbox")
	}
	if len(uses) == 1 {
		found := false
		for _, x := range useAttrs {
			if strings.EqualFold(string(x.attr), uses[0]) {
				use, found = x.use, true
			}
		}
		if !found {
			return no("USEATTR", "Unsupported special use")
		}
	}
	return s.user.Create(name, use)
}

// cmdDelete is DELETE. Children of a deleted folder stay; it then lists as
// \Noselect. Sessions that have it selected are disconnected.
func (s *session) cmdDelete(cmd *command) error {
	p := cmd.p
	p.sp()
	name, err := s.mailbox(p)
	p.end()
	if err != nil {
		return err
	}
	return s.user.Delete(name)
}

// cmdRename is RENAME, children included; RENAME INBOX moves its messages
// into a new folder (RFC 3501 §6.3.5).
func (s *session) cmdRename(cmd *command) error {
	p := cmd.p
	p.sp()
	from, err1 := s.mailbox(p)
	p.sp()
	to, err2 := s.mailbox(p)
	p.end()
	// Both names are read before either is judged, so a bad command is
	// BAD whichever name is also bad.
	if err := cmp.Or(err1, err2); err != nil {
		return err
	}
	return s.user.Rename(s.ctx, from, strings.TrimSuffix(to, string(store.Separator)))
}

// cmdSubscribe is SUBSCRIBE (the name need not exist) and UNSUBSCRIBE.
func (s *session) cmdSubscribe(cmd *command) error {
	p := cmd.p
	p.sp()
	name, err := s.mailbox(p)
	p.end()
	if err != nil {
		return err
	}
	return s.user.Subscribe(name)
}

func (s *session) cmdUnsubscribe(cmd *command) error {
	p := cmd.p
	p.sp()
	name, err := s.mailbox(p)
	p.end()
	if err != nil {
		return err
	}
	if err := s.user.Unsubscribe(name); errors.Is(err, store.ErrNotFound) {
		return no("NONEXISTENT", "Not subscribed")
	} else if err != nil {
		return err
	}
	return nil
}

// parseStatusItems reads "(" status-att *(SP status-att) ")".
func parseStatusItems(p *parser) *imap.StatusOptions {
	var o imap.StatusOptions
	p.list(false, func() {
		switch w := p.word(); w {
		case "MESSAGES":
			o.NumMessages = true
		case "RECENT":
			o.NumRecent = true
		case "UIDNEXT":
			o.UIDNext = true
		case "UIDVALIDITY":
			o.UIDValidity = true
		case "UNSEEN":
			o.NumUnseen = true
		case "DELETED":
			o.NumDeleted = true
		case "SIZE":
			o.Size = true
		case "APPENDLIMIT":
			o.AppendLimit = true
		case "DELETED-STORAGE":
			o.DeletedStorage = true
		case "HIGHESTMODSEQ":
			o.HighestModSeq = true // RFC 7162 §3.1.7
		default:
			p.fail("unknown STATUS item %s", w)
		}
	})
	return &o
}

// cmdStatus is STATUS (RFC 3501 §6.3.10) with SIZE (RFC 8438), DELETED
// (RFC 9051), APPENDLIMIT (RFC 7889) and DELETED-STORAGE (RFC 9208).
func (s *session) cmdStatus(cmd *command) error {
	p := cmd.p
	p.sp()
	name, err := s.mailbox(p)
	p.sp()
	items := parseStatusItems(p)
	p.end()
	if items.HighestModSeq {
		s.enableCondstore()
	}
	if err != nil {
		return err
	}
	st, err := s.status(name, items)
	if err != nil {
		return err
	}
	s.writeStatus(name, items, st)
	return nil
}

// status reads a mailbox's numbers; the selected one's through its handle.
// Only SIZE, DELETED and DELETED-STORAGE need every message's size and
// flags; the other items come from the counters (store.Mailbox.Counts).
// Nil items: everything (QUOTA sums the sizes).
func (s *session) status(name string, items *imap.StatusOptions) (store.Status, error) {
	read := func(m *store.Mailbox) (store.Status, error) {
		if items == nil || items.Size || items.NumDeleted || items.DeletedStorage {
			return m.Status(s.ctx)
		}
		return m.Counts(s.ctx)
	}
	if sel := s.sel; sel != nil && sel.name == name {
		st, err := read(sel.mbox)
		st.Recent += sel.recentCount()
		return st, err
	}
	m, err := s.user.Open(s.ctx, name)
	if err != nil {
		return store.Status{}, err
	}
	defer m.Close()
	return read(m)
}

// writeStatus writes "* STATUS name (...)" with the items asked for.
func (s *session) writeStatus(name string, items *imap.StatusOptions, st store.Status) {
	o := &s.c.out
	o.writeString("* STATUS ")
	s.writeName(name)
	var parts []string
	add := func(on bool, k string, v int64) {
		if on {
			parts = append(parts, k+" "+itoa64(v))
		}
	}
	add(items.NumMessages, "MESSAGES", int64(st.Messages))
	add(items.UIDNext, "UIDNEXT", int64(st.UIDNext))
	add(items.UIDValidity, "UIDVALIDITY", int64(st.UIDValidity))
	add(items.NumUnseen, "UNSEEN", int64(st.Unseen))
	add(items.NumDeleted, "DELETED", int64(st.Deleted))
	add(items.Size, "SIZE", st.Size)
	add(items.AppendLimit, "APPENDLIMIT", s.srv.appendLimit())
	add(items.DeletedStorage, "DELETED-STORAGE", st.DeletedSize)
	add(items.HighestModSeq, "HIGHESTMODSEQ", int64(st.HighestModSeq))
	add(items.NumRecent, "RECENT", int64(st.Recent))
	o.writeString(" (" + strings.Join(parts, " ") + ")\r\n")
}
