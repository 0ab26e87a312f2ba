package imap

import (
	"slices"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// CONTEXT=SEARCH (RFC 5267) for SEARCH (and SORT, sort_context.go): RETURN
// (PARTIAL m:n) cuts the result, RETURN (CONTEXT) is a hint we take, and
// RETURN (UPDATE) keeps the search alive: as messages come to match it or
// stop matching, "* ESEARCH (TAG ...) UID ADDTO (0 uids)" and "REMOVEFROM"
// follow the other updates of the mailbox, until CANCELUPDATE or the
// mailbox is closed. Expunged messages need no REMOVEFROM: the EXPUNGE
// said it.

// maxLiveSearches bounds the searches kept alive per session.
const maxLiveSearches = 16

// liveSearch is a search kept alive by RETURN (UPDATE).
type liveSearch struct {
	tag     string
	uid     bool
	c       criteria
	matched map[uint32]bool
	sort    *liveSort // UID SORT: the order kept (sort_context.go)
}

// startUpdate keeps a search alive. Only UID SEARCH may have UPDATE: its
// results do not move when messages are expunged.
func (s *session) startUpdate(cmd *command, a *searchArgs, found []target) error {
	sel := s.sel
	switch {
	case !cmd.uid:
		return bad("", "UPDATE needs UID SEARCH")
	case a.ret.ReturnSave:
		return bad("", "UPDATE and SAVE do not go together")
	case slices.ContainsFunc(sel.live, func(ls *liveSearch) bool { return ls.tag == cmd.tag }):
		return bad("", "Tag reuse") // RFC 5267 §4.3: updates are told by tag
	case len(sel.live) >= maxLiveSearches:
		return no("NOUPDATE "+quoteTag(cmd.tag), "Too many searches kept alive")
	}
	ls := &liveSearch{tag: cmd.tag, uid: cmd.uid, c: a.criteria, matched: make(map[uint32]bool, len(found))}
	for _, t := range found {
		ls.matched[t.uid] = true
	}
	sel.live = append(sel.live, ls)
	return nil
}

func quoteTag(tag string) string {
	return `"` + tag + `"`
}

// cmdCancelUpdate is CANCELUPDATE (RFC 5267 §4.3).
func (s *session) cmdCancelUpdate(cmd *command) error {
	p := cmd.p
	var tags []string
	for p.maybeSP() {
		tags = append(tags, p.str(s.srv.maxLiteral()))
	}
	if len(tags) == 0 {
		p.fail("CANCELUPDATE needs a tag")
	}
	p.end()
	sel := s.sel
	for _, tag := range tags {
		found := false
		for i, ls := range sel.live {
			if ls.tag == tag {
				sel.live = append(sel.live[:i], sel.live[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			return bad("", "No search kept alive with tag "+tag)
		}
	}
	return nil
}

// updateLive sends ADDTO and REMOVEFROM for the messages that came or
// changed in the updates just sent.
func (s *session) updateLive(touched []uint32, expunged []uint32) {
	sel := s.sel
	if len(sel.live) == 0 {
		return
	}
	for _, ls := range sel.live {
		if ls.sort != nil {
			s.removeFromSorted(ls, expunged)
		}
		for _, u := range expunged {
			delete(ls.matched, u)
		}
	}
	if len(touched) == 0 {
		return
	}
	var msgs []store.Message
	var ts []target
	sel.mbox.Read(s.ctx, func(v *store.View) {
		for _, uid := range touched {
			seq := sel.seqOf(uid)
			if j := v.Seq(uid) - 1; j >= 0 && seq > 0 {
				msgs = append(msgs, v.At(j))
				ts = append(ts, target{seq: seq, uid: uid})
			}
		}
	})
	sc := &searchCtx{s: s, sel: sel, now: time.Now(), saved: make(map[uint32]bool)}
	if n := len(sel.uids); n > 0 {
		sc.lastSeq, sc.lastUID = uint32(n), sel.uids[n-1]
	}
	for _, u := range s.searchRes {
		sc.saved[u] = true
	}
	o := &s.c.out
	for _, ls := range sel.live {
		sc.hdr = need{fields: headerKeys(&ls.c)}.withLower()
		var add, remove []uint32
		for i, t := range ts {
			ok, err := sc.match(&searchMsg{t: t, msg: msgs[i], src: s.source(sel, t.uid)}, &ls.c)
			if err != nil {
				continue
			}
			switch {
			case ok && !ls.matched[t.uid]:
				ls.matched[t.uid] = true
				add = append(add, t.uid)
			case !ok && ls.matched[t.uid]:
				delete(ls.matched, t.uid)
				remove = append(remove, t.uid)
			}
		}
		if ls.sort != nil {
			s.sortChanged(ls, add, remove)
			continue
		}
		for _, part := range []struct {
			name string
			uids []uint32
		}{{"ADDTO", add}, {"REMOVEFROM", remove}} {
			if len(part.uids) == 0 {
				continue
			}
			o.writeString("* ESEARCH (TAG ")
			o.str(ls.tag)
			o.writeString(") UID " + part.name + " (0 " + numSetString(sortedUIDs(part.uids)) + ")\r\n")
		}
	}
}

func sortedUIDs(u []uint32) []uint32 {
	for i := 1; i < len(u); i++ {
		for j := i; j > 0 && u[j] < u[j-1]; j-- {
			u[j], u[j-1] = u[j-1], u[j]
		}
	}
	return u
}
