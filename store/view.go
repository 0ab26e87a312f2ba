package store

import "sort"

// View is a consistent look at a mailbox's index, valid only inside the
// function given to Mailbox.Read.
type View struct {
	b     *box
	write bool // b.mu is held for writing: a lazy index may be taken in
}

// Len is the number of messages.
func (v *View) Len() int { return v.b.count() }

// At returns the message at 0-based index i (sequence number i+1).
func (v *View) At(i int) Message {
	v.full()
	e := &v.b.msgs[i]
	var kws []string
	if e.kw != 0 {
		kws = v.b.kwCache[e.kw]
	}
	return Message{
		UID:      e.uid,
		Flags:    e.flags,
		Keywords: kws,
		Size:     e.size,
		Recent:   e.uid >= v.b.firstRecent,
		ModSeq:   e.modseq,
	}
}

// UID returns the UID of the message at 0-based index i, without the rest
// of At: for walking a view alongside a list of UIDs.
func (v *View) UID(i int) uint32 {
	if lz := v.b.lazy; lz != nil {
		return lz.uids[i]
	}
	return v.b.msgs[i].uid
}

// Seq returns the 1-based sequence number of uid, 0 if there is none.
func (v *View) Seq(uid uint32) int {
	if lz := v.b.lazy; lz != nil {
		return lz.find(uid) + 1
	}
	return v.b.find(uid) + 1
}

// SearchUID returns the 0-based index of the first message with a UID of at
// least uid (Len() if none), for walking UID ranges.
func (v *View) SearchUID(uid uint32) int {
	return sort.Search(v.Len(), func(i int) bool { return v.UID(i) >= uid })
}

// UIDValidity is the mailbox's UIDVALIDITY.
func (v *View) UIDValidity() uint32 { return v.b.uidValidity }

// UIDNext is the UID the next message will get.
func (v *View) UIDNext() uint32 { return v.b.nextUID }

// HighestModSeq is the mailbox's HIGHESTMODSEQ (RFC 7162): the MODSEQ of
// its last change, never lower than any message's.
func (v *View) HighestModSeq() uint64 { return v.b.highestModSeq }

// Keywords are the mailbox's defined keywords, used or not, in the order of
// dovecot-keywords.
func (v *View) Keywords() []string { return v.b.definedKeywords() }

// CanCreateKeywords reports whether a new keyword would fit.
func (v *View) CanCreateKeywords() bool { return len(v.b.definedKeywords()) < maxKeywords }

// Ext returns an extension field of the message's dovecot-uidlist line,
// e.g. 'P' for a POP3 UIDL kept from another server.
func (v *View) Ext(i int, key byte) (string, bool) {
	v.full()
	return extField(v.b.msgs[i].ext, key)
}

// AppendUIDs appends the UIDs of all messages, in order, to dst.
func (v *View) AppendUIDs(dst []uint32) []uint32 {
	for i := range v.Len() {
		dst = append(dst, v.UID(i))
	}
	return dst
}

// seen reports whether the message at index i has \Seen; a lazy index
// knows that much.
func (v *View) seen(i int) bool {
	if lz := v.b.lazy; lz != nil {
		return lz.seen[i]
	}
	return v.b.msgs[i].flags&FlagSeen != 0
}

// FirstUnseen is the sequence number of the first message without \Seen,
// 0 if there is none.
func (v *View) FirstUnseen() int {
	for i := range v.Len() {
		if !v.seen(i) {
			return i + 1
		}
	}
	return 0
}

// UnseenCount is the number of messages without \Seen.
func (v *View) UnseenCount() int {
	n := 0
	for i := range v.Len() {
		if !v.seen(i) {
			n++
		}
	}
	return n
}

// RecentCount is the number of messages that are \Recent: those from
// the first UID no session has claimed on.
func (v *View) RecentCount() int { return v.Len() - v.SearchUID(v.b.firstRecent) }

// counts is Status but for the sums of sizes and \Deleted.
func (v *View) counts() Status {
	return Status{
		Messages: v.Len(), Recent: v.RecentCount(), Unseen: v.UnseenCount(), FirstUnseen: v.FirstUnseen(),
		UIDNext: v.UIDNext(), UIDValidity: v.UIDValidity(), HighestModSeq: v.HighestModSeq(),
	}
}

// full makes sure the view shows the whole index. A lazy view exists
// only under b.mu held for writing (Subscribe).
func (v *View) full() {
	if v.b.lazy != nil {
		if !v.write {
			panic("store: lazy index under a read lock")
		}
		v.b.materialize()
	}
}
