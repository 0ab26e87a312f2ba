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
	subj := make([]string, len(keys))
	for i := range keys {
		subj[i] = foldKey(keys[i].Subject)
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if r := cmp.Compare(subj[a], subj[b]); r != 0 {
			return r
		}
		return dateCmp(keys, a, b)
	})
	nodes := make([]Thread, len(keys))
	var roots []*Thread
	for i, m := range order {
		nodes[m].Msg = m
		if i > 0 && subj[m] == subj[order[i-1]] {
			root := roots[len(roots)-1]
			root.Children = append(root.Children, &nodes[m])
			continue
		}
		roots = append(roots, &nodes[m])
	}
	slices.SortFunc(roots, func(a, b *Thread) int { return dateCmp(keys, a.Msg, b.Msg) })
	return roots
}

// dateCmp orders two messages by sent date, then by sequence (RFC 5256
// §2.2).
func dateCmp(keys []Keys, a, b int) int {
	if r := cmp.Compare(keys[a].SentDate(), keys[b].SentDate()); r != 0 {
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
