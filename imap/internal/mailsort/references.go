package mailsort

import "slices"

// ThreadReferences threads keys by RFC 5256 §3 REFERENCES, every step:
// parent links from References/In-Reply-To (1), the root set (2), dummy
// pruning (3), sorting the roots (4), merging threads by base subject (5)
// and sorting all siblings (6). Keys must be in mailbox order.
func ThreadReferences(keys []Keys) []*Thread {
	dates := sentDates(keys)
	roots := linkReferences(keys).tree()
	roots = prune(roots, true)         // step 3
	sortSiblings(dates, roots, false)  // step 4
	roots = mergeSubjects(keys, roots) // step 5
	sortSiblings(dates, roots, true)   // step 6
	return roots
}

// links holds the parent/child graph of step 1 with O(1) linking and
// unlinking: nodes [0, len(keys)) are the messages, later ones dummies.
type links struct {
	parent, first, next, prev []int32
	ids                       map[string]int32
	msgs                      int
}

const none = -1

func linkReferences(keys []Keys) *links {
	n := len(keys)
	l := &links{msgs: n, ids: make(map[string]int32, n)}
	for i := 0; i < n; i++ {
		l.add()
	}
	// Step 1.A, first rule: the first message with a Message-ID owns it;
	// a later duplicate, or a message without one, gets a unique ID, that
	// is, is reachable by no reference.
	for i := range keys {
		if id := keys[i].MessageID; id != "" {
			if _, dup := l.ids[id]; !dup {
				l.ids[id] = int32(i)
			}
		}
	}
	for i := range keys {
		m := int32(i)
		parent := int32(none)
		for _, ref := range keys[i].References {
			node := l.node(ref)
			if node == m {
				// A message listing its own ID (some MUAs do) says
				// nothing about its ancestry. Read literally, 1.B
				// would drop the parent the earlier references gave
				// and then refuse the self-loop, leaving a reply
				// outside its thread; skipping the ID keeps it in.
				continue
			}
			if parent != none {
				// Step 1.A: link adjacent references, keeping any
				// parent a node already has (References may have
				// been truncated) and refusing loops.
				if l.parent[node] == none && !l.wouldLoop(parent, node) {
					l.link(parent, node)
				}
			}
			parent = node
		}
		// Step 1.B: the last reference is the message's parent, replacing
		// any parent step 1.A gave it; no references, no parent. As in
		// Dovecot, a conflicting parent is dropped even if the new link
		// is then refused as a loop.
		if l.parent[m] != parent {
			if l.parent[m] != none {
				l.unlink(m)
			}
			if parent != none && !l.wouldLoop(parent, m) {
				l.link(parent, m)
			}
		}
	}
	return l
}

func (l *links) add() int32 {
	l.parent = append(l.parent, none)
	l.first = append(l.first, none)
	l.next = append(l.next, none)
	l.prev = append(l.prev, none)
	return int32(len(l.parent) - 1)
}

// node finds the message with a Message-ID, or the dummy for it, created
// on first use (step 1.A, third rule).
func (l *links) node(id string) int32 {
	if n, ok := l.ids[id]; ok {
		return n
	}
	n := l.add()
	l.ids[id] = n
	return n
}

// wouldLoop reports whether making p the parent of c would close a loop:
// p is c or a descendant of c. A node without children has no
// descendants, which spares the walk up in the usual case.
func (l *links) wouldLoop(p, c int32) bool {
	if p == c {
		return true
	}
	if l.first[c] == none {
		return false
	}
	for n := l.parent[p]; n != none; n = l.parent[n] {
		if n == c {
			return true
		}
	}
	return false
}

func (l *links) link(p, c int32) {
	l.parent[c] = p
	l.prev[c] = none
	l.next[c] = l.first[p]
	if l.first[p] != none {
		l.prev[l.first[p]] = c
	}
	l.first[p] = c
}

func (l *links) unlink(c int32) {
	p := l.parent[c]
	if l.prev[c] != none {
		l.next[l.prev[c]] = l.next[c]
	} else {
		l.first[p] = l.next[c]
	}
	if l.next[c] != none {
		l.prev[l.next[c]] = l.prev[c]
	}
	l.parent[c], l.next[c], l.prev[c] = none, none, none
}

// tree turns the graph into Thread nodes and returns the root set of step
// 2: every node without a parent. Child order does not matter yet, since
// steps 4 and 6 sort every set of siblings into a total order.
func (l *links) tree() []*Thread {
	nodes := make([]Thread, len(l.parent))
	kids := make([]*Thread, 0, len(l.parent))
	var roots []*Thread
	for i := range nodes {
		t := &nodes[i]
		t.Msg = i
		if i >= l.msgs {
			t.Msg = none
		}
		// All child lists share one array; the full slice expression
		// caps each, so that a later append copies instead of
		// overwriting the next list.
		start := len(kids)
		for c := l.first[i]; c != none; c = l.next[c] {
			kids = append(kids, &nodes[c])
		}
		if len(kids) > start {
			t.Children = kids[start:len(kids):len(kids)]
		}
		if l.parent[i] == none {
			roots = append(roots, t)
		}
	}
	return roots
}

// prune is step 3: a dummy without children goes; a dummy with children
// gives way to them, except that several children do not become roots
// that way. Working bottom-up, promoted children are already pruned.
func prune(kids []*Thread, top bool) []*Thread {
	var out []*Thread // nil until a dummy changes the list
	for i, c := range kids {
		if len(c.Children) > 0 {
			c.Children = prune(c.Children, false)
		}
		if c.Msg >= 0 || (top && len(c.Children) > 1) {
			if out != nil {
				out = append(out, c)
			}
			continue
		}
		if out == nil {
			out = append(make([]*Thread, 0, len(kids)+len(c.Children)), kids[:i]...)
		}
		out = append(out, c.Children...) // none for a childless dummy
	}
	if out == nil {
		return kids
	}
	return out
}

// sortSiblings sorts kids by sent date (RFC 5256 §2.2, sequence order on
// ties), a dummy by its first child once that child's siblings are sorted.
// Step 4 sorts the roots and the children of dummies (deep is false);
// step 6 every set of siblings, the deepest first (deep is true).
func sortSiblings(dates []int64, kids []*Thread, deep bool) {
	for _, c := range kids {
		if deep || c.Msg < 0 {
			sortSiblings(dates, c.Children, deep)
		}
	}
	if len(kids) > 1 {
		slices.SortFunc(kids, func(a, b *Thread) int {
			return dateCmp(dates, sortMsg(a), sortMsg(b))
		})
	}
}

// sortMsg is the message a node sorts as: itself, or a dummy's first
// child (RFC 5256 §3 steps 4 and 6).
func sortMsg(t *Thread) int {
	for t.Msg < 0 && len(t.Children) > 0 {
		t = t.Children[0]
	}
	if t.Msg < 0 {
		return 0
	}
	return t.Msg
}
