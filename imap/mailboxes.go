package imap

import (
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/letterbox-mail/letterbox/store"
)

// Mailbox commands of the authenticated state: CREATE, DELETE, RENAME,
// SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB and STATUS. Names arrive decoded
// (imapserver undoes modified UTF-7) and are checked by the store, which
// refuses anything that is not a folder of this user ("../x", ".", "*").

var useAttrs = []struct {
	use  store.SpecialUse
	attr imap.MailboxAttr
}{
	{store.UseAll, imap.MailboxAttrAll},
	{store.UseArchive, imap.MailboxAttrArchive},
	{store.UseDrafts, imap.MailboxAttrDrafts},
	{store.UseFlagged, imap.MailboxAttrFlagged},
	{store.UseJunk, imap.MailboxAttrJunk},
	{store.UseSent, imap.MailboxAttrSent},
	{store.UseTrash, imap.MailboxAttrTrash},
}

func useAttr(u store.SpecialUse) (imap.MailboxAttr, bool) {
	for _, x := range useAttrs {
		if x.use == u {
			return x.attr, true
		}
	}
	return "", false
}

// Create is CREATE, with CREATE-SPECIAL-USE (RFC 6154 §3). A trailing
// "/" only says the client means to put children in it (RFC 3501 §6.3.3).
func (s *session) Create(name string, opts *imap.CreateOptions) error {
	if err := s.needUser(); err != nil {
		return err
	}
	name = strings.TrimSuffix(name, string(store.Separator))
	use := store.UseNone
	if opts != nil && len(opts.SpecialUse) > 0 {
		if len(opts.SpecialUse) > 1 {
			return newError(imap.StatusResponseTypeNo, "USEATTR", "One special use per mailbox")
		}
		found := false
		for _, x := range useAttrs {
			if strings.EqualFold(string(x.attr), string(opts.SpecialUse[0])) {
				use, found = x.use, true
			}
		}
		if !found {
			return newError(imap.StatusResponseTypeNo, "USEATTR", "Unsupported special use")
		}
	}
	return s.fail("create", s.user.Create(name, use))
}

// Delete is DELETE. Children of a deleted folder stay; it then lists as
// \Noselect. Sessions that have it selected are disconnected.
func (s *session) Delete(name string) error {
	if err := s.needUser(); err != nil {
		return err
	}
	return s.fail("delete", s.user.Delete(store.CanonicalName(name)))
}

// Rename is RENAME, children included; RENAME INBOX moves its messages
// into a new folder (RFC 3501 §6.3.5).
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	if err := s.needUser(); err != nil {
		return err
	}
	return s.fail("rename", s.user.Rename(s.ctx, oldName, strings.TrimSuffix(newName, string(store.Separator))))
}

// Subscribe is SUBSCRIBE; the name need not exist.
func (s *session) Subscribe(name string) error {
	if err := s.needUser(); err != nil {
		return err
	}
	return s.fail("subscribe", s.user.Subscribe(name))
}

// Unsubscribe is UNSUBSCRIBE.
func (s *session) Unsubscribe(name string) error {
	if err := s.needUser(); err != nil {
		return err
	}
	err := s.user.Unsubscribe(name)
	if errors.Is(err, store.ErrNotFound) {
		return newError(imap.StatusResponseTypeNo, imap.ResponseCodeNonExistent, "Not subscribed")
	}
	return s.fail("unsubscribe", err)
}

// listEntry is a name LIST or LSUB may show.
type listEntry struct {
	name        string
	exists      bool // a folder that can be selected
	parent      bool // exists only as the parent of others
	hasChildren bool
	subscribed  bool
	use         store.SpecialUse
}

