package mailsort

import (
	"cmp"
	"slices"
	"strconv"
)

// Thread is a node of a THREAD result: a message, or a dummy (Msg < 0)
// standing for a parent that is missing from the mailbox or was not
// searched. Msg is an index into the keys the tree was built from.
type Thread struct {
	Msg      int
	Children []*Thread
}

// ThreadOrderedSubject threads keys by RFC 5256 §3 ORDEREDSUBJECT: one
// thread per base subject (compared by Compare, so an empty subject is a
// subject like any other), its first message by sent date the root and
// the others its children by sent date; threads ordered by the sent date
// of their root. Sequence order breaks ties throughout.
func ThreadOrderedSubject(keys []Keys) []*Thread {
	subj := foldAll(keys, func(k *Keys) string { return k.Subject })
	dates := sentDates(keys)
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if r := cmp.Compare(subj[a], subj[b]); r != 0 {
			return r
		}
		return dateCmp(dates, a, b)
	})
	// Runs of one subject become threads; the children of all threads
	// share one array.
	nodes := make([]Thread, len(keys))
	kids := make([]*Thread, len(keys))
	var roots []*Thread
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && subj[order[j]] == subj[order[i]] {
			j++
		}
		for _, m := range order[i:j] {
			nodes[m].Msg = m
		}
		root := &nodes[order[i]]
		for n, m := range order[i+1 : j] {
			kids[i+1+n] = &nodes[m]
		}
		if j > i+1 {
			root.Children = kids[i+1 : j : j]
		}
		roots = append(roots, root)
		i = j
	}
	slices.SortFunc(roots, func(a, b *Thread) int { return dateCmp(dates, a.Msg, b.Msg) })
	return roots
}

// sentDates lists the sent date of every message (Keys.SentDate), so that
// sorting reads a compact slice rather than the keys.
func sentDates(keys []Keys) []int64 {
	d := make([]int64, len(keys))
	for i := range keys {
		d[i] = keys[i].SentDate()
	}
	return d
}

// dateCmp orders two messages by sent date, then by sequence (RFC 5256
// §2.2).
func dateCmp(dates []int64, a, b int) int {
	if r := cmp.Compare(dates[a], dates[b]); r != 0 {
		return r
	}
	return a - b
}

// AppendThreads appends threads to b as the data of a THREAD response
// (RFC 5256 §4), without the leading "THREAD": each thread parenthesised,
// a chain of single children written flat ("(1 2 3)"), the children of a
// node with several each in their own parentheses ("(1 (2 3)(4))"), and a
// dummy written only through its children ("((3)(5))"). num gives the
// number written for a message index: its sequence number or its UID.
func AppendThreads(b []byte, threads []*Thread, num func(msg int) uint32) []byte {
	for _, t := range threads {
		if !hasMsg(t) {
			continue // a dummy without messages has nothing to show
		}
		b = append(b, '(')
		b = appendMembers(b, t, num)
		b = append(b, ')')
	}
	return b
}

// appendMembers writes thread-members for t: its number and those of its
// single-child descendants, then its children as a thread-nested.
func appendMembers(b []byte, t *Thread, num func(int) uint32) []byte {
	first := true
	for {
		if t.Msg >= 0 {
			if !first {
				b = append(b, ' ')
			}
			b = strconv.AppendUint(b, uint64(num(t.Msg)), 10)
			first = false
		}
		kids := visible(t.Children)
		switch len(kids) {
		case 0:
			return b
		case 1:
			t = kids[0]
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		for _, c := range kids {
			b = append(b, '(')
			b = appendMembers(b, c, num)
			b = append(b, ')')
		}
		return b
	}
}

// visible drops dummies without messages below them, which have nothing
// to show; pruned trees have none, so this rarely copies.
func visible(kids []*Thread) []*Thread {
	for i, c := range kids {
		if !hasMsg(c) {
			out := append([]*Thread(nil), kids[:i]...)
			for _, c := range kids[i+1:] {
				if hasMsg(c) {
					out = append(out, c)
				}
			}
			return out
		}
	}
	return kids
}

// hasMsg reports whether t is or holds a message. In a pruned tree a dummy
// has a message child, so this returns at once.
func hasMsg(t *Thread) bool {
	if t.Msg >= 0 {
		return true
	}
	for _, c := range t.Children {
		if hasMsg(c) {
			return true
		}
	}
	return false
}