// List is LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and
// SPECIAL-USE (RFC 6154), and LSUB (RFC 3501 §6.3.9), which imapserver
// passes here as a LIST with the SUBSCRIBED selection.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) error {
	if err := s.needUser(); err != nil {
		return err
	}
	if len(patterns) == 0 {
		// LIST "" "" asks for the delimiter (RFC 3501 §6.3.8).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: store.Separator})
	}
	entries, subs, err := s.listEntries()
	if err != nil {
		return s.fail("list", err)
	}
	ref = canonInbox(ref)
	for i := range patterns {
		if ref == "" {
			patterns[i] = canonInbox(patterns[i])
		}
	}
	match := func(name string) bool {
		for _, p := range patterns {
			if imapserver.MatchList(name, store.Separator, ref, p) {
				return true
			}
		}
		return false
	}
	if s.wc.command() == "LSUB" {
		return s.lsub(w, entries, subs, match)
	}
	extended := opts.SelectSubscribed || opts.SelectRemote || opts.SelectRecursiveMatch ||
		opts.SelectSpecialUse || opts.ReturnSubscribed || opts.ReturnChildren ||
		opts.ReturnSpecialUse || opts.ReturnStatus != nil || len(patterns) > 1
	for _, e := range entries {
		if !match(e.name) || (!e.exists && !e.parent && !opts.SelectSubscribed) {
			continue
		}
		selected := (!opts.SelectSubscribed || e.subscribed) &&
			(!opts.SelectSpecialUse || e.use != store.UseNone)
		var childInfo bool
		if !selected {
			// RFC 5258 §3.5: a parent of a match of the selection.
			if opts.SelectRecursiveMatch && hasDescendant(entries, e.name, func(c listEntry) bool { return c.subscribed }) {
				childInfo = true
			} else {
				continue
			}
		}
		data := &imap.ListData{Delim: store.Separator, Mailbox: e.name}
		switch {
		case !e.exists && !e.parent || (!e.exists && extended):
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		case !e.exists:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if e.exists || e.parent {
			if e.hasChildren {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if attr, ok := useAttr(e.use); ok {
			data.Attrs = append(data.Attrs, attr)
		}
		if selected && e.subscribed && (opts.ReturnSubscribed || opts.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if childInfo {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if opts.ReturnStatus != nil && e.exists && selected {
			st, err := s.status(e.name, opts.ReturnStatus)
			if err == nil {
				data.Status = st
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// lsub answers LSUB: the subscribed names that match, in the order of the
// subscriptions file, and, for "%", a \Noselect parent of a deeper
// subscription that is not itself subscribed (RFC 3501 §6.3.9).
func (s *session) lsub(w *imapserver.ListWriter, entries []listEntry, subs []string, match func(string) bool) error {
	uses := make(map[string]store.SpecialUse)
	for _, e := range entries {
		uses[e.name] = e.use
	}
	isSub := make(map[string]bool, len(subs))
	for _, n := range subs {
		isSub[n] = true
	}
	sent := make(map[string]bool)
	for _, n := range subs {
		if match(n) {
			if sent[n] {
				continue
			}
			sent[n] = true
			data := &imap.ListData{Delim: store.Separator, Mailbox: n, Attrs: []imap.MailboxAttr{}}
			if attr, ok := useAttr(uses[n]); ok {
				data.Attrs = append(data.Attrs, attr)
			}
			if err := w.WriteList(data); err != nil {
				return err
			}
			continue
		}
		for i := strings.LastIndexByte(n, store.Separator); i > 0; i = strings.LastIndexByte(n[:i], store.Separator) {
			parent := n[:i]
			if isSub[parent] || sent[parent] || !match(parent) {
				continue
			}
			sent[parent] = true
			data := &imap.ListData{Delim: store.Separator, Mailbox: parent, Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}}
			if err := w.WriteList(data); err != nil {
				return err
			}
		}
	}
	return nil
}

// listEntries merges the folders with the subscriptions, which may name
// folders that do not exist, and returns the subscriptions too.
func (s *session) listEntries() ([]listEntry, []string, error) {
	infos, err := s.user.List()
	if err != nil {
		return nil, nil, err
	}
	subs, err := s.user.Subscriptions()
	if err != nil {
		return nil, nil, err
	}
	out := make([]listEntry, 0, len(infos)+len(subs))
	known := make(map[string]bool, len(infos))
	for _, mi := range infos {
		known[mi.Name] = true
		out = append(out, listEntry{
			name:        mi.Name,
			exists:      !mi.NoSelect,
			parent:      mi.NoSelect,
			hasChildren: mi.HasChildren,
			subscribed:  mi.Subscribed,
			use:         mi.SpecialUse,
		})
	}
	for _, n := range subs {
		if !known[n] {
			known[n] = true
			out = append(out, listEntry{name: n, subscribed: true})
		}
	}
	return out, subs, nil
}

func hasDescendant(entries []listEntry, name string, pred func(listEntry) bool) bool {
	prefix := name + string(store.Separator)
	for _, e := range entries {
		if strings.HasPrefix(e.name, prefix) && pred(e) {
			return true
		}
	}
	return false
}

// canonInbox upper-cases a leading INBOX level of a name or pattern:
// INBOX is case-insensitive (RFC 3501 §5.1).
func canonInbox(s string) string {
	if len(s) >= 5 && strings.EqualFold(s[:5], store.Inbox) &&
		(len(s) == 5 || s[5] == store.Separator || s[5] == '*' || s[5] == '%') {
		return store.Inbox + s[5:]
	}
	return s
}

// Status is STATUS. Every item asked for is answered: imapserver writes
// the fields it was asked for without looking, so all are filled.
func (s *session) Status(name string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	if err := s.needUser(); err != nil {
		return nil, err
	}
	return s.status(store.CanonicalName(name), opts)
}

func (s *session) status(name string, opts *imap.StatusOptions) (*imap.StatusData, error) {
	var mbox *store.Mailbox
	sel := s.selectedAs(name)
	if sel != nil {
		mbox = sel.mbox
	} else {
		m, err := s.user.Open(s.ctx, name)
		if err != nil {
			return nil, s.fail("status", err)
		}
		defer m.Close()
		mbox = m
	}
	st, err := mbox.Status(s.ctx)
	if err != nil {
		return nil, s.fail("status", err)
	}
	deletedSize := st.DeletedSize
	recent := st.Recent
	if sel != nil {
		recent += len(sel.recent)
	}
	num := func(n int) *uint32 { v := uint32(n); return &v }
	size, limit := st.Size, uint32(s.srv.appendLimit())
	return &imap.StatusData{
		Mailbox:        name,
		NumMessages:    num(st.Messages),
		NumRecent:      num(recent),
		UIDNext:        imap.UID(st.UIDNext),
		UIDValidity:    st.UIDValidity,
		NumUnseen:      num(st.Unseen),
		NumDeleted:     num(st.Deleted),
		Size:           &size,
		AppendLimit:    &limit,
		DeletedStorage: &deletedSize,
	}, nil
}
